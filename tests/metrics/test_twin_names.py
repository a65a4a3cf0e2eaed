"""A health version stored before two components of one name were refused (saving and
restoring refuse them now; ``health.duplicate_names``): it still scores, as it always did,
and the admin is told where they look: the night's health step (the pipeline page, the
run_pipeline command) and the model pages, with what to do (a new version, each component
named once). The version is written straight to the table, as an older release left it."""

from __future__ import annotations

import copy
import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from metrics import pipeline
from metrics.health import DEFAULT_COMPONENTS
from metrics.models import HealthModelVersion, HealthSnapshot, PipelineRun
from metrics.services import health_model_ensure_default, health_model_version_create
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db

WARNING = (
    "Default v2: components 1 and 4 are both named “Usage”: make a new version giving each "
    "its own name"
)


@pytest.fixture
def twins():
    """The default model's v2, active, its 4th component (payments) labelled "Usage" like
    the 1st: saved with ``objects.create``, which skips the service's checks."""
    model = health_model_ensure_default()
    components = copy.deepcopy(DEFAULT_COMPONENTS)
    components[3]["label"] = "Usage"
    model.versions.update(active=False)
    return HealthModelVersion.objects.create(model=model, version=2, components=components)


def _book(day):
    account = AccountFactory()
    ContractFactory(account=account, start_date=day - dt.timedelta(days=60))
    return account


def test_the_night_scores_with_it_and_its_health_step_says_what_to_do(twins, client, admin_user):
    day = pipeline.default_as_of()
    account = _book(day)
    summary = pipeline.run_nightly(day)
    health = next(s for s in summary["steps"] if s["name"] == "health")
    assert health["accounts"] == 1 and health["no_model"] == 0  # scored, not refused
    assert health["twin_names"] == [WARNING]
    snapshot = HealthSnapshot.objects.get(account=account, day=day)
    assert snapshot.model_version_id == twins.pk
    words = pipeline.health_words(summary["steps"])
    assert words.endswith(
        f". Warning: {WARNING} (scored as it is; the account page shows the two as one)"
    )
    client.force_login(admin_user)
    page = client.get(reverse("workspace:pipeline-runs")).content.decode()
    assert "Warning: Default v2: components 1 and 4 are both named “Usage”" in page


def test_run_pipeline_prints_the_warning_on_a_line_of_its_own(twins):
    day = pipeline.default_as_of()
    _book(day)
    out = StringIO()
    call_command("run_pipeline", "--as-of", day.isoformat(), stdout=out)
    lines = out.getvalue().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  health: "))
    assert "twin_names" not in lines[at]
    assert lines[at + 1] == f"  warning: {WARNING}"


def test_a_fanned_out_health_step_records_it_too(twins):
    day = pipeline.default_as_of()
    _book(day)
    run = PipelineRun.objects.create(as_of=day)
    assert pipeline.health_fan_out(run) == 1  # its chunk is sent after the commit
    run.refresh_from_db()
    assert run.steps[-1] == {"name": "health", "chunks": 1, "twin_names": [WARNING]}


def test_the_model_pages_say_it_until_a_new_version_names_each_once(twins, client, admin_user):
    client.force_login(admin_user)
    said = (
        "components 1 and 4 are both named “Usage”.</strong> It still scores, but the account "
        "page and the override form name components by their name, so the two read as one."
    )
    models = client.get(reverse("workspace:health-models")).content.decode()
    assert f"<strong>Default v2: {said}" in models
    assert reverse("workspace:health-model-edit", args=[twins.model_id]) in models
    versions = reverse("workspace:health-model-versions", args=[twins.model_id])
    assert f"<strong>v2: {said}" in client.get(versions).content.decode()

    components = copy.deepcopy(twins.components)
    components[3]["label"] = "Payments"
    health_model_version_create(model=twins.model, components=components, created_by=admin_user)
    assert "both named" not in client.get(reverse("workspace:health-models")).content.decode()
    assert "both named" not in client.get(versions).content.decode()
    day = pipeline.default_as_of()
    _book(day)
    health = next(s for s in pipeline.run_nightly(day)["steps"] if s["name"] == "health")
    assert "twin_names" not in health
