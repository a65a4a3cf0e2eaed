"""A KPI target or a scheduled report removed is recorded (which, who, when) and listed on
its page under "Recently removed"; removed twice (two clicks, two people) is one removal,
one record, and no error."""

from __future__ import annotations

import html

import pytest

from accounts.models import ChangeRecord, Role
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
    # Remove asks first: the page again with the question, nothing removed
    asked = client.post(f"/targets/{target.pk}/", {"action": "delete"})
    assert asked.status_code == 200 and KpiTarget.objects.filter(pk=target.pk).exists()
    question = html.unescape(asked.content.decode())
    assert 'role="alertdialog"' in question and "Remove this target?" in question
    assert '<input type="hidden" name="confirm" value="1">' in question
    assert not ChangeRecord.objects.exists()
    r = client.post(f"/targets/{target.pk}/", {"action": "delete", "confirm": "1"}, follow=True)
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
    # Remove asks first: the page again with the question, nothing removed
    asked = client.post("/reports/scheduled/", {"action": "delete", "pk": report.pk})
    assert asked.status_code == 200 and ScheduledReport.objects.filter(pk=report.pk).exists()
    question = html.unescape(asked.content.decode())
    assert 'role="alertdialog"' in question and "Remove this scheduled report?" in question
    assert "“Weekly book” is no longer emailed to its 0 recipients." in question
    assert not ChangeRecord.objects.exists()
    form = {"action": "delete", "pk": report.pk, "confirm": "1"}
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


def test_a_target_removed_since_its_page_was_opened_says_who_removed_it(client, admin_user, target):
    """Two admins on one target's page: one removes it, the other then saves or removes.
    The second is told which target went, by whom and when (was Django's 404 page);
    nothing is written, nothing recorded twice."""
    from reports import services
    from tests.conftest import _user

    client.force_login(_user("bo@example.com", Role.ADMIN, first_name="Bo"))
    page = f"/targets/{target.pk}/"
    assert client.get(page).status_code == 200  # Bo's page is open
    services.target_remove(target=target, by=admin_user)  # Ada removes it meanwhile
    at = f"{ChangeRecord.objects.get().at:%H:%M} UTC"
    gone = "NRR ≥ 100.0%, monthly, segment SMB was removed by Ada at "

    saved = client.post(
        page,
        {"kpi": "nrr", "direction": "at_least", "value": "95", "cadence": "monthly",
         "scope_kind": "segment", "scope_key": "SMB"},
        follow=True,
    )  # fmt: skip
    said = html.unescape(saved.content.decode())
    assert saved.redirect_chain == [("/targets/", 302)]
    assert gone in said and f"{at}, after you opened it. Your changes are not saved" in said
    assert not KpiTarget.objects.exists()

    again = client.post(page, {"action": "delete"}, follow=True)
    assert "This target was removed already: " + gone in html.unescape(again.content.decode())
    assert ChangeRecord.objects.count() == 1

    # an old link says the same; a number that never was a target is still not found
    assert gone in html.unescape(client.get(page, follow=True).content.decode())
    assert client.get(f"/targets/{target.pk + 1}/").status_code == 404
