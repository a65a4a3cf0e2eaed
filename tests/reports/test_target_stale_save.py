"""Two leaders editing one KPI target at once: a save of the page as it was opened is
refused once someone else saved the target since (nothing written, who and when said); a
second click on Save (the same form again) is no error."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.test import Client

from accounts import utc
from accounts.models import Role
from reports.models import KpiTarget
from tests.conftest import _user

pytestmark = pytest.mark.django_db


def _opened(client: Client, target: KpiTarget) -> dict[str, str]:
    """The editor's form as the page shows it (the fields a person would send back)."""
    page = client.get(f"/targets/{target.pk}/").content.decode()
    opened = re.search(r'name="opened_at" value="([^"]+)"', page)
    assert opened, "the editor carries when the target it shows was saved"
    return {
        "kpi": target.kpi, "scope_kind": "all", "scope_key": "", "direction": target.direction,
        "value": str(target.value), "cadence": target.cadence, "beachange": "",
        "owner": "", "opened_at": html.unescape(opened.group(1)),
    }  # fmt: skip


@pytest.fixture
def target(no_default_targets):
    return KpiTarget.objects.create(kpi="nrr", direction="at_least", value=100, cadence="monthly")


def test_a_save_of_a_target_changed_since_it_was_opened_is_refused(target, admin_user):
    bea_user = _user("bea@example.com", Role.ADMIN, first_name="Bea")  # the whole book's: admins
    ada, bea = Client(), Client()
    ada.force_login(admin_user)
    bea.force_login(bea_user)
    ada_form, beaform = _opened(ada, target), _opened(bea, target)

    assert bea.post(f"/targets/{target.pk}/", {**beaform, "value": "105"}).status_code == 302
    r = ada.post(f"/targets/{target.pk}/", {**ada_form, "cadence": "weekly"})

    assert r.status_code == 400
    target.refresh_from_db()
    assert (target.value, target.cadence, target.updated_by) == (Decimal(105), "monthly", bea_user)
    assert r.context["form"].non_field_errors() == [
        f"This target was changed by {bea_user} at {utc.moment_text(target.updated_at)} UTC, "
        "after you opened it. Your changes are not saved: reload the page to see the target "
        "as it is now, then make your change again."
    ]
    assert 'value="weekly" selected' in r.content.decode()  # her choice stays on the page
    assert r.context["target"].cadence == "monthly"  # the heading: the target as saved now

    # reloaded, her change goes through on top of his
    again = _opened(ada, target)
    assert again["value"] == "105.00"
    assert ada.post(f"/targets/{target.pk}/", {**again, "cadence": "weekly"}).status_code == 302
    target.refresh_from_db()
    assert (target.value, target.cadence, target.updated_by) == (Decimal(105), "weekly", admin_user)


def test_a_second_click_on_save_is_no_error(target, admin_user):
    client = Client()
    client.force_login(admin_user)
    form = {**_opened(client, target), "value": "97.5"}
    assert client.post(f"/targets/{target.pk}/", form).status_code == 302
    assert client.post(f"/targets/{target.pk}/", form).status_code == 302  # opened_at is old
    target.refresh_from_db()
    assert target.value == Decimal("97.5")


def test_a_form_without_opened_at_saves_as_before(target, admin_user):
    """A form posted by a script that never showed the page: no check, as the API."""
    client = Client()
    client.force_login(admin_user)
    form = _opened(client, target)
    del form["opened_at"]
    KpiTarget.objects.filter(pk=target.pk).update(value=101)
    assert client.post(f"/targets/{target.pk}/", {**form, "value": "99"}).status_code == 302
    target.refresh_from_db()
    assert target.value == 99


def test_a_change_made_through_the_api_is_named_by_its_maker(target, admin_user):
    """Bea changes the target through the API after Ada opened the page: Ada's save is
    refused naming Bea, not whoever saved it last on the page (the API left ``updated_by``
    as it was)."""
    target.updated_by = admin_user
    target.save()
    bea_user = _user("bea@example.com", Role.ADMIN, first_name="Bea")
    ada, bea = Client(), Client()
    ada.force_login(admin_user)
    bea.force_login(bea_user)
    opened = _opened(ada, target)

    url = f"/api/v1/targets/{target.pk}/"
    patch = bea.patch(url, {"value": "104"}, content_type="application/json")
    assert patch.status_code == 200
    target.refresh_from_db()
    assert target.updated_by == bea_user
    put = {
        "kpi": "nrr", "scope_kind": "all", "scope_key": "", "direction": "at_least",
        "value": "103", "cadence": "monthly", "max_change": None, "owner": None,
    }  # fmt: skip
    ada_api = Client()
    ada_api.force_login(admin_user)
    assert ada_api.put(url, put, content_type="application/json").status_code == 200
    target.refresh_from_db()
    assert (target.value, target.updated_by) == (Decimal(103), admin_user)
    # the API saved after Ada opened her page: refused, naming who saved it last
    bea.patch(url, {"value": "102"}, content_type="application/json")
    r = ada.post(f"/targets/{target.pk}/", {**opened, "cadence": "weekly"})
    assert r.status_code == 400
    assert (
        r.context["form"]
        .non_field_errors()[0]
        .startswith(f"This target was changed by {bea_user} at ")
    )
