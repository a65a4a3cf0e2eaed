"""What one survey answer costs, in-process: the SQL of a changed answer (with timings) and
the Python CPU per POST over 400 answers to the invitations ``survey_posts.py`` created.

    .venv/bin/python bench/survey_post_cost.py   # after bench/survey_posts.py, same env
"""

from __future__ import annotations

import os
import time

from _setup import django_setup


def main() -> None:
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("SURVEY_RATE_PER_IP", "100000000")
    django_setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from surveys.models import Invitation

    tokens = list(
        Invitation.objects.filter(campaign__name="bench survey posts").values_list(
            "token", flat=True
        )[:401]
    )
    client = Client()
    client.get(f"/s/{tokens[0]}/")
    with CaptureQueriesContext(connection) as ctx:
        client.post(f"/s/{tokens[0]}/", {"score": "5"})
    print(f"statements of one changed answer: {len(ctx.captured_queries)}")
    for q in ctx.captured_queries:
        print(f"  {q['time']} s  {q['sql'][:90]}")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for token in tokens[1:]:
        client.post(f"/s/{token}/", {"score": "5"})
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = len(tokens) - 1
    print(f"per POST: Python CPU {1000 * cpu / n:.2f} ms, wall {1000 * wall / n:.2f} ms")


if __name__ == "__main__":
    main()
