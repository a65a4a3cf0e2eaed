"""Addresses that are secrets stay with the admins who configure them.

A Slack-compatible incoming webhook posts to its channel for anyone who holds its address
(the token is the path), and a playbook's webhook address may carry a token in its query.
The playbooks API is readable by every signed-in user (the configuration holds no customer
data), so it shows those two addresses to admins only, and null to everyone else; the
webhook's signing secret is never shown (``has_webhook_secret``)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.playbooks.helpers import make_playbook

pytestmark = pytest.mark.django_db

SLACK = "https://hooks.slack.example/services/T0001/B0001/s3cr3tSlackToken"
HOOK = "https://crm.example/hooks/cs?token=s3cr3tHookToken"


def _api(user) -> APIClient:
    _token, key = ApiToken.issue(user=user, name="test", scope=ApiToken.Scope.READ)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _row(response, playbook) -> dict:
    return next(r for r in response.json()["results"] if r["id"] == playbook.pk)


@pytest.fixture
def playbook(db):
    return make_playbook("ticket_escalated", slack_url=SLACK, webhook_url=HOOK)


@pytest.mark.parametrize("persona", ["csm", "manager", "outsider"])
def test_only_admins_read_the_slack_and_webhook_addresses(request, playbook, persona):
    user = request.getfixturevalue(persona)
    listed = _api(user).get(reverse("playbooks-api:playbook-list"))
    one = _api(user).get(reverse("playbooks-api:playbook-detail", args=[playbook.pk]))
    assert listed.status_code == one.status_code == 200
    for row in (_row(listed, playbook), one.json()):
        assert row["slack_url"] is None and row["webhook_url"] is None
        assert row["name"] == playbook.name  # the rest of the configuration is there
    for response in (listed, one):
        assert b"s3cr3t" not in response.content


def test_admins_read_them_where_they_configure_them(admin_user, playbook):
    api = _api(admin_user)
    listed = _row(api.get(reverse("playbooks-api:playbook-list")), playbook)
    one = api.get(reverse("playbooks-api:playbook-detail", args=[playbook.pk])).json()
    for row in (listed, one):
        assert row["slack_url"] == SLACK and row["webhook_url"] == HOOK
