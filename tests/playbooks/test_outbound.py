"""A playbook's Slack and webhook actions: customer data cannot ping a channel or forge a
link in Slack; internal destinations are refused on save (API and editor) unless
``OUTBOX_ALLOW_PRIVATE``; versions do not keep the signing secret."""

from __future__ import annotations

import html
import importlib
import json

import pytest
from django.apps import apps
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from playbooks import services
from playbooks.models import Playbook, PlaybookVersion
from tests.factories import AccountFactory, UserFactory
from tests.outbox.test_outbox import Receiver

from .helpers import make_playbook

pytestmark = pytest.mark.django_db

METADATA = "http://169.254.169.254/latest/meta-data/"


def _api(user) -> APIClient:
    _token, key = ApiToken.issue(user=user, name="test", scope=ApiToken.Scope.WRITE)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _config(**changes) -> dict:
    return {
        "name": "Quiet accounts", "trigger": "no_activity", "trigger_params": {"days": 30},
        "cta_title": "Reach out", "cta_type": "risk", "priority": "medium",
        "steps": [{"title": "Call", "due_days": 1}], "owner_rule": "account_csm",
        "success": "touched", "success_days": 14, "cooldown_days": 30, **changes,
    }  # fmt: skip


def test_customer_text_in_a_slack_message_arrives_escaped(
    settings, celery_eager, django_capture_on_commit_callbacks
):
    settings.OUTBOX_ALLOW_PRIVATE = True  # the receiver listens on 127.0.0.1
    receiver = Receiver()
    try:
        playbook = make_playbook(
            "ticket_escalated", cta_title="Escalation <@U024BE7LH>", slack_url=receiver.url
        )
        account = AccountFactory(owner=UserFactory(), name="<!channel> Acme & Co")
        with django_capture_on_commit_callbacks(execute=True):
            cta = services.cta_open(
                playbook=playbook,
                account=account,
                evidence="ticket “<https://evil.example/login|Reset your password>”",
            )
    finally:
        receiver.close()
    (call,) = receiver.calls
    text = json.loads(call["body"])["text"]
    assert "&lt;!channel&gt; Acme &amp; Co" in text
    assert "Escalation &lt;@U024BE7LH&gt;" in text
    assert "&lt;https://evil.example/login|Reset your password&gt;" in text
    assert "<!channel>" not in text and "<https://evil" not in text and "<@" not in text
    # the message's own link stays a link
    assert text.endswith(f"<{settings.SITE_URL.rstrip('/')}/ctas/{cta.pk}/|Open the CTA>")


def test_the_api_refuses_internal_addresses_on_save_naming_them(admin_user, settings):
    settings.OUTBOX_ALLOW_PRIVATE = False
    url = reverse("playbooks-api:playbook-list")
    r = _api(admin_user).post(
        url, _config(webhook_url=METADATA, slack_url="http://10.0.0.7/slack"), format="json"
    )
    assert r.status_code == 400
    errors = r.json()
    assert errors["webhook_url"] == [
        "169.254.169.254 is a link-local address (e.g. cloud metadata); internal addresses "
        "are refused (OUTBOX_ALLOW_PRIVATE allows them)"
    ]
    assert "10.0.0.7 is a private-network address" in errors["slack_url"][0]
    assert not Playbook.objects.exists()

    r = _api(admin_user).post(
        url, _config(webhook_url="https://hooks.example.com/cs"), format="json"
    )
    assert r.status_code == 201, r.json()
    detail = reverse("playbooks-api:playbook-detail", args=[r.json()["id"]])
    r = _api(admin_user).patch(detail, {"webhook_url": "http://localhost:8080/"}, format="json")
    assert r.status_code == 400 and "localhost is this machine" in r.json()["webhook_url"][0]
    playbook = Playbook.objects.get()
    assert playbook.webhook_url == "https://hooks.example.com/cs" and playbook.version == 1


def test_the_setting_lets_an_internal_address_be_saved(admin_user, settings):
    settings.OUTBOX_ALLOW_PRIVATE = True
    r = _api(admin_user).post(
        reverse("playbooks-api:playbook-list"),
        _config(slack_url="http://10.0.0.7/slack"),
        format="json",
    )
    assert r.status_code == 201, r.json()
    assert Playbook.objects.get().slack_url == "http://10.0.0.7/slack"


def test_the_editor_refuses_internal_addresses_with_field_errors(client, admin_user, settings):
    settings.OUTBOX_ALLOW_PRIVATE = False
    client.force_login(admin_user)
    form = {
        "name": "Quiet", "trigger": "no_activity", "trigger_params": '{"days": 30}',
        "cta_title": "Reach out", "cta_type": "risk", "priority": "medium",
        "steps": "1 | Call", "owner_rule": "account_csm", "success": "touched",
        "success_params": "", "success_days": "14", "cooldown_days": "7", "enabled": "on",
        "webhook_url": METADATA, "slack_url": "http://127.0.0.1:9000/hook",
    }  # fmt: skip
    r = client.post(reverse("playbooks:create"), form)
    assert r.status_code == 200
    page = html.unescape(r.content.decode())
    assert "169.254.169.254 is a link-local address (e.g. cloud metadata)" in page
    assert "127.0.0.1 is a loopback address (this machine)" in page
    assert not Playbook.objects.exists()
    r = client.post(reverse("playbooks:create"), {**form, "webhook_url": "", "slack_url": ""})
    assert r.status_code == 302 and Playbook.objects.count() == 1


def test_an_internal_address_saved_earlier_does_not_block_an_unrelated_edit(settings):
    settings.OUTBOX_ALLOW_PRIVATE = True
    playbook = make_playbook("no_activity", {"days": 30}, webhook_url="http://10.0.0.7/hook")
    settings.OUTBOX_ALLOW_PRIVATE = False  # the check came later; the send refuses it
    playbook = services.playbook_update(playbook=playbook, config={"enabled": False})
    assert playbook.version == 2 and not playbook.enabled


def test_versions_record_that_a_secret_was_set_not_the_secret():
    playbook = make_playbook("no_activity", {"days": 30}, webhook_secret="s3cret-one")
    playbook = services.playbook_update(playbook=playbook, config={"webhook_secret": ""})
    playbook = services.playbook_update(playbook=playbook, config={"webhook_secret": "two"})
    configs = list(playbook.versions.order_by("version").values_list("config", flat=True))
    assert [c["webhook_secret_set"] for c in configs] == [True, False, True]
    assert not any("webhook_secret" in c for c in configs)
    assert "s3cret" not in json.dumps(configs)
    playbook.refresh_from_db()
    assert playbook.webhook_secret == "two"  # the playbook itself still signs


def test_the_migration_removes_secrets_from_versions_saved_before():
    playbook = make_playbook("no_activity", {"days": 30})
    old = PlaybookVersion.objects.get(playbook=playbook)
    old.config = {**old.config, "webhook_secret": "s3cret"}
    old.config.pop("webhook_secret_set")
    old.save()
    migration = importlib.import_module("playbooks.migrations.0004_versions_without_secret")
    migration.forget_secrets(apps, None)
    old.refresh_from_db()
    assert "webhook_secret" not in old.config and old.config["webhook_secret_set"] is True
