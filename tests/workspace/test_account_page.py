"""The account page: what it shows, the note form, the timeline filters, access, and a
query count that does not grow with the account's history."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import utc
from accounts.models import Activity, TimelineEntry
from metrics.models import HealthOverride
from tests.explained import explanation, without_notes
from tests.factories import ContractFactory, StakeholderFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(account) -> str:
    return reverse("workspace:account", args=[account.pk])


def test_header_breakdown_and_what_changed(client, csm, book):
    client.force_login(csm)
    r = client.get(url(book["burning"]))
    assert r.status_code == 200
    text = r.content.decode()
    assert "Burning Co" in text and "$84k" in text
    assert "\u221218" in text and "\u221222" in text  # 7 and 30 days
    assert "red, \u221218 in 7 days, renews in 41 days, $84k ARR" in text
    # what changed between the snapshot a week before and the latest
    assert "score fell from 76 to 58 (yellow → red)" in text
    assert 'data-chart="health"' in text and 'id="health-data"' in text


def test_the_30_day_trend_says_which_day_it_compares_with(client, csm, book):
    """Burning Co: 58 yesterday; no snapshot 30 days before that, one 33 days before (70):
    the trend is 58 - 70 = -12, "vs" that day."""
    from metrics.models import HealthSnapshot
    from metrics.standings import account_standings_refresh

    from .conftest import snapshot

    yesterday = utc.today() - dt.timedelta(days=1)
    burning = book["burning"]
    HealthSnapshot.objects.filter(account=burning, day=yesterday - dt.timedelta(days=30)).delete()
    snapshot(burning, yesterday - dt.timedelta(days=33), 70, "yellow")
    account_standings_refresh(account_ids=[burning.pk])
    client.force_login(csm)
    text = client.get(url(burning)).content.decode()
    vs = f"vs {utc.day_text(yesterday - dt.timedelta(days=33))}"
    assert re.search(
        rf'<dd class="trend trend-down" title="{vs}">\u221212<span[^>]*> {vs}</span>', text
    )


def test_outsider_and_other_csm_get_404(client, outsider, book):
    client.force_login(outsider)
    assert client.get(url(book["burning"])).status_code == 404
    other = UserFactory(email="other@example.com")
    from django.contrib.auth.models import Group

    from accounts.roles import ensure_roles

    ensure_roles()
    other.groups.add(Group.objects.get(name="CSM"))
    client.force_login(other)
    assert client.get(url(book["burning"])).status_code == 404
    assert (
        client.post(
            reverse("workspace:activity-create", args=[book["burning"].pk]),
            {"kind": "note", "subject": "x"},
        ).status_code
        == 404
    )


def test_log_a_note_shows_on_the_timeline(client, csm, book):
    client.force_login(csm)
    account = book["burning"]
    r = client.post(
        reverse("workspace:activity-create", args=[account.pk]),
        {"kind": "call", "subject": "Called about renewal", "body": "They want a discount"},
        headers={"HX-Request": "true", "HX-Target": "activity-form"},
    )
    assert r.status_code == 200
    assert json.loads(r["HX-Trigger"]) == {
        "activityLogged": {"account_id": account.pk},
        "announced": {"message": "Logged: it is on the timeline."},  # the page's live region
    }
    activity = Activity.objects.get(account=account)
    assert (activity.kind, activity.author, activity.subject) == (
        "call",
        csm,
        "Called about renewal",
    )
    entry = TimelineEntry.objects.get(account=account, key=f"activity:{activity.pk}")
    assert entry.title == "Call by Cleo: Called about renewal"
    timeline = client.get(
        url(account), {"kind": "notes"}, headers={"HX-Request": "true", "HX-Target": "timeline"}
    )
    assert b"<html" not in timeline.content
    assert b"Call by Cleo: Called about renewal" in timeline.content


def test_invalid_note_re_renders_with_the_error(client, csm, book):
    client.force_login(csm)
    r = client.post(
        reverse("workspace:activity-create", args=[book["burning"].pk]),
        {"kind": "telepathy", "subject": ""},
        headers={"HX-Request": "true", "HX-Target": "activity-form"},
    )
    assert r.status_code == 200
    assert b"This field is required." in r.content
    assert not Activity.objects.exists()
    plain = client.post(
        reverse("workspace:activity-create", args=[book["burning"].pk]),
        {"kind": "note", "subject": ""},
    )
    assert plain.status_code == 200 and b"This field is required." in plain.content


def _tag(html: str, field_id: str) -> str:
    tag = re.search(rf'<(?:input|select|textarea)[^>]*\bid="{field_id}"[^>]*>', html)
    assert tag, f"no field {field_id}"
    return tag.group(0)


def test_the_note_form_is_laid_out_by_the_shared_field_template(client, csm, book):
    """Each field through _field.html: a label for it, the subject's help named by
    aria-describedby, and nothing marked invalid before anything is sent."""
    client.force_login(csm)
    html = client.get(url(book["burning"])).content.decode()
    form = html[html.index('<form id="activity-form"') :]
    form = form[: form.index("</form>")]
    for field_id, label in (("id_kind", "Kind"), ("id_subject", "Subject")):
        assert f'<label for="{field_id}">{label}</label>' in form
    assert '<label for="id_body">Details (optional)</label>' in form
    subject = _tag(form, "id_subject")
    assert 'aria-describedby="id_subject_helptext"' in subject
    assert '<p class="help" id="id_subject_helptext">One line: what happened</p>' in form
    assert "aria-invalid" not in form and "data-error-summary" not in form
    assert "novalidate" in form[: form.index(">")]  # the summary below, not a bubble
    # one element per id on the whole page: no other form of the page uses these ids
    for field_id in ("id_kind", "id_subject", "id_body"):
        assert html.count(f'id="{field_id}"') == 1


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain post"])
def test_an_invalid_note_gets_the_error_summary_and_marked_fields(client, csm, book, htmx):
    """An unknown kind and a blank subject: the summary at the top of the form links to each
    field (focused by app.js: role alert, tabindex -1), and each field is aria-invalid and
    described by its own error (and the subject still by its help)."""
    client.force_login(csm)
    headers = {"HX-Request": "true", "HX-Target": "activity-form"} if htmx else {}
    r = client.post(
        reverse("workspace:activity-create", args=[book["burning"].pk]),
        {"kind": "telepathy", "subject": "   ", "body": "kept as typed"},
        headers=headers,
    )
    assert r.status_code == 200
    html = r.content.decode()
    assert ("<html" in html) is not htmx
    form = html[html.index('<form id="activity-form"') :]
    form = form[: form.index("</form>")]
    summary = re.search(r"<div[^>]*data-error-summary[^>]*>(.*?)</div>", form, re.S)
    assert summary, "no error summary"
    assert 'role="alert"' in summary.group(0) and 'tabindex="-1"' in summary.group(0)
    assert "<p>Not logged:</p>" in summary.group(1)
    assert '<a href="#id_kind">Kind</a>: Select a valid choice.' in summary.group(1)
    assert '<a href="#id_subject">Subject</a>: This field is required.' in summary.group(1)
    kind = _tag(form, "id_kind")
    assert 'aria-invalid="true"' in kind and 'aria-describedby="id_kind_error"' in kind
    subject = _tag(form, "id_subject")
    assert 'aria-invalid="true"' in subject
    assert 'aria-describedby="id_subject_helptext id_subject_error"' in subject
    assert '<ul class="field-error" id="id_subject_error"><li>This field is required.</li>' in form
    body = _tag(form, "id_body")
    assert "aria-invalid" not in body
    assert re.search(r">\s*kept as typed</textarea>", form)
    assert not Activity.objects.exists()


def test_unknown_timeline_filter_is_a_notice(client, csm, book):
    client.force_login(csm)
    r = client.get(url(book["burning"]), {"kind": "gossip"})
    assert r.status_code == 200
    assert "Unknown timeline filter “gossip” ignored." in r.content.decode()


def test_the_survey_answers_filter_links_to_the_accounts_results(client, csm, book):
    client.force_login(csm)
    account = book["burning"]
    link = f'href="/surveys/results/?account={account.pk}"'
    assert link not in client.get(url(account)).content.decode()
    assert link in client.get(url(account), {"kind": "surveys"}).content.decode()


def _count(client, account) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url(account))
    assert r.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_is_pinned_and_flat(client, csm, book, django_assert_max_num_queries):
    client.force_login(csm)
    account = book["burning"]
    now = timezone.now()
    TimelineEntry.objects.create(account=account, occurred_at=now, kind="note", key="n", title="n")
    before = _count(client, account)
    for i in range(20):
        StakeholderFactory(account=account)
        ContractFactory(
            account=account,
            start_date=dt.date(2020, 1, 1) + dt.timedelta(days=i),
            end_date=dt.date(2020, 6, 1),
        )
        TimelineEntry.objects.create(
            account=account,
            occurred_at=now - dt.timedelta(hours=i),
            kind="ticket_opened",
            key=f"t{i}",
            title=f"Ticket {i}",
        )
    assert _count(client, account) == before
    # session, user, groups, account, its standing (with the band lines of its score),
    # 4 health, usage, features, contracts, people, last touch, timeline count and page, the
    # open CTAs, the voice fragment (sentiment, relationship, history, latest texts, themes,
    # north star), and the recorded first value: 24 (25 with FIRST_VALUE_EVENT set: that
    # event's first day)
    with django_assert_max_num_queries(24):
        client.get(url(account))


def test_timeline_entries_show_the_sentiment_of_their_text(client, csm, book):
    """A ticket's subject is scored by the voice app; its timeline fact shows the score."""
    from tests.factories import TicketFactory
    from voice import services as voice_services

    client.force_login(csm)
    account = book["burning"]
    ticket = TicketFactory(
        account=account, subject="Terrible outage again, we are furious and very disappointed"
    )
    entry = TimelineEntry.objects.create(
        account=account,
        occurred_at=timezone.now(),
        kind="ticket_opened",
        key=f"ticket:{ticket.external_id}:opened",
        title="Ticket opened",
        data={"ticket": ticket.external_id},
    )
    voice_services.text_sentiments_refresh(account_ids=[account.pk])
    html = client.get(url(account)).content.decode()
    row = html[html.index(f'id="timelineentry-{entry.pk}"') :]
    row = row[: row.index("</li>")]
    import re

    from voice.models import TextSentiment

    stored = TextSentiment.objects.get(source="ticket", source_id=ticket.pk).score
    assert stored < 0  # the words are clearly negative
    badge = re.search(r'<span class="badge tone-[a-z]+"[^>]*>([^<]+)</span>', row)
    # labelled, not a bare signed number at the end of the line
    assert badge is not None and badge.group(1) == f"negative sentiment −{-round(stored)}"


def test_the_voice_card_sits_in_the_wide_column(client, csm, book):
    """The voice card (with its table of latest texts) is one of the main cards, in the
    wide first column of the split, not the narrow one with the note form."""
    client.force_login(csm)
    html = client.get(url(book["burning"])).content.decode()
    split = html.index('<div class="split">')
    usage, voice = html.index('id="usage-title"'), html.index("Voice of the customer")
    narrow = html.index('id="log-title"')  # the first card of the narrow column
    assert split < usage < voice < narrow


def _usage_series(html: str) -> list[dict]:
    start = html.index('<script id="usage-data" type="application/json">') + len(
        '<script id="usage-data" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_usage_chart_has_every_day_of_the_window_with_zeros_between(client, csm, book):
    """The usage charts get one point per calendar day of the 90-day window: a day without
    events is 0 events and 0 active users, not left out (which hid an 18-day gap and squeezed
    the axis)."""
    from accounts.models import UsageDaily

    from .conftest import utc_today

    account = book["burning"]
    on = utc_today()
    UsageDaily.objects.create(
        account=account, day=on - dt.timedelta(days=95), events=9, active_users=9
    )
    UsageDaily.objects.create(
        account=account, day=on - dt.timedelta(days=40), events=5, active_users=2
    )
    UsageDaily.objects.create(
        account=account, day=on - dt.timedelta(days=21), events=3, active_users=1
    )
    client.force_login(csm)
    series = _usage_series(client.get(url(account)).content.decode())
    days = [dt.date.fromisoformat(row["day"]) for row in series]
    assert days == [on - dt.timedelta(days=90 - n) for n in range(91)]  # every day, in order
    by_day = {dt.date.fromisoformat(row["day"]): row for row in series}
    assert by_day[on - dt.timedelta(days=40)] == {
        "day": (on - dt.timedelta(days=40)).isoformat(),
        "events": 5,
        "active_users": 2,
    }
    assert by_day[on - dt.timedelta(days=21)]["events"] == 3
    gap = [by_day[on - dt.timedelta(days=d)] for d in range(22, 40)]
    assert all(row["events"] == 0 and row["active_users"] == 0 for row in gap)
    assert by_day[on]["events"] == 0 and by_day[on - dt.timedelta(days=90)]["active_users"] == 0


def test_no_usage_in_the_window_says_so_instead_of_a_flat_chart(client, csm, book):
    client.force_login(csm)
    html = client.get(url(book["burning"])).content.decode()
    assert "No product usage in the last 90 days." in html
    assert 'id="usage-data"' not in html


def _open_cta(account):
    from playbooks import services as playbooks_services
    from tests.playbooks.helpers import make_playbook

    return playbooks_services.cta_open(
        playbook=make_playbook("ticket_escalated"), account=account, evidence="escalated ticket"
    )


def test_step_dates_and_what_changed_carry_the_year(client, csm, book):
    """Dates on the account page read "24 Nov 2026", as its header and timeline write them."""
    account = book["burning"]
    cta = _open_cta(account)
    client.force_login(csm)
    html = client.get(url(account)).content.decode()
    steps = html[html.index(f'id="cta-{cta.pk}-steps"') :]
    step = cta.steps.order_by("position").first()
    assert f"due {step.due_on:%-d %b %Y}</span>" in steps[: steps.index("</tr>")]
    assert re.search(r"<h3>What changed since \d{1,2} [A-Z][a-z]{2} \d{4}</h3>", html)


def test_open_ctas_write_dates_and_people_as_the_rest_of_the_page(client, csm, book):
    """The CTA rows on the account page: due "by 24 Nov 2026" (the day it is due by, as
    the CTA page says it), the owner by name like the header's Owner."""
    account = book["burning"]
    cta = _open_cta(account)
    assert cta.owner == csm and csm.get_full_name()
    client.force_login(csm)
    html = client.get(url(account)).content.decode()
    row = html[html.index(f'<tr id="cta-{cta.pk}">') :]
    row = row[: row.index("</tr>")]
    # due with its last step L: stored as 00:00 UTC of L + 1, the end of L, so "by L"
    last = cta.steps.order_by("position").last().due_on
    assert cta.due_at == dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    assert f'data-label="Due">by {utc.day_text(last)}</td>' in row
    assert "00:00" not in row  # not "L + 1, 00:00", which read as a day later
    assert f'data-label="Owner">{csm.get_full_name()}</td>' in row
    assert csm.email not in row


def _override_post(client, account, **changes):
    form = {
        "component": "",
        "score": "90",
        "band": "",
        "reason": "Renewal signed on paper; billing not imported yet",
        "until": (utc.today() + dt.timedelta(days=30)).isoformat(),
        **changes,
    }
    return client.post(reverse("workspace:health-override-create", args=[account.pk]), form)


def test_a_csm_overrides_the_health_score_and_the_page_says_so(
    client, csm, book, celery_eager, django_capture_on_commit_callbacks, settings
):
    settings.ACCOUNT_DATA_CHANGED_HOOKS = ["metrics.tasks.account_changed"]  # as deployed
    account = book["burning"]
    client.force_login(csm)
    page = client.get(url(account)).content.decode()
    assert "Override this health score" in page
    # the default model's locked component (payments) is not offered
    assert '<option value="usage">Usage</option>' in page
    assert 'value="payments"' not in page
    # ... and the form says why it is missing
    assert "Locked by the health model, so not offered: Payments" in page
    cache.clear()  # no debounce left by another test: today's score is recomputed now
    with django_capture_on_commit_callbacks(execute=True):
        r = _override_post(client, account)
    assert r.status_code == 302
    # back at the top, where the message is: its own fragment, not the form's it came from
    assert r.url == url(account) + "#main"
    override = HealthOverride.objects.get()
    assert (override.account, override.created_by, override.score) == (account, csm, 90)
    # the day after "until" at midnight UTC: the override holds through "until"
    until = utc.today() + dt.timedelta(days=30)
    assert override.expires_at == dt.datetime.combine(
        until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC
    )
    page = client.get(url(account)).content.decode()
    shown = page[page.index('id="health-overrides"') :].split("</div>")[0]
    assert "score 90" in shown and "computed " in shown
    assert "Renewal signed on paper" in shown and f"until {until.day} {until:%b %Y}" in shown
    # named as the rest of the page names people, not by email, with when it was made
    # (the row's created_at, in UTC as the page's other moments)
    made = utc.moment_text(override.created_at)
    assert f"by {csm.get_full_name()} on {made}, until" in shown and csm.email not in shown
    # the override's recompute dated today's snapshot and refreshed the standing: the trend
    # compares the computed score with the one 8 days back (76, the book's), not the 90
    from metrics.models import AccountStanding, HealthSnapshot

    snap = HealthSnapshot.objects.get(account=account, day=utc.today())
    standing = AccountStanding.objects.get(account=account)
    assert (snap.score, standing.score, standing.overridden) == (90, 90, True)
    assert standing.trend_7_day == utc.today() - dt.timedelta(days=8)
    assert standing.trend_7 == round(snap.computed_score - 76, 1) != 90 - 76
    assert 'id="trend-7-basis"' in client.get(url(account)).content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"reason": ""}, "reason", "This field is required."),
        ({"until": "2020-01-01"}, "until", "Until must be after today (you entered 1 Jan 2020)"),
        ({"until": utc.today().isoformat()}, "until", "Until must be after today"),
        (
            {"until": (utc.today() + dt.timedelta(days=400)).isoformat()},
            "until",
            "at most 366 days ahead",
        ),
        ({"score": "101"}, "score", "less than or equal to 100"),
        # locked in the default model: said so, not Django's "Select a valid choice"
        (
            {"component": "payments"},
            "component",
            "Payments is locked by the health model: it cannot be overridden",
        ),
    ],
    ids=["no-reason", "past", "today", "too-far", "score-range", "locked"],
)
def test_a_bad_override_says_what_and_where_and_writes_nothing(
    client, csm, book, changes, field, message
):
    client.force_login(csm)
    r = _override_post(client, book["burning"], **changes)
    assert r.status_code == 400
    text = r.content.decode()
    errors = text[text.index(f'id="id_{field}_error"') :].split("</ul>")[0]
    assert message in errors
    assert '<details class="override" open>' in text
    assert not HealthOverride.objects.exists()


def test_every_problem_of_an_override_shows_in_one_round(client, csm, book):
    """A score out of range (the form's check) and a past day (the service's) are both
    said on the first post, each beside its field, and no ISO timestamp reaches the page."""
    client.force_login(csm)
    r = _override_post(client, book["burning"], score="150", until="2020-01-01", reason="")
    assert r.status_code == 400
    text = r.content.decode()

    def error(field: str) -> str:
        return text[text.index(f'id="id_{field}_error"') :].split("</ul>")[0]

    assert "less than or equal to 100" in error("score")
    assert "Until must be after today (you entered 1 Jan 2020)" in error("until")
    assert "required" in error("reason")
    assert "2020-01-02T" not in text
    assert not HealthOverride.objects.exists()


def test_another_csms_account_cannot_be_overridden(client, csm, book):
    client.force_login(csm)
    assert _override_post(client, book["managers"]).status_code == 404
    assert not HealthOverride.objects.exists()


def test_an_override_beside_its_computed_score_reads_apart():
    """An override of the whole score to 80 over a computed 79.96 does not read "score 80,
    computed 80"; one of 90 over 37.5 reads as the scores are recorded."""
    from types import SimpleNamespace

    from workspace.selectors import overrides_shown

    def shown(score, computed):
        o = {"score": score, "component": "", "expires_at": "2026-12-01T00:00:00+00:00"}
        latest = SimpleNamespace(overrides=[o], computed_score=computed)
        (row,) = overrides_shown(latest)
        return row["score_text"], row["computed_text"], row["until"]

    assert shown(80, 79.96) == ("80.00", "79.96", "30 Nov 2026")
    assert shown(90, 37.5)[:2] == ("90", "37.5")
    assert shown(90, None)[:2] == ("90", "no data")


def test_header_score_beside_a_yellow_badge_is_not_rounded_to_green(client, csm):
    from metrics.standings import account_standings_refresh

    from .conftest import customer

    account = customer(csm, name="Edge Co", mrr="100", ends_in=30, scores=[(79.6, "yellow")])
    account_standings_refresh()
    client.force_login(csm)
    text = re.sub(r"\s+", " ", client.get(url(account)).content.decode())
    header = re.search(r'<div class="stat-band-yellow"><dt>Health .*?</dd>', text)
    assert header, "the header's health stat is yellow"
    assert '<dd>79.6 <span class="band band-yellow">Yellow</span></dd>' in header.group(0)


def test_every_count_of_days_on_the_page_is_from_the_data_day(client, csm):
    """The health breakdown's "last CSM touch", the voice card's "last contact" and the
    renewal tile all count from the day of the data shown in the header (yesterday)."""
    from metrics.services import health_snapshots_record
    from metrics.standings import account_standings_refresh
    from tests.factories import AccountFactory

    data_day = utc.today() - dt.timedelta(days=1)
    account = AccountFactory(owner=csm)
    ContractFactory(
        account=account,
        start_date=data_day - dt.timedelta(days=300),
        end_date=data_day + dt.timedelta(days=37),
        quantity=10,
    )
    champion = StakeholderFactory(account=account, role="champion", name="Chris Champ")
    type(champion).objects.filter(pk=champion.pk).update(
        created_at=timezone.now() - dt.timedelta(days=100)
    )
    call = Activity.objects.create(
        account=account,
        kind="call",
        subject="QBR",
        occurred_at=dt.datetime.combine(
            data_day - dt.timedelta(days=10), dt.time(10), tzinfo=dt.UTC
        ),
    )
    call.stakeholders.add(champion)
    health_snapshots_record(as_of=data_day)  # the nightly run of yesterday
    account_standings_refresh(account_ids=[account.pk])
    client.force_login(csm)
    text = client.get(url(account)).content.decode()
    assert f"Data as of {data_day.day} {data_day:%b %Y}" in text
    # the call was 10 days before the data day (11 before the calendar day)
    assert "last CSM touch 10 days ago" in text
    assert "champion Chris Champ: last contact 10 days ago" in text
    # the contract ends 37 days after the data day (36 after the calendar day)
    assert 'class="muted small stat-sub">in 37 days</span>' in text


def test_header_says_which_day_the_7_day_trend_compares_with(client, csm, book):
    client.force_login(csm)
    text = client.get(url(book["burning"])).content.decode()
    week = utc.today() - dt.timedelta(days=8)  # the snapshot 7 days before yesterday's
    assert f'<span class="muted small" id="trend-7-day"> vs {utc.day_text(week)}</span>' in text
    # an account without a snapshot 7–9 days back has no day to name
    text = client.get(url(book["calm"])).content.decode()
    assert 'id="trend-7-day"' not in text


def test_the_trends_of_an_overridden_score_say_they_are_of_the_computed_one(client, csm):
    """Computed 50 thirty days back, 60 seven days back and 62 now, overridden to 90 now: the
    header's trends are +2 (62 − 60) and +12 (62 − 50), each marked "computed score"; once
    the override is gone from the snapshot (the same numbers), neither is marked."""
    from metrics import health
    from metrics.models import HealthSnapshot
    from metrics.standings import account_standings_refresh

    from .conftest import customer, utc_today

    day = utc_today() - dt.timedelta(days=1)
    account = customer(
        csm,
        name="Judged",
        mrr="100",
        ends_in=30,
        scores=[(62, "yellow"), (60, "yellow"), (50, "yellow")],
    )
    until = dt.datetime.combine(utc_today() + dt.timedelta(days=30), dt.time(), tzinfo=dt.UTC)
    override = health.Override(id=1, reason="signed", expires_at=until.isoformat(), score=90)
    now = HealthSnapshot.objects.filter(account=account, day=day)
    now.update(score=90, band="green", overrides=[override.as_json()])
    account_standings_refresh(account_ids=[account.pk])
    client.force_login(csm)

    def trend(text: str, n: int) -> str:
        dd = re.search(rf"<dt>{n} days\b.*?</dt><dd[^>]*>(.*?)</dd>", text, re.S)
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", without_notes(dd.group(1)))).strip()

    text = client.get(url(account)).content.decode()
    assert trend(text, 7) == f"+2 vs {utc.day_text(day - dt.timedelta(days=7))} computed score"
    basis = re.search(r'<span[^>]*id="trend-7-basis".*?</span></span>', text).group(0)
    assert explanation(basis, "computed score") == (
        "the change of the score the health model computed: the override sets only the score shown"
    )
    assert trend(text, 30) == f"+12 vs {utc.day_text(day - dt.timedelta(days=30))} computed score"
    now.update(score=62, band="yellow", overrides=[])
    account_standings_refresh(account_ids=[account.pk])
    text = client.get(url(account)).content.decode()
    assert trend(text, 7) == f"+2 vs {utc.day_text(day - dt.timedelta(days=7))}"
    assert 'id="trend-7-basis"' not in text and 'id="trend-30-basis"' not in text


def test_the_health_breakdown_says_what_it_left_out_and_that_the_rest_was_rescaled(
    client, csm, book
):
    from metrics.models import HealthSnapshot

    from .conftest import components

    account = book["burning"]
    latest = HealthSnapshot.objects.filter(account=account).latest("day")
    latest.components = components(58.0, support=None)
    latest.save()
    client.force_login(csm)
    page = client.get(url(account)).content.decode()
    note = page[page.index('id="health-left-out"') :].split("</p>")[0]
    assert "Left out for lack of data: support." in note
    assert "The weights of the component with data were rescaled to count alone." in note
    # with every component's data there is nothing to say
    latest.components = components(58.0, support=90.0)
    latest.save()
    assert 'id="health-left-out"' not in client.get(url(account)).content.decode()


def test_the_voice_cards_score_is_not_called_relationship_like_the_health_component(
    client, csm, book
):
    """One page, two measures: the health breakdown's Relationship component and the voice
    card's stakeholder coverage, which says it is not that component."""
    from tests.factories import StakeholderFactory

    account = book["burning"]
    StakeholderFactory(account=account, role="champion", name="Cam Champion")
    client.force_login(csm)
    html = client.get(url(account)).content.decode()
    voice = html[html.index("Voice of the customer") :]
    voice = voice[: voice.index("</section>")]
    # each figure of the card links to its section of docs/metrics.md
    assert (
        '<dt>Stakeholder coverage <a class="hint" href="/docs/metrics/#relationship-score-0100"'
        in voice
    )
    assert '<dt>Sentiment (90 days) <a class="hint" href="/docs/metrics/#sentiment"' in voice
    assert "the weight halves every 30 days, so recent texts count more" in voice
    assert "<dt>Relationship</dt>" not in voice and "<h3>Relationship</h3>" not in voice
    hint = voice[voice.index(f'id="account-{account.pk}-coverage-hint"') :].split("</p>")[0]
    assert "not the health score's Relationship component" in hint


def test_people_imported_after_the_data_day_count_on_the_voice_card(client, csm):
    """The stakeholders card lists everyone known now; the voice card beside it counts the
    same people (a champion imported today, after the data day), not "No stakeholders
    known"."""
    from metrics.services import health_snapshots_record
    from metrics.standings import account_standings_refresh
    from tests.factories import AccountFactory

    data_day = utc.today() - dt.timedelta(days=1)
    account = AccountFactory(owner=csm)
    ContractFactory(account=account, start_date=data_day - dt.timedelta(days=300))
    StakeholderFactory(account=account, role="champion", name="Nina New")  # created now
    health_snapshots_record(as_of=data_day)
    account_standings_refresh(account_ids=[account.pk])
    client.force_login(csm)
    text = client.get(url(account)).content.decode()
    assert f"Data as of {data_day.day} {data_day:%b %Y}" in text
    voice = text[text.index('id="account-' + str(account.pk) + '-voice"') :]
    voice = voice[: voice.index("</section>")]
    assert "No stakeholders known" not in voice
    assert "Nina New" in voice


def test_the_header_marks_an_overridden_score(client, csm):
    """The header's health stat reads "overridden" beside a score a CSM set, as the queue
    does; a computed one has no marker."""
    from metrics.models import HealthSnapshot
    from metrics.standings import account_standings_refresh

    from .conftest import customer

    judged = customer(csm, name="Judged", mrr="100", ends_in=30, scores=[(90, "green")])
    computed = customer(csm, name="Computed", mrr="100", ends_in=30, scores=[(90, "green")])
    HealthSnapshot.objects.filter(account=judged).update(
        computed_score=48,
        computed_band="red",
        overrides=[
            {
                "id": 1,
                "component": "",
                "score": 90,
                "band": "",
                "reason": "signed",
                "expires_at": "2099-01-01T00:00:00+00:00",
                "created_by": "csm",
            }
        ],
    )
    account_standings_refresh()
    client.force_login(csm)

    def header(account) -> str:
        text = re.sub(r"\s+", " ", client.get(url(account)).content.decode())
        return re.search(r'<div class="stat-band-green"><dt>Health .*?</dd>', text).group(0)

    assert "overridden" in header(judged)
    assert "overridden" not in header(computed)


def test_a_churned_account_says_its_score_is_a_former_customers(client, csm, book):
    account = book["burning"]
    client.force_login(csm)
    assert 'id="churned-note"' not in client.get(url(account)).content.decode()
    account.lifecycle_stage = "churned"
    account.save(update_fields=["lifecycle_stage"])
    text = client.get(url(account)).content.decode()
    assert 'id="churned-note"' in text and "A former customer (churned)" in text


def test_feature_adoption_without_key_features_says_who_chooses_them(
    client, csm, admin_user, book, settings
):
    """No key features chosen (KEY_FEATURES): under the component left without them, an
    admin gets a link to the setting, anyone else is told that an admin chooses them."""
    from metrics.models import HealthSnapshot

    account = book["burning"]
    latest = HealthSnapshot.objects.filter(account=account).latest("day")
    latest.components = [
        *latest.components,
        {
            "key": "adoption",
            "label": "Feature adoption",
            "score": None,
            "weight": 20.0,
            "reason": "feature adoption: no data (…)",
            "measure_points": {"key_feature_adoption": None},
        },
    ]
    latest.save()
    settings.KEY_FEATURES = []
    doc = reverse("workspace:metrics-doc") + "#settings-that-change-the-numbers"

    def note(user) -> str:
        client.force_login(user)
        page = client.get(url(account)).content.decode()
        if 'id="key-features-note"' not in page:
            return ""
        item = page[: page.index('id="key-features-note"')].rsplit("<li>", 1)[1]
        assert "Feature adoption" in item  # under its own component
        return page[page.index('id="key-features-note"') :].split("</p>")[0]

    assert f'<a href="{doc}">' in note(admin_user)
    assert "KEY_FEATURES" in note(admin_user)
    for_csm = note(csm)
    assert "an admin chooses them" in for_csm and "<a " not in for_csm
    settings.KEY_FEATURES = ["report_created"]
    assert note(admin_user) == note(csm) == ""


def test_an_overrides_author_is_named_or_else_given_by_email(csm, outsider):
    """Display names where people have one; the email of someone without a name, or of
    someone no longer in the system, as recorded."""
    from metrics.models import HealthSnapshot
    from workspace.selectors import overrides_shown

    snapshot = HealthSnapshot(
        computed_score=50.0,
        overrides=[
            {"id": n, "component": "", "score": 90, "band": "", "reason": "r",
             "expires_at": "2026-12-25T00:00:00+00:00", "created_by": who}
            for n, who in enumerate([csm.email, outsider.email, "gone@example.com", ""], 1)
        ],
    )  # fmt: skip
    shown = overrides_shown(snapshot)
    assert [o["created_by"] for o in shown] == ["Cleo", outsider.email, "gone@example.com", ""]
    assert {o["until"] for o in shown} == {"24 Dec 2026"}


def _v2_saved_since(account):
    """The review's case on ``account`` (Burning Co: 58 yesterday, 76 a week before, 80 thirty
    days before, all by the default model's v1): an admin saved v2 and rescored the last 30
    days, so yesterday's and the week before's snapshots are v2's (40.2 and 45.0), the one
    30 days back still v1's (80). Returns (v1, v2)."""
    from metrics.models import HealthModel, HealthSnapshot
    from metrics.services import health_model_version_create
    from metrics.standings import account_standings_refresh

    model = HealthModel.objects.get(is_default=True)
    v1 = model.versions.get(active=True)
    components = [dict(c) for c in v1.components]
    components[0]["weight"] += 5
    v2 = health_model_version_create(model=model, components=components)
    yesterday = utc.today() - dt.timedelta(days=1)
    for day, score in ((yesterday, 40.2), (yesterday - dt.timedelta(days=7), 45.0)):
        HealthSnapshot.objects.filter(account=account, day=day).update(
            model_version=v2, score=score, computed_score=score, band="red", computed_band="red"
        )
    account_standings_refresh(account_ids=[account.pk])
    return v1, v2


def test_a_trend_across_a_model_version_says_why_it_is_empty(client, csm, admin_user, book):
    """v2's 40.2 now against v1's 80 thirty days back is no trend ("—"), and the tile says
    it was v1's; the 7-day trend is v2 against v2: 40.2 − 45 = −4.8, shown "−5"."""
    burning = book["burning"]
    v1, v2 = _v2_saved_since(burning)
    back = utc.day_text(utc.today() - dt.timedelta(days=31))
    client.force_login(csm)
    text = client.get(url(burning)).content.decode()
    note = re.search(r'<span[^>]*id="trend-30-version"[^>]*>(.*?</span>.*?)</span>', text).group(1)
    said = f"scored by v1 on {back}, v2 now"
    shown = re.sub(r"<[^>]+>", "", without_notes(note))
    assert shown == f"{said}; an admin can rescore those days to compare"
    assert explanation(note, said) == "a trend compares scores of the same model version"
    assert "trend-30-day" not in text  # no "vs" for a trend not computed
    # 7 days: v2 against v2, vs the week before
    assert 'id="trend-7-version"' not in text and 'id="trend-7-day"' in text
    assert re.search(r'<dd class="trend trend-down"[^>]*>\u22125<span', text)
    # an admin gets the link to the model's versions page, with its rescore offer
    client.force_login(admin_user)
    text = client.get(url(burning)).content.decode()
    versions = reverse("workspace:health-model-versions", args=[v2.model_id])
    assert f'<a href="{versions}?changed={v2.pk}#version-changed">rescore to compare</a>' in text


def test_the_health_history_names_the_version_of_each_day(client, csm, book):
    """The chart's rows carry the model and version of each day, and the page says where
    the version changed: v1's 80 thirty days before yesterday, v2's from a week before it
    (the days between have no snapshot)."""
    burning = book["burning"]
    _v2_saved_since(burning)
    yesterday = utc.today() - dt.timedelta(days=1)
    client.force_login(csm)
    text = client.get(url(burning)).content.decode()
    data = json.loads(re.search(r'id="health-data"[^>]*>(.*?)</script>', text).group(1))
    assert [(r["day"], r["score"], r["model"], r["version"]) for r in data] == [
        ((yesterday - dt.timedelta(days=30)).isoformat(), 80.0, "Default", 1),
        ((yesterday - dt.timedelta(days=7)).isoformat(), 45.0, "Default", 2),
        (yesterday.isoformat(), 40.2, "Default", 2),
    ]
    said = re.search(r'<p[^>]*id="health-versions">(.*?)</p>', text).group(1)
    assert said.startswith(
        f"Scored by Default v1 until {utc.day_text(yesterday - dt.timedelta(days=30))}, "
        f"Default v2 from {utc.day_text(yesterday - dt.timedelta(days=7))}."
    )


def test_one_version_throughout_marks_nothing(client, csm, book):
    client.force_login(csm)
    text = client.get(url(book["burning"])).content.decode()
    assert 'id="health-versions"' not in text and 'id="trend-30-version"' not in text
    data = json.loads(re.search(r'id="health-data"[^>]*>(.*?)</script>', text).group(1))
    assert {(r["model"], r["version"]) for r in data} == {("Default", 1)}


def test_a_renewal_day_already_past_says_how_long_before(client, csm, book):
    """A contract that ended before the data day: "ended N days before", never "-N days"."""
    from metrics.models import AccountStanding

    account = book["burning"]
    standing = AccountStanding.objects.get(account=account)
    standing.renewal_on = standing.day - dt.timedelta(days=1)  # 1 day before the data day
    standing.save(update_fields=["renewal_on"])
    client.force_login(csm)
    text = client.get(url(account)).content.decode()
    assert 'stat-sub">ended 1 day before</span>' in text


def _scored_breakdown(account, *, overrides=(), values=None):
    """Burning Co's latest snapshot rewritten as the default model scores these values
    (docs/metrics.md, Health), as the nightly run stores them. Returns the Health."""
    from metrics import health
    from metrics.models import HealthSnapshot

    latest = HealthSnapshot.objects.filter(account=account).latest("day")
    values = values or {
        "seat_utilisation": 50,  # linear [0, 50]: 50 → 100 points
        "usage_trend": -10,  # thresholds: ≥ −25 → 50 points
        "key_feature_adoption": 70,  # linear [0, 100] → 70
        "open_escalations": 0,  # ≥ 0 → 100
        "tickets_per_100_seats_30d": None,  # no data
        "overdue_invoices": 1,  # ≥ 1 → 40
        "failed_payments_90d": 0,  # ≥ 0 → 100
        "nps": None,
        "csat": None,
        "ces": None,  # sentiment: no data at all, left out
        "champion_present": 1,  # ≥ 1 → 100
        "days_since_last_touch": 52,  # linear [90, 14]: (52 − 90) / (14 − 90) = 0.5 → 50
    }
    h = health.score(latest.model_version.spec(), values, overrides=overrides)
    latest.components = [c.as_json() for c in h.components]
    latest.score, latest.band = h.score, h.band
    latest.computed_score, latest.computed_band = h.computed_score, h.computed_band
    latest.overrides = [o.as_json() for o in h.overrides]
    latest.save()
    return h


def test_the_health_breakdown_shows_how_each_score_is_made(client, csm, book):
    """Each component: its measures' points and their mean (no data left out); below, the
    weighted mean of the components with data:
    usage (100 + 50) / 2 = 75; feature adoption 70; support 100 (tickets: no data);
    payments (40 + 100) / 2 = 70; sentiment no data; relationship (100 + 50) / 2 = 75;
    weights 35 + 20 + 15 + 10 + 10 = 90 without sentiment's 10;
    75 × 35 + 70 × 20 + 100 × 15 + 70 × 10 + 75 × 10 = 2625 + 1400 + 1500 + 700 + 750
    = 6975; 6975 / 90 = 77.5."""
    h = _scored_breakdown(book["burning"])
    assert h.score == 77.5
    client.force_login(csm)
    page = client.get(url(book["burning"])).content.decode()
    for line in (
        "seat utilisation 100 · usage trend 50 → mean 75",
        "key feature adoption 70 → 70",
        "open escalations 100 · tickets per 100 seats no data → 100 "
        "(no data is left out of the mean)",
        "overdue invoices 40 · failed payments 100 → mean 70",
        "NPS no data · CSAT no data · CES no data → no data",
        "champion 100 · last CSM touch 50 → mean 75",
    ):
        assert line in page, line
    total = page[page.index('id="health-total"') :].split("</p>")[0]
    assert total.endswith("Score (75 × 35 + 70 × 20 + 100 × 15 + 70 × 10 + 75 × 10) / 90 = 77.5.")


def test_the_health_breakdown_prints_scores_as_what_changed_does(client, csm, book):
    """A component score that is not whole keeps its decimal, as "what changed" prints it:
    seat utilisation 20 → linear [0, 50]: 20 / 50 = 0.4 → 40 points; usage trend −30 →
    thresholds: ≥ −50 → 25 points; (40 + 25) / 2 = 32.5."""
    values = dict.fromkeys(
        ("key_feature_adoption", "open_escalations", "overdue_invoices", "failed_payments_90d")
    )
    values.update(seat_utilisation=20, usage_trend=-30, nps=None, champion_present=None)
    _scored_breakdown(book["burning"], values=values)
    client.force_login(csm)
    page = client.get(url(book["burning"])).content.decode()
    assert '<span class="component-score">32.5/100</span>' in page
    assert "seat utilisation 40 · usage trend 25 → mean 32.5" in page
    # only usage has data: its weight alone, 32.5 × 35 / 35 = 32.5
    assert "Score (32.5 × 35) / 35 = 32.5." in page


def test_the_health_breakdown_says_which_score_an_override_set(client, csm, book):
    """A component override: usage shows 90 and its working says the computed 75 was
    overridden; the total uses 90: 90 × 35 = 3150; 3150 + 1400 + 1500 + 700 + 750 = 7500;
    7500 / 90 = 83.33… → 83.3. An override of the whole account: the total is the computed
    score, and the shown one is the override's."""
    from metrics import health

    until = "2099-01-01T00:00:00+00:00"
    usage = health.Override(
        id=1, reason="big rollout", expires_at=until, score=90, component="usage"
    )
    _scored_breakdown(book["burning"], overrides=[usage])
    client.force_login(csm)
    page = client.get(url(book["burning"])).content.decode()
    assert (
        "seat utilisation 100 · usage trend 50 → mean 75; the 90 shown comes from the "
        "override below" in page
    )
    assert "Score (90 × 35 + 70 × 20 + 100 × 15 + 70 × 10 + 75 × 10) / 90 = 83.3." in page
    whole = health.Override(id=2, reason="renewal signed", expires_at=until, score=95)
    _scored_breakdown(book["burning"], overrides=[whole])
    page = client.get(url(book["burning"])).content.decode()
    assert (
        "Computed score (75 × 35 + 70 × 20 + 100 × 15 + 70 × 10 + 75 × 10) / 90 = 77.5; "
        "the score shown, 95, comes from the override below." in page
    )
    assert "computed 77.5" in page  # the override's own line agrees


def test_the_priority_and_the_health_history_say_how_they_are_made(client, csm, book):
    """Burning Co (red, 58 yesterday, 76 a week before, 80 thirty days before, renews in 41
    days, $84k ARR). Priority: red 40 + trend 15 (18 points lost, at most 15) + renewal
    25 × (90 − 41) / 90 = 13.61… → 13.6 + ARR 84,000 / 10,000 = 8.4 → 77.0. The history
    chart's text: first, latest, lowest and highest scores with their days. Each trend in
    the header links to how it is computed."""

    day = utc.today() - dt.timedelta(days=1)
    client.force_login(csm)
    text = client.get(url(book["burning"])).content.decode()
    why = re.search(r'<p class="why"><strong>(.*?)</strong>', text).group(1)
    assert explanation(why, "Priority 77") == (
        "40 (red) + 15 (\u221218 in 7 days) + 13.6 (renews in 41 days) + 8.4 ($84k ARR) = 77"
    )
    d30, d7 = utc.day_text(day - dt.timedelta(days=30)), utc.day_text(day)
    assert (
        f'<p class="muted small" id="health-history-text">From 80 on {d30} to 58 on {d7}; '
        f"lowest 58 on {d7}, highest 80 on {d30} (3 scores).</p>"
    ) in text
    assert 'aria-describedby="health-history-text"' in text
    for n in ("7", "30"):
        assert f'<dt>{n} days <a class="hint" href="/docs/metrics/#queue-priority"' in text


def test_a_priority_whose_rules_changed_since_it_was_stored_shows_no_working(csm, book):
    """The working is recomputed from the row's inputs; a stored priority it does not add up
    to (rules changed since the nightly refresh) gets none rather than a wrong sum."""
    from metrics.models import AccountStanding
    from workspace.selectors import priority_working

    standing = AccountStanding.objects.get(account=book["calm"])
    # Calm Inc: green 0, no trend, open-ended, $6k ARR (no points unless red or yellow)
    assert priority_working(standing) == "0 (green) + 0 ($6k ARR) = 0"
    standing.priority = 12.0
    assert priority_working(standing) == ""
    assert priority_working(None) == ""


def test_what_changed_between_two_chosen_days(client, csm, book):
    """Burning Co's snapshots: 80 green 30 days before the day of the data (D), 76 yellow a
    week before, 58 red on D. Choosing D − 30 and D − 7 compares those two: the score fell
    by 4 and crossed the green line; usage, recorded equal to the score, fell with it."""
    day = utc.today() - dt.timedelta(days=1)
    month, week = day - dt.timedelta(days=30), day - dt.timedelta(days=7)
    client.force_login(csm)
    page = client.get(
        url(book["burning"]), {"changes_from": month.isoformat(), "changes_to": week.isoformat()}
    ).content.decode()
    heading = f"What changed from {month:%-d %b %Y} to {week:%-d %b %Y}"
    assert heading in page
    assert "<li>score fell from 80 to 76 (green → yellow)</li>" in page
    assert "<li>usage fell from 80 to 76</li>" in page
    assert f'name="changes_from" value="{month.isoformat()}"' in page
    # the form's htmx request gets the section alone, with the same words
    part = client.get(
        url(book["burning"]),
        {"changes_from": month.isoformat(), "changes_to": ""},
        headers={"HX-Request": "true", "HX-Target": "health-changes"},
    ).content.decode()
    assert part.lstrip().startswith('<div id="health-changes">')
    # an empty to is the newest (D, 58 red): 80 → 58
    assert "<li>score fell from 80 to 58 (green → red)</li>" in part
    assert f"What changed from {month:%-d %b %Y} to {day:%-d %b %Y}" in part


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"changes_from": "yesterday"},
            "From: enter a day as YYYY-MM-DD, got “yesterday”.",
        ),
        (
            {"changes_from": "2024-03-10", "changes_to": "2024-03-01"},
            "From: must be a day before to (2024-03-01), got 2024-03-10.",
        ),
        (
            {"changes_to": "2001-01-01"},
            "To: no health snapshot on or before 2001-01-01; the earliest is of ",
        ),
    ],
)
def test_what_changed_for_days_that_cannot_be_compared_says_why(client, csm, book, params, message):
    client.force_login(csm)
    r = client.get(
        url(book["burning"]), params, headers={"HX-Request": "true", "HX-Target": "health-changes"}
    )
    assert r.status_code == 200
    text = r.content.decode()
    assert message in text
    assert '<ul class="changes">' not in text


def test_feature_adoption_counts_the_30_whole_days_the_health_measures_count(
    client, csm, book, settings
):
    """The table's window is the health usage measures' (``adoption.Days.ending(today)``):
    the UTC days today − 30 … today − 1. Today's partial day and today − 31 are outside it
    (the table once counted from today − 30 through today: 31 days)."""
    from accounts.models import Account, UsageFeatureDaily
    from metrics.kpis import adoption

    from .conftest import utc_today

    settings.KEY_FEATURES = ["only_today", "only_before"]
    account = book["burning"]
    on = utc_today()

    def used(event: str, days_back: int, events: int, users: int) -> None:
        UsageFeatureDaily.objects.create(
            account=account,
            day=on - dt.timedelta(days=days_back),
            event=event,
            events=events,
            users=users,
        )

    used("report_created", 31, 100, 9)  # the day before the window: out
    used("report_created", 30, 4, 2)  # the window's first day: in
    used("report_created", 1, 3, 5)  # yesterday, its last day: in
    used("report_created", 0, 50, 8)  # today, partial: out
    used("only_today", 0, 7, 1)  # a feature used only today: not in the table
    used("only_before", 31, 7, 1)  # only the day before the window: not in the table
    client.force_login(csm)
    r = client.get(url(account))
    # report_created: 2 days (today − 30 and today − 1), peak users max(2, 5) = 5,
    # events 4 + 3 = 7; the 100 events of today − 31 and the 50 of today are left out
    assert r.context["features"] == [
        {"event": "report_created", "days": 2, "peak_users": 5, "events": 7, "key": False}
    ]
    html = r.content.decode()
    heading = html[
        html.index('id="features-window"') : html.index("</h3>", html.index('id="features-window"'))
    ]
    first = on - dt.timedelta(days=30)
    last = on - dt.timedelta(days=1)
    assert f"{first.day} {first:%b %Y} to {last.day} {last:%b %Y}" in heading
    # the same window as the key-feature adoption health measure: neither key feature,
    # used only today or only the day before, counts there either
    assert adoption.key_features_used(Account.objects.filter(pk=account.pk), end=on) == {}


def test_contract_mrr_prints_to_the_cent(client, csm, book):
    """The contracts table prints each contract's MRR to the cent, as the dashboard's
    movements and the drill-down do: $1,234.56, not "$1,235"; $0.40, not "$0"."""
    from decimal import Decimal

    account = book["burning"]
    ContractFactory(account=account, product="Seats", mrr=Decimal("1234.56"))
    ContractFactory(account=account, product="Add-on", mrr=Decimal("0.40"))
    client.force_login(csm)
    html = client.get(url(account)).content.decode()
    table = html[
        html.index('id="contracts-title"') : html.index(
            "</table>", html.index('id="contracts-title"')
        )
    ]
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<th scope="row">([^<]+)</th>.*?<td class="num">([^<]+)</td>', table)
    }
    assert rows["Seats"] == "$1,234.56" and rows["Add-on"] == "$0.40"


def test_a_reason_scored_before_the_one_spelling_of_money_reads_as_today(client, csm, book):
    """The latest snapshot of an account not scored any more keeps the reasons of its day:
    one stored with "(1,485.00 USD due)" shows "($1,485.00 due)", as the reason says it
    now; the snapshot itself is left as recorded."""
    from metrics.models import HealthSnapshot

    _scored_breakdown(book["burning"])
    latest = HealthSnapshot.objects.filter(account=book["burning"]).latest("day")
    payments = next(c for c in latest.components if c["key"] == "payments")
    payments["reason"] = "1 overdue invoice (1,485.00 USD due); no failed payment in 90 days"
    latest.save()
    client.force_login(csm)
    page = client.get(url(book["burning"])).content.decode()
    assert "1 overdue invoice ($1,485.00 due); no failed payment in 90 days" in page
    assert "USD" not in page
    latest.refresh_from_db()
    assert "(1,485.00 USD due)" in next(
        c["reason"] for c in latest.components if c["key"] == "payments"
    )
