"""Users and roles: each change is recorded (who, when, each value before and after) and
shown to admins under "Recent changes"; two admins saving the same user at once: the save
from a page showing an older state is refused, nothing written, who and when said."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import utc
from accounts.models import ChangeRecord, Role, User
from tests.conftest import _user

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def _row(client: Client, person: User) -> dict[str, str]:
    """The row's form as the users page shows it (what a Save sends back unchanged)."""
    page = client.get(reverse("workspace:users")).content.decode()
    form = page[page.index(f'id="user-form-{person.pk}"') :]
    seen = re.search(r'name="seen" value="([^"]*)"', form)
    assert seen, "the row carries the access it shows"
    return {
        "role": person.role or "",
        "manager": str(person.manager_id or ""),
        "is_active": "on" if person.is_active else "",
        "seen": html.unescape(seen.group(1)),
    }


@pytest.fixture
def bea(db) -> User:
    return _user("bea@example.com", Role.ADMIN, first_name="Bea", is_staff=True)


def test_a_change_is_recorded_and_shown_under_recent_changes(client, admin_user, csm, manager):
    client.force_login(admin_user)
    # nothing changed yet, on this page or in the Django admin (both are listed)
    empty = client.get(reverse("workspace:users")).content.decode()
    assert "No role, manager or sign-in has been changed yet." in empty
    form = {**_row(client, csm), "role": "Manager", "manager": "", "is_active": ""}
    r = client.post(reverse("workspace:user-update", args=[csm.pk]), form, headers=HX)
    assert r.status_code == 200
    change = ChangeRecord.objects.get()
    assert (change.subject, change.subject_id, change.action, change.by) == (
        "user", csm.pk, "changed", admin_user,
    )  # fmt: skip
    assert change.name == "Cleo (csm@example.com)"
    assert change.words == "role CSM → Manager; manager Max → none; can sign in yes → no"
    # the htmx answer brings the trail below the table with it (out of band)
    page = html.unescape(r.content.decode())
    assert 'id="changes" hx-swap-oob="true"' in page and change.words in page

    # a second click on Save: nothing changes, nothing recorded, no error
    r = client.post(reverse("workspace:user-update", args=[csm.pk]), form, headers=HX)
    assert r.status_code == 200 and b"Saved." in r.content
    assert ChangeRecord.objects.count() == 1

    listed = html.unescape(client.get(reverse("workspace:users")).content.decode())
    section = listed[listed.index("Recent changes") :]
    assert f'{change.at:%H:%M} UTC</time> <span class="muted">Ada</span>' in section
    assert "Cleo (csm@example.com):</strong> role CSM → Manager" in section


def test_recent_changes_is_one_query(admin_user, csm, django_assert_num_queries):
    from accounts.services import change_record, changes_recent

    for n in range(3):
        change_record(subject="user", subject_id=csm.pk, name="Cleo", action="changed",
                      words=f"role {n}", by=admin_user)  # fmt: skip
    change_record(subject="kpi_target", subject_id=1, name="NRR", action="removed", by=None)
    with django_assert_num_queries(1):
        rows = changes_recent("user")
        names = [str(c.by) for c in rows]
    assert [c.words for c in rows] == ["role 2", "role 1", "role 0"] and names == ["Ada"] * 3


def test_a_save_from_a_page_opened_before_another_admins_change_is_refused(
    admin_user, bea, csm, manager
):
    ada_client, bea_client = Client(), Client()
    ada_client.force_login(admin_user)
    bea_client.force_login(bea)
    ada_form, bea_form = _row(ada_client, csm), _row(bea_client, csm)

    r = bea_client.post(
        reverse("workspace:user-update", args=[csm.pk]), {**bea_form, "role": "Manager"}, headers=HX
    )
    assert r.status_code == 200 and b"Saved." in r.content
    r = ada_client.post(
        reverse("workspace:user-update", args=[csm.pk]), {**ada_form, "is_active": ""}, headers=HX
    )

    bea_change = ChangeRecord.objects.get()
    page = html.unescape(r.content.decode())
    assert (
        f"Cleo was changed by Bea at {utc.moment_text(bea_change.at)} UTC, after you opened the "
        "page. Your changes are not saved: reload the page to see their access as it is now, "
        "then make your change again."
    ) in page
    assert "Saved." not in page
    # the trail below the table comes too, listing the change the refusal names
    trail = page[page.index('id="changes"') :]
    assert 'hx-swap-oob="true"' in trail and "Bea</span> <strong>Cleo" in trail
    csm = User.objects.get(pk=csm.pk)
    assert (csm.role, csm.is_active) == (Role.MANAGER, True)  # Bea's change stands, Ada's not
    assert ChangeRecord.objects.count() == 1
    # the row came back as saved now: its Save carries the new state, and goes through
    assert 'value="Manager" selected' in page
    again = {**_row(ada_client, csm), "is_active": ""}
    r = ada_client.post(reverse("workspace:user-update", args=[csm.pk]), again, headers=HX)
    assert b"Saved." in r.content
    assert not User.objects.get(pk=csm.pk).is_active
    assert ChangeRecord.objects.first().words == "can sign in yes → no"


def test_a_refusal_without_a_page_post_redirects_with_the_reason(client, admin_user, csm):
    """Without htmx (no script): the reason comes as a message on the users page."""
    client.force_login(admin_user)
    form = _row(client, csm)
    User.objects.filter(pk=csm.pk).update(is_active=False)  # changed elsewhere, not recorded
    r = client.post(reverse("workspace:user-update", args=[csm.pk]), {**form, "role": ""},
                    follow=True)  # fmt: skip
    page = html.unescape(r.content.decode())
    assert "Cleo was changed, after you opened the page. Your changes are not saved" in page
    assert User.objects.get(pk=csm.pk).role == Role.CSM


def _admin_form(person: User, **changes) -> dict:
    """The Django admin's change form of ``person`` as shown, with ``changes``."""
    from django.contrib.auth.models import Group

    form = {
        "email": person.email, "first_name": person.first_name, "last_name": person.last_name,
        "manager": person.manager_id or "", "is_active": "on" if person.is_active else "",
        "groups": list(Group.objects.filter(user=person).values_list("pk", flat=True)),
        "date_joined_0": f"{person.date_joined:%Y-%m-%d}", "date_joined_1": "00:00:00",
        "last_login_0": "", "last_login_1": "", "_save": "Save",
    }  # fmt: skip
    form.update(changes)
    return {k: v for k, v in form.items() if v not in ("", None)}


def test_a_change_in_the_django_admin_is_recorded_and_named_by_a_stale_refusal(
    admin_user, bea, csm, manager
):
    """Bea opens the users page; Ada changes Cleo in the Django admin (/admin/); Bea's save
    is refused naming Ada, and Ada's change is under Recent changes as a page's would be."""
    from django.contrib.auth.models import Group

    ada_client, bea_client = Client(), Client()
    ada_client.force_login(admin_user)
    bea_client.force_login(bea)
    bea_form = _row(bea_client, csm)
    bea_client.post(reverse("workspace:user-update", args=[csm.pk]),
                    {**bea_form, "role": "Manager"}, headers=HX)  # fmt: skip
    bea_form = _row(bea_client, User.objects.get(pk=csm.pk))  # her page, reloaded

    admin_url = reverse("admin:accounts_user_change", args=[csm.pk])
    form = _admin_form(User.objects.get(pk=csm.pk), manager="", is_active="",
                       groups=[Group.objects.get(name=Role.CSM).pk])  # fmt: skip
    r = ada_client.post(admin_url, form)
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    change = ChangeRecord.objects.first()
    assert (change.by, change.subject_id, change.words) == (
        admin_user, csm.pk, "role Manager → CSM; manager Max → none; can sign in yes → no",
    )  # fmt: skip
    # Ada saves again without a change: nothing more recorded
    assert ada_client.post(admin_url, form).status_code == 302
    assert ChangeRecord.objects.count() == 2

    r = bea_client.post(reverse("workspace:user-update", args=[csm.pk]),
                        {**bea_form, "role": "Admin"}, headers=HX)  # fmt: skip
    page = html.unescape(r.content.decode())
    assert f"Cleo was changed by Ada at {utc.moment_text(change.at)} UTC, after you opened " in (
        page
    )
    assert User.objects.get(pk=csm.pk).role == Role.CSM
    listed = html.unescape(bea_client.get(reverse("workspace:users")).content.decode())
    assert "Cleo (csm@example.com):</strong> role Manager → CSM" in listed


def test_a_name_change_in_the_django_admin_records_nothing(client, admin_user, csm):
    """Only role, manager and sign-in are the users page's: a name is not in its trail."""
    client.force_login(admin_user)
    url = reverse("admin:accounts_user_change", args=[csm.pk])
    assert client.post(url, _admin_form(csm, last_name="Lund")).status_code == 302
    assert User.objects.get(pk=csm.pk).last_name == "Lund"
    assert not ChangeRecord.objects.exists()


def test_the_trail_and_the_form_keys_are_read_only_in_the_django_admin(client, admin_user, csm):
    from accounts.models import FormOnce
    from accounts.services import change_record

    record = change_record(subject="user", subject_id=csm.pk, name="Cleo", action="changed",
                           words="role CSM → Manager", by=admin_user)  # fmt: skip
    key = FormOnce.objects.create(key="k1", made="playbook:1")
    admin_user.is_superuser = True  # every permission a model can give
    admin_user.save()
    client.force_login(admin_user)
    for model, row, text in ((ChangeRecord, record, "role CSM → Manager"),
                             (FormOnce, key, "playbook:1")):  # fmt: skip
        name = f"admin:accounts_{model._meta.model_name}"
        listed = client.get(reverse(f"{name}_changelist"))
        assert listed.status_code == 200 and text in html.unescape(listed.content.decode())
        assert client.get(reverse(f"{name}_add")).status_code == 403
        shown = client.get(reverse(f"{name}_change", args=[row.pk]))
        assert shown.status_code == 200 and b'name="_save"' not in shown.content  # a view
        assert (
            client.post(reverse(f"{name}_delete", args=[row.pk]), {"post": "yes"}).status_code
            == 403
        )
        assert model.objects.filter(pk=row.pk).exists()
