"""A KPI target or a scheduled report removed is recorded (which, who, when) and listed on
its page under "Recently removed"; removed twice (two clicks, two people) is one removal,
one record, and no error."""

from __future__ import annotations

import html

import pytest

from accounts.models import ChangeRecord
from reports.models import KpiTarget, ScheduledReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def target(no_default_targets):
    return KpiTarget.objects.create(
        kpi="nrr", direction="at_least", value=100, cadence="monthly", scope_kind="segment",
        scope_key="SMB",
    )  # fmt: skip


def test_a_target_removed_is_recorded_and_listed(client, admin_user, target):
    client.force_login(admin_user)
    assert "Recently removed" not in client.get("/targets/").content.decode()
    r = client.post(f"/targets/{target.pk}/", {"action": "delete"}, follow=True)
    assert not KpiTarget.objects.exists()
    change = ChangeRecord.objects.get()
    assert (change.subject, change.subject_id, change.action, change.by) == (
        "kpi_target", target.pk, "removed", admin_user,
    )  # fmt: skip
    assert change.name == "NRR ≥ 100.0%, monthly, segment SMB"
    page = html.unescape(r.content.decode())
    assert "Target removed." in page
    assert f'{change.at:%H:%M} UTC</time> <span class="muted">Ada</span> removed ' in page
    assert "removed NRR ≥ 100.0%, monthly, segment SMB" in page


def test_a_target_removed_twice_is_one_record_and_no_error(client, admin_user, target):
    from reports import services

    assert services.target_remove(target=target, by=admin_user)
    assert not services.target_remove(target=target, by=admin_user)  # the second page's click
    assert ChangeRecord.objects.count() == 1


def test_a_target_removed_through_the_api_is_recorded(client, admin_user, target):
    client.force_login(admin_user)
    assert client.delete(f"/api/v1/targets/{target.pk}/").status_code == 204
    assert ChangeRecord.objects.get().by == admin_user


def test_a_scheduled_report_removed_is_recorded_and_listed(client, admin_user):
    report = ScheduledReport.objects.create(name="Weekly book", scope_kind="all", cadence="weekly")
    client.force_login(admin_user)
    form = {"action": "delete", "pk": report.pk}
    r = client.post("/reports/scheduled/", form, follow=True)
    change = ChangeRecord.objects.get()
    assert (change.subject, change.name, change.by) == (
        "scheduled_report", "“Weekly book”, weekly, all accounts", admin_user,
    )  # fmt: skip
    page = html.unescape(r.content.decode())
    assert "Scheduled report removed." in page
    assert "removed “Weekly book”, weekly, all accounts" in page
    # the page's second click finds it gone: said so, nothing recorded
    again = client.post("/reports/scheduled/", form, follow=True)
    assert "This report is not there any more: it was removed already." in html.unescape(
        again.content.decode()
    )
    assert ChangeRecord.objects.count() == 1
