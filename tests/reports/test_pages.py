"""The dashboard's tiles show each KPI's target, on/off track and the trend; the off-track
list; scheduled reports as CSV attachments through the outbox."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core import mail

from metrics.models import KpiSnapshot
from reports import services
from reports.models import KpiTarget, ScheduledReport

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 22)


def _snapshot(day, nrr, grr, kind="all", key=""):
    start = dt.date(2026, 10, 23) if day == DAY else day
    return KpiSnapshot.objects.create(
        day=day,
        scope_kind=kind,
        scope_key=key,
        period_start=start,
        period_end=day + dt.timedelta(days=1),
        report={
            "period": {"start": start.isoformat(), "end": (day + dt.timedelta(days=1)).isoformat()},
            "retention": {
                "nrr": {"value": nrr, "unit": "%"},
                "grr": {"value": grr, "unit": "%"},
                "logo_churn_rate": {"value": "1.5", "unit": "%"},
            },
        },
    )


@pytest.fixture
def board(no_default_targets, manager):
    # weekly NRR trend: 6 Sundays ending 11-22: 10-18 .. 11-22; four of them have snapshots
    for day, nrr in (
        (dt.date(2026, 10, 25), "101"),
        (dt.date(2026, 11, 8), "99"),
        (dt.date(2026, 11, 15), "97"),
    ):
        _snapshot(day, nrr, "91")
    _snapshot(DAY, "95.5", "92")
    # NRR 95.5 < 100: off track; GRR 92 >= 90: on track; logo churn has no target
    KpiTarget.objects.create(
        kpi="nrr", direction="at_least", value=100, cadence="weekly", owner=manager
    )
    KpiTarget.objects.create(kpi="grr", direction="at_least", value=90, cadence="weekly")
    KpiTarget.objects.create(kpi="csat", direction="at_least", value=80, cadence="monthly")


def test_dashboard_tiles_show_target_state_and_trend(
    client, admin_user, board, django_assert_max_num_queries
):
    client.force_login(admin_user)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    tiles = {t["key"]: t for t in response.context["tiles"]}
    nrr, grr = tiles["nrr"]["target"], tiles["grr"]["target"]
    assert (nrr["text"], nrr["state"], nrr["on_track"]) == ("≥ 100.0%", "off track", False)
    assert (grr["text"], grr["state"]) == ("≥ 90.0%", "on track")
    assert [None if v is None else str(v) for v in nrr["trend"]] == [
        None,
        "101",
        None,
        "99",
        "97",
        "95.5",
    ]
    assert nrr["spark"]  # the sparkline's points
    assert "target" not in tiles["logo_churn_rate"]
    assert tiles["csat"]["target"]["state"] == "no data"
    html = response.content.decode()
    assert 'data-on-track="no"' in html and 'data-on-track="yes"' in html
    # the tiles' targets cost two queries, whatever the number of tiles
    with django_assert_max_num_queries(2):
        services.tiles_decorate(
            [dict(t) for t in response.context["tiles"]],
            scope_kind="all",
            scope_key="",
            day=DAY,
        )


def test_a_kpi_without_a_value_shows_its_target_without_a_verdict(client, admin_user, board):
    """CSAT has a target but no value: the tile says the target and that there is nothing
    to compare with, with no "no data" badge beside it that reads like a miss."""
    client.force_login(admin_user)
    response = client.get("/dashboard/")
    tiles = {t["key"]: t for t in response.context["tiles"]}
    assert tiles["csat"]["value"] is None and tiles["csat"]["target"]["on_track"] is None
    html = response.content.decode()
    label = f'<span class="tile-label">{tiles["csat"]["label"]}</span>'
    tile = html[html.index(label) :].split("</li>")[0]
    assert f"target {tiles['csat']['target']['text']}" in tile
    assert "nothing to compare with yet" in tile
    assert "badge" not in tile and "no data" not in tile
    nrr = html[html.index(f'<span class="tile-label">{tiles["nrr"]["label"]}</span>') :]
    assert "badge-target-off" in nrr.split("</li>")[0]  # a missed target keeps its badge


def test_an_owner_target_wins_over_the_all_accounts_one(csm, board):
    _snapshot(DAY, "98", "80", kind="owner", key=str(csm.pk))
    KpiTarget.objects.create(
        kpi="nrr",
        scope_kind="owner",
        scope_key=str(csm.pk),
        direction="at_least",
        value=97,
        cadence="monthly",
    )
    tiles = [{"key": "nrr", "value": 98.0}, {"key": "grr", "value": 80.0}]
    services.tiles_decorate(tiles, scope_kind="owner", scope_key=str(csm.pk), day=DAY)
    assert tiles[0]["target"]["text"] == "≥ 97.0%" and tiles[0]["target"]["on_track"]
    # GRR falls back to the all-accounts target, and says so
    assert tiles[1]["target"]["on_track"] is False
    assert tiles[1]["target"]["scope"] == "all accounts"


def test_off_track_list_for_leaders(
    client, manager, csm, admin_user, board, django_assert_max_num_queries
):
    with django_assert_max_num_queries(3):
        data = services.off_track()
    assert data["day"] == DAY
    assert [r["label"] for r in data["off"]] == ["NRR"]
    assert [r["state"] for r in data["rows"]] == ["off track", "no data", "on track"]
    client.force_login(admin_user)
    page = client.get("/targets/off-track/").content.decode()
    assert "1 off track" in page and "95.5%" in page
    # the targets page's breadcrumb names the page it leads to (the nav's "Targets")
    targets = client.get("/targets/").content.decode()
    crumb = '<p class="breadcrumb"><a href="/targets/off-track/">KPIs against targets</a></p>'
    assert crumb in targets and "<h1>KPIs against targets</h1>" in page


def test_off_track_shows_a_manager_only_the_targets_of_their_team(
    client, manager, csm, admin_user, board, django_assert_max_num_queries
):
    """The board's targets are the whole book's: an admin's. The manager's team (Cleo
    reports to them) has its own NRR target, off track at 80%; that is all they see."""
    _snapshot(DAY, "80", "93", kind="team", key=str(manager.pk))
    KpiTarget.objects.create(
        kpi="nrr",
        scope_kind="team",
        scope_key=str(manager.pk),
        direction="at_least",
        value=90,
        cadence="weekly",
    )
    assert manager.role == "Manager"  # read once per request, as the view has it already
    # the day, the targets, the manager's team, the snapshots, the team's name
    with django_assert_max_num_queries(5):
        mine = services.off_track(user=manager)
    assert [(r["label"], r["scope"], r["value"]) for r in mine["rows"]] == [
        ("NRR", "the team of Max (manager@example.com)", "80.0%")
    ]
    client.force_login(manager)
    page = client.get("/targets/off-track/").content.decode()
    assert "1 off track" in page and "80.0%" in page
    assert "95.5%" not in page and "all accounts" not in page
    client.force_login(admin_user)
    page = client.get("/targets/off-track/").content.decode()
    assert "2 off track" in page and "80.0%" in page and "95.5%" in page
    # the manager's page says that it left the board's targets out (every target but theirs)
    every = services.off_track(user=admin_user)
    assert every["hidden"] == 0 and "for admins." not in page
    left_out = len(every["rows"]) - 1
    assert left_out >= 1 and mine["hidden"] == left_out
    client.force_login(manager)
    page = client.get("/targets/off-track/").content.decode()
    words = f"Only the targets of scopes you can see are shown: {left_out} other target"
    assert words in " ".join(page.split())
    # with their team's target gone, the list says so rather than showing empty headers
    KpiTarget.objects.filter(scope_kind="team").delete()
    page = client.get("/targets/off-track/").content.decode()
    assert "No target of your scopes yet" in page and '<th scope="col">Status</th>' not in page
    # a CSM has no off-track page at all
    client.force_login(csm)
    assert client.get("/targets/off-track/").status_code == 403


def test_off_track_prints_a_rate_as_the_dashboard_does(client, admin_user, no_default_targets):
    """GRR (1,000,000 − 140) / 1,000,000 × 100 = 99.986%: the dashboard's tile prints
    "99.99%"; the off-track list printed it "100.0%", as if nothing had churned. Both now
    print the decimals that keep it off 100 (and 95.5 stays "95.5")."""
    _snapshot(DAY, "95.5", "99.986")
    KpiTarget.objects.create(kpi="grr", direction="at_least", value=90, cadence="weekly")
    KpiTarget.objects.create(kpi="nrr", direction="at_least", value=100, cadence="weekly")
    rows = {r["label"]: r["value"] for r in services.off_track()["rows"]}
    assert rows == {"GRR": "99.99%", "NRR": "95.5%"}
    client.force_login(admin_user)  # the whole book's targets are the admins' to see
    page = client.get("/targets/off-track/").content.decode()
    # the NOW cell (the NRR target "≥ 100.0 %" is another cell)
    assert "<td>99.99%</td>" in page and "<td>100.0%</td>" not in page


def test_scheduled_report_sends_the_dashboard_view_as_csv_once(
    client, admin_user, board, celery_eager, django_capture_on_commit_callbacks
):
    from accounts.models import Role
    from tests.conftest import _user

    other = _user("admin2@example.com", Role.ADMIN)
    client.force_login(admin_user)  # the whole book is for admins
    response = client.post(
        "/reports/scheduled/",
        {
            "name": "Book weekly",
            "scope_kind": "all",
            "scope_key": "",
            "cadence": "weekly",
            "recipients": [admin_user.pk, other.pk],
        },
    )
    assert response.status_code == 302
    report = ScheduledReport.objects.get()
    # made on Friday 20 Nov, in week 47: its first period (a report made later starts with
    # a later week; the weeks before, whose figures the board has, are not sent)
    ScheduledReport.objects.filter(pk=report.pk).update(
        created_at=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    )
    # a bad scope: a field error
    bad = client.post(
        "/reports/scheduled/",
        {
            "name": "X",
            "scope_kind": "segment",
            "scope_key": "Nowhere",
            "cadence": "weekly",
            "recipients": [admin_user.pk],
        },
    )
    assert bad.status_code == 400
    assert bad.context["form"].errors == {
        "scope_key": ["no account has segment 'Nowhere': no account has a segment yet"]
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert services.scheduled_reports_send(as_of=dt.date(2026, 11, 21)) == 0  # Saturday
        assert services.scheduled_reports_send(as_of=DAY) == 2  # Sunday: week 47 ended
        services.scheduled_reports_send(as_of=DAY)  # again: nothing new
    assert sorted(m.to[0] for m in mail.outbox) == [other.email, admin_user.email]
    name, content, mimetype = mail.outbox[0].attachments[0]
    # what and which days, not the report's id
    assert (name, mimetype) == ("report-book-weekly-2026-w47-2026-11-22.csv", "text/csv")
    assert content.startswith("\ufeff")  # the BOM the downloads have: Excel reads UTF-8
    rows = {r[0]: r for r in csv.reader(io.StringIO(content.removeprefix("\ufeff")))}
    assert rows["KPI"] == [
        "KPI", "Value", "Unit", "Currency", "Target direction", "Target", "Status",
        "Period first day", "Period last day",
    ]  # fmt: skip
    # the target a number in the value's unit (100 %, as NRR's 95.5 %), its direction in
    # words beside it: a spreadsheet compares them (it was the text "≥ 100.0%")
    assert rows["NRR"][1:7] == ["95.5", "%", "", "at least", "100", "off track"]
    assert rows["GRR"][1:7] == ["92", "%", "", "at least", "90", "on track"]
    assert rows["Logo churn"][1:7] == ["1.5", "%", "", "", "", ""]
    assert rows["MRR"][2:4] == ["", "USD"]  # money: a plain number, the currency beside it
    # the trailing month's first and last day (the snapshot's day), not the exclusive end
    assert rows["NRR"][7:] == ["2026-10-23", "2026-11-22"]


def test_csv_cells_are_formula_safe(no_default_targets):
    rows = [["=HYPERLINK(1)", "+1", "ok"]]
    assert services._csv_text(rows).startswith("\ufeff'=HYPERLINK(1)")
    # a negative figure (an NPS of -12.5) stays a number, not a text with an apostrophe
    assert services._csv_text([["NPS", Decimal("-12.5")]]) == "\ufeffNPS,-12.5\r\n"
