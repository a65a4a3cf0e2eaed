"""The same form sent twice (a double click, a request resent) on the account page makes
one note and one health override, and says so; a form refused claims nothing, so the
fixed one goes through; a form without a key (a script) is made as before."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.urls import reverse

from accounts import utc
from accounts.models import Activity, FormOnce
from metrics.models import HealthOverride

pytestmark = pytest.mark.django_db


def _key(page: str, form_id: str) -> str:
    form = page[page.index(f'id="{form_id}"') :]
    return re.search(r'name="form_key" value="([^"]+)"', form).group(1)


def _page(client, account) -> str:
    return client.get(reverse("workspace:account", args=[account.pk])).content.decode()


def test_a_note_sent_twice_is_logged_once(client, csm, book):
    account = book["burning"]
    client.force_login(csm)
    form = {"kind": "note", "subject": "Called Dana", "body": "",
            "form_key": _key(_page(client, account), "activity-form")}  # fmt: skip
    url = reverse("workspace:activity-create", args=[account.pk])
    first = client.post(url, form, headers={"HX-Request": "true"})
    second = client.post(url, form, headers={"HX-Request": "true"})
    assert Activity.objects.filter(account=account, subject="Called Dana").count() == 1
    assert "Logged: it is on the timeline." in first.content.decode()
    assert "Logged already (the form was sent twice): it is on the timeline once." in (
        html.unescape(second.content.decode())
    )
    # the form shown after a note is a new one: the next note is one more
    again = {**form, "form_key": _key(first.content.decode(), "activity-form")}
    assert again["form_key"] != form["form_key"]
    client.post(url, again, headers={"HX-Request": "true"})
    assert Activity.objects.filter(account=account, subject="Called Dana").count() == 2


def test_a_note_refused_claims_nothing_and_without_a_key_saves_as_before(client, csm, book):
    account = book["burning"]
    client.force_login(csm)
    url = reverse("workspace:activity-create", args=[account.pk])
    key = _key(_page(client, account), "activity-form")
    client.post(url, {"kind": "note", "subject": "", "form_key": key})  # no subject: refused
    assert not FormOnce.objects.exists()
    client.post(url, {"kind": "note", "subject": "Fixed", "form_key": key})
    assert Activity.objects.filter(subject="Fixed").count() == 1
    for _ in range(2):
        client.post(url, {"kind": "note", "subject": "Scripted"})
    assert Activity.objects.filter(subject="Scripted").count() == 2


def test_an_override_sent_twice_is_one_override(client, csm, book):
    account = book["burning"]
    client.force_login(csm)
    form = {
        "component": "", "score": "90", "band": "", "reason": "Renewal signed on paper",
        "until": (utc.today() + dt.timedelta(days=30)).isoformat(),
        "form_key": _key(_page(client, account), "override-form"),
    }  # fmt: skip
    url = reverse("workspace:health-override-create", args=[account.pk])
    assert client.post(url, form).status_code == 302
    second = client.post(url, form, follow=True)
    assert HealthOverride.objects.count() == 1
    assert "This override was saved already (the form was sent twice): one override." in (
        html.unescape(second.content.decode())
    )


def test_two_sends_at_once_meet_the_keys_unique_index(csm, book):
    """The second send's claim, made while the first's row is there (committed or waiting
    to be: the index makes it wait, then fail), makes nothing and raises nothing."""
    from django.db import transaction

    from accounts import once

    with transaction.atomic():
        assert once.claim("k-1")
    with transaction.atomic():
        assert not once.claim("k-1")
        # the caller's transaction goes on after the refused claim (a savepoint)
        Activity.objects.create(account=book["burning"], kind="note", subject="after")
    assert FormOnce.objects.count() == 1 and once.claim("")
