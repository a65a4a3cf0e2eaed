"""Nightly KPI snapshots: one row per day and scope (book, segment, owner, manager's team) holding the
trailing month's kpi_report; idempotent per day; written by the pipeline after health."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import Account
from metrics import kpis, pipeline, services
from metrics.models import KpiScope, KpiSnapshot
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db

D = dt.date(2024, 3, 5)  # trailing month: [2024-02-06, 2024-03-06)


@pytest.fixture
def book(csm, manager):
    """MRR by hand, on Feb 6 (start) → on Mar 6 (end, the day after D):
    a1 SMB/csm     100 → 100   (open since Jan)
    a2 SMB/csm     200 →   0   (last day Feb 20: churn 200)
    a3 ENT/manager   0 → 1000  (starts Feb 10: new 1000)
    a4 no segment, no owner: 50 → 50
    book 350 → 1150; SMB 300 → 100; ENT 0 → 1000; csm = SMB; manager = ENT;
    the manager's team (the csm reports to them) = SMB + ENT: 300 → 1100."""
    a1 = AccountFactory(segment="SMB", owner=csm)
    a2 = AccountFactory(segment="SMB", owner=csm)
    a3 = AccountFactory(segment="ENT", owner=manager)
    a4 = AccountFactory(segment="", owner=None)
    ContractFactory(account=a1, start_date=dt.date(2024, 1, 1), mrr=Decimal("100"))
    ContractFactory(
        account=a2, start_date=dt.date(2024, 1, 1), end_date=dt.date(2024, 2, 20), mrr=200
    )
    ContractFactory(account=a3, start_date=dt.date(2024, 2, 10), mrr=Decimal("1000"))
    ContractFactory(account=a4, start_date=dt.date(2024, 1, 1), mrr=Decimal("50"))
    return {"a1": a1, "a2": a2, "a3": a3, "a4": a4}


def _money(snapshot: KpiSnapshot, key: str) -> Decimal:
    return Decimal(snapshot.report["revenue"][key]["value"])


def _rows():
    return list(
        KpiSnapshot.objects.order_by("day", "scope_kind", "scope_key").values(
            "pk", "day", "scope_kind", "scope_key", "period_start", "period_end", "report"
        )
    )


def test_one_row_per_scope_with_the_trailing_months_figures(book, csm, manager):
    result = services.kpi_snapshots_record(as_of=D)

    assert result == {
        "day": "2024-03-05",
        "period_start": "2024-02-06",
        "period_end": "2024-03-06",
        "scopes": 6,  # book + SMB + ENT + csm + manager + manager's team; a4: only the book
        "segments": 2,
        "owners": 2,
        "teams": 1,
        "removed": 0,
    }
    snaps = {(s.scope_kind, s.scope_key): s for s in KpiSnapshot.objects.all()}
    assert set(snaps) == {
        ("all", ""),
        ("segment", "ENT"),
        ("segment", "SMB"),
        ("owner", str(csm.pk)),
        ("owner", str(manager.pk)),
        ("team", str(manager.pk)),
    }
    for snap in snaps.values():
        assert snap.day == D
        assert (snap.period_start, snap.period_end) == (dt.date(2024, 2, 6), dt.date(2024, 3, 6))
    expected = {  # (start MRR, end MRR, new, churn), from the fixture's table
        ("all", ""): (350, 1150, 1000, 200),
        ("segment", "SMB"): (300, 100, 0, 200),
        ("segment", "ENT"): (0, 1000, 1000, 0),
        ("owner", str(csm.pk)): (300, 100, 0, 200),
        ("owner", str(manager.pk)): (0, 1000, 1000, 0),
        ("team", str(manager.pk)): (300, 1100, 1000, 200),
    }
    for key, (start, end, new, churn) in expected.items():
        snap = snaps[key]
        got = tuple(_money(snap, k) for k in ("mrr_start", "mrr_end", "new_mrr", "churn_mrr"))
        assert got == (start, end, new, churn), key
    assert snaps[("segment", "SMB")].report["scope"]["segment"] == "SMB"
    assert snaps[("owner", str(csm.pk))].report["scope"]["owner"] == csm.email
    assert snaps[("all", "")].report["scope"]["segment"] is None
    assert snaps[("team", str(manager.pk))].report["scope"]["team"] == manager.email


def test_a_team_snapshot_is_the_engines_report_over_what_the_manager_sees(book, manager):
    services.kpi_snapshots_record(as_of=D)
    snap = KpiSnapshot.objects.get(scope_kind=KpiScope.TEAM, scope_key=str(manager.pk))
    direct = kpis.kpi_report(
        start=dt.date(2024, 2, 6),
        end=dt.date(2024, 3, 6),
        accounts=Account.objects.visible_to(manager),
        known_on=D,
    )
    assert snap.report == {**direct, "scope": {**direct["scope"], "team": manager.email}}


def test_no_team_row_for_a_manager_whose_team_owns_nothing(manager, csm):
    """The manager and their report own no account: no team row (nor owner rows)."""
    ContractFactory(account=AccountFactory(owner=None, segment=""))
    result = services.kpi_snapshots_record(as_of=D)
    assert (result["scopes"], result["teams"]) == (1, 0)


def test_a_snapshot_is_the_engines_report_for_its_scope_and_period(book, manager):
    services.kpi_snapshots_record(as_of=D)
    snap = KpiSnapshot.objects.get(scope_kind=KpiScope.OWNER, scope_key=str(manager.pk))
    direct = kpis.kpi_report(
        start=dt.date(2024, 2, 6), end=dt.date(2024, 3, 6), owner=manager.email, known_on=D
    )
    assert snap.report == direct


def test_the_renewal_rate_of_a_snapshot_does_not_look_ahead(settings):
    """Two contracts end in the trailing month of D (2024-03-05), both renewed later:
    r1 ends 02-20, its follower starts 02-25 (known on D); r2 ends 03-01, its follower starts
    03-20, after D. As of D: 1 of 2 renewed = 50 %, r2 awaiting (grace runs to 03-31).
    As of 03-25 (trailing month 02-26 .. 03-25) only r2 ends in it: 1 of 1 = 100 %."""
    settings.RENEWAL_GRACE_DAYS = 30
    r1, r2 = AccountFactory(), AccountFactory()
    ContractFactory(account=r1, start_date=dt.date(2023, 2, 21), end_date=dt.date(2024, 2, 20))
    ContractFactory(account=r1, start_date=dt.date(2024, 2, 25))
    ContractFactory(account=r2, start_date=dt.date(2023, 3, 2), end_date=dt.date(2024, 3, 1))
    ContractFactory(account=r2, start_date=dt.date(2024, 3, 20))

    services.kpi_snapshots_record(as_of=D)
    rate = KpiSnapshot.objects.get(day=D, scope_kind="all").report["retention"]["renewal_rate"]
    assert rate["value"] == "50"
    assert rate["inputs"] == {
        "contracts_ending": 2,
        "contracts_renewed": 1,
        "known_on": "2024-03-05",
        "awaiting_renewal": 1,
        "grace_days": 30,
    }
    # the same period asked later, without an as-of day, sees r2's renewal: 2 of 2
    later = kpis.kpi_report(start=dt.date(2024, 2, 6), end=dt.date(2024, 3, 6))
    assert later["retention"]["renewal_rate"]["value"] == "100"

    day = dt.date(2024, 3, 25)
    services.kpi_snapshots_record(as_of=day)
    rate = KpiSnapshot.objects.get(day=day, scope_kind="all").report["retention"]["renewal_rate"]
    assert (rate["value"], rate["inputs"]["awaiting_renewal"]) == ("100", 0)


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        (dt.date(2024, 3, 31), dt.date(2024, 3, 1), dt.date(2024, 4, 1)),  # = calendar March
        (dt.date(2024, 2, 29), dt.date(2024, 2, 1), dt.date(2024, 3, 1)),  # = calendar Feb
        (dt.date(2024, 3, 1), dt.date(2024, 2, 2), dt.date(2024, 3, 2)),
        (dt.date(2024, 3, 30), dt.date(2024, 2, 29), dt.date(2024, 3, 31)),  # 31st → Feb's last
        (dt.date(2024, 12, 31), dt.date(2024, 12, 1), dt.date(2025, 1, 1)),
    ],
)
def test_period_is_the_trailing_month(day, start, end):
    assert services.kpi_snapshot_period(day) == (start, end)


def test_rerecording_a_day_keeps_the_rows_and_drops_gone_scopes(book, manager):
    services.kpi_snapshots_record(as_of=D)
    services.kpi_snapshots_record(as_of=D - dt.timedelta(days=1))  # another day: kept
    first = _rows()
    again = services.kpi_snapshots_record(as_of=D)
    assert _rows() == first  # same primary keys, same reports
    assert again["removed"] == 0

    book["a3"].segment = "SMB"  # ENT no longer exists, the manager owns nothing
    book["a3"].owner = None
    book["a3"].save()
    result = services.kpi_snapshots_record(as_of=D)
    # the manager's team keeps the csm's accounts
    assert result["removed"] == 2 and result["scopes"] == 4
    today = set(KpiSnapshot.objects.filter(day=D).values_list("scope_kind", "scope_key"))
    assert ("segment", "ENT") not in today and ("owner", str(manager.pk)) not in today
    assert KpiSnapshot.objects.filter(day=D - dt.timedelta(days=1)).count() == 6
    smb = KpiSnapshot.objects.get(day=D, scope_kind="segment", scope_key="SMB")
    assert _money(smb, "mrr_end") == 1100


def test_an_empty_book_has_one_book_row():
    result = services.kpi_snapshots_record(as_of=D)
    assert result["scopes"] == 1
    snap = KpiSnapshot.objects.get()
    assert (snap.scope_kind, snap.scope_key) == ("all", "")
    assert _money(snap, "mrr_end") == 0


@pytest.mark.parametrize("per_scope", [1, 4])
def test_queries_grow_with_scopes_not_accounts(per_scope, django_assert_num_queries):
    """3 scope lists (segments, owners, who reports to whom) + the usage inputs once (1 + 4: the stored windows, none here, then
    users by account and user, events and daily users, known users, feature users) + 10 per
    report (contracts ×2: the summary and the as-of day, ending contracts with their
    renewals counted in one query, tickets ×2, invoices, survey answers, invitations,
    follow-ups, TTFV: the recorded first-value milestones, with the first-value event's
    first day when FIRST_VALUE_EVENT is set, in one query) + (savepoint, stale-row read,
    one upsert, release):
    3 + 5 + 10·S + 4, whatever the number of accounts per scope (measured; was 2 + 4 + 8·S + 4
    before the stored usage windows and the contract summary, and TTFV read nothing without
    FIRST_VALUE_EVENT before milestones). On PostgreSQL the tickets are one query (their
    counts and hours' percentiles in one aggregate): 9 per report.
    The presences are read twice per run, not per scope, and the raw events never."""
    for segment in ("A", "B"):
        for _ in range(per_scope):
            ContractFactory(account=AccountFactory(segment=segment))
    per_report = 9 if connection.vendor == "postgresql" else 10
    with django_assert_num_queries(3 + 5 + per_report * 3 + 4) as captured:
        result = services.kpi_snapshots_record(as_of=D)
    assert result["scopes"] == 3
    sql = [q["sql"] for q in captured.captured_queries]
    assert len([q for q in sql if "accounts_usagepresence" in q]) == 2
    assert not [q for q in sql if "accounts_usageevent" in q]


def test_pipeline_writes_kpi_snapshots_after_health(book):
    summary = pipeline.run_nightly(D)
    names = [s["name"] for s in summary["steps"]]
    assert names == ["usage_rollups", "usage_events", "health", "standings", "kpi_snapshots"]
    step = summary["steps"][4]
    assert step["scopes"] == 6 and step["day"] == "2024-03-05"
    assert KpiSnapshot.objects.filter(day=D).count() == 6
    pipeline.run_nightly(D)  # a second run of the day: the same six rows
    assert KpiSnapshot.objects.filter(day=D).count() == 6


def test_admin_lists_snapshots_with_their_mrr(book, admin_user, client):
    services.kpi_snapshots_record(as_of=D)
    client.force_login(admin_user)
    page = client.get("/admin/metrics/kpisnapshot/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "1150.00" in text and "SMB" in text
    snap = KpiSnapshot.objects.get(scope_kind="all")
    assert client.get(f"/admin/metrics/kpisnapshot/{snap.pk}/change/").status_code == 200
    assert client.get("/admin/metrics/kpisnapshot/add/").status_code == 403
