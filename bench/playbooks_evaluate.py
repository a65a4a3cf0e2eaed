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
import contextlib
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


COUNTS = ("matched", "opened", "pending", "skipped_open", "successes", "failures", "promoted",
          "escalated")  # fmt: skip
# the steps of playbooks_evaluate_all, timed one by one (facts: every source at once)
PHASES = ("facts.gather", "_awaiting_outcome", "_outcomes_record", "_open_for",
          "ctas_open", "ctas_promote_pending", "ctas_escalate_overdue")  # fmt: skip


class Rollback(Exception):
    pass


@contextlib.contextmanager
def _timed(phases: dict[str, float]):
    """Time the steps named in ``PHASES`` (module functions looked up at call time) into
    ``phases``; nested steps count in both (``ctas_open`` runs inside ``_open_for``)."""
    from playbooks import facts, services

    def wrap(name, fn):
        def timed(*args, **kwargs):
            clock = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.monotonic() - clock

        return timed

    originals = []
    for name in PHASES:
        module, attr = (facts, "gather") if name == "facts.gather" else (services, name)
        originals.append((module, attr, getattr(module, attr)))
        setattr(module, attr, wrap(name, getattr(module, attr)))
    try:
        yield phases
    finally:
        for module, attr, fn in originals:
            setattr(module, attr, fn)


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
        "load_average_at_start": _load(),
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
                phases: dict[str, float] = {}
                with CaptureQueriesContext(connection) as queries, _timed(phases):
                    clock = time.monotonic()
                    counts = services.playbooks_evaluate_all(as_of=as_of)
                    seconds = time.monotonic() - clock
                result[label] = {
                    "seconds": round(seconds, 2),
                    "queries": len(queries.captured_queries),
                    "seconds_per_phase": {k: round(v, 2) for k, v in phases.items()},
                    **{k: counts[k] for k in COUNTS},
                }
            result["ctas_after"] = Cta.objects.count()
            raise Rollback
    except Rollback:
        pass
    result["load_average_at_end"] = _load()
    print(json.dumps(result, indent=2))


def _load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:  # not Linux
        return "unknown"


if __name__ == "__main__":
    main()
