"""Health snapshots over a small hand-built book: measures as of a day, scores by hand,
set-based recording (query count does not grow with accounts), idempotence, models and
versions, overrides."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Activity, Stakeholder
from metrics import health, services
from metrics.kpis import adoption
from metrics.kpis.health_inputs import account_measures
from metrics.models import (
    HealthAssignmentRule,
    HealthModel,
    HealthModelVersion,
    HealthOverride,
    HealthSnapshot,
)
from tests.factories import (
    AccountFactory,
    ContractFactory,
    InvoiceFactory,
    StakeholderFactory,
    TicketFactory,
    health_model_with_rule,
)
from tests.metrics.usage import load_event

pytestmark = pytest.mark.django_db

D = dt.date(2024, 3, 31)  # as of the end of this day


def at(month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=dt.UTC)


def _event(account, when, user="u1", event="login"):
    load_event(account, when, user=user, event=event)


def _known_since(model, when, **filters):
    """Rows carry created_at = now; date them into the past as the data would have been."""
    model.objects.filter(**filters).update(created_at=when)


def busy_account(**extra):
    """The hand-built account scored in test_snapshot_by_hand (see the arithmetic there)."""
    account = AccountFactory(**extra)
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=20)
    # previous window (Jan 31 .. Mar 1): 10 events; this window (Mar 2 .. Mar 31): 8 events
    # by 6 users, one of them using the key feature "export"
    for i in range(10):
        _event(account, at(2, 1 + i), user="u1")
    for i in range(8):
        _event(account, at(3, 2 + i), user=f"u{i % 6}", event="export" if i == 0 else "login")
    # an escalated ticket still open
    TicketFactory(account=account, opened_at=at(3, 10), escalated=True)
    # an invoice due Mar 1, unpaid (overdue), with 2 failed payment attempts
    InvoiceFactory(
        account=account,
        issued_on=dt.date(2024, 2, 1),
        due_on=dt.date(2024, 3, 1),
        amount=Decimal("500.00"),
        failed_attempts=2,
    )
    StakeholderFactory(account=account, role="champion")
    _known_since(Stakeholder, at(1, 5), account=account)
    Activity.objects.create(account=account, kind="call", occurred_at=at(3, 24))
    return account


@pytest.fixture
def key_features(settings):
    settings.KEY_FEATURES = ["export", "share"]


def test_measures_as_of_a_day(key_features):
    account = busy_account()
    idle = AccountFactory()
    m = account_measures(type(account).objects.all(), as_of=D)
    assert idle.pk not in m  # no data at all
    assert m[account.pk] == {
        "active_users_30d": 6,
        "active_users_previous_30d": 1,
        "events_30d": 8,
        "events_previous_30d": 10,
        "usage_trend": -20.0,  # (8 − 10) / 10
        "usage_trend_users": 500.0,  # (6 − 1) / 1
        "licensed_seats": 20,
        "seat_utilisation": 30.0,  # 6 / 20
        "key_features_used_30d": 1,
        "key_features_defined": 2,
        "key_feature_adoption": 50.0,
        "open_escalations": 1,
        "tickets_30d": 1,
        "tickets_per_100_seats_30d": 5.0,  # 1 / 20 × 100
        "overdue_invoices": 1,
        "overdue_amount": "500.00",
        "failed_payments_90d": 2,
        "stakeholders": 1,
        "champion_present": 1,
        "last_touch_on": "2024-03-24",
        "days_since_last_touch": 7,
        # voice: a champion never met in a call or meeting: 30 / 5 = 6 points, nobody
        # engaged in 90 days (no texts were scored: no text_sentiment)
        "relationship_score": 6,
        "relationship_engaged": 0,
    }


def test_churned_account_without_usage_says_so_not_that_no_key_features_are_chosen(
    key_features, settings
):
    """A churned account (contract ended, so no seats on the day) with an invoice but no
    events: key features are chosen (2), so its feature adoption lacks data for want of
    usage. Without key features chosen the same account says so instead."""
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2023, 1, 1), end_date=dt.date(2024, 1, 31))
    InvoiceFactory(account=account, issued_on=dt.date(2024, 1, 1), due_on=dt.date(2024, 1, 31))
    qs = type(account).objects.filter(pk=account.pk)
    m = account_measures(qs, as_of=D)[account.pk]
    assert m["key_features_defined"] == 2 and "key_feature_adoption" not in m
    services.health_snapshots_record(as_of=D)
    reasons = HealthSnapshot.objects.get(account=account, day=D).reasons
    adoption = next(r for r in reasons if r.startswith("feature adoption"))
    assert adoption == (
        "feature adoption: no data (key feature adoption: no events and no licensed seats "
        "in the 30 days), left out"
    )

    settings.KEY_FEATURES = []
    assert account_measures(qs, as_of=D)[account.pk]["key_features_defined"] == 0
    services.health_snapshots_record(as_of=D)
    reasons = HealthSnapshot.objects.get(account=account, day=D).reasons
    assert any("no key features chosen yet" in r for r in reasons)


def test_snapshot_by_hand(key_features):
    account = busy_account()
    idle = AccountFactory()
    result = services.health_snapshots_record(as_of=D)
    assert result == {
        "day": "2024-03-31",
        "accounts": 2,
        "green": 0,
        "yellow": 1,
        "red": 0,
        "no_data": 1,
        "no_model": 0,
        "written": 2,  # both new
    }
    snap = HealthSnapshot.objects.get(account=account, day=D)
    comps = {c["key"]: c for c in snap.components}
    # usage: seats 30 % on [0, 50] → 60; trend −20 % reaches −25 → 50; (60 + 50) / 2 = 55
    assert comps["usage"]["score"] == 55
    assert comps["usage"]["measure_points"] == {"seat_utilisation": 60, "usage_trend": 50}
    # feature adoption: 1 of 2 key features → 50 % on [0, 100] → 50
    assert comps["feature_adoption"]["score"] == 50
    # support: 1 open escalation → 50; 5 tickets per 100 seats on [30, 5] → 100; mean 75
    assert comps["support"]["score"] == 75
    # payments: 1 overdue invoice → 40; 2 failed payments → 50; mean 45
    assert comps["payments"]["score"] == 45
    # relationship: champion → 100; 7 days since the last touch (≤ 14) → 100
    assert comps["relationship"]["score"] == 100
    # sentiment has no data: left out; weights 35 + 20 + 15 + 10 + 10 = 90:
    # (35 × 55 + 20 × 50 + 15 × 75 + 10 × 45 + 10 × 100) / 90 = 5500 / 90 = 61.1 → yellow
    assert snap.score == 61.1 and snap.band == "yellow"
    assert (snap.computed_score, snap.computed_band) == (61.1, "yellow")
    assert snap.left_out == ["sentiment"]
    assert comps["usage"]["share"] == round(35 / 90, 4)
    assert comps["usage"]["inputs"]["active_users_30d"] == 6
    assert snap.model_version == HealthModelVersion.objects.get(model__is_default=True)
    assert snap.reasons[0] == (
        "usage 55/100: 6 of 20 licensed seats active in 30 days; "
        "events down 20% on the previous 30 days (10 → 8)"
    )
    assert "payments 45/100: 1 overdue invoice ($500.00 due); 2 failed payments in 90 days" in (
        snap.reasons
    )
    assert (
        "sentiment: no data (NPS: no NPS answers in the 365 days up to the day; "
        "CSAT: no CSAT answers in the 365 days up to the day; " in (snap.reasons[4])
    )

    empty = HealthSnapshot.objects.get(account=idle, day=D)
    assert empty.score is None and empty.band == "" and empty.computed_score is None
    assert len(empty.left_out) == 6


def test_recording_a_day_twice_gives_the_same_rows(key_features):
    busy_account()
    AccountFactory()
    services.health_snapshots_record(as_of=D)
    first = list(HealthSnapshot.objects.order_by("pk").values())
    services.health_snapshots_record(as_of=D)
    assert list(HealthSnapshot.objects.order_by("pk").values()) == first
    assert HealthModel.objects.count() == 1 and HealthModelVersion.objects.count() == 1


def test_measures_from_shared_usage_inputs_are_the_same(key_features):
    """The pipeline in one process reads the usage inputs once (adoption.usage_inputs) and
    hands them to the health step: the measures must be exactly those read per chunk. The
    book has an account whose only events are older than the 60 days the health reads, one
    without a user id, one using a key feature, one with seats and no events."""
    busy = busy_account()
    old = AccountFactory()
    _event(old, at(1, 2))  # before Jan 31: outside both 30-day windows
    anonymous = AccountFactory()
    _event(anonymous, at(3, 20), user="")
    seated = AccountFactory()
    ContractFactory(account=seated, start_date=dt.date(2024, 1, 1), quantity=5)
    accounts = type(busy).objects.all()
    usage = adoption.usage_inputs(accounts, end=D + dt.timedelta(days=1))
    ids = list(accounts.values_list("pk", flat=True))
    shared = account_measures(accounts, as_of=D, usage=usage, account_ids=ids)
    assert shared == account_measures(accounts, as_of=D)
    assert old.pk not in shared and shared[anonymous.pk]["active_users_30d"] == 0
    with pytest.raises(ValueError, match="usage inputs end on"):
        account_measures(accounts, as_of=D - dt.timedelta(days=1), usage=usage, account_ids=ids)


def _book(n: int) -> None:
    for i in range(n):
        account = AccountFactory(segment="SMB" if i % 2 else "Enterprise")
        ContractFactory(account=account, quantity=10)
        _event(account, at(3, 1 + i % 28), user=f"u{i}", event="export")
        _event(account, at(2, 1 + i % 28), user=f"u{i}")
        if i % 3 == 0:
            TicketFactory(account=account, opened_at=at(3, 5), escalated=True)
            InvoiceFactory(account=account, issued_on=dt.date(2024, 3, 1))
            StakeholderFactory(account=account, role="champion")
            Activity.objects.create(account=account, kind="note", occurred_at=at(3, 3))
    _known_since(Stakeholder, at(1, 1))


def _queries(**kwargs) -> int:
    with CaptureQueriesContext(connection) as ctx:
        services.health_snapshots_record(as_of=D, **kwargs)
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_accounts(key_features, django_assert_max_num_queries):
    health_model_with_rule("Onboarding", lifecycle="onboarding")
    services.health_model_ensure_default()
    services.health_model_version_create(
        model=HealthModel.objects.get(name="Onboarding"), components=health.DEFAULT_COMPONENTS
    )
    # the upsert: PostgreSQL creates its staging table (if missing), COPYs into it (not a
    # query Django sees), merges and empties it; SQLite runs one bulk upsert
    upsert = 3 if connection.vendor == "postgresql" else 1
    # + survey answers (1), the voice measures (3: texts, stakeholders, contacts) and the
    # band-change facts (3: the day before's snapshots, the latest earlier one of accounts
    # without, stale band-change facts)
    # + the stored usage windows' read (1; none stored here, so the usage is then read
    # directly: users, events, key features)
    per_chunk = 12 + 1 + 3 + 3 + upsert + 1
    _book(10)
    ten = _queries()
    _book(30)
    with django_assert_max_num_queries(4 + per_chunk):
        services.health_snapshots_record(as_of=D)
    forty = _queries()
    assert HealthSnapshot.objects.filter(day=D).count() == 40
    # one chunk: the same queries for 10 and 40 accounts. Once per run: the default model
    # check (2), the active versions (1), the account ids (1); per chunk: savepoint,
    # accounts, seats, usage (users, events), key features, tickets, invoices, stakeholders,
    # activity, overrides, release (12), surveys, voice, band changes and the upsert
    assert ten == forty == 4 + per_chunk
    # smaller chunks: a fixed number per chunk, never per account (4 chunks of 10)
    assert _queries(chunk_size=10) == 4 + 4 * per_chunk


def test_onboarding_and_segment_models_are_assigned_most_specific_first():
    services.health_model_ensure_default()
    onboarding = health_model_with_rule("Onboarding", lifecycle="onboarding")
    enterprise = health_model_with_rule("Enterprise", segment="Enterprise")
    both = health_model_with_rule(
        "Enterprise onboarding", segment="Enterprise", lifecycle="onboarding"
    )
    for model in (onboarding, enterprise, both):
        services.health_model_version_create(model=model, components=health.DEFAULT_COMPONENTS)
    a = AccountFactory(segment="SMB", lifecycle_stage="onboarding")
    b = AccountFactory(segment="Enterprise", lifecycle_stage="mature")
    c = AccountFactory(segment="Enterprise", lifecycle_stage="onboarding")
    d = AccountFactory(segment="SMB", lifecycle_stage="mature")
    services.health_snapshots_record(as_of=D)
    used = dict(HealthSnapshot.objects.values_list("account_id", "model_version__model__name"))
    assert used == {
        a.pk: "Onboarding",
        b.pk: "Enterprise",
        c.pk: "Enterprise onboarding",
        d.pk: "Default",
    }


def test_a_model_with_several_rules_scores_each_rules_accounts_in_the_same_queries():
    """The nightly step reads every rule in the one query of the active versions: more
    rules for a model, the same number of queries, and each rule's accounts scored by it."""
    services.health_model_ensure_default()
    enterprise = health_model_with_rule("Enterprise", segment="Enterprise")
    services.health_model_version_create(model=enterprise, components=health.DEFAULT_COMPONENTS)
    a = AccountFactory(segment="Enterprise", lifecycle_stage="mature")
    b = AccountFactory(segment="Strategic", lifecycle_stage="mature")
    c = AccountFactory(segment="SMB", lifecycle_stage="renewal")
    d = AccountFactory(segment="SMB", lifecycle_stage="mature")
    one_rule = _queries()
    HealthAssignmentRule.objects.create(model=enterprise, segment="Strategic")
    HealthAssignmentRule.objects.create(model=enterprise, segment="SMB", lifecycle="renewal")
    assert _queries() == one_rule
    used = dict(HealthSnapshot.objects.values_list("account_id", "model_version__model__name"))
    assert used == {a.pk: "Enterprise", b.pk: "Enterprise", c.pk: "Enterprise", d.pk: "Default"}


def test_editing_a_model_makes_a_new_version_and_old_snapshots_keep_theirs():
    account = busy_account()
    services.health_snapshots_record(as_of=D)
    default = HealthModel.objects.get(is_default=True)
    v1 = default.versions.get()
    changed = [dict(c) for c in v1.components]
    changed[0]["weight"] = 70
    v2 = services.health_model_version_create(model=default, components=changed, green_min=60)
    assert (v2.version, v2.active) == (2, True)
    v1.refresh_from_db()
    assert v1.active is False and v1.components[0]["weight"] == 35
    services.health_snapshots_record(as_of=D + dt.timedelta(days=1))
    days = dict(HealthSnapshot.objects.filter(account=account).values_list("day", "model_version"))
    assert days == {D: v1.pk, D + dt.timedelta(days=1): v2.pk}


@pytest.mark.parametrize(
    "components",
    [
        [{"key": "a", "weight": 0, "measures": [{"measure": "nps", "linear": [0, 10]}]}],
        [
            {"key": "a", "weight": -5, "measures": [{"measure": "nps", "linear": [0, 10]}]},
            {"key": "b", "weight": 0, "measures": [{"measure": "csat", "linear": [0, 10]}]},
        ],
    ],
)
def test_a_model_without_positive_weight_is_refused(components):
    model = health_model_with_rule("Broken", segment="X")
    with pytest.raises(ValidationError) as info:
        services.health_model_version_create(model=model, components=components)
    assert "weight" in str(info.value.message_dict["components"])
    assert not model.versions.exists()
    # the admin form path validates the same way
    with pytest.raises(ValidationError, match="weight"):
        HealthModelVersion(model=model, version=1, components=components).full_clean()


# --- overrides -------------------------------------------------------------------------------


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def test_override_needs_a_reason_a_future_expiry_and_a_value(csm):
    account = AccountFactory()
    services.health_model_ensure_default()
    later = timezone.now() + dt.timedelta(days=30)
    cases = [
        ({"reason": " ", "expires_at": later, "score": 50}, "reason"),
        (
            {"reason": "x", "expires_at": timezone.now() - dt.timedelta(hours=1), "score": 50},
            "expires_at",
        ),
        ({"reason": "x", "expires_at": later}, "score"),
        ({"reason": "x", "expires_at": later, "score": 101}, "score"),
        ({"reason": "x", "expires_at": later, "score": 50, "component": "payments"}, "component"),
        ({"reason": "x", "expires_at": later, "score": 50, "component": "nope"}, "component"),
        ({"reason": "x", "expires_at": later, "band": "red", "component": "usage"}, "band"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as info:
            services.health_override_create(account=account, created_by=csm, **kwargs)
        assert field in info.value.message_dict, (kwargs, info.value.message_dict)
    assert "locked" in str(
        pytest.raises(
            ValidationError,
            services.health_override_create,
            account=account,
            reason="x",
            expires_at=later,
            score=50,
            component="payments",
        ).value
    )
    assert not HealthOverride.objects.exists()


def test_snapshot_shows_the_override_in_force_beside_the_computed_values(csm):
    today = _today()
    account = AccountFactory()
    ContractFactory(account=account, start_date=today - dt.timedelta(days=60), quantity=20)
    for i in range(4):  # 4 of 20 seats active: 20 % on [0, 50] → 40 points, usage only
        _event(account, timezone.now() - dt.timedelta(hours=1 + i), user=f"u{i}")
    services.health_model_ensure_default()
    override = services.health_override_create(
        account=account,
        created_by=csm,
        reason="exec sponsor confirmed renewal",
        expires_at=timezone.now() + dt.timedelta(days=14),
        score=85,
    )
    services.health_override_create(
        account=account,
        created_by=csm,
        reason="moved to SSO, logins not tracked",
        expires_at=timezone.now() + dt.timedelta(days=14),
        score=90,
        component="usage",
    )
    services.health_snapshots_record(as_of=today)
    snap = HealthSnapshot.objects.get(account=account, day=today)
    assert (snap.computed_score, snap.computed_band) == (40, "red")
    assert (snap.score, snap.band) == (85, "green")
    usage = next(c for c in snap.components if c["key"] == "usage")
    assert (usage["score"], usage["computed_score"], usage["overridden"]) == (90, 40, True)
    assert [o["reason"] for o in snap.overrides] == [
        "moved to SSO, logins not tracked",
        "exec sponsor confirmed renewal",
    ]
    assert snap.overrides[1]["id"] == override.pk and snap.overrides[1]["created_by"] == csm.email
    assert snap.reasons[-1].startswith("overridden to 85 (green) from 90 until ")

    # expired (or made after the day): not in force
    HealthOverride.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    services.health_snapshots_record(as_of=today)
    snap.refresh_from_db()
    assert (snap.score, snap.band, snap.overrides) == (40, "red", [])
    # the override rows stay: they are the audit trail
    assert HealthOverride.objects.count() == 2
    yesterday = today - dt.timedelta(days=1)
    HealthOverride.objects.update(expires_at=timezone.now() + dt.timedelta(days=1))
    services.health_snapshots_record(as_of=yesterday)
    assert HealthSnapshot.objects.get(account=account, day=yesterday).overrides == []


def test_what_changed_between_two_recorded_days():
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=20)
    for i in range(14):
        _event(account, at(3, 1), user=f"u{i}")
    services.health_snapshots_record(as_of=dt.date(2024, 3, 1))
    services.health_snapshots_record(as_of=dt.date(2024, 4, 5))
    # Mar 1: 14 of 20 active (70 % → 100 points); trend: no events before → no data
    # Apr 5: the window Mar 7 .. Apr 5 has no events: 0 of 20 → 0; trend −100 % → 0
    lines = services.health_changes(
        account=account, before=dt.date(2024, 3, 1), after=dt.date(2024, 4, 5)
    )
    assert lines == [
        "score fell from 100 to 0 (green → red)",
        "usage fell from 100 to 0: active users 14 → 0 of 20 seats, events in 30 days 14 → 0, "
        "events in the 30 days before 0 → 14",
    ]
    with pytest.raises(ValidationError, match="no health snapshot for 2024-01-01"):
        services.health_changes(account=account, before=dt.date(2024, 1, 1), after=D)


def test_admin_edit_of_a_version_saves_a_new_one(client, admin_user):
    default = services.health_model_ensure_default()
    v1 = default.versions.get()
    client.force_login(admin_user)
    url = reverse("admin:metrics_healthmodelversion_change", args=[v1.pk])
    components = [dict(c) for c in v1.components]
    components[0]["weight"] = 50
    form = {
        "model": default.pk,
        "components": json.dumps(components),
        "green_min": "75",
        "yellow_min": "45",
        "notes": "usage matters more",
    }
    r = client.post(url, form)
    assert r.status_code == 302, r.content.decode()[:2000]
    v1.refresh_from_db()
    assert v1.components[0]["weight"] == 35 and v1.active is False
    v2 = default.versions.get(active=True)
    assert (v2.version, v2.green_min, v2.components[0]["weight"]) == (2, 75, 50)
    assert v2.created_by == admin_user
    # all weights zero: the form shows the message, nothing is saved
    for c in components:
        c["weight"] = 0
    r = client.post(url, {**form, "components": json.dumps(components)})
    assert r.status_code == 200
    assert "every weight is 0: give at least one component a weight above 0" in r.content.decode()
    assert default.versions.count() == 2


def test_a_list_of_ids_records_exactly_those_accounts(django_assert_max_num_queries):
    """Consecutive ids (a pipeline chunk) are read as an id range, other lists as a list:
    either way only the listed accounts get a snapshot, in the same number of queries."""
    a1, a2, a3, a4 = (AccountFactory() for _ in range(4))
    services.health_model_ensure_default()
    services.health_snapshots_record(as_of=D, account_ids=[a1.pk, a3.pk])  # a2 in between
    assert set(HealthSnapshot.objects.values_list("account_id", flat=True)) == {a1.pk, a3.pk}
    with CaptureQueriesContext(connection) as listed:
        services.health_snapshots_record(as_of=D, account_ids=[a1.pk, a3.pk])
    with django_assert_max_num_queries(len(listed.captured_queries)):
        result = services.health_snapshots_record(as_of=D, account_ids=[a2.pk, a3.pk, a4.pk])
    assert result["accounts"] == 3
    assert set(HealthSnapshot.objects.values_list("account_id", flat=True)) == {
        a1.pk,
        a2.pk,
        a3.pk,
        a4.pk,
    }


@pytest.mark.parametrize(
    ("before", "after", "words"),
    [
        (79.6, 80.4, "79.6 → 80.4"),  # whole numbers would be "80 → 80"
        (79.96, 80.0, "79.96 → 80.00"),  # and one decimal "80.0 → 80.0"
        (90.0, 58.0, "90 → 58"),  # apart as whole numbers: as before
    ],
)
def test_a_band_change_at_a_rounded_boundary_says_the_scores_apart(before, after, words):
    """The band change's timeline title and data: the previous snapshot (yesterday) against
    the score just recorded; the data keeps the scores as scored, not rounded."""
    from accounts.models import Account, TimelineEntry

    account = AccountFactory()
    version = services.health_model_ensure_default().versions.get(active=True)
    old_band = health.band_for(before, green_min=80, yellow_min=50)
    new_band = health.band_for(after, green_min=80, yellow_min=50)
    HealthSnapshot.objects.create(
        account=account, day=D - dt.timedelta(days=1), model_version=version,
        score=before, band=old_band,
    )  # fmt: skip
    changed = services.health_band_changes_record(
        Account.objects.filter(pk=account.pk),
        as_of=D,
        scored=[(account.pk, new_band, after, False)],
        announce=False,
    )
    assert changed == 1 and old_band != new_band
    fact = TimelineEntry.objects.get(account=account, kind="health_band_changed")
    assert fact.title == f"Health {old_band} → {new_band} ({words})"
    assert (fact.data["score_from"], fact.data["score_to"]) == (before, after)


def test_a_band_change_made_by_an_override_says_so_on_the_timeline(csm):
    """Red yesterday, overridden to green today: the timeline's band change names the
    override; the same change without one does not."""
    from accounts.models import TimelineEntry

    today = _today()
    judged, plain = AccountFactory(), AccountFactory()
    version = services.health_model_ensure_default().versions.get(active=True)
    for account in (judged, plain):
        HealthSnapshot.objects.create(
            account=account, day=today - dt.timedelta(days=1), model_version=version,
            score=30, band="red",
        )  # fmt: skip
    services.health_override_create(
        account=judged,
        created_by=csm,
        reason="renewal signed",
        expires_at=timezone.now() + dt.timedelta(days=14),
        score=90,
    )
    services.health_snapshots_record(as_of=today)
    fact = TimelineEntry.objects.get(account=judged, kind="health_band_changed")
    assert fact.title.startswith("Health red → green (")
    assert "override" in fact.title and fact.data["overridden"] is True
    # the plain account moved on its own data (no usage: red or no score); no override named
    for other in TimelineEntry.objects.filter(account=plain, kind="health_band_changed"):
        assert "override" not in other.title and other.data["overridden"] is False


def _red_band_override(account, csm):
    """A CSM's override of the band to red, for 14 days from now (tests move its days)."""
    return services.health_override_create(
        account=account,
        created_by=csm,
        reason="exec sponsor left",
        expires_at=timezone.now() + dt.timedelta(days=14),
        band="red",
    )


def test_a_band_set_by_an_override_says_so_not_that_the_score_fell_into_it(csm, key_features):
    """busy_account scores 61.1 (yellow) on D (test_snapshot_by_hand); yesterday it was
    55 (yellow). A CSM sets the band to red, no score: the score rose 55 → 61.1 (printed
    whole, as every band-change title prints scores: "55 → 61"), so the fact
    says the override set the band and what the model computed (yellow)."""
    from accounts.models import TimelineEntry
    from metrics.models import HealthOverride

    account = busy_account()
    version = services.health_model_ensure_default().versions.get(active=True)
    HealthSnapshot.objects.create(
        account=account, day=D - dt.timedelta(days=1), model_version=version,
        score=55, band="yellow",
    )  # fmt: skip
    # an account without data and without override: green → no band, said as before
    HealthSnapshot.objects.create(
        account=AccountFactory(), day=D - dt.timedelta(days=1), model_version=version,
        score=90, band="green",
    )  # fmt: skip
    override = _red_band_override(account, csm)
    HealthOverride.objects.filter(pk=override.pk).update(created_at=at(3, 30))  # in force on D
    services.health_snapshots_record(as_of=D)
    snap = HealthSnapshot.objects.get(account=account, day=D)
    assert (snap.score, snap.band, snap.computed_band) == (61.1, "red", "yellow")
    fact = TimelineEntry.objects.get(account=account, kind="health_band_changed")
    assert fact.title == (
        "Health yellow → red: band set to red by an override (score 55 → 61.1, computed yellow)"
    )
    assert fact.data["band_override"] is True and fact.data["computed_band"] == "yellow"
    plain = TimelineEntry.objects.exclude(account=account).get(kind="health_band_changed")
    assert plain.title == "Health green → no band (90 → no score)"
    assert "band_override" not in plain.data


def test_an_override_that_ended_says_so_not_that_the_score_moved_the_band(csm, key_features):
    """busy_account scores 61.1 (yellow) on D (test_snapshot_by_hand). Yesterday a CSM's
    band override held it at red (computed yellow, score 55); the override expired during
    D, so D's snapshot is the model's yellow again. Nothing of the customer's changed: the
    fact says the override ended, and the playbook trigger still fires on the yellow (the
    model's verdict) with words that say why."""
    from accounts.models import TimelineEntry
    from playbooks import rules

    account = busy_account()
    version = services.health_model_ensure_default().versions.get(active=True)
    override = _red_band_override(account, csm)
    # made on Mar 29, expired at 06:00 on D: in force at the end of Mar 30, not of D
    HealthOverride.objects.filter(pk=override.pk).update(
        created_at=at(3, 29), expires_at=at(3, 31, 6)
    )
    override.refresh_from_db()
    applied = health.Override(
        id=override.pk, reason=override.reason, expires_at=override.expires_at.isoformat(),
        band="red", created_by=csm.email,
    )  # fmt: skip
    HealthSnapshot.objects.create(
        account=account, day=D - dt.timedelta(days=1), model_version=version,
        score=55, band="red", computed_score=55, computed_band="yellow",
        overrides=[applied.as_json()],
    )  # fmt: skip
    services.health_snapshots_record(as_of=D)
    snap = HealthSnapshot.objects.get(account=account, day=D)
    assert (snap.score, snap.band, snap.computed_band, snap.overrides) == (
        61.1, "yellow", "yellow", [],
    )  # fmt: skip
    fact = TimelineEntry.objects.get(account=account, kind="health_band_changed")
    # 55 → 61.1 prints as recorded, as every pair of scores prints (the CTA's evidence too)
    assert fact.title == (
        "Health red → yellow: override ended, back to the computed band (score 55 → 61.1)"
    )
    assert fact.data == {
        "from": "red",
        "to": "yellow",
        "score_from": 55,
        "score_to": 61.1,
        "as_of": D.isoformat(),
        "overridden": False,
        "override_ended": True,
    }
    params, errors = rules.clean_params(
        rules.TRIGGERS["health_entered"].params, {"band": "yellow"}, what="health_entered"
    )
    assert errors == []
    m = rules.TRIGGERS["health_entered"].evaluate(
        {"band": "yellow", "band_changes": [fact.data]}, params, D
    )
    assert m.evidence == (
        "band back to yellow when an override ended on 31 Mar 2024 "
        "(health 55 → 61.1; red by the override before)"
    )


def test_band_changes_after_an_override_name_what_moved_the_band():
    """The previous snapshot's band set by an override (overrides in force, band not the
    computed one), the new one's not: "override ended"; an override on both days keeps the
    override's words; a band the score moved, with no override either day, reads as before.
    One account has no snapshot the day before (its latest is read by the other query)."""
    from accounts.models import Account, TimelineEntry

    version = services.health_model_ensure_default().versions.get(active=True)
    ended, gap, plain, replaced, by_score = (AccountFactory() for _ in range(5))
    held = [{"id": 1, "component": "", "score": None, "band": "red", "reason": "escalation"}]
    rows = [
        # account, day, score, band, computed band, overrides
        (ended, D - dt.timedelta(days=1), 80.5, "red", "yellow", held),
        (gap, D - dt.timedelta(days=4), 80.5, "red", "yellow", held),
        (plain, D - dt.timedelta(days=1), 48, "red", "red", []),
        (replaced, D - dt.timedelta(days=1), 80.5, "red", "yellow", held),
        (by_score, D - dt.timedelta(days=1), 80.5, "red", "yellow", held),
    ]
    for account, day, score, band, computed_band, overrides in rows:
        HealthSnapshot.objects.create(
            account=account, day=day, model_version=version, score=score, band=band,
            computed_score=score, computed_band=computed_band, overrides=overrides,
        )  # fmt: skip
    changed = services.health_band_changes_record(
        Account.objects.all(),
        as_of=D,
        scored=[
            (ended.pk, "yellow", 76.2, False, None),
            (gap.pk, "yellow", 76.2, False, None),
            (plain.pk, "yellow", 52.3, False, None),
            (replaced.pk, "green", 76.2, True, "yellow"),  # another override sets green
            (by_score.pk, "green", 90, True, None),  # a score override of 90: green
        ],
        announce=False,
    )
    assert changed == 5
    facts = {f.account_id: f for f in TimelineEntry.objects.filter(kind="health_band_changed")}
    for account in (ended, gap):
        assert facts[account.pk].title == (
            "Health red → yellow: override ended, back to the computed band (score 80.5 → 76.2)"
        )
        assert facts[account.pk].data["override_ended"] is True
    assert facts[plain.pk].title == "Health red → yellow (48 → 52.3)"
    assert facts[replaced.pk].title == (
        "Health red → green: band set to green by an override (score 80.5 → 76.2, computed yellow)"
    )
    # an override is in force on the new score: the band is not the computed one
    assert facts[by_score.pk].title == "Health red → green (80.5 → 90, set by an override)"
    for account in (plain, replaced, by_score):
        assert "override_ended" not in facts[account.pk].data


def test_old_band_change_titles_get_their_scores_as_recorded():
    """Facts recorded when band-change titles printed whole numbers: the pair is reworded
    from the scores the data keep (50.1 → 28.6 printed "50 → 29"), the rest of the title,
    the data and the date stay; a title without the old pair, or already as recorded, is
    left alone, and a second run changes nothing."""
    from accounts.models import TimelineEntry

    account = AccountFactory()
    when = dt.datetime(2026, 3, 30, 23, 59, tzinfo=dt.UTC)

    def fact(key, title, data):
        return TimelineEntry.objects.create(
            account=account, occurred_at=when, kind="health_band_changed", key=key,
            title=title, data=data,
        )  # fmt: skip

    plain = fact(
        "health-band:1", "Health yellow → red (50 → 29)", {"score_from": 50.1, "score_to": 28.6}
    )
    set_by = fact(
        "health-band:2",
        "Health yellow → red: band set to red by an override (score 55 → 61, computed yellow)",
        {"score_from": 55, "score_to": 61.1, "band_override": True},
    )
    whole = fact(
        "health-band:3", "Health red → yellow (48 → 52)", {"score_from": 48, "score_to": 52}
    )
    none = fact(
        "health-band:4",
        "Health green → no band (90 → no score)",
        {"score_from": 90, "score_to": None},
    )
    odd = fact("health-band:5", "Health green → red", {"score_from": 80.4, "score_to": 12.2})
    bare = fact("health-band:6", "Health green → red (80 → 12)", {})

    assert services.band_change_titles_reword() == 2
    titles = dict(TimelineEntry.objects.values_list("pk", "title"))
    assert titles == {
        plain.pk: "Health yellow → red (50.1 → 28.6)",
        set_by.pk: (
            "Health yellow → red: band set to red by an override (score 55 → 61.1, computed yellow)"
        ),
        whole.pk: "Health red → yellow (48 → 52)",
        none.pk: "Health green → no band (90 → no score)",
        odd.pk: "Health green → red",
        bare.pk: "Health green → red (80 → 12)",
    }
    assert TimelineEntry.objects.get(pk=plain.pk).occurred_at == when
    assert services.band_change_titles_reword() == 0
