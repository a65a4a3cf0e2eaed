"""Django's admin (raw data) is for staff: the Admin role's users. Everyone else is sent
to the admin's own sign-in page, on every admin URL the project registers."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]


@pytest.mark.parametrize("persona", ["csm", "manager", "outsider"])
def test_non_staff_are_sent_to_the_admin_sign_in(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    for url in [reverse("admin:index"), *_changelists()]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith(reverse("admin:login")), url


def test_admins_reach_every_changelist(client, admin_user):
    admin_user.is_superuser = True  # model permissions aside, every registered model
    admin_user.save()
    client.force_login(admin_user)
    for url in [reverse("admin:index"), *_changelists()]:
        assert client.get(url).status_code == 200, url
