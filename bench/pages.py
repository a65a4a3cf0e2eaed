"""Server time of the CSM workspace pages (issue 6): the queue (20 rows a page, varied
filters, sorts and pages), the account page and the dashboard, through Django's test
client in this process (middleware, views, queries and templates; no network).

    DATABASE_URL=postgres://... DJANGO_SECRET_KEY=... DJANGO_ALLOWED_HOSTS=testserver \\
        .venv/bin/python bench/pages.py [--requests 60] [--seed 1]

Prints p50/p95/max in milliseconds per page and the queries of one request of each, and
writes them to bench/out/pages.json. Read-only: it signs in as existing users (the demo
admin, a manager and a CSM of ``seed_demo``)."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from _setup import OUT, django_setup


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60, help="requests per page (>= 50)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    django_setup()

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Account, AccountLifecycle, Role, User
    from metrics.models import KpiSnapshot

    rng = random.Random(args.seed)
    users = {u.role: u for u in User.objects.filter(email__endswith="@demo.example")}
    admin, manager = users[Role.ADMIN], users[Role.MANAGER]
    csm = User.objects.filter(email="csm1@demo.example").first()
    segments = list(
        Account.objects.exclude(segment="")
        .order_by("segment")
        .values_list("segment", flat=True)
        .distinct()
    )
    owners = list(
        User.objects.filter(accounts__isnull=False).distinct().values_list("pk", flat=True)
    )
    n_accounts = Account.objects.count()
    max_id = Account.objects.order_by("-pk").values_list("pk", flat=True).first()
    days = list(
        KpiSnapshot.objects.filter(scope_kind="all")
        .order_by("-day")
        .values_list("day", flat=True)[:5]
    )

    def queue_params() -> dict:
        options = [
            {},
            {"band": rng.choice(["red", "yellow", "green"])},
            {"segment": rng.choice(segments)},
            {"owner": str(rng.choice(owners))},
            {"lifecycle": rng.choice(AccountLifecycle.values)},
            {"renewal": rng.choice(["30", "60", "90", "180"])},
            {"q": rng.choice(["tech", "north", "a", "zz"])},
            {"sort": rng.choice(["arr", "renewal", "score", "trend", "name"])},
            {"band": "yellow", "segment": rng.choice(segments), "sort": "arr"},
            {"page": str(rng.randint(2, 200))},
        ]
        params = dict(rng.choice(options))
        params.setdefault("scope", "team")
        return params

    clients = {}
    for user in (admin, manager, csm):
        c = Client()
        c.force_login(user)
        clients[user.pk] = c

    def run(name: str, make) -> dict:
        times = []
        for i in range(args.requests + 5):
            client, url, params, headers = make()
            start = time.perf_counter()
            response = client.get(url, params, secure=True, headers=headers)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, (url, params, response.status_code)
            if i >= 5:  # the first few warm caches and connections
                times.append(elapsed)
        client, url, params, headers = make()
        with CaptureQueriesContext(connection) as ctx:
            client.get(url, params, secure=True, headers=headers)
        result = {
            "page": name,
            "requests": len(times),
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
            "max_ms": round(max(times), 1),
            "queries": len(ctx.captured_queries),
        }
        print(
            f"{name:<34} n={result['requests']:<4} p50 {result['p50_ms']:7.1f} ms   "
            f"p95 {result['p95_ms']:7.1f} ms   max {result['max_ms']:7.1f} ms   "
            f"{result['queries']} queries"
        )
        return result

    hx = {"HX-Request": "true", "HX-Target": "queue-results"}
    results = [
        run("queue, admin, full page", lambda: (clients[admin.pk], "/", queue_params(), {})),
        run("queue, admin, htmx fragment", lambda: (clients[admin.pk], "/", queue_params(), hx)),
        run(
            "queue, manager (team)",
            lambda: (clients[manager.pk], "/", {**queue_params(), "owner": ""}, {}),
        ),
        run(
            "queue, CSM (mine)",
            lambda: (clients[csm.pk], "/", {**queue_params(), "scope": "mine", "owner": ""}, {}),
        ),
        run(
            "renewals, admin",
            lambda: (
                clients[admin.pk],
                "/renewals/",
                {"renewal": rng.choice(["30", "60", "90", "180"])},
                {},
            ),
        ),
        run(
            "account page, admin",
            lambda: (clients[admin.pk], f"/accounts/{_account_id(rng, max_id)}/", {}, {}),
        ),
        run(
            "dashboard, admin",
            lambda: (
                clients[admin.pk],
                "/dashboard/",
                rng.choice(
                    [
                        {},
                        {"segment": rng.choice(segments)},
                        {"owner": str(rng.choice(owners))},
                        {"day": rng.choice(days).isoformat()} if days else {},
                    ]
                ),
                {},
            ),
        ),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pages.json").write_text(
        json.dumps({"accounts": n_accounts, "results": results}, indent=2)
    )
    print(f"{n_accounts:,} accounts; results in {OUT / 'pages.json'}")


def _account_id(rng: random.Random, max_id: int) -> int:
    from accounts.models import Account

    while True:  # ids may have gaps
        pk = rng.randint(1, max_id)
        if Account.objects.filter(pk=pk).exists():
            return pk


if __name__ == "__main__":
    main()
