"""What the token's ``varchar_pattern_ops`` index (``surveys_invitation_token_…_like``, made by
Django for ``token = CharField(unique=True)``) costs a first answer in PostgreSQL: blocks of
``--block`` first answers (``surveys.services._first_answer``, one connection) alternate
between the index present and dropped (by a second connection between blocks, then
re-created), so that the machine's load weighs on both alike. Reports the backend's CPU per
answer (from /proc, same host) each way. The index is left as it was found.

    .venv/bin/python bench/survey_answer_index.py --answers 8000 --block 250
"""

from __future__ import annotations

import argparse

from _setup import django_setup
from survey_post_cost import _backend_pid, _process_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=8000)
    parser.add_argument("--block", type=int, default=250)
    parser.add_argument("--accounts", type=int, default=100)
    args = parser.parse_args()
    django_setup()
    import psycopg
    from django.db import connection
    from django.utils import timezone
    from survey_posts import prepare

    from surveys import services

    tokens = [token for token, _ in prepare(args.answers, accounts=args.accounts)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'surveys_invitation'"
            " AND indexname LIKE 'surveys_invitation_token%%_like'"
        )
        (name, definition) = cursor.fetchone()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    ddl = psycopg.connect(**params, autocommit=True)
    totals = {"with _like": [0.0, 0], "without": [0.0, 0]}
    backend = _backend_pid(connection)
    try:
        ddl.execute(f"DROP INDEX {name}")
        for start in range(0, len(tokens), args.block):
            way = list(totals)[(start // args.block) % 2]
            if way == "with _like":
                ddl.execute(definition)
            pg0 = _process_cpu(backend)
            for token in tokens[start : start + args.block]:
                services._first_answer(token, "9", "", timezone.now(), announce=True)
            totals[way][0] += _process_cpu(backend) - pg0
            totals[way][1] += len(tokens[start : start + args.block])
            if way == "with _like":
                ddl.execute(f"DROP INDEX {name}")
    finally:
        ddl.execute(f"DROP INDEX IF EXISTS {name}")
        ddl.execute(definition)
    assert _backend_pid(connection) == backend
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    for way, (pg, n) in totals.items():
        print(
            f"{way}: {n} answers, PostgreSQL backend CPU {1e3 * pg / n:.3f} ms per answer"
            f" (load average {load})"
        )


if __name__ == "__main__":
    main()
