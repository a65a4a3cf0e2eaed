"""What one survey answer costs, in-process: the SQL of a first and of a changed answer (with
timings) and the Python CPU per POST over ``--posts`` answers to fresh invitations that
``survey_posts.py`` created, through the WSGI application gunicorn serves (``config.wsgi``:
the answers' middleware, CSRF checked with a cookie and form token; no HTTP parsing).

    .venv/bin/python bench/survey_post_cost.py                # creates its invitations
    .venv/bin/python bench/survey_post_cost.py --profile 25   # + the 25 costliest functions

The PostgreSQL figure is the CPU of the database's backends (same host, from /proc; this
process's and the answers' batch thread's, ``surveys.answer_batch``) over the same answers:
the statements' parse, plan, execution, foreign-key checks and commit. The answers are
POSTed one after another, so each batch holds one answer.

``--callgrind``: under ``valgrind --tool=callgrind --instr-atstart=no``, instruments only the
POST loop (``callgrind_control -i on/off``), for instruction counts that the machine's load
does not change:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \
        .venv/bin/python bench/survey_post_cost.py --posts 200 --callgrind
    callgrind_annotate /tmp/cg.out | grep "PROGRAM TOTALS"     # / 200 = per POST

``--profile`` runs cProfile on CPU time (``time.process_time``), so waiting for PostgreSQL
and Redis does not count; the profiler itself roughly doubles the CPU figures.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import time
from urllib.parse import urlencode

from _setup import django_setup


def _instrument(wanted: bool, state: str) -> None:
    if wanted:
        subprocess.run(
            ["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    parser.add_argument("--callgrind", action="store_true", help="instrument the POST loop only")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("SURVEY_RATE_PER_IP", "100000000")
    django_setup()
    from django.db import connection
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
    from django.test.utils import CaptureQueriesContext

    from surveys.models import Invitation

    tokens = list(
        Invitation.objects.filter(
            campaign__name="bench survey posts", responded_at__isnull=True
        ).values_list("token", flat=True)[: args.posts + 1]
    )
    if len(tokens) < args.posts + 1:  # fresh invitations (survey_posts.py's, recreated)
        from survey_posts import prepare

        tokens = [token for token, _ in prepare(args.posts + 1)]
    from config.wsgi import application as app  # what gunicorn serves

    secret = _get_new_csrf_string()
    form_token = _mask_cipher_secret(secret)

    def post(token: str, score: int) -> str:
        body = urlencode({"score": score, "csrfmiddlewaretoken": form_token}).encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": f"/s/{token}/", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8766", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8766",
            "HTTP_COOKIE": f"csrftoken={secret}",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
        }  # fmt: skip
        status = []
        response = app(environ, lambda s, headers, exc_info=None: status.append(s))
        b"".join(response)
        if hasattr(response, "close"):  # the lean path's list has none (WSGI: optional)
            response.close()
        return status[0]

    for label, score in (("first", 5), ("changed", 9)):
        with CaptureQueriesContext(connection) as ctx:
            status = post(tokens[0], score)
        print(f"statements of a {label} answer ({status}): {len(ctx.captured_queries)}")
        for q in ctx.captured_queries:
            print(f"  {q['time']} s  {' '.join(q['sql'].split())[:100]}")

    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.process_time)
        profile.enable()
    from survey_posts import PostgresCpu

    postgres = PostgresCpu(connection.settings_dict["NAME"])  # sampled before and after only
    postgres.sample(initial=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    _instrument(args.callgrind, "on")
    statuses = [post(token, 5) for token in tokens[1:]]
    _instrument(args.callgrind, "off")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    postgres.sample()
    pg = postgres.seconds()
    pg = pg if connection.vendor == "postgresql" else None
    if profile is not None:
        profile.disable()
    n = len(statuses)
    assert set(statuses) == {"302 Found"}, set(statuses)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(
        f"per POST over {n}: Python CPU {1000 * cpu / n:.2f} ms, wall {1000 * wall / n:.2f} ms, "
        f"PostgreSQL backend CPU {f'{1000 * pg / n:.2f} ms' if pg is not None else 'n/a'}"
        f" (load average {' '.join(load)}{', profiled' if profile else ''})"
    )
    if profile is not None:
        import pstats

        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.profile)
        if os.environ.get("BENCH_CUMULATIVE"):
            stats.sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
