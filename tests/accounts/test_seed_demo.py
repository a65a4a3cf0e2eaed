"""seed_demo builds a believable, deterministic book through the intake path."""

from __future__ import annotations

from datetime import date, timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db.models import Count, Max, Sum
from django.test import RequestFactory

from accounts import demo
from accounts.models import (
    Account,
    Contract,
    Invoice,
    Role,
    Stakeholder,
    Ticket,
    TimelineEntry,
    UsageDaily,
    UsageEvent,
    UsageFeatureDaily,
    User,
)
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

TODAY = date(2025, 6, 30)
SMALL = ["--accounts", "20", "--days", "180", "--seed", "7", "--today", TODAY.isoformat()]


def _seed(*extra: str) -> str:
    out = StringIO()
    call_command("seed_demo", *SMALL, *extra, stdout=out)
    return out.getvalue()


def _snapshot() -> dict:
    """Counts of every kind and the first rows of each, in a stable order."""
    return {
        "counts": demo.database_counts(),
        "accounts": list(
            Account.objects.order_by("external_id").values(
                "external_id",
                "name",
                "segment",
                "owner__email",
                "parent__external_id",
                "lifecycle_stage",
                "customer_since",
            )[:5]
        ),  # fmt: skip
        "contracts": list(
            Contract.objects.order_by("external_id").values(
                "external_id", "start_date", "end_date", "mrr", "quantity", "discount"
            )[:5]
        ),
        "tickets": list(
            Ticket.objects.order_by("external_id").values("external_id", "opened_at", "status")[:5]
        ),
        "invoices": list(
            Invoice.objects.order_by("external_id").values("external_id", "amount", "status")[:5]
        ),
        "events": list(
            UsageEvent.objects.order_by(
                "account__external_id", "occurred_at", "user_id", "event"
            ).values("account__external_id", "user_id", "event", "occurred_at", "value")[:5]
        ),
        "usage": list(
            UsageDaily.objects.order_by("account__external_id", "day").values(
                "account__external_id", "day", "events", "active_users"
            )[:5]
        ),
    }


def test_seed_demo_creates_every_kind_and_prints_a_summary():
    out = _seed()

    counts = demo.database_counts()
    assert counts["accounts"] == 20
    for kind, count in counts.items():
        assert count > 0, kind
    assert "Demo data loaded" in out and "timeline entries" in out
    # a believable book: segments, hierarchy, every lifecycle outcome that matters
    assert set(Account.objects.values_list("segment", flat=True)) == {
        "Enterprise", "Mid-Market", "SMB"
    }  # fmt: skip
    assert Account.objects.filter(parent__isnull=False).exists()
    stages = set(Account.objects.values_list("lifecycle_stage", flat=True))
    assert {"churned", "mature"} <= stages
    # renewals: a contract period that starts the day after an earlier one ended
    periods = list(Contract.objects.values_list("account_id", "start_date", "end_date"))
    ends = {(a, e) for a, _, e in periods if e is not None}
    assert any((a, s - timedelta(days=1)) in ends for a, s, _ in periods)
    assert Contract.objects.filter(discount__gt=0).exists()
    assert set(Contract.objects.values_list("billing_period_months", flat=True)) == {1, 12}
    assert set(Stakeholder.objects.values_list("role", flat=True)) >= {
        "champion", "decision_maker", "billing", "user"
    }  # fmt: skip
    assert Ticket.objects.filter(escalated=True).exists()
    assert Ticket.objects.filter(csat__isnull=False).exists()
    statuses = set(Invoice.objects.values_list("status", flat=True))
    assert {"paid", "open"} <= statuses
    assert Invoice.objects.filter(status="failed", failed_attempts__gt=0).exists()
    kinds = set(TimelineEntry.objects.values_list("kind", flat=True))
    assert {"contract_started", "contract_ended", "ticket_opened", "invoice_paid"} <= kinds
    assert set(UsageFeatureDaily.objects.values_list("event", flat=True)) >= {
        "login", "report_created", "dashboard_viewed", "export_run"
    }  # fmt: skip
    # no usage after a churned account's last day of service
    for account in Account.objects.filter(lifecycle_stage="churned"):
        last_day = account.contracts.aggregate(m=Max("end_date"))["m"]
        assert not account.usage_days.filter(day__gt=last_day).exists()


def test_demo_users_have_roles_and_the_demo_password():
    _seed()

    manager = User.objects.get(email="manager@demo.example")
    assert manager.role == Role.MANAGER
    admin = User.objects.get(email="admin@demo.example")
    assert admin.role == Role.ADMIN and admin.is_staff and admin.is_superuser
    csms = User.objects.filter(email__startswith="csm", email__endswith="@demo.example")
    assert csms.count() >= 2
    assert all(c.role == Role.CSM and c.manager == manager for c in csms)
    login = RequestFactory().post("/login/")  # the login throttle needs the request
    assert (
        authenticate(login, username="csm1@demo.example", password=demo.DEMO_PASSWORD) is not None
    )
    # the book is spread over the CSMs
    owners = set(Account.objects.exclude(owner=None).values_list("owner__email", flat=True))
    assert len(owners) >= 2 and owners <= set(csms.values_list("email", flat=True))


def test_same_seed_gives_the_same_book():
    _seed()
    first = _snapshot()
    Account.objects.all().delete()  # cascades to everything the seed made

    _seed()

    assert _snapshot() == first


def test_a_different_seed_gives_a_different_book():
    cfg_a = demo.DemoConfig(accounts=20, days=180, seed=7, today=TODAY)
    cfg_b = demo.DemoConfig(accounts=20, days=180, seed=8, today=TODAY)
    names = [[demo.plan_account(cfg, i).name for i in range(1, 21)] for cfg in (cfg_a, cfg_b)]
    assert names[0] != names[1]


def test_churned_accounts_use_the_product_less_before_they_churn():
    _seed()

    def window(account: Account, last_day: date, lo: int, hi: int) -> tuple[int, int]:
        days = account.usage_days.filter(
            day__gte=last_day - timedelta(days=hi), day__lte=last_day - timedelta(days=lo)
        ).aggregate(events=Sum("events"), users=Sum("active_users"))
        return days["events"] or 0, days["users"] or 0

    window_start = TODAY - timedelta(days=180)
    checked = 0
    for account in Account.objects.filter(lifecycle_stage="churned"):
        last_day = account.contracts.aggregate(m=Max("end_date"))["m"]
        if last_day - timedelta(days=119) < max(window_start, account.customer_since):
            continue  # not enough history to compare two 60-day windows
        before_events, before_users = window(account, last_day, 60, 119)
        last_events, last_users = window(account, last_day, 0, 59)
        assert last_events < before_events, account.external_id
        assert last_users < before_users, account.external_id
        checked += 1
    assert checked >= 2


def test_if_empty_does_nothing_when_accounts_exist():
    AccountFactory()

    out = _seed("--if-empty")

    assert "already exist" in out
    assert Account.objects.count() == 1
    assert not User.objects.filter(email__endswith="@demo.example").exists()


def test_seed_rejects_nonsense_sizes():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--accounts"):
        call_command("seed_demo", "--accounts", "0", stdout=StringIO())


HEARD: list[int] = []


def _heard(entry_ids: list[int]) -> None:
    """A listener of timeline facts (settings.TIMELINE_FACT_HOOKS) that only remembers."""
    HEARD.extend(entry_ids)


def test_health_weeks_records_a_weekly_history_before_yesterday(
    settings, django_capture_on_commit_callbacks
):
    """--health-weeks 2 with today pinned to 2025-06-30: yesterday is 2025-06-29, so the
    history is the snapshots of 2025-06-15 (two weeks back) and 2025-06-22 (one week back),
    one per account each, and nothing else; the first night then adds yesterday's."""
    from metrics.models import HealthSnapshot

    settings.TIMELINE_FACT_HOOKS = [f"{__name__}._heard"]
    HEARD.clear()
    with django_capture_on_commit_callbacks(execute=True):
        out = _seed("--health-weeks", "2")
    days = list(
        HealthSnapshot.objects.values("day").annotate(n=Count("id")).order_by("day")
    )  # fmt: skip
    assert days == [
        {"day": date(2025, 6, 15), "n": 20},
        {"day": date(2025, 6, 22), "n": 20},
    ]
    assert "Health history: snapshots of 2 days a week apart, 2025-06-15 to 2025-06-22." in out
    # the band changes of 2025-06-22 are on the timelines, as history, and were not handed
    # to the playbooks' listeners as news (the survey answers' facts were)
    changes = TimelineEntry.objects.filter(kind="health_band_changed")
    assert changes.exists()
    assert set(changes.values_list("key", flat=True)) == {"health-band:2025-06-22"}
    assert HEARD
    assert not changes.filter(pk__in=HEARD).exists()


def test_health_weeks_must_not_be_negative():
    from django.core.exceptions import ValidationError
    from django.core.management.base import CommandError

    from metrics.services import health_weekly_history

    with pytest.raises(CommandError, match="--health-weeks must not be negative"):
        _seed("--health-weeks", "-1")
    assert not Account.objects.exists()
    with pytest.raises(ValidationError, match="whole number >= 0"):
        health_weekly_history(as_of=TODAY, weeks=-2)


def test_demo_logins_prints_users_roles_and_password():
    demo.demo_users_ensure()
    out = StringIO()

    call_command("demo_logins", stdout=out)

    text = out.getvalue()
    assert "Open http://127.0.0.1:8000/login/ and sign in" in text  # SITE_URL unset: make run
    assert demo.DEMO_PASSWORD in text
    for email, role in [("admin@demo.example", "Admin"), ("manager@demo.example", "Manager")]:
        line = next(line for line in text.splitlines() if email in line)
        assert role in line
    assert "csm1@demo.example" in text


def test_demo_logins_names_the_configured_site_url(settings):
    """On a server the demo logins point at its SITE_URL, not at make run's 127.0.0.1."""
    settings.SITE_URL = "http://192.168.1.20:8000/"
    demo.demo_users_ensure()
    out = StringIO()

    call_command("demo_logins", stdout=out)

    assert "Open http://192.168.1.20:8000/login/ and sign in" in out.getvalue()
    assert "127.0.0.1" not in out.getvalue()


def test_a_weekly_history_gives_the_30_day_trend_the_day_35_days_back():
    """Five weeks back from 2025-06-29: only the weekly days 05-25, 06-01 … 06-22 (none 30
    days back, 05-30). The 30-day trend of 06-29 reads the latest snapshot on or before
    05-30 and at most a week earlier: 05-25, 35 days back."""
    from metrics.models import AccountStanding, HealthSnapshot
    from metrics.services import health_snapshots_record, health_weekly_history
    from metrics.standings import account_standings_refresh

    _seed()
    results = health_weekly_history(as_of=date(2025, 6, 29), weeks=5)
    assert [r["day"] for r in results] == [
        "2025-05-25", "2025-06-01", "2025-06-08", "2025-06-15", "2025-06-22",
    ]  # fmt: skip
    health_snapshots_record(as_of=date(2025, 6, 29), announce=False)
    account_standings_refresh(day=date(2025, 6, 29))
    scored_then = set(
        HealthSnapshot.objects.filter(day=date(2025, 5, 25), score__isnull=False).values_list(
            "account_id", flat=True
        )
    )
    trended = AccountStanding.objects.filter(trend_30__isnull=False)
    assert scored_then and set(trended.values_list("account_id", flat=True)) <= scored_then
    assert set(trended.values_list("trend_30_day", flat=True)) == {date(2025, 5, 25)}


def test_kpi_months_records_the_months_the_dashboard_compares_with():
    """--kpi-months 2 with today pinned to 2025-06-30: the night's day is 2025-06-29, whose
    trailing month is [2025-05-30, 2025-06-30); the month before ends the day before its
    start, 2025-05-29 ([2025-04-30, 2025-05-30)), and the one before that 2025-04-29
    ([2025-03-30, 2025-04-30)). Each period ends where the next one starts, so the dashboard
    (workspace.selectors.kpi_pair) finds the month before of each."""
    from metrics.models import KpiSnapshot

    out = _seed("--kpi-months", "2")
    book = {
        s.day: (s.period_start, s.period_end) for s in KpiSnapshot.objects.filter(scope_kind="all")
    }
    assert book == {
        date(2025, 4, 29): (date(2025, 3, 30), date(2025, 4, 30)),
        date(2025, 5, 29): (date(2025, 4, 30), date(2025, 5, 30)),
    }
    # every scope of each day (whole book, segments, owners, teams), the same scopes both days
    per_day = dict(KpiSnapshot.objects.values_list("day").annotate(n=Count("id")))
    assert per_day[date(2025, 4, 29)] == per_day[date(2025, 5, 29)] > 1
    assert "KPI history: snapshots of the 2 months before, 2025-04-29 to 2025-05-29." in out


def test_kpi_months_must_not_be_negative():
    from django.core.exceptions import ValidationError
    from django.core.management.base import CommandError

    from metrics.services import kpi_monthly_history

    with pytest.raises(CommandError, match="--kpi-months must not be negative"):
        _seed("--kpi-months", "-1")
    with pytest.raises(ValidationError, match="must be a whole number"):
        kpi_monthly_history(as_of=TODAY, months=-1)
    assert kpi_monthly_history(as_of=TODAY, months=0) == []


def test_stakeholders_are_known_from_the_day_the_account_became_a_customer():
    """Stakeholders and their "added as …" facts are dated like the rest of the book, not
    stamped at seed time: the first snapshot of the history counts their champion (health
    reads a stakeholder as known on day D by the time its row was created)."""
    from metrics.models import HealthSnapshot

    _seed("--health-weeks", "2")
    since = dict(Account.objects.values_list("id", "customer_since"))
    people = list(Stakeholder.objects.values_list("account_id", "external_id", "created_at"))
    assert people
    for account_id, _, created_at in people:
        assert created_at.date() == since[account_id]
    facts = dict(
        TimelineEntry.objects.filter(kind="stakeholder_added").values_list("key", "occurred_at")
    )
    assert all(facts[f"stakeholder:{ext}:added"] == c for _, ext, c in people)
    first = HealthSnapshot.objects.filter(
        day=date(2025, 6, 15), account__customer_since__lt=date(2025, 6, 15)
    )
    assert first.exists()
    for snapshot in first:
        relationship = next(c for c in snapshot.components if c["key"] == "relationship")
        assert relationship["inputs"]["stakeholders"], snapshot.account_id
        assert relationship["inputs"]["champion_present"] is not None


def test_the_demo_key_features_are_events_of_the_book_and_make_run_sets_them():
    from pathlib import Path

    from django.conf import settings as django_settings

    names = {name for name, _ in demo.EVENT_WEIGHTS}
    assert set(demo.DEMO_KEY_FEATURES) <= names
    assert len(demo.DEMO_KEY_FEATURES) < len(names)  # a few, not every feature
    makefile = (Path(django_settings.BASE_DIR) / "Makefile").read_text()
    line = f"run: export KEY_FEATURES ?= {','.join(demo.DEMO_KEY_FEATURES)}"
    assert line in makefile.splitlines()


def test_seed_demo_says_how_to_choose_the_key_features_when_none_are(settings):
    settings.KEY_FEATURES = []
    out = StringIO()
    tiny = ["--accounts", "2", "--days", "30", "--today", TODAY.isoformat(), "--surveys", "no"]
    call_command("seed_demo", *tiny, stdout=out)
    assert f"KEY_FEATURES={','.join(demo.DEMO_KEY_FEATURES)}" in out.getvalue()
    assert "feature adoption has no data" in out.getvalue()
    settings.KEY_FEATURES = ["export_run"]
    out = StringIO()
    call_command("seed_demo", *tiny, stdout=out)
    assert "Key features: export_run (KEY_FEATURES)." in out.getvalue()
    assert "no data" not in out.getvalue()
