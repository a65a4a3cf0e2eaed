"""A first answer's database work, two ways, interleaved in one process and one connection so
that the machine's load weighs on both alike: blocks of ``--block`` answers alternate between

- ``two``: the connection health check (``SELECT 1``, as ``CONN_HEALTH_CHECKS`` sends before
  a request's first statement), the invitation read, then the ``WITH … INSERT`` (the path of
  ``c5741ee``, rebuilt from the helpers the locked path still uses);
- ``one``: the passive health check (``config.db._passive_health_check``: a poll of the
  idle socket) and the single statement of ``surveys.services._first_answer``.

It reports per answer the PostgreSQL backend's CPU (from /proc, same host) and this
process's CPU for each way, over fresh invitations that ``survey_posts.prepare`` creates.

    .venv/bin/python bench/survey_answer_paths.py --answers 6000 --block 200
"""

from __future__ import annotations

import argparse
import time

from _setup import django_setup
from survey_post_cost import _backend_pid, _process_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=6000)
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=1)
    args = parser.parse_args()
    django_setup()
    from django.db import connection
    from django.utils import timezone
    from survey_posts import prepare

    from config.db import prepared_cursor
    from surveys import services

    tokens = [token for token, _ in prepare(args.answers, accounts=args.accounts)]
    connection.health_check_enabled = True

    def two(token: str) -> None:
        connection.health_check_done = False  # a new request on the reused connection
        connection.close_if_health_check_failed()  # Django's SELECT 1
        now = timezone.now()
        with prepared_cursor() as cursor:
            row = services._invitation_row(cursor, invitation_id=None, token=token, lock=False)
            response = services._new_response(row, "9", "", now)
            services._answer_insert(cursor, response, row["name"] or row["email"], announce=True)

    def one(token: str) -> None:
        connection.health_check_done = False
        services._first_answer(token, "9", "", timezone.now(), announce=True)

    ways = {"two": two, "one": one}
    totals = {name: [0.0, 0.0, 0] for name in ways}  # backend CPU, own CPU, answers
    backend = _backend_pid(connection)
    for start in range(0, len(tokens), args.block):
        name = list(ways)[(start // args.block) % 2]
        pg0, cpu0 = _process_cpu(backend), time.process_time()
        for token in tokens[start : start + args.block]:
            ways[name](token)
        totals[name][0] += _process_cpu(backend) - pg0
        totals[name][1] += time.process_time() - cpu0
        totals[name][2] += len(tokens[start : start + args.block])
    assert _backend_pid(connection) == backend
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    for name, (pg, cpu, n) in totals.items():
        print(
            f"{name}: {n} answers, PostgreSQL backend CPU {1e3 * pg / n:.3f} ms, "
            f"this process {1e3 * cpu / n:.3f} ms per answer (load average {load})"
        )


if __name__ == "__main__":
    main()
