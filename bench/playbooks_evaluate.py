"""Time the nightly playbook evaluation (``playbooks.services.playbooks_evaluate_all``) over
the whole book: the facts of every account (a fixed handful of aggregate queries), the
rules in Python, the new CTAs bulk-created, then the same evaluation again (the steady
state: every CTA is open already, nothing is written).

Needs a book with health snapshots (``manage.py seed_demo`` then ``manage.py
run_pipeline``). Everything the script writes is rolled back at the end, so it can be run
again on the same book.

    .venv/bin/python bench/playbooks_evaluate.py [--as-of YYYY-MM-DD] [--all-triggers]

``--all-triggers`` adds one enabled playbook per trigger (13) to the starter playbooks."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

from _setup import django_setup

ALL_TRIGGERS = {
    "health_entered": {"band": "red"},
    "score_dropped": {"points": 20, "days": 7},
    "usage_dropped": {"percent": 50},
    "renewal_within": {"days": 90},
    "new_customer": {"days": 30},
    "first_value_missing": {"days": 14},
    "payment_trouble": {},
    "ticket_escalated": {},
    "open_tickets": {"count": 3},
    "survey_unhappy": {},
    "champion_removed": {},
    "no_activity": {"days": 60},
    "seat_utilisation": {"at_least": 90},
}


class Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--all-triggers", action="store_true")
    args = parser.parse_args()
    django_setup()

    from django.db import connection, transaction
    from django.db.models import Max
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Account
    from metrics.models import HealthSnapshot
    from playbooks import facts, services
    from playbooks.models import Cta, Playbook

    as_of = args.as_of or HealthSnapshot.objects.aggregate(d=Max("day"))["d"]
    if as_of is None:
        raise SystemExit("no health snapshots: run manage.py run_pipeline first")
    result = {
        "as_of": as_of.isoformat(),
        "accounts": Account.objects.count(),
        "snapshots_that_day": HealthSnapshot.objects.filter(day=as_of).count(),
    }
    try:
        with transaction.atomic():
            if args.all_triggers:
                for trigger, params in ALL_TRIGGERS.items():
                    services.playbook_create(
                        config={
                            "name": f"bench {trigger}",
                            "trigger": trigger,
                            "trigger_params": params,
                            "cta_title": f"bench {trigger}",
                            "cta_type": "risk",
                            "priority": "medium",
                            "steps": [{"title": "Look", "due_days": 1}],
                            "owner_rule": "account_csm",
                            "success": "steps_done",
                            "success_days": 30,
                            "cooldown_days": 30,
                        }
                    )
            playbooks = list(Playbook.objects.filter(enabled=True))
            result["playbooks"] = len(playbooks)
            result["ctas_before"] = Cta.objects.count()

            needs = services._fact_needs(playbooks)
            clock = time.monotonic()
            gathered = needs.gather(as_of=as_of)
            result["facts_only_seconds"] = round(time.monotonic() - clock, 2)
            result["facts_sources"] = sorted(needs.sources)
            per_source = {}
            for source in sorted(needs.sources):
                clock = time.monotonic()
                facts.gather(as_of=as_of, sources=[source], window_days=needs.window)
                per_source[source] = round(time.monotonic() - clock, 2)
            clock = time.monotonic()
            facts.gather(as_of=as_of, sources=[])
            per_source["(accounts only)"] = round(time.monotonic() - clock, 2)
            result["facts_seconds_per_source_with_accounts"] = per_source
            del gathered

            for label in ("first_run", "second_run"):
                with CaptureQueriesContext(connection) as queries:
                    clock = time.monotonic()
                    counts = services.playbooks_evaluate_all(as_of=as_of)
                    seconds = time.monotonic() - clock
                result[label] = {
                    "seconds": round(seconds, 2),
                    "queries": len(queries.captured_queries),
                    **{
                        k: counts[k]
                        for k in ("matched", "opened", "pending", "skipped_open", "promoted")
                    },
                }
            result["ctas_after"] = Cta.objects.count()
            raise Rollback
    except Rollback:
        pass
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
