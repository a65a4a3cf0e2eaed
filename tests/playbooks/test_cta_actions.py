"""The CTA page's actions as a CSM and a manager use them: steps and the CTA closed with
distinct buttons, closing with open steps asks and then shows them skipped, a pending CTA
is started explicitly over the cap, "Complete next step" names the step, the due date's
rule is said, payment CTAs name what fired, and a manager gives CTAs to their team."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F
from django.urls import reverse

from accounts import utc
from accounts.models import Role, User
from playbooks import services
from playbooks.models import Cta, CtaStatus
from playbooks.starters import STARTERS
from tests.conftest import _user
from tests.factories import AccountFactory, InvoiceFactory, UserFactory

from .helpers import make_playbook

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


@pytest.fixture
def cta(csm):
    """Steps "Call" (due today) and "Follow up" (due in 7 days)."""
    return services.cta_open(
        playbook=make_playbook("ticket_escalated", priority="medium"),
        account=AccountFactory(owner=csm),
        evidence="1 open escalated ticket",
    )


def _page(client, cta) -> str:
    return html.unescape(
        client.get(reverse("playbooks:cta-detail", args=[cta.pk])).content.decode()
    )


def _buttons(body: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", b).strip()
        for b in re.findall(r"<button[^>]*>(.*?)</button>", body, re.S)
    ]


def test_step_and_cta_buttons_are_named_apart(client, csm, cta):
    client.force_login(csm)
    buttons = _buttons(_page(client, cta))
    assert buttons.count("Mark step done") == 2
    assert "Close CTA as done…" in buttons and "Done" not in buttons


def test_the_cta_page_says_it_is_due_with_its_last_step(client, csm, cta):
    client.force_login(csm)
    body = _page(client, cta)
    last = cta.steps.order_by("position").last().due_on
    assert cta.due_at.date() == last + DAYS(1)  # by the end of the last step's day
    assert f"due {last:%-d %b %Y}" in body
    # stored as 00:00 UTC of last + 1, the end of the last step's day: "by <last>"
    assert f"<dd>by {last:%-d %b %Y} <span" in body
    assert "00:00" not in body
    assert "with its last step: a CTA is due when its steps are done" in body


def test_a_late_step_is_marked_overdue_before_the_cta_is(client, csm, cta):
    """The CTA is due with its last step (in 7 days); its first step ("Call", due today)
    turns overdue the day after, on the CTA page and on the account page's steps row,
    while the CTA itself is not overdue yet. A done step is never overdue."""
    first, second = cta.steps.order_by("position")
    assert first.due_on == utc.today() and second.due_on == first.due_on + DAYS(7)
    client.force_login(csm)
    body = _page(client, cta)
    assert "step-overdue" not in body  # due today: not late yet
    cta.steps.update(due_on=F("due_on") - DAYS(1))  # a day later, as it were
    cta.due_at -= DAYS(1)
    cta.save(update_fields=["due_at"])
    body = _page(client, cta)
    assert body.count('class="text-danger small step-overdue"') == 1
    late = 'Call <span class="muted small">due {:%-d %b %Y}</span> <span class="text-danger small'
    assert late.format(first.due_on - DAYS(1)) in body
    assert "<dd>by" in body and '<span class="text-danger">overdue</span>' not in body
    account = html.unescape(
        client.get(reverse("workspace:account", args=[cta.account_id])).content.decode()
    )
    assert account.count("step-overdue") == 1
    first.refresh_from_db()
    services.cta_step_complete(cta=cta, step=first, user=csm)
    assert "step-overdue" not in _page(client, cta)


def test_closing_with_an_open_step_asks_then_shows_it_skipped(client, csm, cta):
    client.force_login(csm)
    first, second = cta.steps.order_by("position")
    client.post(reverse("playbooks:cta-step-complete", args=[cta.pk, first.pk]))
    url = reverse("playbooks:cta-status", args=[cta.pk])
    r = client.post(url, {"status": "done", "note": "sorted"})
    body = html.unescape(r.content.decode())
    assert r.status_code == 200 and "Close this CTA with open steps?" in body
    assert f"1 of 2 steps is still open: “{second.title}”" in body
    assert 'name="note" value="sorted"' in body  # the note is kept for the confirmation
    assert Cta.objects.get(pk=cta.pk).status == CtaStatus.IN_PROGRESS
    assert (
        client.post(url, {"status": "done", "note": "sorted", "skip_open_steps": "1"}).status_code
        == 302
    )
    cta.refresh_from_db()
    assert (cta.status, cta.close_note) == (CtaStatus.DONE, "sorted")
    body = _page(client, cta)
    item = body[body.index(f'id="cta-{cta.pk}-step-{second.pk}"') :]
    item = item[: item.index("</li>")]
    assert "skipped" in item and "due " not in item
    assert "Mark step done" not in body
    entry = cta.account.timeline.get(key=f"cta:{cta.pk}:closed")
    assert "1 of 2 steps skipped" in entry.title and entry.data["skipped"] == [second.title]


def test_the_service_refuses_an_unconfirmed_close_with_open_steps(cta, csm):
    with pytest.raises(services.OpenStepsError) as info:
        services.cta_close(cta=cta, status=CtaStatus.DONE, user=csm, skip_open_steps=False)
    assert "2 of 2 steps are still open" in info.value.messages[0]
    services.cta_close(cta=cta, status=CtaStatus.CANCELLED, user=csm, skip_open_steps=False)
    assert Cta.objects.get(pk=cta.pk).status == CtaStatus.CANCELLED  # cancelling: no question


@pytest.fixture
def pending(csm, settings):
    settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM = 1
    account = AccountFactory(owner=csm)
    services.cta_open(playbook=make_playbook("ticket_escalated", priority="low"),
                      account=account, evidence="x")  # fmt: skip
    cta = services.cta_open(
        playbook=make_playbook("ticket_escalated", priority="low"), account=account, evidence="y"
    )
    assert cta.status == CtaStatus.PENDING
    return cta


def test_a_pending_cta_is_started_explicitly_over_the_cap(client, csm, pending):
    client.force_login(csm)
    # the queue's row: no "Complete next step" on a CTA waiting over the cap
    row = client.post(
        reverse("playbooks:cta-snooze", args=[pending.pk]),
        {"week": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert f'<tr id="cta-{pending.pk}">' in row and "Complete next step" not in row
    body = _page(client, pending)
    assert "Start this CTA now (over your cap of 1)" in _buttons(body)
    assert "Mark step done" not in body
    # the step's address posted anyway: refused, nothing changes
    r = client.post(reverse("playbooks:cta-complete", args=[pending.pk]), follow=True)
    assert "start it first" in html.unescape(r.content.decode())
    pending.refresh_from_db()
    assert pending.status == CtaStatus.PENDING
    assert not pending.steps.filter(done_at__isnull=False).exists()
    client.post(reverse("playbooks:cta-status", args=[pending.pk]), {"status": "in_progress"})
    pending.refresh_from_db()
    assert pending.status == CtaStatus.IN_PROGRESS
    assert Cta.objects.filter(owner=csm).active().count() == 2  # over the cap, on purpose


def test_a_manager_sees_the_start_button_name_the_owners_cap(client, manager, pending):
    client.force_login(manager)
    assert "Start this CTA now (over Cleo" in _page(client, pending)


def test_the_service_refuses_a_step_of_a_pending_cta(pending, csm):
    with pytest.raises(ValidationError) as info:
        services.cta_step_complete(cta=pending, step=pending.steps.first(), user=csm)
    assert "start it first" in info.value.message_dict["status"][0]


def test_complete_next_step_names_the_step_it_completed(client, csm, cta):
    client.force_login(csm)
    r = client.post(
        reverse("playbooks:cta-complete", args=[cta.pk]), headers={"HX-Request": "true"}
    )
    assert "Step 1 done: Call" in r.content.decode()
    # said in the page's live region too (the queue re-reading itself wipes the row's)
    events = json.loads(r["HX-Trigger"])
    assert events["ctaChanged"] == {"account_id": cta.account_id}
    assert events["announced"]["message"].startswith(f"Step 1 done: Call ({cta.title}, ")
    r = client.post(reverse("playbooks:cta-complete", args=[cta.pk]), follow=True)
    assert "Step 2 done: Follow up" in r.content.decode()


def test_a_snooze_and_a_refused_action_announce_only_what_happened(client, csm, cta):
    client.force_login(csm)
    url = reverse("playbooks:cta-snooze", args=[cta.pk])
    r = client.post(url, {"week": "1"}, headers={"HX-Request": "true"})
    cta.refresh_from_db()
    message = json.loads(r["HX-Trigger"])["announced"]["message"]
    assert message.startswith(f"Snoozed until {utc.day_text(cta.snoozed_until)} (")
    # a refused snooze: the row's alert says why; nothing is announced, nothing changed
    r = client.post(url, {"until": "not a day"}, headers={"HX-Request": "true"})
    assert 'role="alert"' in r.content.decode() and "HX-Trigger" not in r


def test_a_payment_cta_names_what_fired_it(csm, day):
    playbook = services.playbook_create(config=STARTERS["failed-payment"])
    overdue, failed = AccountFactory(owner=csm), AccountFactory(owner=csm)
    InvoiceFactory(account=overdue, issued_on=day - DAYS(40), due_on=day - DAYS(10))
    InvoiceFactory(account=failed, issued_on=day - DAYS(10), due_on=day + DAYS(20),
                   status="failed", failed_attempts=1)  # fmt: skip
    services.playbooks_evaluate(as_of=day, playbooks=[playbook])
    by_overdue = Cta.objects.get(account=overdue)
    assert by_overdue.title == "Sort out a payment problem (overdue invoice)"
    assert "failed" not in by_overdue.title and "1 overdue invoice" in by_overdue.evidence
    assert Cta.objects.get(account=failed).title == "Sort out a payment problem (failed payment)"


@pytest.fixture
def team(manager, csm):
    """The manager's other reports, a CSM of another manager, an inactive report."""
    return {
        "priya": _user("priya@example.com", Role.CSM, first_name="Priya", manager=manager),
        "sam": _user("sam@example.com", Role.CSM, first_name="Sam", manager=manager),
        "other": _user("other@example.com", Role.CSM, manager=UserFactory()),
        "gone": _user("gone@example.com", Role.CSM, manager=manager, is_active=False),
    }


def _choices(client, cta) -> set[str]:
    """The emails of the users the page's "Reassign to" offers."""
    body = _page(client, cta)
    select = body[body.index('id="reassign-owner"') :]
    ids = re.findall(r'<option value="(\d+)"', select[: select.index("</select>")])
    return set(User.objects.filter(pk__in=ids).values_list("email", flat=True))


def test_a_manager_reassigns_to_anyone_in_their_team(client, manager, csm, team, admin_user, cta):
    client.force_login(manager)
    choices = _choices(client, cta)
    assert {
        "priya@example.com",
        "sam@example.com",
        "csm@example.com",
        "manager@example.com",
    } <= choices
    assert "other@example.com" not in choices and "gone@example.com" not in choices
    r = client.post(reverse("playbooks:cta-reassign", args=[cta.pk]), {"owner": team["priya"].pk})
    assert r.status_code == 302
    cta.refresh_from_db()
    assert cta.owner == team["priya"]
    # Priya does not own the account, yet the CTA given to her is hers to see and work
    client.force_login(team["priya"])
    body = _page(client, cta)
    assert cta.title in body
    assert reverse("workspace:account", args=[cta.account_id]) not in body  # not her account
    assert client.get(reverse("workspace:account", args=[cta.account_id])).status_code == 404
    client.post(reverse("playbooks:cta-complete", args=[cta.pk]))
    assert cta.steps.filter(done_at__isnull=False, done_by=team["priya"]).count() == 1
    # ... and another team's CSM still gets 404
    client.force_login(team["other"])
    assert client.get(reverse("playbooks:cta-detail", args=[cta.pk])).status_code == 404


def test_a_manager_cannot_give_a_cta_outside_their_team(manager, team, cta):
    with pytest.raises(ValidationError) as info:
        services.cta_reassign(cta=cta, owner=team["other"], user=manager)
    assert "cannot see this account" in info.value.message_dict["owner"][0]


def test_a_csm_reassigns_as_before_and_an_admin_to_anyone_active(
    client, csm, manager, admin_user, team, cta
):
    client.force_login(csm)
    assert _choices(client, cta) == {"admin@example.com", "csm@example.com", "manager@example.com"}
    with pytest.raises(ValidationError):
        services.cta_reassign(cta=cta, owner=team["priya"], user=csm)
    client.force_login(admin_user)
    choices = _choices(client, cta)
    assert {"priya@example.com", "sam@example.com", "other@example.com"} <= choices
    assert "gone@example.com" not in choices


def test_one_open_step_of_one_is_said_in_the_singular():
    from playbooks.models import CtaStep

    step = CtaStep(title="Call the champion", due_on=dt.date(2026, 3, 2))
    assert services.open_steps_words([step], 1) == (
        "1 of 1 step is still open: “Call the champion” (due 2 Mar 2026). Closing the CTA as "
        "done marks it skipped"
    )
