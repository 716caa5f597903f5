"""gunicorn settings for the service: ``gunicorn.conf.py`` at the project root and ``consent serve`` read them.

Sized for a 2-core machine: sync workers, two per core, gave the best insert
throughput on SQLite and PostgreSQL; threads gave worse tails.
"""

import multiprocessing
import os

from consent.config import value

bind = value("BIND")
workers = value("WORKERS") or multiprocessing.cpu_count() * 2
# gunicorn's sync worker, answering the malformed requests it refuses itself in the API's JSON error shape.
worker_class = "consent.web.serving.JsonErrorWorker"
# Streamed exports of a large log take longer than a page; the worker keeps
# writing while it streams, but a slow client must not get it killed.
timeout = value("TIMEOUT")
graceful_timeout = 30
keepalive = 2
# No client address and no query string in the access log: both can be personal data.
accesslog = value("ACCESS_LOG") or None
access_log_format = '%(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
# Nor in gunicorn's own lines ("Invalid request from ..."): paths escaped, consent IDs masked.
logger_class = "consent.web.serving.ServiceLogger"

# gunicorn's control socket sits at one path per user, so a second instance on
# the same host would take it over; the service needs none (HUP reloads).
control_socket_disable = True

# Metrics from every worker are added up through files in one folder, made
# for this master and removed when it stops (the file is read again on HUP,
# so the folder is remembered in the environment, not in a variable).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="consent-metrics-")
    os.environ["CONSENT_METRICS_FOLDER_MADE"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_exit(server):  # noqa: ANN001, ANN201 - gunicorn hook signature
    made = os.environ.get("CONSENT_METRICS_FOLDER_MADE")
    if made:
        import shutil

        shutil.rmtree(made, ignore_errors=True)


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn hook signature
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
