"""manage.py recompute: rebuilds health snapshots day by day, as of each day (no future
data), and the health step of the nightly pipeline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Activity, Stakeholder
from metrics import pipeline
from metrics.models import HealthSnapshot
from tests.factories import (
    AccountFactory,
    ContractFactory,
    InvoiceFactory,
    StakeholderFactory,
    TicketFactory,
)
from tests.metrics.usage import load_event

pytestmark = pytest.mark.django_db

D = dt.date(2024, 3, 20)
NEXT = dt.datetime(2024, 3, 21, 0, 0, tzinfo=dt.UTC)  # the first instant after D


def _event(account, when, user="u1"):
    load_event(account, when, user=user)


def _snapshot(account, day):
    return (
        HealthSnapshot.objects.filter(account=account, day=day)
        .values("score", "band", "components", "left_out", "reasons", "model_version")
        .get()
    )


def test_recompute_rebuilds_each_day_and_says_what_it_did():
    a, b = AccountFactory(), AccountFactory()
    ContractFactory(account=a, start_date=dt.date(2024, 1, 1), quantity=10)
    for i in range(5):  # 5 of 10 seats on Mar 18: 50 % → 100 points (usage only) → green
        _event(a, dt.datetime(2024, 3, 18, 9 + i, tzinfo=dt.UTC), user=f"u{i}")
    out = StringIO()
    call_command("recompute", "--from", "2024-03-17", "--to", "2024-03-19", stdout=out)
    assert HealthSnapshot.objects.count() == 6
    assert out.getvalue().splitlines() == [
        # Mar 17: no events yet, 0 of 10 seats → 0 → red; b has no data at all
        "2024-03-17: 2 accounts: 0 green, 0 yellow, 1 red, 1 without data",
        "2024-03-18: 2 accounts: 1 green, 0 yellow, 0 red, 1 without data",
        "2024-03-19: 2 accounts: 1 green, 0 yellow, 0 red, 1 without data",
        "Recomputed health for 3 day(s), 2024-03-17 to 2024-03-19: 6 snapshots.",
    ]
    assert HealthSnapshot.objects.get(account=a, day=dt.date(2024, 3, 17)).score == 0
    assert HealthSnapshot.objects.get(account=a, day=dt.date(2024, 3, 18)).score == 100
    assert HealthSnapshot.objects.get(account=b, day=dt.date(2024, 3, 18)).score is None
    # again: same rows, no duplicates
    call_command("recompute", "--from", "2024-03-17", "--to", "2024-03-19", stdout=StringIO())
    assert HealthSnapshot.objects.count() == 6


def test_data_after_the_day_does_not_change_its_snapshot(settings):
    settings.KEY_FEATURES = ["login"]
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=10)
    _event(account, dt.datetime(2024, 3, 20, 23, 59, 59, tzinfo=dt.UTC), user="u1")
    call_command("recompute", "--from", "2024-03-20", "--to", "2024-03-20", stdout=StringIO())
    before = _snapshot(account, D)

    # everything below happens after D ends
    for i in range(2, 9):
        _event(account, NEXT + dt.timedelta(seconds=i), user=f"u{i}")
    TicketFactory(account=account, opened_at=NEXT, escalated=True)
    InvoiceFactory(
        account=account,
        issued_on=dt.date(2024, 3, 21),
        due_on=dt.date(2024, 3, 21),
        amount=Decimal("10.00"),
        failed_attempts=3,
    )
    StakeholderFactory(account=account, role="champion")
    Stakeholder.objects.update(created_at=NEXT)
    Activity.objects.create(account=account, kind="call", occurred_at=NEXT)

    call_command("recompute", "--from", "2024-03-20", "--to", "2024-03-21", stdout=StringIO())
    assert _snapshot(account, D) == before
    after = _snapshot(account, D + dt.timedelta(days=1))
    assert after != before
    # on D only usage and feature adoption had data; on D + 1 everything but sentiment
    assert set(before["left_out"]) == {"support", "payments", "sentiment", "relationship"}
    assert after["left_out"] == ["sentiment"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-03-05", "--to", "2024-03-01"], "--to 2024-03-01 is before --from"),
        (["--from", "2024-13-01", "--to", "2024-03-01"], "--from: 2024-13-01 is not a valid date"),
        (["--from", "2024-03-01", "--to", "2024-03-02", "--chunk-size", "0"], "whole number"),
        (["--from", "2024-03-01"], "--to"),
    ],
)
def test_recompute_rejects_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("recompute", *args, stdout=StringIO())
    assert not HealthSnapshot.objects.exists()


def test_recompute_rejects_future_days():
    tomorrow = timezone.now().astimezone(dt.UTC).date() + dt.timedelta(days=1)
    with pytest.raises(CommandError, match="is in the future"):
        call_command(
            "recompute", "--from", "2024-03-01", "--to", tomorrow.isoformat(), stdout=StringIO()
        )


def test_the_nightly_pipeline_records_health_for_its_day():
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=4)
    _event(account, dt.datetime(2024, 3, 5, 9, tzinfo=dt.UTC))
    summary = pipeline.run_nightly(dt.date(2024, 3, 5))
    health_step = summary["steps"][2]
    assert health_step["name"] == "health"
    assert health_step["accounts"] == 1 and health_step["day"] == "2024-03-05"
    # 1 of 4 seats: 25 % on [0, 50] → 50 points; usage is the only component with data
    assert HealthSnapshot.objects.get(account=account, day=dt.date(2024, 3, 5)).score == 50
    pipeline.run_nightly(dt.date(2024, 3, 5))  # twice: still one snapshot
    assert HealthSnapshot.objects.count() == 1
