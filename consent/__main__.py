"""``python -m consent``: the same as the ``consent`` command."""

from consent.cli import main

main()
