"""Which CTA emails a person gets: the settings page (with the weekly digest), honoured when
the emails are queued, and the one-click unsubscribe each CTA email carries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from playbooks import services
from playbooks.models import Cta, CtaEmailKind, CtaEmailOff, Notification
from reports.models import DigestSubscription
from tests.factories import AccountFactory, UserFactory

from .helpers import make_playbook
from .test_opened_emails import _escalated_accounts

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


def _open_for(owners, day, capture):
    make_playbook("ticket_escalated", email_owner=True)
    for owner in owners:
        _escalated_accounts(owner, 1, day)
    with capture(execute=True):
        return services.playbooks_evaluate(as_of=day)["opened"]


def test_an_owner_who_turned_new_cta_emails_off_gets_none(
    day, celery_eager, django_capture_on_commit_callbacks, mailoutbox
):
    quiet, keen = UserFactory(), UserFactory()
    services.cta_email_set(user=quiet, kind=CtaEmailKind.OPENED, on=False)
    assert _open_for([quiet, keen], day, django_capture_on_commit_callbacks) == 2
    # both CTAs opened; only the owner who kept the email on is told by email
    assert Cta.objects.filter(owner=quiet).count() == 1
    assert [m.to for m in mailoutbox] == [[keen.email]]
    message = mailoutbox[0]
    # the email's own unsubscribe: the mail program's button (one POST, RFC 8058) and a line
    url = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Stop these emails: {url}" in message.body
    assert "because a playbook opened a CTA for you" in message.body


def test_one_click_unsubscribe_turns_off_that_kind_only(
    client, day, celery_eager, django_capture_on_commit_callbacks, mailoutbox
):
    owner = UserFactory()
    _open_for([owner], day, django_capture_on_commit_callbacks)
    url = mailoutbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    path = url[url.index("/ctas/emails/") :]
    # a GET (a mail scanner following the link) asks and changes nothing
    page = client.get(path)
    assert page.status_code == 200 and "Stop this email?" in page.content.decode()
    assert not CtaEmailOff.objects.exists()
    # the mail program's one-click POST: no session, no CSRF token
    from django.test import Client

    r = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and "Unsubscribed" in r.content.decode()
    assert services.cta_email_settings(owner) == {"opened": False, "escalated": True}
    # a second click changes nothing; a forged link does nothing
    Client(enforce_csrf_checks=True).post(path)
    assert CtaEmailOff.objects.count() == 1
    assert client.post(path[:-3] + "xx/").status_code == 404
    # the next CTA opened for them sends no email
    _escalated_accounts(owner, 1, day)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.playbooks_evaluate(as_of=day)["opened"] == 1
    assert len(mailoutbox) == 1


def test_a_manager_without_escalation_emails_still_sees_the_notification(
    csm, manager, day, celery_eager, django_capture_on_commit_callbacks, mailoutbox
):
    services.cta_email_set(user=manager, kind=CtaEmailKind.ESCALATED, on=False)
    playbook = make_playbook("ticket_escalated", priority="medium")
    cta = services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="x")
    Cta.objects.filter(pk=cta.pk).update(due_at=timezone.now() - DAYS(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.ctas_escalate_overdue() == 1
    assert Notification.objects.get().user == manager
    assert mailoutbox == []
    # turned back on, the next escalation is emailed, with its own unsubscribe
    services.cta_email_set(user=manager, kind=CtaEmailKind.ESCALATED, on=True)
    other = services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="y")
    Cta.objects.filter(pk=other.pk).update(due_at=timezone.now() - DAYS(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.ctas_escalate_overdue() == 1
    assert [m.to for m in mailoutbox] == [[manager.email]]
    assert "List-Unsubscribe" in mailoutbox[0].extra_headers
    assert "because you manage the CTAs' owners" in mailoutbox[0].body


def test_the_settings_page_shows_and_saves_every_email(client, csm):
    client.force_login(csm)
    url = reverse("reports:notifications")
    home = client.get(reverse("workspace:dashboard")).content.decode()
    assert f'href="{url}"' in home  # in the user menu, beside the name
    page = client.get(url).content.decode()
    assert "Send me the weekly digest" in page
    for kind in CtaEmailKind:
        assert kind.label in page
    # where an escalation shows without its email: the CTAs page, named as the nav names it
    ctas = reverse("playbooks:cta-list")
    assert f'still shows on the <a href="{ctas}?escalated=me">CTAs</a> page, under' in page
    assert "notifications here" not in page
    assert 'name="cta_opened" checked' in page.replace('id="id_cta_opened" ', "")
    # the digest on, new CTA emails off, escalations on
    r = client.post(url, {"weekly": "on", "cta_escalated": "on"})
    assert r.status_code == 302
    assert DigestSubscription.objects.get(user=csm).weekly is True
    assert services.cta_email_settings(csm) == {"opened": False, "escalated": True}
    # and all off
    client.post(url, {})
    assert DigestSubscription.objects.get(user=csm).weekly is False
    assert services.cta_email_settings(csm) == {"opened": False, "escalated": False}
    page = client.get(url).content.decode()
    assert " checked" not in page


def test_an_unknown_kind_is_refused():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="no CTA email is called 'closed'"):
        services.cta_email_set(user=UserFactory(), kind="closed", on=False)
