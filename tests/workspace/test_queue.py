"""The queue (home page) and renewals: order, reasons, filters with notices, htmx fragments,
who sees what, and a query count that does not grow with the book."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import utc
from metrics.standings import account_standings_refresh
from tests.explained import explanation, explanations, without_notes

from .conftest import customer, utc_today

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true", "HX-Target": "queue-results"}


def rows(response) -> list[str]:
    """Account names of the queue rows, in order."""
    import re

    return re.findall(
        r'<tr id="account-\d+">\s*<th scope="row" data-label="Account"><a [^>]*>([^<]+)</a>',
        response.content.decode(),
    )


def test_csm_sees_own_accounts_by_priority_with_reasons(client, csm, book):
    client.force_login(csm)
    r = client.get(reverse("home"))
    assert r.status_code == 200
    assert rows(r) == ["Burning Co", "Slipping Ltd", "Calm Inc"]
    assert "red, \u221218 in 7 days, renews in 41 days, $84k ARR" in r.content.decode()
    assert b"Manager Own" not in r.content  # not theirs
    assert b">Team<" not in r.content  # CSMs have no team tab


def test_manager_team_view_includes_reports(client, manager, book):
    client.force_login(manager)
    r = client.get(reverse("home"), {"scope": "team"})
    assert rows(r) == ["Burning Co", "Manager Own", "Slipping Ltd", "Calm Inc"]
    mine = client.get(reverse("home"), {"scope": "mine"})
    assert rows(mine) == ["Manager Own"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"band": "red"}, ["Burning Co"]),
        ({"band": "none"}, []),
        ({"segment": "Enterprise"}, ["Slipping Ltd"]),
        ({"renewal": "60"}, ["Burning Co"]),
        ({"q": "calm"}, ["Calm Inc"]),
        ({"sort": "arr"}, ["Burning Co", "Slipping Ltd", "Calm Inc"]),
        ({"sort": "score"}, ["Burning Co", "Slipping Ltd", "Calm Inc"]),
        ({"sort": "name"}, ["Burning Co", "Calm Inc", "Slipping Ltd"]),
        ({"lifecycle": "mature"}, []),
    ],
)
def test_filters_and_sorts(client, csm, book, params, expected):
    client.force_login(csm)
    r = client.get(reverse("home"), params, headers=HX)
    assert r.status_code == 200
    assert b"<html" not in r.content  # the fragment only
    assert rows(r) == expected


def test_churned_accounts_leave_the_queue_unless_asked_for(client, csm, book):
    from accounts.models import Account

    Account.objects.filter(pk=book["calm"].pk).update(lifecycle_stage="churned")
    client.force_login(csm)
    assert rows(client.get(reverse("home"))) == ["Burning Co", "Slipping Ltd"]
    assert rows(client.get(reverse("home"), {"lifecycle": "churned"})) == ["Calm Inc"]


def test_unknown_filter_values_are_ignored_with_a_notice(client, csm, book):
    client.force_login(csm)
    r = client.get(
        reverse("home"),
        {
            "band": "purple",
            "segment": "Nowhere",
            "owner": "999999",
            "renewal": "7",
            "sort": "x",
            "lifecycle": "zombie",
            "scope": "galaxy",
        },
    )
    assert r.status_code == 200
    text = r.content.decode()
    for value in ("purple", "Nowhere", "999999", "7", "zombie", "galaxy"):
        assert f"“{value}”" in text
    assert rows(r) == ["Burning Co", "Slipping Ltd", "Calm Inc"]  # as if unfiltered


def test_csm_cannot_ask_for_the_team_or_another_owner(client, csm, manager, book):
    client.force_login(csm)
    r = client.get(reverse("home"), {"scope": "team", "owner": str(manager.pk)})
    assert b"Manager Own" not in r.content
    assert "Unknown owner" in r.content.decode()


def test_pagination_keeps_the_filters(client, csm):
    for i in range(25):
        customer(csm, name=f"Red {i:02d}", mrr="100", ends_in=None, scores=[(40, "red")])
    account_standings_refresh()
    client.force_login(csm)
    first = client.get(reverse("home"), {"band": "red"})
    assert len(rows(first)) == 20
    assert "band=red&amp;page=2" in first.content.decode()
    second = client.get(reverse("home"), {"band": "red", "page": "2"}, headers=HX)
    assert len(rows(second)) == 5
    junk = client.get(reverse("home"), {"page": "abc"})
    assert junk.status_code == 200 and len(rows(junk)) == 20


def _count(client, params=None) -> int:
    from django.core.cache import cache

    cache.clear()  # the worst case: segment choices not cached yet
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(reverse("home"), params or {"scope": "team"})
    assert r.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_is_pinned_and_flat(client, admin_user, csm, django_assert_max_num_queries):
    for i in range(5):
        customer(csm, name=f"A{i}", mrr="100", ends_in=30, scores=[(40, "red"), (50, "yellow")])
    account_standings_refresh()
    client.force_login(admin_user)
    few = _count(client)
    for i in range(40):
        customer(csm, name=f"B{i}", mrr="100", ends_in=30, scores=[(40, "red"), (50, "yellow")])
    account_standings_refresh()
    many = _count(client)
    assert few == many
    # session, user, groups, the book's version (accounts.book, once per request), segments,
    # owners, default scope, count, page ids, page rows
    with django_assert_max_num_queries(10):
        client.get(reverse("home"), {"scope": "team", "band": "red", "segment": "SMB"})


def test_renewals_lists_soonest_first_within_the_window(client, csm, book):
    client.force_login(csm)
    r = client.get(reverse("workspace:renewals"))
    assert r.status_code == 200
    assert rows(r) == ["Burning Co"]  # 41 days; 200 days is outside 90
    wide = client.get(reverse("workspace:renewals"), {"renewal": "180"})
    assert rows(wide) == ["Burning Co"]
    all_year = client.get(reverse("workspace:renewals"), {"renewal": "30"})
    assert rows(all_year) == []


def test_anonymous_is_sent_to_login(client):
    r = client.get(reverse("home"))
    assert r.status_code == 302 and "/login/" in r["Location"]


def test_standing_refresh_after_a_cta_change(client, csm, outsider, book, settings):
    from metrics.models import AccountStanding

    settings.ACCOUNT_STANDING_CTA_COUNTS = ["tests.workspace.test_standings.fake_cta_counts"]
    url = reverse("workspace:standing-refresh", args=[book["calm"].pk])
    client.force_login(outsider)
    assert client.post(url).status_code == 404
    client.force_login(csm)
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 204
    # 2 overdue (60) + green 0
    assert AccountStanding.objects.get(account=book["calm"]).priority == 60.0


def test_count_is_capped(client, csm, monkeypatch):
    from workspace import selectors

    monkeypatch.setattr(selectors, "COUNT_CAP", 3)
    for i in range(5):
        customer(csm, name=f"N{i}", mrr="100", ends_in=None, scores=[(40, "red")])
    account_standings_refresh()
    client.force_login(csm)
    r = client.get(reverse("home"), {"page": "2"})
    text = r.content.decode()
    assert "3+ accounts" in text
    # rows past the cap are not reachable by paging (page 2 clamps to the last, capped page)
    assert len(rows(r)) == 3


def _health_cell(response, name: str) -> str:
    """The Health cell of the queue row of ``name``: its band badge and score."""
    import re

    text = response.content.decode()
    row = re.search(rf'<tr id="account-\d+">(?:(?!</tr>).)*>{re.escape(name)}<.*?</tr>', text, re.S)
    assert row, name
    cell = re.search(r'<td data-label="Health"[^>]*>(.*?)</td>', row.group(0), re.S)
    return re.sub(r"\s+", " ", cell.group(1)).strip()


def test_a_score_never_reads_as_another_band_than_its_badge(client, csm):
    """79.6 is yellow (green from 80): "79.6" beside the yellow badge, not "80"; 80.4 is
    green and prints "80"; 49.5 is red and prints "49.5", not "50"."""
    for name, score, band in (
        ("Edge Yellow", 79.6, "yellow"),
        ("Edge Green", 80.4, "green"),
        ("Edge Red", 49.5, "red"),
        ("Plain", 64.4, "yellow"),
    ):
        customer(csm, name=name, mrr="100", ends_in=30, scores=[(score, band)])
    account_standings_refresh()
    client.force_login(csm)
    r = client.get(reverse("home"))
    badge = '<span class="band band-{}">{}</span> <span class="score">{}</span>'
    assert _health_cell(r, "Edge Yellow") == badge.format("yellow", "Yellow", "79.6")
    assert _health_cell(r, "Edge Green") == badge.format("green", "Green", "80")
    assert _health_cell(r, "Edge Red") == badge.format("red", "Red", "49.5")
    assert _health_cell(r, "Plain") == badge.format("yellow", "Yellow", "64")


def test_a_score_is_printed_against_the_lines_of_the_version_that_made_it(client, csm):
    """With a model whose green starts at 75, 74.6 (yellow) is not "75", and 79.6 (green)
    may read "80"."""
    from metrics.models import HealthModelVersion

    low = customer(csm, name="Below", mrr="100", ends_in=30, scores=[(74.6, "yellow")])
    customer(csm, name="Above", mrr="100", ends_in=30, scores=[(79.6, "green")])
    HealthModelVersion.objects.filter(snapshots__account=low).update(green_min=75)
    account_standings_refresh()
    client.force_login(csm)
    r = client.get(reverse("workspace:renewals"))
    assert _health_cell(r, "Below").endswith('<span class="score">74.6</span>')
    assert _health_cell(r, "Above").endswith('<span class="score">80</span>')


def test_an_overridden_score_is_marked_as_one_in_the_queue_and_renewals(client, csm):
    """The score a CSM set by hand reads "overridden" beside it; a computed one does not."""
    from metrics.models import HealthSnapshot

    judged = customer(csm, name="Judged", mrr="100", ends_in=30, scores=[(90, "green")])
    customer(csm, name="Computed", mrr="100", ends_in=30, scores=[(90, "green")])
    HealthSnapshot.objects.filter(account=judged).update(
        computed_score=48,
        computed_band="red",
        overrides=[{"id": 1, "component": "", "score": 90, "band": "", "reason": "signed"}],
    )
    account_standings_refresh()
    client.force_login(csm)
    for url in (reverse("home"), reverse("workspace:renewals")):
        r = client.get(url)
        assert "overridden" in _health_cell(r, "Judged"), url
        assert "overridden" not in _health_cell(r, "Computed"), url


def _trend_cell(response, name: str) -> str:
    """The 7-day cell of the queue row of ``name``, as text."""
    import re

    text = response.content.decode()
    row = re.search(rf'<tr id="account-\d+">(?:(?!</tr>).)*>{re.escape(name)}<.*?</tr>', text, re.S)
    assert row, name
    cell = re.search(r'<td data-label="7 days"[^>]*>(.*?)</td>', row.group(0), re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", without_notes(cell.group(1)))).strip()


def test_the_trend_of_an_overridden_score_says_it_is_of_the_computed_one(client, csm):
    """Computed 60 a week ago and 62 now, overridden to 90 now: "+2" (62 − 60) with a note
    that it is the computed score's; the same history without an override has no note, nor
    has an overridden account without a trend."""
    from metrics.models import HealthSnapshot

    day = utc_today() - dt.timedelta(days=1)
    judged = customer(
        csm, name="Judged", mrr="100", ends_in=30, scores=[(62, "yellow"), (60, "yellow")]
    )
    customer(csm, name="Computed", mrr="100", ends_in=30, scores=[(62, "yellow"), (60, "yellow")])
    new = customer(csm, name="New", mrr="100", ends_in=30, scores=[(62, "yellow")])
    override = [{"id": 1, "component": "", "score": 90, "band": "", "reason": "signed"}]
    HealthSnapshot.objects.filter(account__in=[judged, new], day=day).update(
        score=90, band="green", overrides=override
    )
    account_standings_refresh()
    client.force_login(csm)
    r = client.get(reverse("home"))
    assert _trend_cell(r, "Judged") == "+2 computed score"
    assert _trend_cell(r, "Computed") == "+2"
    assert _trend_cell(r, "New") == "—"
    # a tap (or Enter) on "computed score" says what it means
    assert explanation(r.content.decode(), "computed score") == (
        "the change of the score the health model computed: the override sets only the score shown"
    )


def _ctas_cell(response, name: str) -> str:
    """The CTAs cell of the queue row of ``name``, as text."""
    import re

    text = response.content.decode()
    row = re.search(rf'<tr id="account-\d+">(?:(?!</tr>).)*>{re.escape(name)}<.*?</tr>', text, re.S)
    assert row, name
    cell = re.search(r'<td data-label="CTAs"[^>]*>(.*?)</td>', row.group(0), re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", without_notes(cell.group(1)))).strip()


def test_pending_ctas_count_as_waiting_not_open(client, csm):
    """One open CTA and one pending over the CSM's cap: "1 open · 1 waiting", as the CTA
    list tells them apart, not "2 open"; the overdue open one is still counted as such."""
    import datetime as dt

    from django.utils import timezone

    from playbooks.models import Cta, CtaStatus
    from tests.playbooks.helpers import make_playbook

    account = customer(csm, name="Busy", mrr="100", ends_in=30, scores=[(60, "yellow")])
    both = customer(csm, name="Waiting only", mrr="100", ends_in=30, scores=[(60, "yellow")])
    day = timezone.now().date()
    for n, (acct, status, due_in) in enumerate(
        [
            (account, CtaStatus.OPEN, -2),
            (account, CtaStatus.PENDING, 5),
            (both, CtaStatus.PENDING, 5),
        ]
    ):
        Cta.objects.create(
            playbook=make_playbook("no_activity", {"days": 30 + n}),
            playbook_version=1,
            account=acct,
            owner=csm,
            title=f"CTA {n}",
            cta_type="risk",
            priority="high",
            status=status,
            evidence="x",
            opened_on=day,
            due_at=timezone.now() + dt.timedelta(days=due_in),
            followup_on=day + dt.timedelta(days=30),
            success_deadline=day + dt.timedelta(days=30),
        )
    account_standings_refresh()
    client.force_login(csm)
    r = client.get(reverse("home"))
    assert _ctas_cell(r, "Busy") == "1 open · 1 waiting, 1 overdue"
    assert _ctas_cell(r, "Waiting only") == "1 waiting"
    # the title says how waiting CTAs are promoted, in the playbooks' own words
    from django.utils.html import escape

    from playbooks.services import WAITING_ORDER

    assert WAITING_ORDER.startswith("promoted soonest due first")
    assert escape(f"each opens when one of theirs closes, {WAITING_ORDER}") in r.content.decode()
    # and so does the note a tap on "1 waiting" opens
    assert explanations(r.content.decode())["1 waiting"] == (
        "pending: over the owner's cap of open CTAs; each opens when one of theirs closes, "
        + WAITING_ORDER
    )


def _row_text(response, name: str) -> str:
    """The visible text of the queue row of ``name``, tags dropped."""
    import re

    text = response.content.decode()
    row = re.search(rf'<tr id="account-\d+">(?:(?!</tr>).)*>{re.escape(name)}<.*?</tr>', text, re.S)
    assert row, name
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(0))).strip()


def test_renewal_windows_count_from_the_data_day_not_the_calendar(client, csm):
    """A book last scored two days ago (D = today − 2, a night that has not run since): a row
    that reads "renews in N days" (counted from D) is in every window of N days or more and
    in none shorter, on the renewals page and in the queue's filter alike."""
    import datetime as dt

    from accounts import utc

    from .conftest import utc_today

    d = utc_today() - dt.timedelta(days=2)

    def make(name: str, ends_in: int) -> None:
        customer(csm, name=name, mrr="100", ends_in=ends_in, scores=[(60, "yellow")], day=d)

    make("Soon Co", 1)  # ends D+1 = yesterday: "renews in 1 day"; from today it had ended
    make("Thirty Co", 30)  # ends D+30: "renews in 30 days"; from today 28 days away
    make("Past Thirty Co", 31)  # ends D+31: outside 30 days from D, though 29 from today
    make("Ninety Co", 90)  # ends D+90: inside 90 days from D (88 from today)
    make("Past Ninety Co", 91)  # ends D+91: outside 90 days from D, though 89 from today
    account_standings_refresh()
    client.force_login(csm)

    r = client.get(reverse("workspace:renewals"))  # the 90-day window by default
    assert rows(r) == ["Soon Co", "Thirty Co", "Past Thirty Co", "Ninety Co"]
    assert "renews in 1 day," in _row_text(r, "Soon Co")
    assert "renews in 30 days" in _row_text(r, "Thirty Co")
    assert "renews in 90 days" in _row_text(r, "Ninety Co")
    text = r.content.decode()
    assert f"Data as of {utc.day_text(d)}" in text  # the day the windows count from, once
    assert text.count(f"Data as of {utc.day_text(d)}") == 1
    assert "in the next 90 days from the day of the data" in text

    r = client.get(reverse("workspace:renewals"), {"renewal": "30"})
    assert rows(r) == ["Soon Co", "Thirty Co"]
    # the queue's "Renews within" filter is the same window
    r = client.get(reverse("home"), {"renewal": "30", "sort": "renewal"})
    assert rows(r) == ["Soon Co", "Thirty Co"]
    r = client.get(reverse("home"), {"renewal": "90", "sort": "renewal"})
    assert rows(r) == ["Soon Co", "Thirty Co", "Past Thirty Co", "Ninety Co"]


def test_a_ctas_overdue_state_follows_the_calendar_not_the_data_day(client, csm):
    """On the same stale book (data of D = today − 2), a CTA due yesterday at noon is
    overdue, since a due date is a promise on the calendar, though it falls after D; one
    due tomorrow is not."""
    import datetime as dt

    from django.utils import timezone

    from playbooks.models import Cta, CtaStatus
    from tests.playbooks.helpers import make_playbook

    from .conftest import utc_today

    today = utc_today()
    d = today - dt.timedelta(days=2)
    late = customer(csm, name="Late Co", mrr="100", ends_in=None, scores=[(60, "yellow")], day=d)
    early = customer(csm, name="Early Co", mrr="100", ends_in=None, scores=[(60, "yellow")], day=d)
    noon = dt.time(12, tzinfo=dt.UTC)
    for n, (account, due) in enumerate(
        [
            (late, dt.datetime.combine(today - dt.timedelta(days=1), noon)),  # D+1, past
            (early, dt.datetime.combine(today + dt.timedelta(days=1), noon)),  # ahead
        ]
    ):
        Cta.objects.create(
            playbook=make_playbook("no_activity", {"days": 30 + n}),
            playbook_version=1,
            account=account,
            owner=csm,
            title=f"CTA {n}",
            cta_type="risk",
            priority="high",
            status=CtaStatus.OPEN,
            evidence="x",
            opened_on=d,
            due_at=due,
            followup_on=d + dt.timedelta(days=30),
            success_deadline=d + dt.timedelta(days=30),
        )
    assert due > timezone.now()  # the loop's last CTA is still ahead
    account_standings_refresh()
    client.force_login(csm)
    r = client.get(reverse("home"))
    assert _ctas_cell(r, "Late Co") == "1 open, 1 overdue"
    assert _ctas_cell(r, "Early Co") == "1 open"
    assert "1 overdue CTA" in _row_text(r, "Late Co")  # and it counts in the priority


def _data_days_line(response) -> str:
    import re

    found = re.findall(r'<p id="queue-data-days"[^>]*>([^<]*)</p>', response.content.decode())
    assert len(found) == 1, found  # named once, above the rows
    return found[0]


def test_the_data_days_line_covers_the_whole_list_whatever_the_sort_search_or_page(client, csm):
    """22 accounts scored by the night (Y = yesterday) and two rescored today (T), the mix
    a live install has: the line names both days and how many were rescored, the same
    with the rescored accounts first (priority: they are red), last (sort by name) and on
    a page that holds none of them (page 1 of 20 by name: only accounts of Y)."""
    from accounts import utc
    from workspace.selectors import PER_PAGE

    today = utc_today()
    yesterday = today - dt.timedelta(days=1)
    names = ["Aardvark", "Badger"] + [f"Cougar {n:02}" for n in range(20)]
    for name in names:  # scored by the night of Y; by name all before "Yak" and "Zebra"
        customer(csm, name=name, mrr="100", ends_in=300, scores=[(90, "green")])
    for name in ("Yak", "Zebra"):  # rescored today: their latest snapshot is of T
        customer(csm, name=name, mrr="100", ends_in=300, scores=[(20, "red")], day=today)
    account_standings_refresh()
    client.force_login(csm)
    # the older day is Y, its span one day; the 2 accounts of T are named as rescored since
    expected = (
        f"Data as of {utc.day_text(yesterday)}; 2 accounts rescored on {utc.day_text(today)} since"
    )

    r = client.get(reverse("home"))  # priority: the red (rescored) accounts first
    assert sorted(rows(r)[:2]) == ["Yak", "Zebra"]
    assert _data_days_line(r) == expected
    r = client.get(reverse("home"), {"sort": "name"})  # a row of Y first
    assert rows(r)[0] == "Aardvark"
    assert "24 accounts" in r.content.decode()  # the count from the same aggregate
    assert _data_days_line(r) == expected
    # the htmx swap of the results carries the line, so a filter change updates it
    r = client.get(reverse("home"), {"sort": "name"}, headers=HX)
    assert _data_days_line(r) == expected

    r = client.get(reverse("home"), {"sort": "name", "page": "1"})
    assert rows(r) == names[:PER_PAGE]  # 20 rows, every one of Y
    assert _data_days_line(r) == expected  # the whole list's days, not the page's
    r = client.get(reverse("home"), {"sort": "name", "page": "2"})
    assert rows(r) == ["Cougar 18", "Cougar 19", "Yak", "Zebra"]  # rows 21-24
    assert _data_days_line(r) == expected

    # a search narrows the list, and the line with it: only accounts of Y, then only of T
    r = client.get(reverse("home"), {"q": "Badger"})
    assert _data_days_line(r) == f"Data as of {utc.day_text(yesterday)}"
    r = client.get(reverse("home"), {"q": "Zebra"})
    assert _data_days_line(r) == f"Data as of {utc.day_text(today)}"


def test_renewals_name_one_rescored_account_in_the_singular(client, csm):
    """/renewals/ counts the same way: one account of T among those of Y."""
    from accounts import utc

    today = utc_today()
    yesterday = today - dt.timedelta(days=1)
    customer(csm, name="Night Co", mrr="100", ends_in=20, scores=[(60, "yellow")])
    customer(csm, name="Rescored Co", mrr="100", ends_in=30, scores=[(60, "yellow")], day=today)
    account_standings_refresh()
    client.force_login(csm)
    for sort in ("renewal", "name", "arr"):
        r = client.get(reverse("workspace:renewals"), {"sort": sort})
        assert sorted(rows(r)) == ["Night Co", "Rescored Co"]
        assert _data_days_line(r) == (
            f"Data as of {utc.day_text(yesterday)}; 1 account rescored on "
            f"{utc.day_text(today)} since"
        )


def test_the_7_day_column_says_how_and_each_trend_which_day_it_compares_with(client, csm, book):
    """Burning Co: 58 yesterday against 76 a week before: −18, titled with that day; the
    column's head links to how the trend is computed."""
    import re

    week = utc.day_text(utc_today() - dt.timedelta(days=8))
    client.force_login(csm)
    text = client.get(reverse("home")).content.decode()
    assert re.search(
        r'<th scope="col" class="num">7 days <a class="hint" href="/docs/metrics/#queue-priority"',
        text,
    )
    row = re.search(r'<tr id="account-\d+">(?:(?!</tr>).)*>Burning Co<.*?</tr>', text, re.S)
    cell = re.search(r'<td data-label="7 days" class="num trend trend-down">.*?</td>', row.group(0))
    assert explanation(cell.group(0), "\u221218") == f"the computed score's change since {week}"


# --- an empty book (a new installation) ----------------------------------------------------


def test_an_empty_book_says_so_and_where_data_comes_from(client, admin_user, csm):
    # no account at all: no filter narrowed anything, so "try fewer filters" would mislead
    client.force_login(admin_user)
    for url in (reverse("home"), reverse("workspace:renewals")):
        page = client.get(url).content.decode()
        assert "No accounts yet." in page
        assert "Try fewer filters" not in page
        assert f'href="{reverse("accounts:import-list")}"' in page  # an admin imports them
    client.force_login(csm)
    page = client.get(reverse("home")).content.decode()
    assert "No accounts yet." in page
    assert "Try fewer filters" not in page
    assert reverse("accounts:import-list") not in page  # a CSM cannot open the import page


def test_a_filter_that_matches_nothing_still_offers_to_clear_it(client, csm, book):
    client.force_login(csm)
    page = client.get(reverse("home"), {"q": "no such name"}).content.decode()
    assert "No account matches." in page and "Try fewer filters" in page
    # the default filters (scope, renewals' 90 days) are no filter the reader chose
    page = client.get(reverse("home"), {"band": "none"}).content.decode()
    assert "Try fewer filters" in page and "No accounts yet." not in page
