"""The account page's "First value" card: what it says (recorded day, event day, not yet),
recording, changing and clearing it with htmx and without, bad days, and who may."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts import services, utc
from accounts.models import Milestone, TimelineEntry
from tests.factories import AccountFactory
from tests.playbooks.helpers import events

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)
HTMX = {"HX-Request": "true", "HX-Target": "first-value"}


@pytest.fixture
def account(csm):
    return AccountFactory(owner=csm, name="Acme", customer_since=utc.today() - 30 * DAY)


def page(client, account) -> str:
    return client.get(reverse("workspace:account", args=[account.pk])).content.decode()


def post(client, account, data, **kwargs):
    return client.post(reverse("workspace:first-value", args=[account.pk]), data, **kwargs)


def test_not_yet_says_how_long_and_offers_the_form(client, csm, account):
    client.force_login(csm)
    text = page(client, account)
    since = utc.day_text(account.customer_since)
    assert f"30 days since becoming a customer on {since}" in text
    assert 'id="first-value-form"' in text and "Record first value" in text


def test_recording_with_htmx_swaps_the_card_and_tells_the_timeline(client, csm, account):
    client.force_login(csm)
    day = utc.today() - 4 * DAY
    r = post(client, account, {"reached_on": day.isoformat(), "note": "Board pack"}, headers=HTMX)
    assert r.status_code == 200
    text = r.content.decode()
    assert text.lstrip().startswith('<section class="card" id="first-value"')
    assert "<html" not in text
    assert f"Reached {utc.day_text(day)}" in text and "recorded by Cleo" in text
    assert "“Board pack”" in text and "Saved" in text
    assert "milestoneRecorded" in r.headers["HX-Trigger"]
    m = Milestone.objects.get(account=account)
    assert (m.reached_on, m.note, m.recorded_by) == (day, "Board pack", csm)
    assert TimelineEntry.objects.filter(account=account, kind="milestone_recorded").count() == 1
    # the page shows it too, with the choice to change or clear it
    text = page(client, account)
    assert f"Reached {utc.day_text(day)}" in text and "Clear the recorded day" in text


def test_a_future_day_is_an_error_next_to_the_field_and_nothing_is_written(client, csm, account):
    client.force_login(csm)
    tomorrow = utc.today() + DAY
    r = post(client, account, {"reached_on": tomorrow.isoformat()}, headers=HTMX)
    assert r.status_code == 200  # htmx 2 swaps no 4xx
    text = r.content.decode()
    assert 'id="id_reached_on_error"' in text
    assert f"{utc.day_text(tomorrow)} is in the future" in text
    assert '<details class="first-value-edit" open>' in text
    assert not Milestone.objects.exists() and not TimelineEntry.objects.exists()


def test_a_day_that_is_not_a_day_is_refused_without_htmx(client, csm, account):
    client.force_login(csm)
    r = post(client, account, {"reached_on": "next week"})
    assert r.status_code == 400
    assert 'id="id_reached_on_error"' in r.content.decode()
    assert not Milestone.objects.exists()


def test_without_htmx_a_save_redirects_to_the_page(client, csm, account):
    client.force_login(csm)
    r = post(client, account, {"reached_on": utc.today().isoformat()})
    assert r.status_code == 302 and r.headers["Location"] == reverse(
        "workspace:account", args=[account.pk]
    )
    assert Milestone.objects.get().reached_on == utc.today()


def test_clearing_removes_the_day_and_says_so_on_the_timeline(client, csm, account):
    services.milestone_record(account=account, reached_on=utc.today() - DAY, by=csm)
    client.force_login(csm)
    r = post(client, account, {"clear": "1"}, headers=HTMX)
    assert r.status_code == 200 and "Cleared." in r.content.decode()
    assert "Not yet" in r.content.decode()
    assert not Milestone.objects.exists()
    assert TimelineEntry.objects.filter(kind="milestone_cleared").count() == 1


def test_an_earlier_event_is_shown_as_the_day(client, csm, account, settings):
    settings.FIRST_VALUE_EVENT = "report_created"
    event_day = utc.today() - 9 * DAY
    events(account, event_day, n=1, name="report_created")
    services.milestone_record(account=account, reached_on=utc.today() - 2 * DAY, by=csm)
    client.force_login(csm)
    text = page(client, account)
    assert f"Reached {utc.day_text(event_day)}" in text
    assert "by the event report_created" in text
    assert f"Also recorded by Cleo as {utc.day_text(utc.today() - 2 * DAY)}" in text


def test_the_manager_may_record_on_the_team_account(client, manager, account):
    client.force_login(manager)
    r = post(client, account, {"reached_on": utc.today().isoformat()}, headers=HTMX)
    assert r.status_code == 200
    assert Milestone.objects.get().recorded_by == manager


def test_an_account_outside_the_book_is_a_404_and_nothing_is_written(
    client, outsider, account, django_user_model
):
    other_csm = django_user_model.objects.create_user(email="o@example.com", password="x" * 12)
    from django.contrib.auth.models import Group

    other_csm.groups.add(Group.objects.get(name="CSM"))
    for user in (outsider, other_csm):
        client.force_login(user)
        r = post(client, account, {"reached_on": utc.today().isoformat()}, headers=HTMX)
        assert r.status_code == 404
    assert not Milestone.objects.exists()


def test_get_is_not_allowed(client, csm, account):
    client.force_login(csm)
    assert client.get(reverse("workspace:first-value", args=[account.pk])).status_code == 405


def test_days_waiting_count_to_the_data_day(client, csm, account):
    """The account's data is of two days ago (D = today − 2, its latest snapshot's day): the
    card counts the wait to D as the rest of the page does, 30 − 2 = 28 days, and says so;
    the form still offers today, and its htmx re-rendering counts the same."""
    from metrics.standings import account_standings_refresh
    from tests.workspace.conftest import snapshot

    d = utc.today() - 2 * DAY
    snapshot(account, d, 60.0, "yellow")
    account_standings_refresh(account_ids=[account.pk])
    client.force_login(csm)
    since = utc.day_text(account.customer_since)
    text = page(client, account)
    assert f"Data as of {utc.day_text(d)}" in text
    assert f"28 days since becoming a customer on {since}, as of {utc.day_text(d)}" in text
    assert f'value="{utc.today().isoformat()}"' in text  # the form's day is the calendar's
    tomorrow = utc.today() + DAY
    r = post(client, account, {"reached_on": tomorrow.isoformat()}, headers=HTMX)
    assert f"28 days since becoming a customer on {since}, as of {utc.day_text(d)}" in (
        r.content.decode()
    )


def test_a_first_value_recorded_after_the_data_day_still_shows(client, csm, account):
    """Recorded today, after the account's data day: the card says reached, not "not yet"."""
    from metrics.standings import account_standings_refresh
    from tests.workspace.conftest import snapshot

    snapshot(account, utc.today() - 2 * DAY, 60.0, "yellow")
    account_standings_refresh(account_ids=[account.pk])
    client.force_login(csm)
    r = post(client, account, {"reached_on": utc.today().isoformat()}, headers=HTMX)
    assert f"Reached {utc.day_text(utc.today())}" in r.content.decode()
    assert "Not yet" not in page(client, account)


def test_a_day_before_becoming_a_customer_is_kept_and_said_to_count_as_0_days(client, csm, account):
    """Allowed on purpose (a pilot can reach value before the contract), and said where the
    day is saved and where it is shown; a day after becoming a customer says nothing."""
    client.force_login(csm)
    early = account.customer_since - 40 * DAY
    since = utc.day_text(account.customer_since)
    words = f"before becoming a customer ({since}): counts as 0 days to first value"
    r = post(client, account, {"reached_on": early.isoformat()}, headers=HTMX)
    assert r.status_code == 200
    saved = r.content.decode()
    assert Milestone.objects.get(account=account).reached_on == early
    assert f"{utc.day_text(early)} is {words}." in saved
    assert "B" + words[1:] in page(client, account)
    post(client, account, {"reached_on": (account.customer_since + DAY).isoformat()}, headers=HTMX)
    assert "before becoming a customer" not in page(client, account)


def test_a_long_wait_is_counted_with_thousands_separators(client, csm):
    """1,407 days, as every count in words is written (accounts.money.number_text), and as
    the dashboard's time to first value lists it ("not yet (1,407 days)")."""
    old = AccountFactory(owner=csm, name="Old Co", customer_since=utc.today() - 1407 * DAY)
    client.force_login(csm)
    assert "1,407 days since becoming a customer on" in page(client, old)
