"""Two admins in the playbook editor at once: a save based on the version the page showed
is refused once someone saved a newer one (nothing written, who and when said), and a
second click on Save (the same form again) is no error and makes no second version."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import utc
from accounts.models import Role
from playbooks.models import Playbook, PlaybookVersion
from tests.conftest import _user

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Quiet", "trigger": "no_activity", "trigger_params": '{"days": 30}',
    "cta_title": "Reach out", "cta_type": "risk", "priority": "medium",
    "steps": "1 | Call\n3 | Write", "owner_rule": "account_csm", "success": "touched",
    "success_params": "", "success_days": "14", "cooldown_days": "7", "enabled": "on",
}  # fmt: skip


def _opened(client: Client, playbook: Playbook) -> dict[str, str]:
    """The editor as the page shows it: the form, with the version it was based on."""
    page = client.get(reverse("playbooks:edit", args=[playbook.pk])).content.decode()
    based_on = re.search(r'name="based_on" value="(\d+)"', page)
    assert based_on, "the editor carries the version it shows"
    return {**FORM, "based_on": based_on.group(1)}


@pytest.fixture
def two_admins(admin_user):
    other = _user("bea@example.com", Role.ADMIN, first_name="Bea", is_staff=True)
    ada, bea = Client(), Client()
    ada.force_login(admin_user)
    bea.force_login(other)
    return ada, bea, other


def test_a_save_based_on_an_older_version_is_refused_saying_who_and_when(client, two_admins):
    ada, bea, bea_user = two_admins
    ada.post(reverse("playbooks:create"), FORM)
    playbook = Playbook.objects.get()
    ada_form, bea_form = _opened(ada, playbook), _opened(bea, playbook)
    assert ada_form["based_on"] == bea_form["based_on"] == "1"

    r = bea.post(reverse("playbooks:edit", args=[playbook.pk]), {**bea_form, "cooldown_days": "3"})
    assert r.status_code == 302
    r = ada.post(reverse("playbooks:edit", args=[playbook.pk]), {**ada_form, "name": "Louder"})

    assert r.status_code == 200  # the editor again, with Ada's draft and the reason
    saved = PlaybookVersion.objects.get(playbook=playbook, version=2)
    page = html.unescape(r.content.decode())
    assert (
        f"v2 was saved by {bea_user} at {utc.moment_text(saved.created_at)} UTC, after you "
        "opened v1. Your changes are not saved: reload the page to see v2"
    ) in page
    assert 'value="Louder"' in page  # her draft is kept on the page, not lost
    playbook.refresh_from_db()
    assert (playbook.version, playbook.name, playbook.cooldown_days) == (2, "Quiet", 3)
    assert playbook.versions.count() == 2

    # reloaded, her change goes through on top of Bea's
    again = _opened(ada, playbook)
    assert again["based_on"] == "2"
    r = ada.post(
        reverse("playbooks:edit", args=[playbook.pk]),
        {**again, "cooldown_days": "3", "name": "Louder"},
    )
    assert r.status_code == 302
    playbook.refresh_from_db()
    assert (playbook.version, playbook.name, playbook.cooldown_days) == (3, "Louder", 3)


def test_a_second_click_on_save_makes_no_second_version_and_no_error(two_admins):
    ada, _, _ = two_admins
    ada.post(reverse("playbooks:create"), FORM)
    playbook = Playbook.objects.get()
    form = {**_opened(ada, playbook), "name": "Louder"}
    first = ada.post(reverse("playbooks:edit", args=[playbook.pk]), form)
    second = ada.post(reverse("playbooks:edit", args=[playbook.pk]), form)  # based on v1 still
    assert (first.status_code, second.status_code) == (302, 302)
    playbook.refresh_from_db()
    assert playbook.version == 2 and playbook.versions.count() == 2
