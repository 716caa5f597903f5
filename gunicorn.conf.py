"""gunicorn settings, read automatically by ``gunicorn wsgi:app`` from the project root.

They live in the package (``consent.web.gunicorn_settings``), so that an
installed service runs with the same ones: ``consent serve``.
"""

from consent.web.gunicorn_settings import *  # noqa: F403
