"""The weekly digest as its recipient reads it: the week it covers in the subject, days as
pages print them, account names as text in both parts, long sections cut with a count of the
rest and a link, nothing sent when there is nothing to say, and an unsubscribe the mail
program can use with one click."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from accounts.models import TimelineEntry
from outbox.models import Message
from playbooks.models import Cta, Playbook
from reports import services
from reports.models import DigestSubscription
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 23)  # a Monday: the digest covers 16–22 Nov 2026 (ISO week 47)


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _band_change(account, day: dt.date) -> None:
    TimelineEntry.objects.create(
        account=account,
        kind="health_band_changed",
        key=f"health-band:{day}",
        occurred_at=_at(day),
        data={"from": "yellow", "to": "red", "as_of": day.isoformat()},
    )


def _overdue_cta(playbook, account, owner, title: str) -> Cta:
    opened = dt.date(2026, 11, 1)
    return Cta.objects.create(
        playbook=playbook,
        playbook_version=1,
        account=account,
        owner=owner,
        title=title,
        cta_type="risk",
        priority="high",
        status="open",
        evidence="by hand",
        opened_at=_at(opened),
        opened_on=opened,
        due_at=_at(dt.date(2026, 11, 10)),
        followup_on=opened,
        success_deadline=dt.date(2026, 11, 10),
    )


def _digest(user) -> dict:
    return Message.objects.get(source="digest", payload__to=[user.email]).payload


@pytest.fixture
def site(settings):
    settings.SITE_URL = "https://cs.example.com"


def test_the_subject_names_the_week_covered_and_days_read_as_pages_print_them(csm, site):
    """Sent on Monday 23 Nov (ISO week 48) about 16–22 Nov: "week 48" named the week of
    the sending day, not the one the digest is about."""
    _band_change(AccountFactory(name="Alpha", owner=csm), dt.date(2026, 11, 20))
    assert services.digest_send(csm, today=TODAY)
    payload = _digest(csm)
    assert payload["subject"] == "Your weekly customer success digest, 16–22 Nov 2026"
    assert "- Alpha: yellow -> red on 20 Nov 2026" in payload["text"]
    assert "2026-11-20" not in payload["text"]
    assert "Alpha: yellow → red on 20 Nov 2026" in payload["html"]
    assert "Your week: 16–22 Nov 2026." in payload["text"]


def test_account_names_are_text_in_the_html_part_and_plain_in_the_text_part(csm, site):
    _band_change(AccountFactory(name="<b>Acme</b> & Co", owner=csm), dt.date(2026, 11, 20))
    services.digest_send(csm, today=TODAY)
    payload = _digest(csm)
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; Co" in payload["html"]
    assert "<b>Acme" not in payload["html"]
    assert "- <b>Acme</b> & Co: yellow -> red" in payload["text"]
    assert "&amp;" not in payload["text"] and "&lt;" not in payload["text"]


def test_a_long_section_lists_its_first_lines_and_links_to_the_rest(csm, site):
    """25 accounts changed band and 25 CTAs are overdue: each section says 25, lists
    ``DIGEST_LINES`` (20) and says "… and 5 more" (25 - 20) with the page that has them
    all; a short section (the renewals, none) is untouched."""
    playbook = Playbook.objects.create(
        name="Test playbook", trigger="health_band_dropped", cta_title="x", success="x"
    )
    for i in range(25):
        account = AccountFactory(name=f"Account {i:02d}", owner=csm)
        _band_change(account, dt.date(2026, 11, 20))
        _overdue_cta(playbook, account, csm, f"Call {i:02d}")
    services.digest_send(csm, today=TODAY)
    payload = _digest(csm)
    text, html = payload["text"], payload["html"]
    assert services.DIGEST_LINES == 20
    assert "Accounts whose health band changed (25):" in text
    assert "Overdue CTAs (25):" in text
    assert len(re.findall(r"^- Account \d\d: yellow -> red", text, re.M)) == 20
    assert len(re.findall(r"^- Account \d\d: Call \d\d", text, re.M)) == 20
    assert "Account 19: yellow" in text and "Account 20: yellow" not in text  # by name
    assert "… and 5 more: https://cs.example.com/\n" in text
    assert "… and 5 more: https://cs.example.com/ctas/?status=active&mine=1\n" in text
    assert html.count("<li>Account ") == 40  # 20 band changes + 20 CTAs
    assert html.count("… and 5 more") == 2
    assert 'href="https://cs.example.com/ctas/?status=active&amp;mine=1"' in html
    # each listed CTA links to its page, which its owner may open
    first = Cta.objects.get(title="Call 00")
    assert f"https://cs.example.com/ctas/{first.pk}/" in text
    assert f'href="https://cs.example.com/ctas/{first.pk}/"' in html


def test_a_digest_with_nothing_to_say_is_not_sent(csm, manager, site, no_default_targets):
    """A CSM whose week had no band change, CTA, renewal or detractor, and a leader with no
    target to report: no email (an empty digest every Monday teaches people to ignore it).
    The next week with news is sent as usual."""
    AccountFactory(name="Quiet", owner=csm)
    assert services.digest_send(csm, today=TODAY) is False
    assert services.digest_send(manager, today=TODAY) is False
    assert not Message.objects.filter(source="digest").exists()
    _band_change(AccountFactory(name="Alpha", owner=csm), dt.date(2026, 11, 25))
    assert services.digest_send(csm, today=TODAY + dt.timedelta(days=7)) is True


def test_the_digest_offers_one_click_unsubscribe_to_the_mail_program(csm, site):
    """``List-Unsubscribe`` with ``List-Unsubscribe-Post`` (RFC 8058): the mail program's
    button POSTs ``List-Unsubscribe=One-Click`` to the address, with no session and no CSRF
    token; the signed token is the authority, as for the page's own button."""
    services.digest_subscribe(csm, weekly=True)
    _band_change(AccountFactory(name="Alpha", owner=csm), dt.date(2026, 11, 20))
    services.digest_send(csm, today=TODAY)
    payload = _digest(csm)
    link = re.search(r"Unsubscribe from this digest: (\S+)", payload["text"]).group(1)
    assert payload["headers"] == {
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    client = Client(enforce_csrf_checks=True)
    path = link.removeprefix("https://cs.example.com")
    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert not DigestSubscription.objects.get(user=csm).weekly
