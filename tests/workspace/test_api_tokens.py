"""Manage → API tokens: admins list, create (the key shown once) and revoke tokens without a
shell, through the same service as ``manage.py create_api_token``."""

from __future__ import annotations

import io
import logging
import re

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, Role, User
from accounts.services import api_token_issue, api_token_revoke

pytestmark = pytest.mark.django_db

PAGE = "workspace:api-tokens"


def _create(client, **data):
    return client.post(reverse("workspace:api-token-create"), data)


def _works(key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api.get(reverse("api:account-list")).status_code


def test_admin_creates_a_token_and_sees_its_key_once(client, admin_user, csm, caplog):
    client.force_login(admin_user)
    with caplog.at_level(logging.DEBUG):
        r = _create(client, user=csm.pk, name="  BI export ", scope="read")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    html = r.content.decode()
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.scope, token.revoked_at) == (
        csm,
        "BI export",
        "read",
        None,
    )
    key = html.split('id="issued-key" value="')[1].split('"')[0]
    assert key.startswith("cs_") and token.key_hash == ApiToken.hash_key(key)
    assert "it will not be shown again" in html
    assert _works(key) == 200
    # the key appears nowhere else: not in the logs, not on the list afterwards
    assert key not in caplog.text and f"api token {token.pk} (read) issued" in caplog.text
    listing = client.get(reverse(PAGE)).content.decode()
    assert "BI export" in listing and key not in listing and token.prefix in listing
    assert "issued-key" not in listing
    # the page after a creation sits at …/new/: its revoke links must not be relative to it
    revoke_link = f'href="{reverse(PAGE)}?revoke={token.pk}#revoke-confirm"'
    assert revoke_link in html and revoke_link in listing


def test_sending_the_same_form_again_makes_no_second_token(client, admin_user, csm):
    """A reload of the page that showed the key posts the form again, with the same
    ``once`` value the page gave it: refused in words, no second token, no key shown."""
    client.force_login(admin_user)
    page = client.get(reverse(PAGE)).content.decode()
    once = page.split('name="once" value="')[1].split('"')[0]
    data = {"user": csm.pk, "name": "CRM sync", "scope": "read", "once": once}
    assert "issued-key" in _create(client, **data).content.decode()
    again = _create(client, **data).content.decode()
    assert ApiToken.objects.count() == 1
    assert "issued-key" not in again
    assert "This form was sent already and its token created" in again
    # the page that refusal shows carries a new form: it makes one more token
    fresh = again.split('name="once" value="')[1].split('"')[0]
    assert fresh != once
    _create(client, **{**data, "once": fresh})
    assert ApiToken.objects.count() == 2


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"user": "", "name": "x", "scope": "read"}, "user", "Choose the user the token acts as."),
        ({"user": 999999, "name": "x", "scope": "read"}, "user", "does not exist"),
        ({"user": "csm", "name": "   ", "scope": "read"}, "name", "Say what the token is for"),
        ({"user": "csm", "name": "x" * 101, "scope": "read"}, "name", "at most 100 characters"),
        ({"user": "csm", "name": "x", "scope": "admin"}, "scope", "“admin” is no scope"),
    ],
)
def test_bad_input_is_refused_at_its_field_and_writes_nothing(
    client, admin_user, csm, data, field, words
):
    client.force_login(admin_user)
    if data["user"] == "csm":
        data = {**data, "user": csm.pk}
    r = _create(client, **data)
    assert r.status_code == 200
    html = r.content.decode()
    assert "The token was not created" in html
    error = html.split(f'id="id_{field}_error">')[1].split("</ul>")[0]
    assert words in error
    assert not ApiToken.objects.exists()
    assert "issued-key" not in html


def test_a_token_for_an_inactive_user_is_refused_in_words(client, admin_user, csm):
    csm.is_active = False
    csm.save()
    client.force_login(admin_user)
    html = _create(client, user=csm.pk, name="Old CRM", scope="write").content.decode()
    error = html.split('id="id_user_error">')[1].split("</ul>")[0]
    assert "csm@example.com cannot sign in (inactive)" in error
    assert not ApiToken.objects.exists()


def test_revoke_asks_first_then_the_key_stops_working(client, admin_user, csm):
    token, key = api_token_issue(user=csm, name="Zapier", scope="read")
    client.force_login(admin_user)
    confirm = client.get(reverse(PAGE), {"revoke": token.pk}).content.decode()
    assert "Revoke “Zapier”?" in confirm
    assert reverse("workspace:api-token-revoke", args=[token.pk]) in confirm
    token.refresh_from_db()
    assert token.revoked_at is None  # the GET only asks
    r = client.post(reverse("workspace:api-token-revoke", args=[token.pk]))
    assert r.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert _works(key) == 401
    listing = client.get(r.headers["Location"]).content.decode()
    assert "Revoked “Zapier”" in listing and "revoked" in listing
    assert f"?revoke={token.pk}#" not in listing  # no second revoke offered
    # twice: refused in words, the first revocation time kept
    first = token.revoked_at
    again = client.post(reverse("workspace:api-token-revoke", args=[token.pk])).content.decode()
    assert "Not revoked: “Zapier” was revoked already" in again
    token.refresh_from_db()
    assert token.revoked_at == first


def test_revoke_confirmation_of_an_unknown_token_says_so(client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse(PAGE), {"revoke": "abc"}).content.decode()
    assert "No token with id “abc”." in html


def test_non_admins_cannot_list_create_or_revoke(client, csm, manager, admin_user):
    token, key = api_token_issue(user=admin_user, name="Segment", scope="write")
    for user in (csm, manager):
        client.force_login(user)
        assert client.get(reverse(PAGE)).status_code == 403
        assert _create(client, user=user.pk, name="mine", scope="write").status_code == 403
        r = client.post(reverse("workspace:api-token-revoke", args=[token.pk]))
        assert r.status_code == 403
    assert ApiToken.objects.count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_list_says_who_what_when(client, admin_user, csm, django_assert_max_num_queries):
    api_token_issue(user=csm, name="CSM write", scope="write")
    for n in range(5):
        api_token_issue(user=admin_user, name=f"T{n}", scope="read")
    client.force_login(admin_user)
    with django_assert_max_num_queries(10):
        html = client.get(reverse(PAGE)).content.decode()
    assert html.count('<tr id="api-token-') == 6
    # csm's write token: what it may and may not write
    assert "(not an Admin: imports and tracking refused; CTAs and first-value days" in html
    assert "never" in html


def test_the_intro_says_what_a_write_token_writes_in_the_tables_words(
    client, admin_user, manager, csm
):
    """The intro and the rows say the same, and what the permissions do: a non-Admin's
    write token writes CTAs and first-value days of the user's accounts (a Manager's also
    KPI targets); imports and tracking are refused."""
    api_token_issue(user=csm, name="CSM write", scope="write")
    api_token_issue(user=manager, name="Manager write", scope="write")
    client.force_login(admin_user)
    html = client.get(reverse(PAGE)).content.decode().replace("&#x27;", "'")
    assert (
        "it reads what that user sees. Only a token with the write scope writes: an Admin's "
        "everything; another user's is refused imports and tracking, and writes CTAs and "
        "first-value days of the user's accounts (a Manager's also KPI targets)."
    ) in html
    assert "writes only with the write scope and an Admin user" not in html
    csm_row = html.split("CSM write")[1].split("</tr>")[0]
    assert (
        "(not an Admin: imports and tracking refused; CTAs and first-value days of the "
        "user's accounts allowed)"
    ) in csm_row
    manager_row = html.split("Manager write")[1].split("</tr>")[0]
    assert "first-value days of the user's accounts and KPI targets allowed)" in manager_row
    # the form's helps say the same: no "writes need an Admin"
    assert "writes need an Admin" not in html and "(the user must be an Admin)" not in html
    assert "what it may write follows the role (above)" in html
    assert (
        "Read and write: also writes, as the user's role allows: an Admin's the bulk imports "
        "and tracking too; another user's CTAs and first-value days of their accounts (a "
        "Manager's also KPI targets)."
    ) in html
    assert "--name NAME [--scope write]</code> (read unless told)" in html


def test_what_a_managers_write_token_writes(manager):
    """The intro's claim, against the permissions: imports refused, KPI targets written."""
    _token, key = api_token_issue(user=manager, name="w", scope="write")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.post(reverse("api:account-bulk"), {"rows": []}, format="json").status_code == 403
    r = api.post(reverse("reports-api:target-list"), {}, format="json")
    assert r.status_code == 400  # past the permission: the body is what is wrong


def test_the_command_defaults_to_read_like_the_page(admin_user, csm):
    call_command("create_api_token", "--user", csm.email, "--name", "Export", stdout=io.StringIO())
    assert ApiToken.objects.get().scope == ApiToken.Scope.READ


def test_the_api_docs_link_to_the_page_for_admins_only(client, admin_user, csm):
    link = "Create a token in Manage → API tokens"
    client.force_login(admin_user)
    assert link in client.get("/api/docs/").content.decode()
    client.force_login(csm)
    assert link not in client.get("/api/docs/").content.decode()


def test_the_command_refuses_what_the_page_refuses(admin_user, csm):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--name: Say what the token is for"):
        call_command("create_api_token", "--user", csm.email, "--name", "  ")
    csm.is_active = False
    csm.save()
    with pytest.raises(CommandError, match=r"--user: csm@example.com cannot sign in"):
        call_command("create_api_token", "--user", csm.email, "--name", "x")
    assert not ApiToken.objects.exists()


# --- who made it, who revoked it ------------------------------------------------------------


def _row(html: str, token) -> str:
    """The visible text of ``token``'s row on the tokens page, spaces collapsed."""
    row = html.split(f'<tr id="api-token-{token.pk}"')[1].split("</tr>")[0]
    return " ".join(re.sub(r"<[^>]+>", " ", row.split(">", 1)[1]).split())


def _day(moment) -> str:
    return date_filter(timezone.localtime(moment), "j M Y")


def test_the_page_records_and_shows_who_made_and_who_revoked_a_token(client, admin_user, csm):
    client.force_login(admin_user)
    page = client.get(reverse(PAGE)).content.decode()
    once = page.split('name="once" value="')[1].split('"')[0]
    _create(client, user=csm.pk, name="CRM sync", scope="read", once=once)
    token = ApiToken.objects.get()
    assert (token.created_by, token.created_via) == (admin_user, ApiToken.Via.PAGE)
    assert (token.revoked_at, token.revoked_by, token.revoked_via) == (None, None, "")
    row = _row(client.get(reverse(PAGE)).content.decode(), token)
    assert f"{_day(token.created_at)} by admin@example.com" in row
    assert row.endswith("active Revoke…")

    r = client.post(reverse("workspace:api-token-revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert (token.revoked_by, token.revoked_via) == (admin_user, ApiToken.Via.PAGE)
    row = _row(client.get(r.headers["Location"]).content.decode(), token)
    assert f"{_day(token.created_at)} by admin@example.com" in row
    assert row.endswith(f"revoked {_day(token.revoked_at)} by admin@example.com")


def test_a_second_revoker_is_refused_and_the_first_one_stays(admin_user, manager, csm):
    token, _key = api_token_issue(user=csm, name="Zapier", scope="read", by=admin_user)
    api_token_revoke(token=token, by=admin_user)
    with pytest.raises(ValidationError, match="was revoked already"):
        api_token_revoke(token=token, by=manager)
    token.refresh_from_db()
    assert token.revoked_by == admin_user


def test_a_token_made_by_the_command_says_so(client, admin_user, csm):
    call_command("create_api_token", "--user", csm.email, "--name", "Nightly export")
    token = ApiToken.objects.get()
    assert (token.created_by, token.created_via) == (None, ApiToken.Via.COMMAND)
    client.force_login(admin_user)
    row = _row(client.get(reverse(PAGE)).content.decode(), token)
    assert f"{_day(token.created_at)} by a command" in row


def test_a_maker_and_revoker_deleted_since_read_a_removed_user(client, admin_user, csm):
    other = User.objects.create_user(email="gone@example.com", password="pw-for-tests-1")
    other.groups.add(Group.objects.get(name=Role.ADMIN.value))
    client.force_login(other)
    _create(client, user=csm.pk, name="Old sync", scope="read")
    token = ApiToken.objects.get()
    client.post(reverse("workspace:api-token-revoke", args=[token.pk]))
    other.delete()

    token.refresh_from_db()  # the token stays, its people are gone
    assert (token.created_by, token.created_via) == (None, ApiToken.Via.PAGE)
    assert (token.revoked_by, token.revoked_via) == (None, ApiToken.Via.PAGE)
    client.force_login(admin_user)
    row = _row(client.get(reverse(PAGE)).content.decode(), token)
    assert f"{_day(token.created_at)} by a removed user" in row
    assert row.endswith(f"revoked {_day(token.revoked_at)} by a removed user")


def test_a_token_from_before_the_record_names_nobody(client, admin_user, csm):
    token, _key = ApiToken.issue(user=csm, name="Legacy", scope="read")  # as before 0009
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    client.force_login(admin_user)
    row = _row(client.get(reverse(PAGE)).content.decode(), token)
    assert " by " not in row
    assert row.endswith(f"revoked {_day(timezone.now())}")


def test_a_revoker_on_an_active_token_is_refused_by_the_database(admin_user, csm):
    token, _key = api_token_issue(user=csm, name="Zapier", scope="read", by=admin_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(revoked_by=admin_user)


def test_the_django_admin_revokes_through_the_service_and_shows_who_read_only(
    client, admin_user, csm
):
    token, key = api_token_issue(user=csm, name="Segment", scope="read", by=admin_user)
    client.force_login(admin_user)
    change = client.get(reverse("admin:accounts_apitoken_change", args=[token.pk]))
    html = change.content.decode()
    assert change.status_code == 200 and 'name="name"' in html
    for field in ("created_by", "created_via", "revoked_at", "revoked_by", "revoked_via"):
        assert f'name="{field}"' not in html
    assert client.get(reverse("admin:accounts_apitoken_add")).status_code == 403

    changelist = reverse("admin:accounts_apitoken_changelist")
    r = client.post(changelist, {"action": "revoke", "_selected_action": [token.pk]})
    assert r.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert (token.revoked_by, token.revoked_via) == (admin_user, ApiToken.Via.ADMIN)
    assert _works(key) == 401
    listing = client.get(changelist).content.decode()
    assert "Revoked 1 token(s)" in listing
    # the list's columns, shown as text (a user reads as their name)
    assert '<td class="field-created_by nowrap">Ada</td>' in listing
    assert '<td class="field-revoked_by nowrap">Ada</td>' in listing
