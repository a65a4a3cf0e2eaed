"""A scheduled report's form sent twice (a double click on Save, a request resent) makes one
report, not two that would each mail the recipients every period."""

from __future__ import annotations

import html
import re

import pytest

from accounts.models import FormOnce
from reports.models import ScheduledReport

pytestmark = pytest.mark.django_db


def _shown_token(client) -> str:
    page = client.get("/reports/scheduled/").content.decode()
    token = re.search(r'name="form_key" value="([^"]+)"', page)
    assert token, "the form carries a key of its own"
    return html.unescape(token.group(1))


def test_the_same_form_sent_twice_makes_one_report(client, admin_user):
    client.force_login(admin_user)
    form = {
        "name": "Weekly book", "scope_kind": "all", "scope_key": "", "cadence": "weekly",
        "recipients": [admin_user.pk], "form_key": _shown_token(client),
    }  # fmt: skip
    first = client.post("/reports/scheduled/", form)
    second = client.post("/reports/scheduled/", form, follow=True)
    assert first.status_code == 302
    report = ScheduledReport.objects.get()
    assert (report.name, report.created_by, list(report.recipients.all())) == (
        "Weekly book",
        admin_user,
        [admin_user],
    )
    assert "“Weekly book” was saved already (the form was sent twice): one report." in (
        html.unescape(second.content.decode())
    )
    # the page shown again is a new form: a second report on purpose is one more
    again = {**form, "name": "Weekly book, again", "form_key": _shown_token(client)}
    assert again["form_key"] != form["form_key"]
    assert client.post("/reports/scheduled/", again).status_code == 302
    assert ScheduledReport.objects.count() == 2


def test_a_form_refused_keeps_its_key_so_the_fixed_one_makes_one_report(client, admin_user):
    client.force_login(admin_user)
    token = _shown_token(client)
    bad = {"name": "", "scope_kind": "all", "cadence": "weekly", "form_key": token}
    page = client.post("/reports/scheduled/", bad).content.decode()
    assert f'name="form_key" value="{token}"' in page
    good = {**bad, "name": "Monthly", "recipients": [admin_user.pk]}
    for _ in range(2):
        assert client.post("/reports/scheduled/", good).status_code == 302
    assert ScheduledReport.objects.count() == 1


def test_a_form_without_a_key_still_saves(client, admin_user):
    """Scripts and older pages that send no key: saved as before (no dedup to lean on)."""
    client.force_login(admin_user)
    form = {"name": "W", "scope_kind": "all", "cadence": "weekly", "recipients": [admin_user.pk]}
    for _ in range(2):
        assert client.post("/reports/scheduled/", form).status_code == 302
    assert ScheduledReport.objects.count() == 2 and not FormOnce.objects.exists()


def test_a_form_sent_again_after_its_report_was_removed_makes_nothing(client, admin_user):
    client.force_login(admin_user)
    form = {"name": "W", "scope_kind": "all", "cadence": "weekly", "recipients": [admin_user.pk],
            "form_key": _shown_token(client)}  # fmt: skip
    client.post("/reports/scheduled/", form)
    client.post(
        "/reports/scheduled/",
        {"action": "delete", "pk": ScheduledReport.objects.get().pk, "confirm": "1"},
    )
    r = client.post("/reports/scheduled/", form, follow=True)
    assert "This form was sent already." in r.content.decode()
    assert not ScheduledReport.objects.exists()
