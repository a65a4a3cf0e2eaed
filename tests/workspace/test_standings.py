"""metrics.standings: each account's standing, by hand, and its place in the pipeline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from metrics.models import AccountStanding
from metrics.standings import account_standings_refresh
from tests.factories import AccountFactory, ContractFactory

from .conftest import customer, snapshot, utc_today

pytestmark = pytest.mark.django_db


def test_standing_by_hand(book):
    s = AccountStanding.objects.get(account=book["burning"])
    today = utc_today()
    assert s.day == today - dt.timedelta(days=1)
    assert (s.score, s.band) == (58, "red")
    assert s.trend_7 == -18.0  # 58 - 76
    assert s.trend_30 == -22.0  # 58 - 80
    assert s.trend_30_day == today - dt.timedelta(days=31)  # exactly 30 before yesterday
    assert s.trend_7_day == today - dt.timedelta(days=8)  # exactly 7 before yesterday
    assert s.arr == Decimal("84000.00")  # 12 * 7,000
    assert s.seats == 20
    assert s.renewal_on == s.day + dt.timedelta(days=41)  # counted from the data day
    # red 40 + trend 15 + renewal 25 * 49 / 90 = 13.6 + ARR 8.4 = 77.0
    assert s.priority == 77.0
    assert s.reason == "red, \u221218 in 7 days, renews in 41 days, $84k ARR"


def test_no_history_no_trend_and_open_ended_has_no_renewal(book):
    s = AccountStanding.objects.get(account=book["calm"])
    assert s.trend_7 is None and s.trend_30 is None and s.renewal_on is None
    assert s.trend_30_day is None
    assert s.reason == "green, $6k ARR" and s.priority == 0.0


def test_an_account_without_snapshot_or_contract_gets_a_row(csm):
    account = AccountFactory(owner=csm)
    result = account_standings_refresh(account_ids=[account.pk])
    assert result["accounts"] == 1
    s = AccountStanding.objects.get(account=account)
    assert (s.score, s.band, s.arr, s.priority) == (None, "", Decimal("0.00"), 10.0)
    assert s.reason == "no score yet"


def test_one_account_uses_its_own_latest_day(csm):
    """The incremental path: an account rescored today keeps today's day while the rest of
    the book is still on yesterday's."""
    today = utc_today()
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(70, "yellow")])
    snapshot(a, today, 30.0, "red")
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    assert (s.day, s.score, s.band) == (today, 30.0, "red")


def test_cta_counts_hook_feeds_the_priority(csm, settings):
    settings.ACCOUNT_STANDING_CTA_COUNTS = ["tests.workspace.test_standings.fake_cta_counts"]
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(90, "green")])
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    # 2 overdue: 60; green 0; $120 ARR not at risk
    assert (s.open_ctas, s.overdue_ctas, s.priority) == (3, 2, 60.0)
    assert s.reason == "2 overdue CTAs, green, $120 ARR"


def fake_cta_counts(ids, today):
    return dict.fromkeys(ids, (3, 2))


def test_refresh_is_idempotent_and_query_count_is_flat(csm, django_assert_max_num_queries):
    for i in range(30):
        customer(csm, name=f"C{i}", mrr="10", ends_in=30, scores=[(70, "yellow"), (72, "yellow")])
    # 1 ids + per chunk: 3 health days + contracts + upsert (PostgreSQL: staging table,
    # merge, empty it; and a savepoint)
    with django_assert_max_num_queries(11):
        account_standings_refresh(day=utc_today() - dt.timedelta(days=1))
    first = list(AccountStanding.objects.order_by("pk").values_list("priority", "reason"))
    account_standings_refresh(day=utc_today() - dt.timedelta(days=1))
    assert list(AccountStanding.objects.order_by("pk").values_list("priority", "reason")) == first
    assert len(first) == 30


def _history(account, day, backs):
    """Snapshots of ``account`` ``back`` days before ``day``, for each (back, score, band)."""
    for back, score, band in backs:
        snapshot(account, day - dt.timedelta(days=back), score, band)


def test_30_day_trend_reads_the_latest_snapshot_up_to_a_week_before_30_days_back(csm):
    """A history recorded a week apart has no snapshot exactly 30 days back: the trend
    compares with the latest one on or before it, up to 7 days earlier, and says which."""
    day = utc_today() - dt.timedelta(days=1)
    weekly = customer(csm, name="Weekly", mrr="10", ends_in=None, scores=[(62.5, "yellow")])
    # 33 days back (score 70) and 40 (beyond the week); 29 is after day-30: not read
    _history(weekly, day, [(29, 90.0, "green"), (33, 70.0, "yellow"), (40, 20.0, "red")])
    # 31 and 36 days back: the later of the two, 31, is the one compared with
    near = customer(csm, name="Near", mrr="10", ends_in=None, scores=[(50.0, "yellow")])
    _history(near, day, [(31, 45.5, "red"), (36, 99.0, "green")])
    # only 38 days back: more than 7 days before day-30, so no 30-day trend
    old = customer(csm, name="Old", mrr="10", ends_in=None, scores=[(80.0, "green")])
    _history(old, day, [(38, 10.0, "red")])
    # the edge: exactly 37 days back (day-30 - 7) still counts
    edge = customer(csm, name="Edge", mrr="10", ends_in=None, scores=[(80.0, "green")])
    _history(edge, day, [(37, 79.9, "yellow")])
    account_standings_refresh(day=day)
    got = {
        s.account.name: (s.trend_30, s.trend_30_day)
        for s in AccountStanding.objects.select_related("account")
    }
    assert got == {
        "Weekly": (-7.5, day - dt.timedelta(days=33)),  # 62.5 - 70
        "Near": (4.5, day - dt.timedelta(days=31)),  # 50 - 45.5
        "Old": (None, None),
        "Edge": (0.1, day - dt.timedelta(days=37)),  # round(80 - 79.9, 1)
    }
    # the account path (each account's own latest day) reads the same
    account_standings_refresh(account_ids=[weekly.pk])
    s = AccountStanding.objects.get(account=weekly)
    assert (s.trend_30, s.trend_30_day) == (-7.5, day - dt.timedelta(days=33))


def test_7_day_trend_reads_the_latest_snapshot_up_to_2_days_before_7_days_back(csm):
    """No snapshot exactly 7 days back (a missed night, or the latest snapshot recorded
    during the day): the trend compares with the latest one on or before it, up to 2 days
    earlier, and says which day; beyond that it is "—"."""
    day = utc_today() - dt.timedelta(days=1)
    # 8 days back (the night 7 days back was missed) and 12 (too far); 6 is after day-7
    missed = customer(csm, name="Missed", mrr="10", ends_in=None, scores=[(60.0, "yellow")])
    _history(missed, day, [(6, 90.0, "green"), (8, 66.0, "yellow"), (12, 20.0, "red")])
    # the edge: exactly 9 days back (day-7 - 2) still counts
    edge = customer(csm, name="Edge", mrr="10", ends_in=None, scores=[(80.0, "green")])
    _history(edge, day, [(9, 75.5, "yellow")])
    # only 10 days back: more than 2 days before day-7, no 7-day trend
    far = customer(csm, name="Far", mrr="10", ends_in=None, scores=[(80.0, "green")])
    _history(far, day, [(10, 10.0, "red")])
    account_standings_refresh(day=day)
    got = {
        s.account.name: (s.trend_7, s.trend_7_day, s.reason)
        for s in AccountStanding.objects.select_related("account")
    }
    assert got == {
        # 60 - 66 = -6; yellow 15 + 6 points lost (no ARR points: $120 ARR / 10k = 0.012)
        "Missed": (-6.0, day - dt.timedelta(days=8), "yellow, −6 in 7 days, $120 ARR"),
        "Edge": (4.5, day - dt.timedelta(days=9), "green, +4 in 7 days, $120 ARR"),  # 80 - 75.5
        "Far": (None, None, "green, $120 ARR"),
    }


def test_7_day_trend_of_an_account_rescored_today_compares_with_the_nightly_week(csm):
    """The incremental path dates the latest snapshot today, the weekly history lies on the
    nightly days: 7 days before today has none, 8 days back (yesterday − 7) is read."""
    today = utc_today()
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(70.0, "yellow"), (76.0, "yellow")])
    snapshot(a, today, 58.0, "red")  # a note logged today rescored it
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    # 58 - 76 (yesterday − 7 = today − 8)
    assert (s.day, s.trend_7, s.trend_7_day) == (today, -18.0, today - dt.timedelta(days=8))
    assert "−18 in 7 days" in s.reason


def test_a_30_day_trend_without_a_score_now_has_no_day(csm):
    day = utc_today() - dt.timedelta(days=1)
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(None, "")])  # no data now
    _history(a, day, [(33, 70.0, "yellow")])
    account_standings_refresh(day=day)
    s = AccountStanding.objects.get(account=a)
    assert (s.trend_30, s.trend_30_day) == (None, None)


def _refresh_queries(day) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        account_standings_refresh(day=day)
    return len(ctx.captured_queries)


def test_refresh_query_count_is_pinned_whatever_the_history(csm, django_assert_num_queries):
    """The 30-day trend is one query per chunk however many snapshots lie in its week."""
    day = utc_today() - dt.timedelta(days=1)
    for i in range(5):
        a = customer(csm, name=f"W{i}", mrr="10", ends_in=30, scores=[(70, "yellow")])
        _history(a, day, [(7, 72.0, "yellow"), (35, 60.0, "yellow")])
    few = _refresh_queries(day)
    for i in range(20):  # daily history over the whole window for more accounts
        a = customer(csm, name=f"D{i}", mrr="10", ends_in=30, scores=[(70, "yellow")])
        _history(a, day, [(back, 50.0 + back, "yellow") for back in range(7, 40)])
    # PostgreSQL: 1 ids + a savepoint pair around the chunk: latest day, 7 days back, the
    # 30-day trend, contracts, CTA counts, and the upsert (staging table, merge, truncate)
    assert few <= 11
    with django_assert_num_queries(few):
        account_standings_refresh(day=day)
    s = AccountStanding.objects.get(account__name="D0")
    assert (s.trend_30, s.trend_30_day) == (-10.0, day - dt.timedelta(days=30))  # 70 - 80


def test_days_to_renewal_count_from_the_data_day_as_the_cta_reason_does(csm):
    """The queue row's "why now" and the renewal CTA's reason count the days to the same
    contract end from the same day: the day of the data (yesterday), not the calendar day."""
    from metrics.services import health_snapshots_record
    from playbooks.models import Cta
    from playbooks.services import playbooks_evaluate
    from tests.playbooks.helpers import make_playbook

    data_day = utc_today() - dt.timedelta(days=1)
    a = AccountFactory(owner=csm)
    ContractFactory(
        account=a,
        start_date=data_day - dt.timedelta(days=300),
        end_date=data_day + dt.timedelta(days=37),
        mrr=Decimal(100),
        quantity=10,
    )
    health_snapshots_record(as_of=data_day)  # the nightly run of yesterday
    account_standings_refresh()
    playbook = make_playbook("renewal_within", {"days": 90})
    playbooks_evaluate(as_of=data_day)
    s = AccountStanding.objects.get(account=a)
    assert s.day == data_day
    # end − data day = 37 days (the calendar day would give 36)
    assert "renews in 37 days" in s.reason
    assert "(in 37 days)" in Cta.objects.get(account=a, playbook=playbook).evidence


def test_a_contract_ending_on_the_data_day_is_still_in_force_there(csm):
    """The contracts of the standing are those in force on the day of its data: one ending
    that day renews "today" (25 points), though the calendar day is already past it."""
    data_day = utc_today() - dt.timedelta(days=1)
    a = AccountFactory(owner=csm)
    ContractFactory(
        account=a,
        start_date=data_day - dt.timedelta(days=300),
        end_date=data_day,
        mrr=Decimal(1000),
        quantity=10,
    )
    snapshot(a, data_day, 90.0, "green")
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    assert (s.renewal_on, s.arr) == (data_day, Decimal("12000.00"))  # 12 × 1,000
    # green 0 + renewal 25 × (90 − 0) / 90 = 25
    assert (s.reason, s.priority) == ("green, renews today, $12k ARR", 25.0)


def _override_in_force(account, day, score: float, band: str) -> None:
    """``account``'s snapshot of ``day`` as an override of the whole score to ``score`` left
    it: the score and band shown are the override's, the computed ones stay the model's."""
    from metrics.models import HealthSnapshot

    HealthSnapshot.objects.filter(account=account, day=day).update(
        score=score,
        band=band,
        overrides=[{"id": 1, "component": "", "score": score, "band": "", "reason": "signed"}],
    )


def test_an_override_in_force_moves_neither_trend(csm):
    """Computed 60 seven days back, 50 thirty days back and 62 now, overridden to 90 now:
    the trends are of the computed score, +2 and +12, not +30 and +40; the score and band
    shown stay the override's."""
    day = utc_today() - dt.timedelta(days=1)
    a = customer(
        csm,
        name="A",
        mrr="10",
        ends_in=None,
        scores=[(62.0, "yellow"), (60.0, "yellow"), (50.0, "yellow")],
    )
    _override_in_force(a, day, 90.0, "green")
    account_standings_refresh(day=day)
    s = AccountStanding.objects.get(account=a)
    assert (s.score, s.band, s.overridden) == (90.0, "green", True)
    assert (s.trend_7, s.trend_7_day) == (2.0, day - dt.timedelta(days=7))  # 62 - 60
    assert (s.trend_30, s.trend_30_day) == (12.0, day - dt.timedelta(days=30))  # 62 - 50
    # green 0 + a rise 0 + $120 ARR not at risk 0
    assert (s.priority, s.reason) == (0.0, "green, +2 in 7 days, $120 ARR")
    assert "30" not in s.reason and "28" not in s.reason
    # the account path (the override's own recompute refreshes just this account) agrees
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    assert (s.trend_7, s.trend_30, s.reason) == (2.0, 12.0, "green, +2 in 7 days, $120 ARR")


def test_the_trend_points_count_the_computed_fall_under_an_override(csm):
    """Computed 70 a week ago, 52 now, overridden to 80 now: the score shown rose by 10 but
    the data fell by 18, and the priority counts the fall."""
    day = utc_today() - dt.timedelta(days=1)
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(52.0, "yellow"), (70.0, "yellow")])
    _override_in_force(a, day, 80.0, "green")
    account_standings_refresh(day=day)
    s = AccountStanding.objects.get(account=a)
    assert s.trend_7 == -18.0  # 52 - 70
    # green (the override's band) 0 + 18 points lost, at most 15 + $120 ARR not at risk 0
    assert (s.priority, s.reason) == (15.0, "green, \u221218 in 7 days, $120 ARR")


def test_an_override_that_expired_in_the_week_makes_no_jump(csm):
    """Overridden to 90 a week ago (computed 60 then), no override now and computed 52: −8
    (52 − 60), not −38 (52 − 90)."""
    day = utc_today() - dt.timedelta(days=1)
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(52.0, "yellow"), (60.0, "yellow")])
    _override_in_force(a, day - dt.timedelta(days=7), 90.0, "green")
    account_standings_refresh(day=day)
    s = AccountStanding.objects.get(account=a)
    assert (s.score, s.overridden, s.trend_7) == (52.0, False, -8.0)
    # yellow 15 + 8 points lost + $120 ARR at risk: 120 / 10,000 = 0.012 → 0.0
    assert (s.priority, s.reason) == (23.0, "yellow, \u22128 in 7 days, $120 ARR")


def test_an_override_recomputed_today_compares_computed_with_the_nightly_week(csm):
    """The override's recompute dates the account's snapshot today (computed 62, shown 90);
    the account's refresh compares its computed score with yesterday − 7 (computed 60)."""
    today = utc_today()
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(61.0, "yellow"), (60.0, "yellow")])
    snapshot(a, today, 62.0, "yellow")
    _override_in_force(a, today, 90.0, "green")
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    assert (s.day, s.score, s.overridden) == (today, 90.0, True)
    assert (s.trend_7, s.trend_7_day) == (2.0, today - dt.timedelta(days=8))  # 62 - 60


def test_a_score_only_an_override_sets_has_no_trend(csm):
    """No data to compute a score now (computed null), overridden to 70: no trend, since
    nothing the customer did can be compared with the week before."""
    from metrics.models import HealthSnapshot

    day = utc_today() - dt.timedelta(days=1)
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(None, ""), (60.0, "yellow")])
    _override_in_force(a, day, 70.0, "yellow")
    assert HealthSnapshot.objects.get(account=a, day=day).computed_score is None
    account_standings_refresh(day=day)
    s = AccountStanding.objects.get(account=a)
    assert (s.score, s.trend_7, s.trend_7_day) == (70.0, None, None)
    # yellow 15; no trend; $120 ARR: 0.0
    assert (s.priority, s.reason) == (15.0, "yellow, $120 ARR")


def _new_version(weight_change: float = 5.0):
    """A v2 of the default model (v1's components, the first weight changed), active from now
    on: the snapshots already recorded keep v1."""
    from metrics.services import health_model_ensure_default, health_model_version_create

    model = health_model_ensure_default()
    v1 = model.versions.get(active=True)
    components = [dict(c) for c in v1.components]
    components[0]["weight"] = components[0]["weight"] + weight_change
    return v1, health_model_version_create(model=model, components=components)


def test_a_trend_never_compares_two_model_versions(csm):
    """v1 scored 80 seven days back and 53.5 thirty days back; v2, saved since and rescoring
    only the last days, scores 40.2 now: neither trend is known (a new weight is no movement
    of the customer), so both are "—", the priority has no trend points, and the day of the
    v1 snapshot stays on the standing for the page to say why."""
    day = utc_today() - dt.timedelta(days=1)
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[])
    v1, v2 = _new_version()
    snapshot(a, day - dt.timedelta(days=30), 53.5, "yellow", model_version=v1)
    snapshot(a, day - dt.timedelta(days=7), 80.0, "green", model_version=v1)
    snapshot(a, day, 40.2, "red", model_version=v2)
    account_standings_refresh(day=day)
    s = AccountStanding.objects.get(account=a)
    assert (s.trend_7, s.trend_7_day) == (None, day - dt.timedelta(days=7))
    assert (s.trend_30, s.trend_30_day) == (None, day - dt.timedelta(days=30))
    # red 40, no trend (v1's 80 → v2's 40.2 would have been −39.8: 15 points), $120 ARR 0.0
    assert (s.priority, s.reason) == (40.0, "red, $120 ARR")
    # the account path agrees
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    assert (s.trend_7, s.trend_30, s.reason) == (None, None, "red, $120 ARR")


def test_a_trend_reads_the_latest_snapshot_of_the_same_version_within_its_window(csm):
    """7 days back is v1's (90), 8 days back v2's (70; the rescore reached that far), now
    v2's 62: the 7-day trend skips v1's day for v2's, −8 vs 8 days back. 30 days back v1's,
    33 days back v2's 50: +12 vs 33 days back. 38 days back (beyond the week) v2's is not
    read."""
    day = utc_today() - dt.timedelta(days=1)
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[])
    v1, v2 = _new_version()
    for back, score, version in [
        (0, 62.0, v2),
        (7, 90.0, v1),
        (8, 70.0, v2),
        (30, 10.0, v1),
        (33, 50.0, v2),
    ]:
        snapshot(a, day - dt.timedelta(days=back), score, "yellow", model_version=version)
    b = customer(csm, name="B", mrr="10", ends_in=None, scores=[])
    snapshot(b, day, 62.0, "yellow", model_version=v2)
    snapshot(b, day - dt.timedelta(days=30), 10.0, "red", model_version=v1)
    snapshot(b, day - dt.timedelta(days=38), 50.0, "yellow", model_version=v2)
    account_standings_refresh(day=day)
    s = AccountStanding.objects.get(account=a)
    assert (s.trend_7, s.trend_7_day) == (-8.0, day - dt.timedelta(days=8))  # 62 - 70
    assert (s.trend_30, s.trend_30_day) == (12.0, day - dt.timedelta(days=33))  # 62 - 50
    # yellow 15 + 8 points lost; $120 ARR 0.0
    assert (s.priority, s.reason) == (23.0, "yellow, \u22128 in 7 days, $120 ARR")
    s = AccountStanding.objects.get(account=b)
    assert (s.trend_30, s.trend_30_day) == (None, day - dt.timedelta(days=30))  # v1's day


def test_another_model_is_another_version_for_the_trend(csm):
    """An assignment rule moved the account to the Enterprise model: its snapshot a week back
    (the default model's) is not compared with the Enterprise one of today."""
    from metrics.models import HealthModel
    from metrics.services import health_model_version_create

    day = utc_today() - dt.timedelta(days=1)
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[None, (70.0, "yellow")])
    default = HealthModel.objects.get(is_default=True).versions.get(active=True)
    enterprise = health_model_version_create(
        model=HealthModel.objects.create(name="Enterprise"), components=default.components
    )
    snapshot(a, day, 55.0, "yellow", model_version=enterprise)
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    assert (s.day, s.trend_7, s.trend_7_day) == (day, None, day - dt.timedelta(days=7))


def test_the_queue_says_why_a_trend_is_missing_across_versions(client, csm):
    """The same book as above: the queue's "—" carries why (another version that day)."""
    from django.urls import reverse

    day = utc_today() - dt.timedelta(days=1)
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[])
    v1, v2 = _new_version()
    snapshot(a, day - dt.timedelta(days=7), 80.0, "green", model_version=v1)
    snapshot(a, day, 40.2, "red", model_version=v2)
    account_standings_refresh(day=day)
    client.force_login(csm)
    text = client.get(reverse("home")).content.decode()
    assert "was scored by another model version" in text
