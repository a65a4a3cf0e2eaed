"""New data for an account recomputes its health the same day, through every door."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from metrics.models import HealthSnapshot
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _hook_on(settings, celery_eager):
    settings.ACCOUNT_DATA_CHANGED_HOOKS = ["metrics.tasks.account_changed"]


def test_an_import_recomputes_the_health_of_the_accounts_it_touched(
    tmp_path, django_capture_on_commit_callbacks
):
    touched = AccountFactory(external_id="A1")
    ContractFactory(account=touched, quantity=10)
    untouched = AccountFactory(external_id="B1")
    now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "events.csv"
    path.write_text(f"account_external_id,user_id,event,occurred_at\nA1,u1,login,{now}\n")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_data", str(path))
    today = timezone.now().date()
    snapshot = HealthSnapshot.objects.get(account=touched, day=today)
    assert snapshot.score is not None  # 1 of 10 seats active: usage has data
    assert not HealthSnapshot.objects.filter(account=untouched).exists()


def test_logging_a_call_recomputes_the_last_csm_touch(
    client, csm, django_capture_on_commit_callbacks
):
    """A call logged on the account page reaches the health's relationship component the
    same day: "last CSM touch today", not the days since the touch before."""
    from django.urls import reverse

    from accounts.models import Activity

    account = AccountFactory(owner=csm)
    ContractFactory(account=account, quantity=10)
    Activity.objects.create(
        account=account,
        author=csm,
        kind="call",
        subject="kick-off",
        occurred_at=timezone.now() - timezone.timedelta(days=40),
    )
    client.force_login(csm)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("workspace:activity-create", args=[account.pk]),
            {"kind": "call", "subject": "renewal check-in", "body": ""},
        )
    assert response.status_code == 302
    snapshot = HealthSnapshot.objects.get(account=account, day=timezone.now().date())
    relationship = next(c for c in snapshot.components if c["key"] == "relationship")
    assert relationship["inputs"]["days_since_last_touch"] == 0
    assert "last CSM touch today" in relationship["reason"]


def test_a_rejected_import_recomputes_nothing(tmp_path, django_capture_on_commit_callbacks):
    AccountFactory(external_id="A1")
    path = tmp_path / "events.csv"
    path.write_text("account_external_id,user_id,event,occurred_at\nA1,u1,login,nope\n")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError):
        call_command("import_data", str(path))
    assert not HealthSnapshot.objects.exists()


def test_an_override_shows_in_todays_snapshot(admin_user, django_capture_on_commit_callbacks):
    import datetime as dt

    from metrics import services

    account = AccountFactory(external_id="A1")
    ContractFactory(account=account, quantity=10)
    with django_capture_on_commit_callbacks(execute=True):
        services.health_override_create(
            account=account,
            score=42,
            reason="renewal call went badly",
            expires_at=timezone.now() + dt.timedelta(days=30),
            created_by=admin_user,
        )
    snapshot = HealthSnapshot.objects.get(account=account, day=timezone.now().date())
    assert snapshot.score == 42
