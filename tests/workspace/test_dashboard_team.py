"""The dashboard for a manager opens on their team (their own and their reports' accounts,
from the team's KPI snapshot); the MRR figure opens the accounts that make it up."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Role
from metrics.services import kpi_snapshots_record
from metrics.standings import account_standings_refresh
from tests.conftest import _user
from tests.factories import AccountFactory, ContractFactory
from tests.workspace.test_dashboard import _count

from .conftest import utc_today
from .test_dashboard import tile

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams(csm, manager):
    """Max (manager) owns Max Co ($200 MRR); Cleo reports to Max and owns Old Co ($1,000)
    and New Co ($500, started 10 days ago); another manager's report owns Far Co ($4,000).
    Max's team: $1,700 at the end of the trailing month, $1,200 at its start."""
    today = utc_today()
    other = _user("other-manager@example.com", Role.MANAGER, first_name="Olga")
    far_csm = _user("far@example.com", Role.CSM, first_name="Fay", manager=other)
    long_ago = dt.date(2020, 1, 1)
    accounts = {}
    for name, owner, start, mrr in (
        ("Max Co", manager, long_ago, "200"),
        ("Old Co", csm, long_ago, "1000"),
        ("New Co", csm, today - dt.timedelta(days=10), "500"),
        ("Far Co", far_csm, long_ago, "4000"),
    ):
        accounts[name] = AccountFactory(owner=owner, name=name)
        ContractFactory(account=accounts[name], start_date=start, mrr=Decimal(mrr))
    day = today - dt.timedelta(days=1)
    kpi_snapshots_record(as_of=day)
    account_standings_refresh()
    return {**accounts, "day": day, "other": other}


def test_a_manager_opens_on_their_team(client, manager, csm, teams):
    client.force_login(manager)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    assert "My team: the state of the book" in text
    assert '<option value="">My team</option>' in text  # first, so selected
    assert "$1.7k" in tile(text, "MRR")  # Max Co + Old Co + New Co, not Far Co
    assert "3 current customers, $20k ARR" in text  # the band distribution: the team too
    # one person of the team is still a choice
    one = client.get(reverse("workspace:dashboard"), {"owner": csm.pk}).content.decode()
    assert f'<option value="{csm.pk}" selected>' in one and "$1.5k" in tile(one, "MRR")
    # the team's drill-downs and cohorts keep to the team
    drill = client.get(reverse("workspace:drilldown"), {"metric": "new"}).content.decode()
    assert "New Co" in drill and "My team" in drill


def test_a_manager_without_reports_and_a_csm_keep_their_own_book(client, csm, teams):
    client.force_login(teams["other"])  # Fay reports to Olga: Olga has a team
    assert "My team" in client.get(reverse("workspace:dashboard")).content.decode()
    lone = _user("lone@example.com", Role.MANAGER, first_name="Lou")
    ContractFactory(account=AccountFactory(owner=lone, name="Lone Co"), mrr=Decimal("10"))
    client.force_login(lone)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    assert "My team" not in text and "Lou: the state of the book" in text
    client.force_login(csm)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    assert "My team" not in text and "Cleo: the state of the book" in text


def test_a_team_without_a_snapshot_yet_says_when_it_comes(client, manager, csm):
    ContractFactory(account=AccountFactory(owner=csm), mrr=Decimal("10"))
    client.force_login(manager)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    assert "No KPI snapshot yet." in text and "your team's first one" in text


def _csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_the_mrr_figure_opens_the_accounts_that_make_it_up(client, admin_user, manager, teams):
    client.force_login(admin_user)
    page = client.get(reverse("workspace:dashboard")).content.decode()
    assert "$5.7k" in tile(page, "MRR")
    assert "metric=mrr_end" in tile(page, "MRR")
    r = client.get(reverse("workspace:drilldown"), {"metric": "mrr_end"})
    text = r.content.decode()
    end = teams["day"] + dt.timedelta(days=1)
    assert f"MRR on {end:%-d %b %Y}" in text and "$5,700.00" in text  # = the tile
    # the table's column too names the day with its year, as every page prints a day
    assert f'<th scope="col" class="num">MRR on {end:%-d %b %Y}</th>' in text
    names = ["Far Co", "Old Co", "New Co", "Max Co"]  # every paying account, largest first
    assert [text.index(n) for n in names] == sorted(text.index(n) for n in names)
    rows = _csv_rows(
        client.get(reverse("workspace:drilldown"), {"metric": "mrr_end", "format": "csv"})
    )
    assert rows[0] == [
        "Account ID", "External ID", "Account", "Segment", "Owner", "MRR on", "MRR", "Currency"
    ]  # fmt: skip
    assert {(r[5], r[7]) for r in rows[1:]} == {(end.isoformat(), "USD")}
    assert [(r[2], r[6]) for r in rows[1:]] == [
        ("Far Co", "4000.00"),
        ("Old Co", "1000.00"),
        ("New Co", "500.00"),
        ("Max Co", "200.00"),
    ]
    # the start MRR: New Co did not pay yet
    start = _csv_rows(
        client.get(reverse("workspace:drilldown"), {"metric": "mrr_start", "format": "csv"})
    )
    assert sorted(r[2] for r in start[1:]) == ["Far Co", "Max Co", "Old Co"]
    # a manager's team
    client.force_login(manager)
    text = client.get(reverse("workspace:drilldown"), {"metric": "mrr_end"}).content.decode()
    assert "$1,700.00" in text and "Far Co" not in text and "3 accounts" in text


def test_the_page_lists_the_largest_accounts_and_the_csv_all(
    client, admin_user, teams, monkeypatch
):
    from workspace import dashboard

    monkeypatch.setattr(dashboard, "DRILL_ROWS", 2)
    client.force_login(admin_user)
    text = client.get(reverse("workspace:drilldown"), {"metric": "mrr_end"}).content.decode()
    assert "4 accounts" in text and "The 2 largest are listed" in text
    assert "Far Co" in text and "Old Co" in text and "Max Co" not in text
    assert "$5,700.00" in text  # the total still covers every account
    rows = _csv_rows(
        client.get(reverse("workspace:drilldown"), {"metric": "mrr_end", "format": "csv"})
    )
    assert len(rows) == 5
    # streamed a chunk of accounts at a time: 2 per chunk here, every account still named
    monkeypatch.setattr(dashboard, "CSV_CHUNK", 2)
    rows = _csv_rows(
        client.get(reverse("workspace:drilldown"), {"metric": "mrr_end", "format": "csv"})
    )
    assert [r[2] for r in rows[1:]] == ["Far Co", "Old Co", "New Co", "Max Co"]


def test_the_team_dashboard_query_count_is_pinned_and_flat(
    client, manager, csm, teams, django_assert_max_num_queries
):
    client.force_login(manager)
    few = _count(client)
    for i in range(30):
        a = AccountFactory(owner=csm)
        ContractFactory(account=a, start_date=dt.date(2021, 1, 1), mrr=Decimal(100 + i))
    kpi_snapshots_record(as_of=teams["day"])
    account_standings_refresh()
    assert _count(client) == few
    # session, user, groups, owners (the team), snapshot days, snapshot pair, distribution
    # + the north star (voice) and the tiles' KPI targets and their snapshots (reports): 10
    with django_assert_max_num_queries(10):
        client.get(reverse("workspace:dashboard"))
