"""The portfolio dashboard: tiles from the KPI snapshots with the previous period, the band
distribution, drill-down to the accounts, CSV, scopes, and a flat query count."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import utc
from metrics.services import kpi_snapshots_record
from metrics.standings import account_standings_refresh
from tests.explained import explanation
from tests.factories import AccountFactory, ContractFactory

from .conftest import utc_today

pytestmark = pytest.mark.django_db


@pytest.fixture
def kpi_book(csm):
    """Old Co pays $1,000 a month for years; New Co started paying $500 ten days ago;
    Gone Co paid $300 until 20 days ago. The snapshot of yesterday covers the trailing month."""
    today = utc_today()
    old = AccountFactory(owner=csm, name="Old Co")
    ContractFactory(account=old, start_date=dt.date(2020, 1, 1), mrr=Decimal("1000"))
    new = AccountFactory(owner=csm, name="New Co")
    ContractFactory(account=new, start_date=today - dt.timedelta(days=10), mrr=Decimal("500"))
    gone = AccountFactory(owner=csm, name="Gone Co")
    ContractFactory(
        account=gone,
        start_date=dt.date(2020, 1, 1),
        end_date=today - dt.timedelta(days=20),
        mrr=Decimal("300"),
    )
    day = today - dt.timedelta(days=1)
    kpi_snapshots_record(as_of=day)
    account_standings_refresh()
    return {"old": old, "new": new, "gone": gone, "day": day}


def tile(text: str, label: str) -> str:
    start = text.index(f'<span class="tile-label">{label}</span>')
    return text[start : start + 900]


def test_tiles_show_the_snapshot_figures(client, admin_user, kpi_book):
    client.force_login(admin_user)
    r = client.get(reverse("workspace:dashboard"))
    assert r.status_code == 200
    text = r.content.decode()
    # MRR at the end: 1,000 + 500 = $1,500; expansion none
    assert "$1.5k" in tile(text, "MRR")
    # logo churn: 1 of the 2 customers at the start (Old, Gone) = 50.0%
    assert "50.0%" in tile(text, "Logo churn")
    assert "no earlier period" in tile(text, "MRR")
    assert 'href="/docs/metrics/#' in tile(text, "NRR")  # the "how is this computed?" hint


def test_previous_period_comparison(client, admin_user, kpi_book):
    from metrics.services import kpi_snapshot_period

    start, _ = kpi_snapshot_period(kpi_book["day"])
    kpi_snapshots_record(as_of=start - dt.timedelta(days=1))
    client.force_login(admin_user)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    # a month before: Old 1,000 + Gone 300 = 1,300 -> now 1,500: +$200
    assert "+$200 vs previous" in tile(text, "MRR")


def test_drilldown_lists_the_accounts_behind_a_movement(client, admin_user, kpi_book):
    client.force_login(admin_user)
    r = client.get(reverse("workspace:drilldown"), {"metric": "new"})
    assert r.status_code == 200
    assert b"New Co" in r.content and b"Gone Co" not in r.content
    churn = client.get(reverse("workspace:drilldown"), {"metric": "churn", "format": "csv"})
    assert churn["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(churn.streaming_content).decode("utf-8-sig"))))
    assert lines[0] == [
        "Account ID", "External ID", "Account", "Segment", "Owner", "Movement", "MRR change",
        "Currency", "Period first day", "Period last day",
    ]  # fmt: skip
    assert [row[2] for row in lines[1:]] == ["Gone Co"]
    assert lines[1][5:8] == ["churn", "-300.00", "USD"]  # MRR lost: negative, a number
    # the page says the period as its CSV does: first and last day, both included
    first, last = lines[1][8:10]
    page = html.unescape(r.content.decode())
    assert f"Whole book, {utc.period_text(first, last)}." in page
    assert "exclusive" not in page
    odd = client.get(reverse("workspace:drilldown"), {"metric": "magic", "day": "nope"})
    assert odd.status_code == 200 and "Unknown number “magic”" in odd.content.decode()


def test_csv_export_of_the_tiles(client, admin_user, kpi_book):
    client.force_login(admin_user)
    r = client.get(reverse("workspace:dashboard"), {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:5] == ["Metric", "Value", "Previous period", "Unit", "Currency"]
    day = kpi_book["day"]
    assert r["Content-Disposition"] == f'attachment; filename="kpis-whole-book-{day}.csv"'


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_tiles_csv_holds_the_figures_the_tiles_show(client, admin_user, kpi_book):
    """What a finance person checks first: the file and the screen agree."""
    from metrics.services import kpi_snapshot_period

    client.force_login(admin_user)
    page = client.get(reverse("workspace:dashboard")).content.decode()
    rows = {r[0]: r for r in _csv(client.get(reverse("workspace:dashboard"), {"format": "csv"}))}
    start, end = kpi_snapshot_period(kpi_book["day"])
    # MRR: Old Co 1,000 + New Co 500 = 1,500: the tile's "$1.5k", to the cent in the file,
    # the currency in its own column and the period as the days it covers (the last one is
    # the snapshot's day, not the exclusive end the engine counts to)
    assert "$1.5k" in tile(page, "MRR")
    assert rows["MRR"] == ["MRR", "1500.00", "", "", "USD", str(start), str(kpi_book["day"]), ""]
    assert end == kpi_book["day"] + dt.timedelta(days=1)
    # logo churn: Gone Co of the 2 customers at the start (Old, Gone) = 1 / 2 = 50.0%
    assert "50.0%" in tile(page, "Logo churn")
    assert Decimal(rows["Logo churn"][1]) == Decimal("50") and rows["Logo churn"][3:5] == ["%", ""]
    # NRR: Old Co kept its 1,000 of the 1,300 at the start (Old 1,000 + Gone 300):
    # 100 × 1000 / 1300 = 76.923076…%, to four places (it was the division's 28 digits)
    assert rows["NRR"][1] == "76.9231"


def test_the_movements_csv_sums_to_the_pages_totals(client, admin_user, kpi_book):
    """The drill-down of every movement: the page's totals per movement, and the file's
    signed changes adding up to them and to End MRR − Start MRR."""
    client.force_login(admin_user)
    page = client.get(reverse("workspace:drilldown"), {"metric": "movements"}).content.decode()
    # New Co +$500.00 (new), Gone Co −$300.00 (churn); nothing else moved
    assert "<dd>+$500.00</dd>" in page and "<dd>−$300.00</dd>" in page
    r = client.get(reverse("workspace:drilldown"), {"metric": "movements", "format": "csv"})
    rows = _csv(r)[1:]
    by_kind: dict[str, Decimal] = {}
    for row in rows:
        by_kind[row[5]] = by_kind.get(row[5], Decimal(0)) + Decimal(row[6])
    assert by_kind == {"new": Decimal("500.00"), "churn": Decimal("-300.00")}
    # net: 500 − 300 = 200 = End MRR 1,500 − Start MRR 1,300 (Old 1,000 + Gone 300)
    assert sum(by_kind.values()) == Decimal("1500") - Decimal("1300")
    from metrics.services import kpi_snapshot_period

    start, _ = kpi_snapshot_period(kpi_book["day"])
    assert r["Content-Disposition"] == (
        f'attachment; filename="mrr-movements-whole-book-{start}-to-{kpi_book["day"]}.csv"'
    )
    assert {(row[8], row[9]) for row in rows} == {(str(start), str(kpi_book["day"]))}


def test_band_distribution_counts_and_arr(client, admin_user, kpi_book):
    client.force_login(admin_user)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    # no health snapshots: three accounts without a score, ARR 12 * 1,500 = $18k
    assert "3 current customers, $18k ARR" in text


def test_csm_sees_their_own_book_and_no_segment(client, csm, kpi_book):
    client.force_login(csm)
    r = client.get(reverse("workspace:dashboard"), {"segment": "SMB", "owner": "424242"})
    assert r.status_code == 200
    text = r.content.decode()
    assert "Unknown owner “424242” ignored." in text
    assert "Unknown segment “SMB” ignored." in text  # segments are for admins
    assert "$1.5k" in tile(text, "MRR")  # their owner snapshot: all three are theirs


def _count(client) -> int:
    from django.core.cache import cache

    cache.clear()  # the worst case: segment choices not cached yet
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("workspace:dashboard")).status_code == 200
    return len(ctx.captured_queries)


def test_query_count_is_pinned_and_flat(
    client, admin_user, csm, kpi_book, django_assert_max_num_queries
):
    client.force_login(admin_user)
    few = _count(client)
    for i in range(30):
        a = AccountFactory(owner=csm, segment="Enterprise")
        ContractFactory(account=a, start_date=dt.date(2021, 1, 1), mrr=Decimal(100 + i))
    kpi_snapshots_record(as_of=kpi_book["day"])
    account_standings_refresh()
    assert _count(client) == few
    # session, user, groups, owners, the book's version (accounts.book, once per request),
    # segments, snapshot days, snapshot pair, distribution + the north star (voice) and the
    # tiles' KPI targets (reports): 11
    with django_assert_max_num_queries(11):
        client.get(reverse("workspace:dashboard"), {"segment": "Enterprise"})


def test_survey_tiles_open_the_results_of_the_dashboards_segment(client, admin_user, csm, kpi_book):
    AccountFactory(segment="Enterprise")
    client.force_login(admin_user)
    r = client.get(reverse("workspace:dashboard"), {"segment": "Enterprise"})
    drills = {t["key"]: t["drill"] for t in r.context["tiles"]}
    assert drills["nps"] == "/surveys/results/?segment=Enterprise"
    r = client.get(reverse("workspace:dashboard"))
    assert {t["key"]: t["drill"] for t in r.context["tiles"]}["nps"] == "/surveys/results/"
    # one CSM's book: the results page cannot narrow to it, so the tile opens nothing
    r = client.get(reverse("workspace:dashboard"), {"owner": csm.pk})
    assert r.context["scope"].owner == csm
    assert {t["key"]: t["drill"] for t in r.context["tiles"]}["nps"] is None


def test_cohort_heatmap_fragment(client, admin_user, csm, kpi_book):
    client.force_login(admin_user)
    page = client.get(reverse("workspace:dashboard")).content.decode()
    assert 'hx-get="/dashboard/cohorts/?' in page and 'hx-trigger="load"' in page
    r = client.get(reverse("workspace:cohorts"), headers={"HX-Request": "true"})
    assert r.status_code == 200 and b"<html" not in r.content
    text = r.content.decode()
    # only New Co first paid in the last 12 months: one cohort of one account
    today = utc_today()
    # its month in words, as the pages name months ("Nov 2026"), not its key "2026-11"
    cohort = (today - dt.timedelta(days=10)).strftime("%b %Y")
    assert f'<th scope="row">{cohort}</th><td class="num">1</td>' in text
    client.force_login(csm)
    assert client.get(reverse("workspace:cohorts"), {"segment": "SMB"}).status_code == 200


def test_cohorts_opened_directly_is_a_whole_page_with_the_navigation(client, admin_user, kpi_book):
    """The loading link (or a bookmark) opens the heatmap as a page of its own: the site's
    layout and navigation, a way back to the dashboard with the same scope, the same rows."""
    client.force_login(admin_user)
    r = client.get(reverse("workspace:cohorts"), {"owner": ""})
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    text = r.content.decode()
    assert "<html" in text and '<nav class="breadcrumb"' in text
    assert f'<a href="{reverse("workspace:dashboard")}?owner=">Dashboard</a>' in text
    assert "<h1>Cohort retention, last 12 months</h1>" in text
    fragment = client.get(reverse("workspace:cohorts"), headers={"HX-Request": "true"})
    cohort = (utc_today() - dt.timedelta(days=10)).strftime("%b %Y")
    row = f'<th scope="row">{cohort}</th><td class="num">1</td>'
    assert row in text and row in fragment.content.decode()


@pytest.fixture
def churned_book(csm):
    """Two current customers and a churned one, scored yesterday, with standings:
    Green Co $1,000 MRR green 85, renews in 200 days; Red Co $500 MRR red 40, renews in 30
    days; Gone Co, lifecycle "churned", $2,000 MRR to its last day in 20 days, red 30."""
    from accounts.models import AccountLifecycle

    from .conftest import customer

    book = {
        "green": customer(csm, name="Green Co", mrr="1000", ends_in=200, scores=[(85, "green")]),
        "red": customer(csm, name="Red Co", mrr="500", ends_in=30, scores=[(40, "red")]),
        "gone": customer(
            csm,
            name="Gone Co",
            mrr="2000",
            ends_in=20,
            scores=[(30, "red")],
            lifecycle_stage=AccountLifecycle.CHURNED,
        ),
    }
    kpi_snapshots_record(as_of=utc_today() - dt.timedelta(days=1))  # the page needs a day
    account_standings_refresh()
    return book


def test_health_distribution_counts_current_customers_only(client, admin_user, churned_book):
    client.force_login(admin_user)
    r = client.get(reverse("workspace:dashboard"))
    d = r.context["distribution"]
    # Green Co and Red Co: 2 accounts, ARR 12 * (1,000 + 500) = 18,000 (Gone Co's 12 * 2,000
    # = 24,000 and its red band left out)
    assert (d["accounts"], d["arr"]) == (2, Decimal("18000.00"))
    bands = {b["band"]: (b["accounts"], b["arr"], b["pct_accounts"]) for b in d["bands"]}
    assert bands["red"] == (1, Decimal("6000.00"), 50.0)  # Red Co: 12 * 500; 1 of 2
    assert bands["green"] == (1, Decimal("12000.00"), 50.0)  # Green Co: 12 * 1,000
    # renewals due in 90 days: Red Co (30 days), not Gone Co (20 days), $6k ARR
    assert (d["renewals_due"], d["renewals_arr"]) == (1, Decimal("6000.00"))
    text = r.content.decode()
    # scored yesterday: the distribution is of yesterday's data, and says so
    yesterday = utc.day_text(utc_today() - dt.timedelta(days=1))
    assert f"2 current customers, $18k ARR, as of {yesterday} (churned accounts left out)." in text
    assert "current customers" in tile(text, "Renewals due, 90 days")


@pytest.mark.parametrize("who", ["admin", "csm"])
def test_a_bands_queue_lists_the_accounts_it_counts(client, admin_user, csm, churned_book, who):
    user = admin_user if who == "admin" else csm
    client.force_login(user)
    bands = client.get(reverse("workspace:dashboard")).context["distribution"]["bands"]
    red = next(b for b in bands if b["band"] == "red")
    r = client.get(red["url"])
    assert r.status_code == 200
    listed = [s.account.name for s in r.context["rows"]]
    assert listed == ["Red Co"] and len(listed) == red["accounts"]
    assert r.context["filters"].notices == []  # a CSM's link asks for no team view
    renewals = client.get(client.get(reverse("workspace:dashboard")).context["renewals_url"])
    assert [s.account.name for s in renewals.context["rows"]] == ["Red Co"]


@pytest.mark.parametrize(
    ("value", "previous", "unit", "earlier", "text"),
    [
        (50.0, None, "pct", False, "no earlier period"),
        (50.0, None, "pct", True, "no value the month before"),  # e.g. no NPS answers then
        (None, 40.0, "pct", True, "no value to compare"),
        (None, None, "days", True, "no value to compare"),  # e.g. TTFV with nothing to count
        # 40.02 − 40.04 = −0.02: one decimal would read "−0.0", so two ("−0.02")
        (40.02, 40.04, "pct", True, "−0.02 pp vs previous"),
        # GRR 99.99 against 100.00: down 0.01 pp, never "+0.0 pp"
        (99.99, 100.0, "pct", True, "−0.01 pp vs previous"),
        # 95.004 − 95.0 = +0.004: "0.0" at one and two decimals, "0.004" at three
        (95.004, 95.0, "pct", True, "+0.004 pp vs previous"),
        (41.5, 40.0, "pct", True, "+1.5 pp vs previous"),
        (40.0, 40.0, "pct", True, "no change vs previous"),  # only when exactly equal
        (38.5, 40.0, "number", True, "−1.5 vs previous"),
        (20.0, 20.03, "number", True, "−0.03 vs previous"),  # 20.0 − 20.03 = −0.03
        (1200.0, 1000.0, "money", True, "+$200 vs previous"),
        (1000.25, 1000.0, "money", True, "+$0.25 vs previous"),  # "$0" would hide it
    ],
)
def test_a_tiles_change_against_the_month_before_in_words(value, previous, unit, earlier, text):
    from workspace.dashboard import _delta

    assert _delta(value, previous, unit, True, earlier=earlier)["text"] == text


def test_a_tiles_change_is_toned_by_its_sign_and_idle_only_when_equal():
    from workspace.dashboard import _delta

    # GRR down 0.01 pp is worse (higher is better), not "idle" because it rounds to 0.0
    assert _delta(99.99, 100.0, "pct", True, earlier=True)["tone"] == "bad"
    assert _delta(100.0, 99.99, "pct", True, earlier=True)["tone"] == "good"
    assert _delta(99.99, 100.0, "pct", False, earlier=True)["tone"] == "good"
    assert _delta(100.0, 100.0, "pct", True, earlier=True)["tone"] == "idle"


def test_the_period_prints_its_days_in_words(client, csm):
    """The line under the filters reads "25 Oct to 24 Nov 2026": its first and last day,
    both included, as every page prints days (not the report's ISO days, nor the engine's
    end, the day after, with "(end exclusive)")."""
    from accounts import utc
    from metrics.services import kpi_snapshot_period, kpi_snapshots_record

    from .conftest import customer

    customer(csm, name="Any", mrr="100", ends_in=30, scores=[(70, "yellow")])
    day = utc.yesterday()
    kpi_snapshots_record(as_of=day)
    start, end = kpi_snapshot_period(day)
    client.force_login(csm)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    period = utc.period_text(start, end - dt.timedelta(days=1))
    assert f"{period}; no snapshot of the month before to compare with." in text
    assert "exclusive" not in text


def test_renewals_due_count_from_the_data_day_and_name_it(client, admin_user, csm):
    """A book last scored two days ago (D = today − 2): "renewals due, 90 days" counts the
    contracts ending within 90 days of D, names D once on the tile and once under the
    health distribution, and opens a renewals page listing the same accounts."""
    from .conftest import customer

    d = utc_today() - dt.timedelta(days=2)
    for name, mrr, ends_in in (
        ("Soon Co", "100", 1),  # ends D+1 = yesterday: due (from today it had ended)
        ("Edge Co", "200", 90),  # ends D+90: due (88 days from today)
        ("Late Co", "400", 91),  # ends D+91: not due (89 days from today)
    ):
        customer(csm, name=name, mrr=mrr, ends_in=ends_in, scores=[(60, "yellow")], day=d)
    kpi_snapshots_record(as_of=d)  # the page needs a KPI day
    account_standings_refresh()
    client.force_login(admin_user)
    r = client.get(reverse("workspace:dashboard"))
    dist = r.context["distribution"]
    # Soon Co and Edge Co: 2 accounts, ARR 12 * (100 + 200) = 3,600
    assert (dist["renewals_due"], dist["renewals_arr"]) == (2, Decimal("3600.00"))
    text = r.content.decode()
    as_of = f"as of {utc.day_text(d)}"
    assert f"$3.6k ARR · {as_of}" in tile(text, "Renewals due, 90 days")
    # 3 accounts, 12 * (100 + 200 + 400) = $8.4k ARR, all scored on D
    assert f"3 current customers, $8.4k ARR, {as_of} (churned accounts left out)." in text
    assert "today" not in tile(text, "Renewals due, 90 days")
    renewals = client.get(r.context["renewals_url"])
    listed = [s.account.name for s in renewals.context["rows"]]
    assert listed == ["Soon Co", "Edge Co"] and len(listed) == dist["renewals_due"]


def test_the_distribution_names_the_span_of_its_data_days(client, admin_user, csm):
    """One account rescored today beside a book scored two days ago: each counts from its
    own day, and the page names both: the older days up to yesterday, then the rescored
    ("as of 22–23 Nov 2026; some accounts rescored on 24 Nov 2026 since")."""
    from .conftest import customer

    today = utc_today()
    d = today - dt.timedelta(days=2)
    customer(csm, name="Night Co", mrr="100", ends_in=10, scores=[(60, "yellow")], day=d)
    customer(csm, name="Fresh Co", mrr="100", ends_in=10, scores=[(60, "yellow")], day=today)
    kpi_snapshots_record(as_of=d)
    account_standings_refresh()
    client.force_login(admin_user)
    r = client.get(reverse("workspace:dashboard"))
    assert r.context["distribution"]["renewals_due"] == 2  # 10 days from each one's day
    span = (
        f"as of {utc.span_text(d, today - dt.timedelta(days=1))}; "
        f"some accounts rescored on {utc.day_text(today)} since"
    )
    assert f"· {span}" in tile(r.content.decode(), "Renewals due, 90 days")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (99.986, "99.99%"),  # GRR with $252 of churn: not "100.0%"
        (100.0, "100.0%"),
        (0.004, "0.004%"),
        (0.0, "0.0%"),
        (87.25, "87.2%"),
        (99.94, "99.9%"),
        (99.999999, ">99.9999%"),
    ],
)
def test_a_rate_that_is_not_exactly_100_or_0_never_reads_as_it(value, text):
    from workspace.dashboard import fmt

    assert fmt(value, "pct") == text


def test_a_movement_of_zero_has_no_sign_and_the_target_form_says_kpi():
    from django.template import Context, Template

    from reports.forms import TargetForm

    row = Template(
        '{% for w in waterfall %}{% if w.kind != "total" and w.amount %}'
        "{% if w.amount < 0 %}−{% else %}+{% endif %}{% endif %}{{ w.exact }};{% endfor %}"
    )
    steps = [
        {"kind": "contraction", "amount": 0.0, "exact": "$0.00"},
        {"kind": "churn", "amount": -252.0, "exact": "$252.00"},
        {"kind": "new", "amount": 900.0, "exact": "$900.00"},
    ]
    assert row.render(Context({"waterfall": steps})) == "$0.00;−$252.00;+$900.00;"
    from pathlib import Path

    from django.conf import settings

    page = Path(settings.BASE_DIR) / "templates/workspace/dashboard.html"
    template = page.read_text()  # the row above, as the page has it
    assert '{% if w.kind != "total" and w.amount %}' in template
    assert "{{ w.exact }}</td>" in template
    assert TargetForm().fields["kpi"].label == "KPI"


def _cohort_rows(text: str) -> list[tuple[str, int]]:
    import re

    return [
        (c, int(n))
        for c, n in re.findall(
            r'<th scope="row">([A-Z][a-z]{2} \d{4})</th><td class="num">(\d+)</td>', text
        )
    ]


def _cohort_span(text: str) -> str:
    import re

    found = re.findall(r'<p class="muted small" id="cohorts-span">([^<]*)</p>', text)
    assert len(found) == 1, found
    return found[0].replace("&#x27;", "'")


def test_cohorts_end_with_the_day_the_dashboards_period_ends(client, admin_user, kpi_book):
    """The heatmap counts accounts that first paid up to the end of the dashboard's period
    day Y (yesterday, the latest KPI snapshot's), never into today's unfinished day T: an
    account that starts paying today is left out. ``?day=`` moves it with the period."""
    today = utc_today()
    y = kpi_book["day"]  # T − 1
    # the period's end (exclusive) is Y + 1 = T: 12 months back from the first of T's month
    start = dt.date(today.year - 1, today.month, 1)
    ContractFactory(
        account=AccountFactory(name="Today Co"), start_date=today, mrr=Decimal("250")
    )  # first pays on T: after the period
    new_co_month = (today - dt.timedelta(days=10)).strftime("%b %Y")  # New Co: from T − 10
    client.force_login(admin_user)

    page = client.get(reverse("workspace:dashboard")).content.decode()
    assert f"day={y.isoformat()}" in page  # the block asks for the period's day
    r = client.get(reverse("workspace:cohorts"), headers={"HX-Request": "true"})
    text = r.content.decode()
    assert _cohort_rows(text) == [(new_co_month, 1)]  # New Co alone; not Today Co
    expected = (
        f"Accounts that first paid from {utc.day_text(start)} to the end of "
        f"{utc.day_text(y)}, the day the dashboard's period ends."
    )
    assert _cohort_span(text) == expected
    assert utc.day_text(today) not in text  # nothing ends after T's start
    # the page of its own says the same, and no "(end exclusive)" day after the data
    r = client.get(reverse("workspace:cohorts"), {"day": y.isoformat()})
    text = r.content.decode()
    assert _cohort_span(text) == expected and "end exclusive" not in text

    # an earlier period: Y − 40, before New Co first paid (T − 10 = Y − 9)
    earlier = y - dt.timedelta(days=40)
    kpi_snapshots_record(as_of=earlier)
    r = client.get(reverse("workspace:cohorts"), {"day": earlier.isoformat()})
    text = r.content.decode()
    assert _cohort_rows(text) == []
    assert f"to the end of {utc.day_text(earlier)}," in _cohort_span(text)
    # a day without a snapshot: the latest (Y), said as the dashboard says it
    r = client.get(reverse("workspace:cohorts"), {"day": "2020-01-01"})
    text = r.content.decode()
    assert "No KPI snapshot for “2020-01-01”: showing the latest." in text
    assert _cohort_span(text) == expected


def test_the_mrr_movements_table_prints_exact_amounts_that_add_up(client, admin_user, csm):
    """The tiles abbreviate ($1.2M); the movements table prints every step to the cent so
    the sum can be checked by eye. Big Co pays $1,234,567.89 throughout; New Co started at
    $300.50 ten days ago: start $1,234,567.89 + new $300.50 = end $1,234,868.39 (tile
    $1.2M)."""
    today = utc_today()
    big = AccountFactory(owner=csm, name="Big Co")
    ContractFactory(account=big, start_date=dt.date(2020, 1, 1), mrr=Decimal("1234567.89"))
    new = AccountFactory(owner=csm, name="New Co")
    ContractFactory(account=new, start_date=today - dt.timedelta(days=10), mrr=Decimal("300.50"))
    kpi_snapshots_record(as_of=today - dt.timedelta(days=1))
    account_standings_refresh()
    client.force_login(admin_user)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    table = text[text.index('class="table small waterfall-table"') :].split("</table>")[0]
    cells = re.findall(r'<td class="num">([^<]*)</td>', table)
    assert cells == [
        "$1,234,567.89",  # start
        "+$300.50",  # new
        "$0.00",  # reactivation
        "$0.00",  # expansion
        "$0.00",  # contraction
        "$0.00",  # churn
        "$1,234,868.39",  # end
    ]
    assert "$1.2M" in tile(text, "MRR")  # the tile stays short


def _tile_title(text: str, label: str) -> str:
    """The title (the working) of a tile's value, unescaped."""
    import html

    li = text[text.index(f'<span class="tile-label">{label}</span>') :].split("</li>")[0]
    found = re.search(r'class="tile-value"[^>]*title="([^"]*)"', li)
    title = html.unescape(found.group(1)) if found else ""
    if title:  # a tap on the tile's "?" (or Enter) opens the same working, then the docs link
        assert explanation(li, "?") == f"{title} How is {label} computed?"
    return title


def test_each_tile_shows_its_working_from_the_snapshots_inputs(client, admin_user, kpi_book):
    """kpi_book: the first day Old pays $1,000 and Gone $300 (start $1,300, 2 customers);
    the end day Old $1,000 and New $500 ($1,500); Gone churned ($300), no expansion or
    contraction. Pointing at a tile's value gives the formula with these figures."""
    from metrics.services import kpi_snapshot_period

    start, end = kpi_snapshot_period(kpi_book["day"])
    first, after = utc.day_text(start), utc.day_text(end)
    client.force_login(admin_user)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    # NRR = (1,300 + 0 − 0 − 300) / 1,300 × 100 = 76.923… → 76.9%
    assert _tile_title(text, "NRR") == (
        "($1,300.00 start + $0.00 expansion − $0.00 contraction − $300.00 churn)"
        " / $1,300.00 start × 100 = 76.9%"
    )
    # GRR = (1,300 − 0 − 300) / 1,300 × 100 = 76.9%; revenue churn (0 + 300) / 1,300 = 23.1%
    assert _tile_title(text, "GRR") == (
        "($1,300.00 start − $0.00 contraction − $300.00 churn) / $1,300.00 start × 100 = 76.9%"
    )
    assert _tile_title(text, "Revenue churn") == (
        "($0.00 contraction + $300.00 churn) / $1,300.00 start × 100 = 23.1%"
    )
    # logo churn: Gone is 1 of the 2 customers of the first day: 1 / 2 × 100 = 50.0%
    assert _tile_title(text, "Logo churn") == (
        f"1 of the 2 customers on {first} no longer paying on {after}: 1 / 2 × 100 = 50.0%"
    )
    # MRR: 1,000 + 500 on the end day, 2 customers
    assert _tile_title(text, "MRR") == (
        f"$1,500.00: the MRR of the contracts covering {after}, the day after the period,"
        " over 2 customers"
    )
    # seats: Old's 10 + New's 10 on the last day, nobody active: 0 / 20 × 100 = 0.0%
    assert _tile_title(text, "Seat utilisation") == (
        "0 users active in the 30 days / 20 licensed seats (2 accounts with seats) × 100 = 0.0%"
    )


def test_a_tile_without_a_value_says_why_beside_its_dash(client, admin_user, kpi_book):
    """No survey answers in the period: NPS, CSAT and CES are a dash with the reason shown
    under it (never 0, which would read as a score)."""
    client.force_login(admin_user)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    for label, reason in (
        ("NPS", "no NPS answers"),
        ("CSAT", "no CSAT answers"),
        ("CES", "no CES answers"),
    ):
        li = text[text.index(f'<span class="tile-label">{label}</span>') :].split("</li>")[0]
        assert re.search(r'class="tile-value"[^>]*>—<', li)
        assert f'<span class="muted small">{reason} in the period</span>' in li


def test_the_survey_tiles_working_from_counts():
    """Pure: NPS from 3 promoters, 4 passives, 1 detractor: (3 − 1) / 8 × 100 = 25.0; CSAT
    from 7 of 8 answers of 4 or 5: 87.5%."""
    from workspace.dashboard import fmt, tile_working

    report = {
        "voice_of_customer": {
            "nps": {
                "value": "25",
                "inputs": {"responses": 8, "promoters": 3, "passives": 4, "detractors": 1},
            },
            "csat": {"value": "87.5", "inputs": {"responses": 8, "satisfied_4_or_5": 7}},
            "ces": {"value": None, "inputs": {"responses": 0, "easy_5_or_more": 0}},
        }
    }
    assert tile_working("voice_of_customer", "nps", report, fmt(25.0, "score")) == (
        "(3 promoters − 1 detractor) / 8 answers × 100 = 25.0;"
        " the 4 passives (7 or 8) count only among the answers"
    )
    assert tile_working("voice_of_customer", "csat", report, fmt(87.5, "pct")) == (
        "7 of 8 answers were 4 or 5: 7 / 8 × 100 = 87.5%"
    )
    assert tile_working("voice_of_customer", "ces", report, "—") == "no CES answers in the period"
    # a snapshot written before an input was stored: no working rather than a wrong one
    del report["voice_of_customer"]["nps"]["inputs"]["passives"]
    assert tile_working("voice_of_customer", "nps", report, "25.0") == ""


@pytest.mark.parametrize(
    "value, text",
    [
        ("97.4", "97"),  # whole percent, as the heatmap prints most cells
        ("99.5", "99.5"),  # 199 of 200 logos kept: "100" would say none was lost
        ("99.96", "99.96"),  # one decimal would still read 100.0
        ("0.4", "0.4"),  # 1 of 250 kept: not "0"
        ("100", "100"),
        ("0", "0"),
        ("112.6", "113"),  # MRR retained above 100: no boundary crossed
        (None, "—"),
    ],
)
def test_a_cohort_cell_never_rounds_to_100_or_0_when_it_is_not(value, text):
    from workspace.dashboard import pct_whole

    assert pct_whole(value) == text


def test_the_health_distribution_shares_say_of_what_and_never_0_for_nothing(
    client, admin_user, churned_book
):
    """churned_book: Red Co ($6k ARR) and Green Co ($12k) are the 2 current customers: red
    is 1 of 2 = 50.0 % of the accounts and 6,000 / 18,000 = 33.3 % of the ARR, each share
    titled with its parts. With no current customer at all, a share is a dash, not 0.0 %."""
    from metrics.models import AccountStanding
    from workspace.selectors import health_distribution

    client.force_login(admin_user)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    red = text[text.index('<span class="band band-red">Red</span>') :].split("</tr>")[0]
    assert explanation(red, "1 · 50.0%") == "1 of the 2 current customers"
    assert explanation(red, "$6k · 33.3%") == "$6k of the $18k ARR of the current customers"
    empty = health_distribution(AccountStanding.objects.none())
    assert {(b["pct_accounts"], b["pct_accounts_text"]) for b in empty["bands"]} == {(None, "—")}


def test_the_drilldown_prints_each_movement_signed_to_the_cent(client, admin_user, kpi_book):
    """kpi_book: New Co is new at $500, Gone Co churned its $300. As the dashboard's
    movements table: "+$500.00" and "−$300.00" (MRR lost), totals the same, no movement
    "$0.00"; the MRR on the end day stays unsigned ($1,000 + $500 = $1,500.00)."""
    client.force_login(admin_user)
    text = client.get(reverse("workspace:drilldown"), {"metric": "movements"}).content.decode()
    cells = dict(re.findall(r'<a href="/accounts/\d+/">([^<]+)</a>.*?class="num">([^<]*)<', text))
    assert cells == {"New Co": "+$500.00", "Gone Co": "\u2212$300.00"}
    totals = dict(re.findall(r"<dt>(\w+)</dt><dd>([^<]*)</dd>", text))
    assert totals == {
        "new": "+$500.00",
        "reactivation": "$0.00",
        "expansion": "$0.00",
        "contraction": "$0.00",
        "churn": "\u2212$300.00",
    }
    text = client.get(reverse("workspace:drilldown"), {"metric": "mrr_end"}).content.decode()
    cells = dict(re.findall(r'<a href="/accounts/\d+/">([^<]+)</a>.*?class="num">([^<]*)<', text))
    assert cells == {"Old Co": "$1,000.00", "New Co": "$500.00"}
    # the MRR compared is the day after the period's last (metrics.md: the end day)
    after = utc.day_text(utc.yesterday() + dt.timedelta(days=1))
    assert f"The accounts paying on {after}, the day after the period's last," in text


def test_a_period_is_said_from_its_first_to_its_last_day():
    from accounts import utc

    assert utc.period_text(dt.date(2026, 10, 25), dt.date(2026, 11, 24)) == "25 Oct to 24 Nov 2026"
    assert utc.period_text("2025-12-01", "2026-01-31") == "1 Dec 2025 to 31 Jan 2026"
    assert utc.period_text(dt.date(2026, 11, 1), dt.date(2026, 11, 30)) == "1 Nov to 30 Nov 2026"


def test_money_is_written_with_the_installations_currency(settings, client, admin_user):
    """settings.CURRENCY (metrics.md: one currency per installation) gives the sign of every
    amount on the pages and in the texts: € for EUR, the code for one without a sign; the
    charts' ticks read it from <body>."""
    from accounts.money import money_exact
    from metrics.priority import money_short

    settings.CURRENCY = "EUR"
    # 1,812,345.5 to the cent; 84,000 in thousands (10,000 or more: whole k)
    assert money_exact(Decimal("1812345.5")) == "€1,812,345.50"
    assert money_short(84_000) == "€84k"
    settings.CURRENCY = "CHF"
    assert money_exact(Decimal("0.4")) == "CHF 0.40"
    assert money_short(1_500) == "CHF 1.5k"
    settings.CURRENCY = "USD"
    assert money_exact(Decimal("0.4")) == "$0.40"
    client.force_login(admin_user)
    settings.CURRENCY = "GBP"
    page = client.get("/dashboard/").content.decode()
    assert 'data-currency-sign="£"' in page


def test_an_empty_book_draws_no_mrr_chart(client, admin_user):
    """A new installation's first night: a snapshot of a book with no contract. Every step
    of the waterfall is $0, so the chart would be axes around nothing: a sentence instead."""
    kpi_snapshots_record(as_of=utc_today() - dt.timedelta(days=1))
    client.force_login(admin_user)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    assert 'data-chart="waterfall"' not in text
    assert "No MRR in this scope and period yet: nothing to chart." in text
    assert 'class="table small waterfall-table"' in text  # the steps, each $0.00, stay


def test_a_book_with_mrr_draws_the_mrr_chart(client, admin_user, kpi_book):
    client.force_login(admin_user)
    text = client.get(reverse("workspace:dashboard")).content.decode()
    assert 'data-chart="waterfall"' in text
    assert "nothing to chart" not in text
