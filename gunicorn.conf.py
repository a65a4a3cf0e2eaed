"""gunicorn's settings for the web service: the Dockerfile's command, docker-compose.yml's
``web`` and bench/survey_posts.py all run ``gunicorn`` from the repository's root, where
gunicorn reads this file by itself (command-line flags and ``GUNICORN_CMD_ARGS`` override it).

Threaded workers (``gthread``), one process per core, each with ``GUNICORN_THREADS`` threads:
a thread waiting on PostgreSQL or Redis leaves the core to another request, and the reverse
proxy in front keeps its connections to gunicorn open (HTTP/1.1 keep-alive), so a request
costs no TCP connection of its own. Measured on two cores (docs/benchmarks.md, "Survey
answers over HTTP", third session): gunicorn's ``sync`` worker (which cannot keep a
connection alive) behind a proxy that opens a connection per request spent 0.3-0.8 ms more
worker CPU per survey answer than this (2.4-2.8 against 1.7-2.2 ms), PostgreSQL no less, and
answered fewer per second.

Each worker, once it has loaded the application, moves everything loaded so far out of the
garbage collector's sight (``post_worker_init``: ``gc.freeze``). Django, the apps and their
modules are some 120,000 objects that live as long as the worker. Without this, each full
collection (2-3 per worker in a burst of 10,000 answers in 10 s) walked them all and held
every thread of the worker for 56-129 ms: the slowest survey answers' latency
(docs/benchmarks.md, "Survey answers: the collector's pauses", seventh session).

The access log is off: the reverse proxy logs every request already;
``GUNICORN_CMD_ARGS="--access-logfile -"`` turns it on.
"""

import gc
import os

wsgi_app = "config.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# WEB_CONCURRENCY: gunicorn's own variable for the number of workers (one per core)
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 8)
# longer than the proxy's idle timeout for its upstream connections (nginx: 60 s), so the
# proxy, not gunicorn, closes an idle one: never a request sent on a connection closing
keepalive = 75
timeout = 120
backlog = 2048
# the TLS-terminating proxy sets X-Forwarded-Proto; gunicorn runs in its own container
forwarded_allow_ips = "*"


def post_worker_init(worker):
    """Load the URLconf (every view's module) now rather than on the first request, then
    freeze what the worker holds: the collector's full passes then walk only what requests
    leave behind. A view module that fails to import now stops the worker at boot (and
    gunicorn with it) instead of failing every request."""
    from django.urls import get_resolver  # the app is loaded: Django is set up

    get_resolver().url_patterns  # noqa: B018 - imports the views
    gc.collect()
    gc.freeze()
