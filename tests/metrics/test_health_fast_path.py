"""The nightly health step's fast path (``health.Scorer``: per-data-set plans, component
results shared between accounts, JSON encoded once; the snapshot upsert) records exactly the
snapshots the reference gives: ``health.score`` called account by account on the measures
read for that account alone, its components encoded with ``as_json``. On a random book with
two models (one with a zero-weight component), overrides of whole accounts, of components,
of a locked component, and accounts without data."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account, Activity, Stakeholder
from metrics import health, pipeline, services
from metrics.kpis.common import midnight
from metrics.kpis.health_inputs import account_measures
from metrics.models import HealthOverride, HealthSnapshot
from tests.factories import (
    AccountFactory,
    ContractFactory,
    InvoiceFactory,
    StakeholderFactory,
    TicketFactory,
    health_model_with_rule,
)
from tests.metrics.usage import load_events

pytestmark = pytest.mark.django_db

D = dt.date(2024, 3, 31)


def _at(rng: random.Random, days_back: int) -> dt.datetime:
    return midnight(D - dt.timedelta(days=days_back)) + dt.timedelta(hours=rng.randrange(24))


def _random_book(rng: random.Random, n: int) -> list[Account]:
    accounts = []
    events = []
    for i in range(n):
        account = AccountFactory(
            segment=rng.choice(["SMB", "ENT", ""]),
            lifecycle_stage=rng.choice(["onboarding", "adoption", "mature"]),
        )
        accounts.append(account)
        if i % 9 == 0:
            continue  # no data at all
        if rng.random() < 0.8:
            ContractFactory(
                account=account,
                start_date=D - dt.timedelta(days=rng.randrange(10, 400)),
                quantity=rng.choice([None, 1, 5, 12, 20, 50]),
                mrr=Decimal(rng.randrange(50, 5000)),
            )
        for _ in range(rng.randrange(0, 25)):
            events.append(
                (
                    account,
                    rng.choice(["", "u1", "u2", "u3", "u4", "u5", "u6"]),
                    rng.choice(["login", "export", "share", "report"]),
                    _at(rng, rng.randrange(0, 70)),
                )
            )
        for _ in range(rng.randrange(0, 4)):
            TicketFactory(
                account=account,
                opened_at=_at(rng, rng.randrange(0, 60)),
                escalated=rng.random() < 0.4,
            )
        for _ in range(rng.randrange(0, 3)):
            issued = D - dt.timedelta(days=rng.randrange(5, 120))
            InvoiceFactory(
                account=account,
                issued_on=issued,
                due_on=issued + dt.timedelta(days=30),
                amount=Decimal(rng.randrange(100, 9000)) / 4,
                failed_attempts=rng.choice([0, 0, 1, 2, 4]),
            )
        if rng.random() < 0.7:
            StakeholderFactory(account=account, role=rng.choice(["champion", "user", "billing"]))
        if rng.random() < 0.6:
            Activity.objects.create(
                account=account, kind="call", occurred_at=_at(rng, rng.randrange(0, 120))
            )
    load_events(events)
    Stakeholder.objects.update(created_at=midnight(D - dt.timedelta(days=200)))
    return accounts


def _override(account, *, score=None, band="", component="", days_ago=2):
    ov = HealthOverride.objects.create(
        account=account,
        reason=f"override of {component or 'the account'}",
        expires_at=timezone.now() + dt.timedelta(days=30),
        score=score,
        band=band,
        component=component,
    )
    HealthOverride.objects.filter(pk=ov.pk).update(
        created_at=midnight(D) - dt.timedelta(days=days_ago)
    )


def _reference(as_of: dt.date) -> dict[int, tuple]:
    """Each account's snapshot by the reference: ``health.score`` on its own measures."""
    assignments, versions = services._active_versions()
    end = midnight(as_of + dt.timedelta(days=1))
    out = {}
    for account in Account.objects.order_by("pk"):
        one = Account.objects.filter(pk=account.pk)
        model_id = health.assign(
            assignments, segment=account.segment, lifecycle=account.lifecycle_stage
        )
        values = account_measures(one, as_of=as_of).get(account.pk, {})
        overrides = services._overrides_in_force(one, end=end).get(account.pk, [])
        result = health.score(versions[model_id].spec(), values, overrides=overrides)
        out[account.pk] = (
            versions[model_id].pk,
            result.score,
            result.band,
            result.computed_score,
            result.computed_band,
            [c.as_json() for c in result.components],
            list(result.left_out),
            list(result.reasons),
            [o.as_json() for o in result.overrides],
        )
    return out


def _recorded(as_of: dt.date) -> dict[int, tuple]:
    return {
        row[0]: row[1:]
        for row in HealthSnapshot.objects.filter(day=as_of)
        .order_by("account_id")
        .values_list("account_id", "model_version_id", *services.SNAPSHOT_FIELDS[1:])
    }


def _typed(value) -> str:
    """JSON with its types as written (30 and 30.0 differ), key order aside."""
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("seed", [3, 17])
def test_the_nightly_health_step_records_what_the_reference_scores(settings, seed):
    settings.KEY_FEATURES = ["export", "share"]
    rng = random.Random(seed)
    accounts = _random_book(rng, 45)
    services.health_model_ensure_default()
    onboarding = health_model_with_rule("Onboarding", lifecycle="onboarding")
    components = json.loads(json.dumps(health.DEFAULT_COMPONENTS))
    components[1]["weight"] = 0  # feature adoption shown, not weighed
    components[2]["measures"] = [{"measure": "tickets_per_100_seats_30d", "linear": [20, 2]}]
    services.health_model_version_create(model=onboarding, components=components)
    with_data = [a for i, a in enumerate(accounts) if i % 9]
    _override(with_data[0], score=91)
    _override(with_data[1], band="red")
    _override(with_data[2], component="usage", score=12.25)
    _override(with_data[3], component="payments", score=100)  # locked: ignored
    _override(with_data[4], component="usage", score=70, days_ago=3)
    _override(with_data[4], component="usage", score=20)  # the newest wins
    _override(with_data[4], score=55, band="green")
    _override(accounts[0], component="nosuch", score=10)  # no data and no such component

    # the pipeline in one process (the shared usage inputs), then the reference
    pipeline.health_snapshots(as_of=D)
    recorded = _recorded(D)
    reference = _reference(D)
    assert len(recorded) == len(reference) == len(accounts)
    assert {r[0] for r in recorded.values()} == {r[0] for r in reference.values()}
    assert any(r[5] for r in recorded.values()) and any(r[8] for r in recorded.values())
    for pk, expected in reference.items():
        got = recorded[pk]
        assert got[:5] == expected[:5], pk
        assert _typed(list(got[5:])) == _typed(list(expected[5:])), pk

    # and by chunks of a few accounts (the fanned-out run's calls), over a list of ids
    HealthSnapshot.objects.all().delete()
    ids = [a.pk for a in accounts]
    services.health_snapshots_record(as_of=D, account_ids=ids[::2], chunk_size=7)
    services.health_snapshots_record(as_of=D, account_ids=ids[1::2], chunk_size=7)
    again = _recorded(D)
    assert {pk: _typed(list(r)) for pk, r in again.items()} == {
        pk: _typed(list(r)) for pk, r in recorded.items()
    }
