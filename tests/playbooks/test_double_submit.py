"""The same form sent twice makes one playbook and one CTA comment; two new playbooks of
one name saved at the same instant give the second a name error, never a 500."""

from __future__ import annotations

import html
import re
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from playbooks import services
from playbooks.models import CtaComment, Playbook
from tests.factories import AccountFactory

from .helpers import make_playbook
from .test_stale_save import FORM

pytestmark = pytest.mark.django_db


def _key(client, url: str) -> str:
    page = client.get(url).content.decode()
    return re.search(r'name="form_key" value="([^"]+)"', page).group(1)


def test_a_new_playbook_sent_twice_is_one_playbook(client, admin_user):
    client.force_login(admin_user)
    url = reverse("playbooks:create")
    form = {**FORM, "form_key": _key(client, url)}
    assert client.post(url, form).status_code == 302
    second = client.post(url, form, follow=True)
    playbook = Playbook.objects.get()
    assert second.redirect_chain[-1][0] == reverse("playbooks:edit", args=[playbook.pk])
    assert "“Quiet” was saved already (the form was sent twice): one playbook." in (
        html.unescape(second.content.decode())
    )
    assert playbook.versions.count() == 1
    # a new form with the same name: refused at the name, as before
    r = client.post(url, {**FORM, "form_key": _key(client, url)})
    assert r.status_code == 200 and "Playbook with this Name already exists." in (
        html.unescape(r.content.decode())
    )


def test_two_playbooks_of_one_name_at_the_same_instant_give_a_name_error(admin_user):
    """Both checked the name before either saved: the database's unique name stops the
    second, which says so at its name field (was an IntegrityError, a 500)."""
    first = make_playbook("no_activity", {"days": 30})
    config = services._config_json(first)
    unchecked = mock.patch.object(Playbook, "validate_unique", lambda self, exclude=None: None)
    with unchecked, pytest.raises(ValidationError) as caught:
        services.playbook_create(config=config, created_by=admin_user)
    assert caught.value.message_dict == {
        "name": [f"A playbook called “{first.name}” was saved meanwhile."]
    }
    assert Playbook.objects.count() == 1


def test_a_cta_comment_sent_twice_is_one_comment(client, csm):
    cta = services.cta_open(
        playbook=make_playbook("ticket_escalated"), account=AccountFactory(owner=csm),
        evidence="1 open escalated ticket",
    )  # fmt: skip
    client.force_login(csm)
    form = {"body": "Called them", "form_key": _key(client, reverse("playbooks:cta-detail",
                                                                    args=[cta.pk]))}  # fmt: skip
    url = reverse("playbooks:cta-comment", args=[cta.pk])
    client.post(url, form)
    second = client.post(url, form, follow=True)
    assert CtaComment.objects.filter(cta=cta, body="Called them").count() == 1
    assert "This comment was added already (the form was sent twice): it is there once." in (
        html.unescape(second.content.decode())
    )
