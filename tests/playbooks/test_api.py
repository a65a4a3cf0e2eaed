"""/api/v1/playbooks/ and /api/v1/ctas/: list, filter, update, who may do what, errors by
field, and conformance to the OpenAPI schema."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from playbooks import services
from playbooks.models import Cta, CtaStatus, Playbook
from tests.factories import AccountFactory

from .helpers import make_playbook

pytestmark = pytest.mark.django_db


def _api(user, scope=ApiToken.Scope.WRITE) -> APIClient:
    _token, key = ApiToken.issue(user=user, name="test", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def book(csm, manager, admin_user):
    """Two CTAs on the CSM's account (two playbooks), one on an account of nobody's team."""
    mine = AccountFactory(owner=csm)
    theirs = AccountFactory()
    risk = make_playbook("ticket_escalated", priority="high")
    chance = make_playbook(
        "seat_utilisation", {"at_least": 90}, cta_type="opportunity", priority="low"
    )
    return {
        "risk": services.cta_open(playbook=risk, account=mine, evidence="esc"),
        "chance": services.cta_open(playbook=chance, account=mine, evidence="seats"),
        "other": services.cta_open(playbook=risk, account=theirs, evidence="esc"),
    }


def _ids(response):
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


def test_lists_are_scoped_and_filtered(book, csm, admin_user, outsider):
    url = reverse("playbooks-api:cta-list")
    r, c, o = book["risk"].pk, book["chance"].pk, book["other"].pk
    assert _ids(_api(csm).get(url)) == sorted([r, c])
    assert _ids(_api(admin_user).get(url)) == sorted([r, c, o])
    assert _ids(_api(outsider).get(url)) == []
    admin = _api(admin_user)
    assert _ids(admin.get(url, {"type": "opportunity"})) == [c]
    assert _ids(admin.get(url, {"priority": "high"})) == sorted([r, o])
    assert _ids(admin.get(url, {"owner": csm.pk})) == sorted([r, c])
    assert _ids(admin.get(url, {"playbook": book["risk"].playbook_id})) == sorted([r, o])
    assert _ids(admin.get(url, {"account": book["other"].account_id})) == [o]
    assert _ids(admin.get(url, {"status": "open"})) == sorted([r, c, o])
    assert _ids(admin.get(url, {"status": "done"})) == []
    bad = admin.get(url, {"status": "sleeping"})
    assert bad.status_code == 400 and "status" in bad.json()
    assert _api(csm).get(reverse("playbooks-api:cta-detail", args=[o])).status_code == 404


def test_patch_a_cta(book, csm, manager):
    cta = book["risk"]
    api = _api(csm)
    url = reverse("playbooks-api:cta-detail", args=[cta.pk])
    step = cta.steps.order_by("position").first()
    until = (timezone.now().date() + dt.timedelta(days=5)).isoformat()
    r = api.patch(url, {"steps_done": [step.pk], "snoozed_until": until, "owner": manager.pk,
                        "comment": "called"}, format="json")  # fmt: skip
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["status"] == "in_progress" and body["snoozed_until"] == until
    assert body["owner"] == manager.pk and body["steps"][0]["done_at"]
    r = api.patch(url, {"status": "done", "note": "sorted"}, format="json")
    assert r.json()["status"] == "done" and r.json()["close_note"] == "sorted"


def test_a_bad_patch_changes_nothing_and_names_the_field(book, csm):
    cta = book["risk"]
    url = reverse("playbooks-api:cta-detail", args=[cta.pk])
    step = cta.steps.order_by("position").first()
    r = _api(csm).patch(
        url, {"steps_done": [step.pk], "snoozed_until": "2000-01-01"}, format="json"
    )
    assert r.status_code == 400 and "snoozed_until" in r.json()
    step.refresh_from_db()
    assert step.done_at is None  # all or nothing
    r = _api(csm).patch(url, {"status": "pending"}, format="json")
    assert r.status_code == 400 and "status" in r.json()
    read_only = _api(csm, scope=ApiToken.Scope.READ)
    assert read_only.patch(url, {"status": "done"}, format="json").status_code == 403
    assert Cta.objects.get(pk=cta.pk).status == CtaStatus.OPEN


def test_playbooks_are_configured_by_admins_with_field_errors(admin_user, csm):
    url = reverse("playbooks-api:playbook-list")
    config = {
        "name": "Quiet accounts", "trigger": "no_activity", "trigger_params": {"days": 30},
        "cta_title": "Reach out", "cta_type": "risk", "priority": "medium",
        "steps": [{"title": "Call", "due_days": 1}], "owner_rule": "account_csm",
        "success": "touched", "success_days": 14, "cooldown_days": 30,
        "webhook_secret": "s3cret",
    }  # fmt: skip
    assert _api(csm).post(url, config, format="json").status_code == 403
    r = _api(admin_user).post(url, config, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["version"] == 1 and r.json()["has_webhook_secret"] is True
    assert "webhook_secret" not in r.json()
    bad = {**config, "name": "Bad", "trigger_params": {"days": -5, "hours": 3},
           "steps": [{"title": "", "due_days": 1}]}  # fmt: skip
    r = _api(admin_user).post(url, bad, format="json")
    assert r.status_code == 400
    errors = r.json()
    assert any("unknown parameter 'hours'" in e for e in errors["trigger_params"])
    assert any("days: must not be negative, got -5" in e for e in errors["trigger_params"])
    assert errors["steps"] == ["step 1: a title is required"]
    assert Playbook.objects.count() == 1
    detail = reverse("playbooks-api:playbook-detail", args=[Playbook.objects.get().pk])
    r = _api(admin_user).patch(detail, {"enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["enabled"] is False
    assert _api(csm).get(url).json()["count"] == 1  # anyone signed in reads them
