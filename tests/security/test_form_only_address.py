"""A page's POST-only address opened with GET (a reload after the form's answer, a new tab,
a sign-in's ``?next=``): still 405 with its Allow header, but a page in the site's layout
that links to the form's page, not an empty body. The API's 405 stays DRF's JSON."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.middleware import form_page
from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def test_a_post_only_page_opened_by_get_links_to_the_forms_page(client, admin_user):
    client.force_login(admin_user)
    r = client.get(reverse("workspace:api-token-create"))
    html = r.content.decode()
    assert r.status_code == 405 and r["Allow"] == "POST"
    assert r["Content-Type"].startswith("text/html")
    assert "<h1>This address takes a form</h1>" in html
    assert "This address takes a form's submission" in html
    assert f'<a class="btn btn-primary" href="{reverse("workspace:api-tokens")}">' in html
    assert 'class="topbar"' in html  # the site's layout


def test_the_link_is_the_nearest_page_above_else_home(client, admin_user):
    assert form_page("/manage/api-tokens/new/") == "/manage/api-tokens/"
    # …/rules/<pk>/ and …/rules/ are no pages: up to the assignments page
    assert form_page("/manage/health/assignments/rules/7/remove/") == "/manage/health/assignments/"
    assert form_page("/logout/") == reverse("home")
    client.force_login(admin_user)
    r = client.get(reverse("workspace:health-rescore"))
    assert r.status_code == 405
    assert f'href="{reverse("workspace:health-models")}"' in r.content.decode()


def test_the_api_keeps_drfs_json_405(admin_user):
    _token, key = ApiToken.issue(user=admin_user, name="tests", scope=ApiToken.Scope.WRITE)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    r = api.get(reverse("api:account-bulk"))
    assert r.status_code == 405 and r["Content-Type"] == "application/json"
    assert r.json() == {"detail": 'Method "GET" not allowed.'}


def test_htmx_and_other_methods_keep_the_plain_405(client, admin_user):
    client.force_login(admin_user)
    url = reverse("workspace:api-token-create")
    assert client.get(url, headers={"HX-Request": "true"}).content == b""
    r = client.put(url)
    assert r.status_code == 405 and r.content == b""


def test_an_anonymous_get_still_goes_to_sign_in(client):
    r = client.get(reverse("workspace:api-token-create"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
