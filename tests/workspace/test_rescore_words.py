"""Pages that start a rescoring say where it runs: in the background with a worker, before
the page answers in embedded mode (Celery eager, no worker)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from metrics.services import health_model_ensure_default

pytestmark = pytest.mark.django_db

INLINE = "before the page answers"
BACKGROUND = "in the background"


@pytest.mark.parametrize("eager", [True, False])
def test_the_rescore_help_follows_the_mode(client, admin_user, settings, eager):
    settings.CELERY_TASK_ALWAYS_EAGER = eager
    model = health_model_ensure_default()
    client.force_login(admin_user)
    pages = [
        reverse("workspace:health-model-edit", args=[model.pk]),
        reverse("workspace:health-assignments"),
    ]
    for url in pages:
        text = client.get(url).content.decode().lower()
        assert (INLINE in text) is eager, url
        assert (BACKGROUND in text) is not eager, url
