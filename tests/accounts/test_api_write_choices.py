"""A wrong choice in a write body (POST, PUT, PATCH) names the valid values, as a wrong
choice in a list's query string does (``tests/accounts/test_api_choices.py``): one field,
``accounts.api_choices.ChoiceField``, for every serializer of the API."""

from __future__ import annotations

import importlib

import pytest
from django.urls import reverse
from rest_framework import serializers

from accounts.api_choices import ChoiceField
from playbooks import services as playbook_services
from playbooks.models import Cta, CtaStatus, Playbook
from reports.models import KpiTarget
from tests.factories import AccountFactory, token_client
from tests.playbooks.helpers import make_playbook

API_MODULES = [
    "accounts.api",
    "accounts.serializers",
    "metrics.api",
    "playbooks.api",
    "reports.api",
    "surveys.api",
]
PROJECT = {"accounts", "metrics", "playbooks", "reports", "surveys", "voice", "workspace"}


def _project_serializers() -> list[type]:
    for module in API_MODULES:
        importlib.import_module(module)
    found, todo = [], [serializers.Serializer]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.split(".")[0] in PROJECT and sub not in found:
                found.append(sub)
    return found


def test_no_serializer_of_the_api_has_a_plain_drf_choice_field():
    """Declared or built from a model's choices (a ModelSerializer's), every choice field of
    every serializer of the project lists its values when a value is wrong."""
    checked = 0
    for cls in _project_serializers():
        if issubclass(cls, serializers.ModelSerializer) and not hasattr(cls, "Meta"):
            continue  # an abstract base: its subclasses are checked
        for name, field in cls().fields.items():
            if isinstance(field, serializers.ChoiceField):
                checked += 1
                assert isinstance(field, ChoiceField), f"{cls.__module__}.{cls.__name__}.{name}"
    assert checked >= 20  # a walk that found nothing would pass


def test_the_field_lists_the_choices_it_has_when_it_fails():
    field = ChoiceField(choices=[("a", "A"), ("Group", [("b", "B"), ("c", "C")])])
    with pytest.raises(serializers.ValidationError) as exc:
        field.run_validation("x")
    assert exc.value.detail == ['"x" is not a valid choice: a, b, c.']
    assert exc.value.detail[0].code == "invalid_choice"
    field.choices = ["d", "e"]  # choices set after the field was built
    with pytest.raises(serializers.ValidationError) as exc:
        field.run_validation("a")
    assert exc.value.detail == ['"a" is not a valid choice: d, e.']
    assert field.run_validation("d") == "d"


@pytest.mark.django_db
def test_a_cta_patch_with_a_wrong_status_lists_the_statuses_it_takes(csm):
    account = AccountFactory(owner=csm)
    cta = playbook_services.cta_open(
        playbook=make_playbook("ticket_escalated"), account=account, evidence="esc"
    )
    url = reverse("playbooks-api:cta-detail", args=[cta.pk])
    r = token_client(csm, scope="write").patch(url, {"status": "pending"}, format="json")
    assert r.status_code == 400
    # the API moves a CTA to these three only (playbooks.api.CtaUpdateSerializer)
    assert r.json() == {
        "status": ['"pending" is not a valid choice: in_progress, done, cancelled.']
    }
    assert Cta.objects.get(pk=cta.pk).status == CtaStatus.OPEN


@pytest.mark.django_db
def test_a_playbook_post_with_a_wrong_type_and_priority_lists_both_fields_values(admin_user):
    config = {
        "name": "Quiet accounts", "trigger": "no_activity", "trigger_params": {"days": 30},
        "cta_title": "Reach out", "cta_type": "danger", "priority": "urgent",
        "steps": [{"title": "Call", "due_days": 1}], "owner_rule": "account_csm",
        "success": "touched", "success_days": 14, "cooldown_days": 30,
    }  # fmt: skip
    before = Playbook.objects.count()  # the starters a migration may have added
    r = token_client(admin_user, scope="write").post(
        reverse("playbooks-api:playbook-list"), config, format="json"
    )
    assert r.status_code == 400
    body = r.json()
    assert body["cta_type"] == ['"danger" is not a valid choice: risk, opportunity, lifecycle.']
    assert body["priority"] == ['"urgent" is not a valid choice: high, medium, low.']
    assert Playbook.objects.count() == before


@pytest.mark.django_db
def test_a_kpi_target_post_lists_the_values_of_its_model_choice_fields(manager):
    """direction and cadence are built by the ModelSerializer from KpiTarget's choices."""
    before = KpiTarget.objects.count()
    r = token_client(manager, scope="write").post(
        reverse("reports-api:target-list"),
        {"kpi": "nrr", "direction": "sideways", "value": "100", "cadence": "yearly"},
        format="json",
    )
    assert r.status_code == 400
    body = r.json()
    assert body["direction"] == ['"sideways" is not a valid choice: at_least, at_most.']
    assert body["cadence"] == ['"yearly" is not a valid choice: weekly, monthly, quarterly.']
    assert KpiTarget.objects.count() == before
