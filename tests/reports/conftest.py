from __future__ import annotations

import pytest


@pytest.fixture
def no_default_targets(db):
    """The migration loads the benchmark targets; tests that count alerts start without
    them (test_targets checks the defaults themselves)."""
    from reports.models import KpiTarget

    KpiTarget.objects.all().delete()


@pytest.fixture
def targets_step(settings):
    """The nightly pipeline ends with the target evaluation (as deployed)."""
    settings.PIPELINE_FINAL_HOOKS = ["reports.services.targets_evaluate"]
    settings.SITE_URL = "https://cs.example.com"
