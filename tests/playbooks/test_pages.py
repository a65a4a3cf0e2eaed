"""Pages: admin-only playbook list and editor (403 for CSMs), field errors in the editor,
the CTA page and the queue row with its htmx actions, visible only to those who see the
account (404 otherwise); query ceilings on the lists."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import utc
from playbooks import services
from playbooks.models import Cta, CtaStatus, Playbook
from tests.factories import AccountFactory

from .helpers import make_playbook

pytestmark = pytest.mark.django_db


@pytest.fixture
def cta(csm):
    return services.cta_open(
        playbook=make_playbook("ticket_escalated"), account=AccountFactory(owner=csm),
        evidence="1 open escalated ticket",
    )  # fmt: skip


def test_playbook_pages_are_for_admins_only(client, csm, manager):
    for user in (csm, manager):
        client.force_login(user)
        assert client.get(reverse("playbooks:list")).status_code == 403
        assert client.get(reverse("playbooks:create")).status_code == 403


def test_playbook_list_shows_effectiveness_with_a_fixed_number_of_queries(
    client, admin_user, csm, django_assert_max_num_queries
):
    for _ in range(5):
        playbook = make_playbook("ticket_escalated")
        services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="x")
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        r = client.get(reverse("playbooks:list"))
    assert r.status_code == 200
    assert r.content.decode().count('id="playbook-') == 5


def test_the_editor_refuses_bad_input_with_field_errors(client, admin_user):
    client.force_login(admin_user)
    form = {
        "name": "Quiet", "trigger": "no_activity", "trigger_params": '{"days": -2, "weeks": 1}',
        "cta_title": "Reach out", "cta_type": "risk", "priority": "medium",
        "steps": "1 | Call\n3 | ", "owner_rule": "account_csm", "success": "touched",
        "success_params": "", "success_days": "14", "cooldown_days": "-1", "enabled": "on",
    }  # fmt: skip
    r = client.post(reverse("playbooks:create"), form)
    assert r.status_code == 200
    page = html.unescape(r.content.decode())
    assert "unknown parameter 'weeks'" in page
    assert "days: must not be negative, got -2" in page
    assert "step 2: a title is required" in page
    assert "must not be negative, got -1" in page
    assert not Playbook.objects.exists()
    r = client.post(reverse("playbooks:create"), {**form, "trigger_params": "{days"})
    assert "not valid JSON" in r.content.decode()
    assert "step 2: a title is required" in r.content.decode()  # the rest checked too
    good = {
        **form,
        "trigger_params": '{"days": 30}',
        "steps": "1 | Call\n3 | Write",
        "cooldown_days": "7",
    }
    r = client.post(reverse("playbooks:create"), good)
    assert r.status_code == 302
    playbook = Playbook.objects.get()
    assert playbook.steps == [{"title": "Call", "due_days": 1}, {"title": "Write", "due_days": 3}]
    r = client.post(reverse("playbooks:edit", args=[playbook.pk]), {**good, "name": "Quieter"})
    assert r.status_code == 302
    playbook.refresh_from_db()
    assert playbook.name == "Quieter" and playbook.version == 2
    assert client.get(reverse("playbooks:edit", args=[playbook.pk])).status_code == 200


def test_cta_page_for_those_who_see_the_account(client, cta, csm, manager, outsider):
    url = reverse("playbooks:cta-detail", args=[cta.pk])
    for user in (csm, manager):
        client.force_login(user)
        r = client.get(url)
        assert r.status_code == 200 and "1 open escalated ticket" in r.content.decode()
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    r = client.post(reverse("playbooks:cta-status", args=[cta.pk]), {"status": "done"})
    assert r.status_code == 404
    assert Cta.objects.get().status == CtaStatus.OPEN


def test_queue_row_actions_over_htmx(client, cta, csm):
    client.force_login(csm)
    htmx = {"HX-Request": "true"}
    r = client.post(reverse("playbooks:cta-complete", args=[cta.pk]), headers=htmx)
    assert r.status_code == 200
    body = r.content.decode()
    assert body.lstrip().startswith(f'<tr id="cta-{cta.pk}">') and "<html" not in body
    assert "ctaChanged" in r.headers["HX-Trigger"]
    assert cta.steps.filter(done_at__isnull=False).count() == 1
    r = client.post(
        reverse("playbooks:cta-snooze", args=[cta.pk]), {"until": "2000-01-01"}, headers=htmx
    )
    body = html.unescape(r.content.decode())
    assert r.status_code == 200 and f"Snooze until: pick a day after today ({utc.today()})" in body
    # one of two steps is open: closing asks first (the page again), then skips it
    r = client.post(reverse("playbooks:cta-status", args=[cta.pk]), {"status": "done"})
    assert r.status_code == 200 and "Close this CTA with open steps?" in r.content.decode()
    assert Cta.objects.get().status == CtaStatus.IN_PROGRESS  # not closed
    r = client.post(
        reverse("playbooks:cta-status", args=[cta.pk]), {"status": "done", "skip_open_steps": "1"}
    )
    assert r.status_code == 302
    assert Cta.objects.get().status == CtaStatus.DONE


def test_the_close_question_is_a_dialog_named_described_and_tied_to_its_button(client, cta, csm):
    """The question "Close CTA as done…" asks with steps open: a dialog (alertdialog) named
    by its heading, described by the open steps, its heading focused on load (autofocus),
    naming the button that asked (data-opener: app.js gives it the focus back), and the
    note typed kept in the note field for when it is closed."""
    client.force_login(csm)
    r = client.post(
        reverse("playbooks:cta-status", args=[cta.pk]), {"status": "done", "note": "a <b> note"}
    )
    body = r.content.decode()
    dialog = re.search(r"<dialog [^>]*>", body)
    assert dialog, "no dialog"
    tag = dialog.group(0)
    for attribute in (
        'role="alertdialog"',
        'aria-labelledby="confirm-title"',
        'aria-describedby="confirm-what"',
        f'data-opener="cta-{cta.pk}-close-done"',
        " open>",
    ):
        assert attribute in tag, attribute
    assert (
        '<h2 id="confirm-title" tabindex="-1" autofocus>Close this CTA with open steps?</h2>'
        in body
    )
    described = re.search(r'<p id="confirm-what">([^<]*)</p>', body).group(1)
    steps = cta.steps.count()  # none done yet: every one is open
    assert described.startswith(f"{steps} of {steps} steps are still open: ")
    button = re.search(rf'<button [^>]*id="cta-{cta.pk}-close-done"[^>]*>([^<]*)</button>', body)
    assert button and button.group(1) == "Close CTA as done…"
    assert (
        'id="close-note" name="note" placeholder="Note (optional)" value="a &lt;b&gt; note"' in body
    )
    assert body.count('value="a &lt;b&gt; note"') == 2  # and the dialog's hidden note
    # the CTA page itself asks nothing
    page = client.get(reverse("playbooks:cta-detail", args=[cta.pk])).content.decode()
    assert "<dialog" not in page and f'id="cta-{cta.pk}-close-done"' in page


def test_cta_list_with_a_fixed_number_of_queries(client, csm, django_assert_max_num_queries):
    playbook = make_playbook("ticket_escalated")
    for _ in range(6):
        services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="x")
    client.force_login(csm)
    with django_assert_max_num_queries(8):
        r = client.get(reverse("playbooks:cta-list"))
    page = r.content.decode()
    assert page.count('<tr id="cta-') == 6
    # on the list, where no account is the context, each CTA links its account's page
    for cta in Cta.objects.all():
        assert f'href="{reverse("workspace:account", args=[cta.account_id])}"' in page


def _field_errors(page: str) -> dict[str, list[str]]:
    """The editor's errors by field (``<ul class="field-error" id="id_<field>_error">``)."""
    return {
        name: [html.unescape(e) for e in re.findall(r"<li>(.*?)</li>", items)]
        for name, items in re.findall(
            r'<ul class="field-error" id="id_(\w+)_error">(.*?)</ul>', page, re.S
        )
    }


def test_the_editor_shows_every_error_at_once_beside_its_field_in_its_words(client, admin_user):
    """A field that did not parse (bad JSON) keeps its error, and every other field is
    checked in the same submit; messages use the form's labels and quote what was typed."""
    client.force_login(admin_user)
    form = {
        "name": "Quiet champion test", "trigger": "no_activity", "trigger_params": "{days: 30}",
        "arr_min": "50000", "arr_max": "1000", "cta_title": "Re-engage", "cta_type": "risk",
        "priority": "high", "steps": "Call the champion\n3 | Send recap\nabc | Review",
        "owner_rule": "named_user", "owner_user": "", "success": "score_at_least",
        "success_params": "", "success_days": "30", "cooldown_days": "30", "enabled": "on",
    }  # fmt: skip
    r = client.post(reverse("playbooks:create"), form)
    assert r.status_code == 200
    errors = _field_errors(r.content.decode())
    assert errors["trigger_params"][0].startswith("not valid JSON")
    assert len(errors["trigger_params"]) == 1  # no "days: required" for the unparsed JSON
    assert errors["arr_max"] == ["ARR at most (1,000) is below ARR at least (50,000)"]
    assert errors["owner_user"] == ["choose the user who owns these CTAs"]
    assert errors["steps"] == ["step 3: the due days 'abc' is not a whole number"]
    assert any(
        "'score' is required" in e or "score: required" in e for e in errors["success_params"]
    )
    assert not Playbook.objects.exists()
    r = client.post(
        reverse("playbooks:create"),
        {**form, "trigger_params": '{"dayz": 30}', "arr_max": "", "owner_rule": "account_csm",
         "steps": "1 | Call", "success": "touched"},
    )  # fmt: skip
    assert _field_errors(r.content.decode()) == {
        "trigger_params": [
            "unknown parameter 'dayz' for the trigger 'No CSM activity in N days'; it takes: days",
            "days: required for the trigger 'No CSM activity in N days'",
        ]
    }


def test_a_playbook_takes_only_segments_that_accounts_have(client, admin_user):
    """A misspelt segment would never match: the editor offers the segments accounts have
    as boxes to tick, and the services refuse one no account has, naming those that exist."""
    AccountFactory(segment="Enterprise")
    AccountFactory(segment="SMB")
    client.force_login(admin_user)
    page = client.get(reverse("playbooks:create")).content.decode()
    assert 'type="checkbox" name="segments" value="Enterprise"' in page
    assert 'value="SMB"' in page
    config = {
        "name": "Big accounts", "trigger": "no_activity", "trigger_params": {"days": 30},
        "cta_title": "Reach out", "cta_type": "risk", "priority": "medium",
        "steps": [{"title": "Call", "due_days": 1}], "owner_rule": "account_csm",
        "success": "touched", "success_days": 14, "cooldown_days": 30,
    }  # fmt: skip
    with pytest.raises(ValidationError) as info:
        services.playbook_create(config={**config, "segments": ["Entreprise", "SMB"]})
    assert info.value.message_dict["segments"] == [
        "no account has segment 'Entreprise'; the segments are: Enterprise, SMB"
    ]
    playbook = services.playbook_create(config={**config, "segments": ["Enterprise"]})
    r = client.post(
        reverse("playbooks:edit", args=[playbook.pk]),
        {"name": "Big", "trigger": "no_activity", "trigger_params": '{"days": 30}',
         "segments": ["Entreprise"], "cta_title": "Reach out", "cta_type": "risk",
         "priority": "medium", "steps": "1 | Call", "owner_rule": "account_csm",
         "success": "touched", "success_days": "14", "cooldown_days": "30"},
    )  # fmt: skip
    assert r.status_code == 200 and "segments" in _field_errors(r.content.decode())
    # a saved segment no account has any more does not block an unrelated change
    Playbook.objects.filter(pk=playbook.pk).update(segments=["Retired"])
    playbook.refresh_from_db()
    assert services.playbook_update(playbook=playbook, config={"enabled": False}).version == 2


def test_playbook_list_and_cta_page_show_triggers_and_success_in_words(client, admin_user, csm):
    playbook = make_playbook(
        "survey_unhappy", {"kinds": ["nps", "csat", "ces"]}, name="Unhappy answers",
        success="health_band_at_least", success_params={"band": "green"},
    )  # fmt: skip
    make_playbook("payment_trouble", {"overdue": True}, name="Payments")
    cta = services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="x")
    client.force_login(admin_user)
    page = html.unescape(client.get(reverse("playbooks:list")).content.decode())
    assert "A detractor / low CSAT / high-effort CES answer" in page
    assert "NPS, CSAT, CES" in page and "an overdue invoice also fires" in page
    assert "survey_unhappy" not in page and "['nps'" not in page and "True" not in page
    page = client.get(reverse("playbooks:cta-detail", args=[cta.pk])).content.decode()
    assert "Health back to a band (green) by" in page and "health_band_at_least" not in page


def test_a_failed_snooze_on_the_cta_page_lands_back_on_the_cta_page(client, cta, csm, outsider):
    client.force_login(csm)
    url = reverse("playbooks:cta-snooze", args=[cta.pk])
    detail = reverse("playbooks:cta-detail", args=[cta.pk])
    r = client.post(url, {"until": "2000-01-01"}, follow=True)
    assert r.redirect_chain == [(detail, 302)]
    body = html.unescape(r.content.decode())
    assert f"Snooze until: pick a day after today ({utc.today()})" in body
    assert "snoozed_until" not in body
    # the action's address opened by itself (a typed or saved address): still 405 (the
    # security matrix), but a page that leads to the CTA, not an empty body
    for name in ("cta-snooze", "cta-complete", "cta-status", "cta-comment", "cta-reassign"):
        r = client.get(reverse(f"playbooks:{name}", args=[cta.pk]))
        assert r.status_code == 405 and r["Allow"] == "POST"
        assert f'href="{detail}"' in r.content.decode()
    client.force_login(outsider)
    r = client.get(url)
    assert r.status_code == 405 and cta.title not in r.content.decode()


def test_snooze_a_week_never_brings_a_cta_back_sooner(client, cta, csm):
    client.force_login(csm)
    url = reverse("playbooks:cta-snooze", args=[cta.pk])
    today = utc.today()
    client.post(url, {"week": "1"}, headers={"HX-Request": "true"})
    assert Cta.objects.get().snoozed_until == today + dt.timedelta(days=7)
    services.cta_snooze(cta=cta, until=today + dt.timedelta(days=20))
    r = client.post(url, {"week": "1"}, headers={"HX-Request": "true"})
    assert Cta.objects.get().snoozed_until == today + dt.timedelta(days=27)
    assert "Snooze a week more" in r.content.decode()


def test_a_closed_cta_shows_no_snooze(client, cta, csm):
    services.cta_snooze(cta=cta, until=utc.today() + dt.timedelta(days=5))
    services.cta_close(cta=cta, status="done")
    client.force_login(csm)
    page = client.get(reverse("playbooks:cta-detail", args=[cta.pk])).content.decode()
    assert "Snoozed until" not in page
    page = client.get(reverse("playbooks:cta-list") + "?status=done").content.decode()
    assert f'<tr id="cta-{cta.pk}">' in page and "snoozed until" not in page


def test_a_step_done_from_the_account_page_marks_its_step_there(client, cta, csm):
    """The account page lists each CTA's steps in a row under it: the row action sends that
    row again, out of band, so the step done shows struck through beside the new count."""
    client.force_login(csm)
    account_page = reverse("workspace:account", args=[cta.account_id])
    step = cta.steps.order_by("position").first()
    r = client.post(
        reverse("playbooks:cta-complete", args=[cta.pk]),
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{account_page}"},
    )
    body = r.content.decode()
    assert f'<tr class="cta-steps" id="cta-{cta.pk}-steps" hx-swap-oob="true">' in body
    assert f"<s>{step.title}</s>" in body
    # elsewhere (the queue, the CTA list) there is no steps row to replace
    r = client.post(
        reverse("playbooks:cta-complete", args=[cta.pk]),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/ctas/"},
    )
    assert "cta-steps" not in r.content.decode()


def _cells(response, cta) -> list[str]:
    """The texts of the Due cells of ``cta``'s rows on a page."""
    return re.findall(
        rf'<tr id="cta-{cta.pk}">.*?data-label="Due">([^<]*)</td>', response.content.decode(), re.S
    )


def test_every_page_says_a_ctas_due_instant_the_same_way(client, csm, cta):
    """The queue, the account page, the CTA list and the CTA page all print the day the CTA
    is due by. With its last step due on L, ``due_at`` is 00:00 UTC of L + 1 (the end of
    L): every page says "by L", none "L + 1, 00:00"."""
    from metrics.standings import account_standings_refresh

    account_standings_refresh()  # the queue lists accounts with a standing
    last = cta.steps.order_by("position").last().due_on
    assert cta.due_at == dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    expected = f"by {utc.day_text(last)}"
    client.force_login(csm)
    for page in (
        reverse("home"),
        reverse("workspace:account", args=[cta.account_id]),
        reverse("playbooks:cta-list"),
    ):
        assert _cells(client.get(page), cta) == [expected], page
    detail = html.unescape(
        client.get(reverse("playbooks:cta-detail", args=[cta.pk])).content.decode()
    )
    assert f"<dt>Due</dt><dd>{expected} <span" in detail
    assert utc.day_text(last + dt.timedelta(days=1)) not in detail.split("<dt>Due</dt>")[1][:200]


def test_a_due_instant_within_a_day_keeps_its_time(client, csm, cta):
    """A CTA due at 14:05 UTC (a snooze, a due time by urgency) is due by that time of that
    day, on the list and its page alike."""
    at = dt.datetime.combine(utc.today() + dt.timedelta(days=3), dt.time(14, 5), tzinfo=dt.UTC)
    Cta.objects.filter(pk=cta.pk).update(due_at=at)
    expected = f"by {utc.day_text(at.date())}, 14:05 UTC"  # today + 3, at 14:05
    client.force_login(csm)
    assert _cells(client.get(reverse("playbooks:cta-list")), cta) == [expected]
    detail = client.get(reverse("playbooks:cta-detail", args=[cta.pk])).content.decode()
    assert f"<dt>Due</dt><dd>{expected}" in detail


def test_cta_page_says_its_times_of_day_are_utc(client, cta, csm):
    """The page prints when the CTA opened and each comment with a time of day: in UTC,
    and saying so (a CSM in Berlin would read a bare 22:30 as their own time)."""
    # opened 2026-03-29T00:30:00+02:00 in Berlin: 00:30 − 2 h = 22:30 UTC on 28 March
    Cta.objects.filter(pk=cta.pk).update(opened_at=dt.datetime(2026, 3, 28, 22, 30, tzinfo=dt.UTC))
    client.force_login(csm)
    body = client.get(reverse("playbooks:cta-detail", args=[cta.pk])).content.decode()
    assert "<dt>Opened</dt><dd>28 Mar 2026, 22:30 UTC</dd>" in body
