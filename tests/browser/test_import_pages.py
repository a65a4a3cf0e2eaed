"""The data-import pages in a real browser: sign in, upload, see the outcome."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Account, ImportRecord

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "admin@demo.example"
CSM = "csm1@demo.example"

GOOD = b"external_id,name,segment\nB-1,Bluth Company,Enterprise\nB-2,Dunder Mifflin,SMB\n"
BAD = b"external_id,name,segment\nB-1,Bluth Company,Enterprise\nB-2,,SMB\nB-3,Vandelay,SMB\n"


def choose(page, name: str, content: bytes) -> None:
    page.get_by_label("CSV files").set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": content}]
    )


def test_login_page(page, shot):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "login")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("enter a correct email")


def test_admin_uploads_a_file_with_a_bad_row_and_sees_the_row_error(page, login, shot):
    login(page, ADMIN)
    page.get_by_role("link", name="Data import").click()
    expect(page.get_by_role("heading", name="Data import", exact=True)).to_be_visible()
    expect(page.get_by_text("No imports yet.")).to_be_visible()
    choose(page, "accounts.csv", BAD)
    shot(page, "import-upload")
    page.get_by_role("button", name="Upload and import").click()

    expect(page.get_by_text("Nothing was written: 1 row has errors.")).to_be_visible()
    errors = page.locator("table.table-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("accounts.csv")
    expect(errors.first.locator("td").nth(1)).to_have_text("3")
    expect(errors.first.locator("td").nth(2)).to_have_text("name")
    shot(page, "import-rejected")
    assert Account.objects.count() == 0
    assert ImportRecord.objects.get().status == ImportRecord.Status.REJECTED


def test_admin_uploads_a_good_file_and_sees_the_counts(page, login, shot):
    login(page, ADMIN)
    page.goto("/imports/")
    choose(page, "accounts.csv", GOOD)
    page.get_by_role("button", name="Upload and import").click()

    expect(page.get_by_text("Imported 2 rows: 2 created, 0 updated, 0 unchanged.")).to_be_visible()
    created = page.locator(".stats > div", has_text="Created")
    expect(created.locator("dd")).to_have_text("2")
    shot(page, "import-succeeded")
    assert sorted(Account.objects.values_list("name", flat=True)) == [
        "Bluth Company",
        "Dunder Mifflin",
    ]

    # the history on the upload page lists it, and links back to it
    page.get_by_role("link", name="Back to data import").click()
    row = page.locator("#import-history tbody tr").first
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text("Web upload")
    shot(page, "import-history")


def test_upload_form_error_is_shown_in_place(page, login):
    login(page, ADMIN)
    page.goto("/imports/")
    choose(page, "export.csv", GOOD)
    page.get_by_role("button", name="Upload and import").click()
    expect(page.get_by_role("alert")).to_contain_text("export.csv: cannot tell the kind")
    expect(page).to_have_url(re.compile(r"/imports/$"))
    assert not ImportRecord.objects.exists()


def test_upload_page_on_a_phone(new_page, login, shot):
    page = login(new_page(width=390, height=844), ADMIN)
    page.goto("/imports/")
    # nothing wider than the screen: no sideways scrolling of the page itself
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "import-upload-phone")


def test_csm_does_not_see_the_data_import_link(page, login, shot):
    login(page, CSM)
    shot(page, "home-csm")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Queue")).to_be_visible()  # the workspace's home
    expect(nav.get_by_role("link", name="Data import")).to_have_count(0)
    response = page.goto("/imports/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="This page is not for your role")).to_be_visible()


def test_upload_progress_bar_follows_htmx_progress_events(page, login):
    """static/js/app.js turns htmx:xhr:progress (fired while the browser sends the files)
    into the form's progress bar."""
    login(page, ADMIN)
    page.goto("/imports/")
    box = page.locator("#upload-form-progress")
    expect(box).to_be_hidden()
    page.evaluate(
        """document.getElementById('upload-form').dispatchEvent(new CustomEvent(
             'htmx:xhr:progress',
             {bubbles: true, detail: {lengthComputable: true, loaded: 3145728, total: 8388608}}))"""
    )
    expect(box).to_be_visible()
    expect(box.locator("progress")).to_have_attribute("value", "38")
    expect(box).to_contain_text("Uploading… 38% (3.0 MB of 8.0 MB)")


def test_running_import_shows_progress_then_the_outcome(page, login, shot):
    """Deployed mode: a worker runs the import while the page polls its progress fragment,
    and reloads itself once the import is done."""
    from django.core.cache import cache

    from accounts import tasks

    login(page, ADMIN)
    record = ImportRecord.objects.create(
        origin=ImportRecord.Origin.UPLOAD,
        kind="events",
        filename="events.csv.gz",
        status=ImportRecord.Status.RUNNING,
    )
    key = tasks.progress_cache_key(record.pk)
    cache.set(key, {"rows": 40000, "bytes_done": 4 << 20, "bytes_total": 10 << 20, "percent": 40})
    page.goto(f"/imports/{record.uuid}/")
    bar = page.locator(f"#import-{record.pk}-progress progress")
    expect(bar).to_have_attribute("value", "40")
    expect(page.get_by_text("40,000 rows so far")).to_be_visible()
    shot(page, "import-running")

    cache.set(key, {"rows": 80000, "bytes_done": 8 << 20, "bytes_total": 10 << 20, "percent": 80})
    expect(bar).to_have_attribute("value", "80")  # the next poll

    ImportRecord.objects.filter(pk=record.pk).update(
        status=ImportRecord.Status.SUCCEEDED, rows=100000, created=100000
    )
    expect(page.get_by_text("Imported 100,000 rows: 100,000 created")).to_be_visible()
    expect(page.locator(f"#import-{record.pk}-progress")).to_have_count(0)
