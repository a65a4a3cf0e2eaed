"""The usage KPIs and health measures read the rollups (``UsageDaily``, ``UsageFeatureDaily``,
``UsagePresence``) and the known users (``metrics.UsageUser``), never the raw events. These
tests pin that every figure equals the definition computed straight from the raw events
(docs/metrics.md), on a hand-built book with the awkward cases: events without a user, the
window's first and last instants, the same user id in two accounts, a late event that
becomes a user's first day, and rows removed by a rollup rebuild."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from django.db import transaction

from accounts.intake import events as intake_events
from accounts.models import Account, UsageDaily, UsageEvent, UsageFeatureDaily, UsagePresence
from metrics.kpis import adoption
from metrics.models import UsageUser
from tests.factories import AccountFactory
from tests.metrics.usage import load_events

pytestmark = pytest.mark.django_db

END = dt.date(2024, 4, 1)  # the window: [03-02, 04-01), the 30 days before: [01-31, 03-02)


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, tzinfo=dt.UTC)


def _from_raw_events(end: dt.date) -> dict[int, dict]:
    """The definitions of docs/metrics.md, straight from the raw events: per account, known
    users (any event before ``end``), active users and events in the window and the 30
    days before, distinct users in each of the last four weeks, and the distinct (user,
    event) pairs of the window."""
    t = lambda day: dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)  # noqa: E731
    window, previous = end - dt.timedelta(days=30), end - dt.timedelta(days=60)
    weeks = [end - dt.timedelta(days=7 * (k + 1)) for k in range(4)]
    out: dict[int, dict] = defaultdict(
        lambda: {
            "known": set(),
            "active": set(),
            "previous_active": set(),
            "events": 0,
            "previous_events": 0,
            "weeks": [set() for _ in weeks],
            "pairs": set(),
        }
    )
    for a, user, event, when in UsageEvent.objects.filter(occurred_at__lt=t(end)).values_list(
        "account_id", "user_id", "event", "occurred_at"
    ):
        row = out[a]
        if user:
            row["known"].add(user)
        if when >= t(window):
            row["events"] += 1
            if user:
                row["active"].add(user)
                row["pairs"].add((user, event))
        elif when >= t(previous):
            row["previous_events"] += 1
            if user:
                row["previous_active"].add(user)
        for k, start in enumerate(weeks):
            if user and t(start) <= when < t(start + dt.timedelta(days=7)):
                row["weeks"][k].add(user)
    return out


def _assert_equal_to_raw(end: dt.date) -> None:
    usage = adoption.usage_inputs(Account.objects.all(), end=end)
    raw = _from_raw_events(end)
    for account_id, expected in raw.items():
        got = usage.per_account.get(account_id, adoption._new_row())
        assert got["known"] == len(expected["known"]), account_id
        assert got["active"] == len(expected["active"]), account_id
        assert got["previous_active"] == len(expected["previous_active"]), account_id
        assert got["events"] == expected["events"], account_id
        assert got["previous_events"] == expected["previous_events"], account_id
        assert got["weeks"] == [len(w) for w in expected["weeks"]], account_id
    features: dict[str, int] = defaultdict(int)
    for expected in raw.values():
        for _, event in expected["pairs"]:
            features[event] += 1
    summed: dict[str, int] = defaultdict(int)
    for users in usage.features.values():
        for event, n in users.items():
            summed[event] += n
    assert dict(summed) == dict(features)


@pytest.fixture
def book():
    x, y, z = (AccountFactory(external_id=n, segment=s) for n, s in zip("xyz", "AAB", strict=True))
    load_events(
        [
            (x, "u1", "login", at(3, 31, 23, 59)),  # the window's last minute
            (x, "u1", "report", at(3, 31)),
            (x, "u2", "login", at(3, 2, 0, 0)),  # the window's first instant
            (x, "u3", "login", at(3, 1, 23, 59)),  # the minute before: the 30 days before
            (x, "u4", "login", at(4, 1, 0, 0)),  # after the end: not counted at all
            (x, "", "export", at(3, 15)),  # no user: an event, never a user
            (x, "u5", "login", at(1, 15)),  # long ago: known, not active
            (x, "u5", "login", at(1, 30)),  # the 30 days before start on 01-31: not in it
            (y, "u1", "login", at(3, 20)),  # the same user id as in x: another person
            (y, "u1", "login", at(3, 24)),
            (y, "u2", "report", at(2, 10)),
            (z, "z1", "login", at(3, 25, 10)),
            (z, "z1", "export", at(3, 26, 10)),
            (z, "z2", "export", at(3, 11, 10)),
        ]
    )
    return x, y, z


def test_usage_inputs_equal_the_raw_event_definitions(book):
    _assert_equal_to_raw(END)
    # and by hand, for x: known u1 u2 u3 u5 = 4; active u1 u2 = 2; before u3 = 1; events
    # 4 in the window (two of u1 on 03-31, u2, the anonymous one), 1 before (u3)
    x = adoption.usage_inputs(Account.objects.all(), end=END).per_account[book[0].pk]
    assert (x["known"], x["active"], x["previous_active"]) == (4, 2, 1)
    assert (x["events"], x["previous_events"]) == (4, 1)
    # weeks back from 04-01: [03-25, 04-01) u1; [03-18, 03-25) none; [03-11, 03-18) only
    # the anonymous event; [03-04, 03-11) none
    assert x["weeks"] == [1, 0, 0, 0]


def test_other_days_equal_the_raw_event_definitions(book):
    for end in (dt.date(2024, 3, 2), dt.date(2024, 3, 26), dt.date(2024, 4, 2)):
        _assert_equal_to_raw(end)


def test_a_late_event_lowers_the_first_day_and_counts_the_user_as_known_earlier(book):
    x = book[0]
    assert UsageUser.objects.get(account=x, user_id="u1").first_day == dt.date(2024, 3, 31)
    load_events([(x, "u1", "login", at(1, 2))])  # arrives late, for January
    assert UsageUser.objects.get(account=x, user_id="u1").first_day == dt.date(2024, 1, 2)
    _assert_equal_to_raw(dt.date(2024, 2, 1))
    _assert_equal_to_raw(END)


def test_known_users_follow_presences_removed_by_a_rollup_rebuild(book):
    """A rebuild deletes the presences of its (account, day) pairs and writes them again from
    the events: a user whose events of that day are gone gets the first day of the
    presences left, or is no longer known at all."""
    x, _, z = book
    UsageEvent.objects.filter(account=z, user_id="z2").delete()  # z2's only event
    UsageEvent.objects.filter(account=x, user_id="u5", occurred_at=at(1, 15)).delete()
    pairs = [(z.pk, dt.date(2024, 3, 11)), (x.pk, dt.date(2024, 1, 15))]
    with transaction.atomic():  # as the nightly reconcile does: rollup rows go, then rebuild
        for account_id, day in pairs:
            UsageDaily.objects.filter(account_id=account_id, day=day).delete()
            UsageFeatureDaily.objects.filter(account_id=account_id, day=day).delete()
        intake_events.rollups_rebuild(pairs=pairs)
    assert not UsageUser.objects.filter(account=z, user_id="z2").exists()
    assert UsageUser.objects.get(account=x, user_id="u5").first_day == dt.date(2024, 1, 30)
    _assert_equal_to_raw(END)


def test_known_users_are_the_presences_first_days(book):
    """Whatever the order of the loads: one row per (account, user), its earliest day."""
    first: dict[tuple[int, str], dt.date] = {}
    for a, day, user in UsagePresence.objects.values_list("account_id", "day", "user_id"):
        first[(a, user)] = min(day, first.get((a, user), day))
    assert {
        (a, u): d for a, u, d in UsageUser.objects.values_list("account_id", "user_id", "first_day")
    } == first


def test_deleting_an_account_deletes_its_known_users(book):
    x = book[0]
    x.delete()
    assert not UsageUser.objects.filter(account_id=x.pk).exists()
    assert UsageUser.objects.exists()
