from __future__ import annotations

import datetime as dt

import pytest

from metrics import pipeline


@pytest.fixture(autouse=True)
def _no_starter_playbooks(request):
    """The starter playbooks the migration loads would fire in every test: each test
    configures the playbooks it is about (test_starters loads them again)."""
    if request.node.get_closest_marker("django_db") or "db" in request.fixturenames:
        request.getfixturevalue("_django_db_helper")
        from playbooks.models import Playbook

        Playbook.objects.all().delete()


@pytest.fixture
def playbook_step(settings):
    """The nightly pipeline ends with the playbook evaluation (as deployed)."""
    settings.PIPELINE_FINAL_HOOKS = ["playbooks.services.playbooks_evaluate_all"]


@pytest.fixture
def day() -> dt.date:
    """The pipeline's default as-of day: yesterday (UTC)."""
    return pipeline.default_as_of()
