"""The upload page and the import history, through the real door (Django test client)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from unittest import mock

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts import tasks
from accounts.models import Account, Contract, ImportRecord

pytestmark = pytest.mark.django_db

LIST = reverse("accounts:import-list")

ACCOUNTS_OK = (
    b"external_id,name,segment,owner_email\n"
    b"A-1,Acme,Enterprise,admin@example.com\n"
    b"A-2,Globex,SMB,\n"
)
ACCOUNTS_BAD = (  # row 3 has no name
    b"external_id,name,segment\nA-1,Acme,Enterprise\nA-2,,SMB\nA-3,Initech,SMB\n"
)
CONTRACTS_OK = (
    b"external_id,account_external_id,start_date,end_date,mrr\n"
    b"C-1,A-1,2024-01-01,2024-12-31,1000.00\n"
    b"C-2,A-2,2024-02-01,,250\n"
)
CONTRACTS_BAD = (  # row 2: not a number
    b"external_id,account_external_id,start_date,mrr\nC-1,A-1,2024-01-01,lots\n"
)


@pytest.fixture(autouse=True)
def _media_and_eager(settings, tmp_path, celery_eager):
    """Uploads land in a temporary MEDIA_ROOT; tasks run inline even when REDIS_URL is set."""
    settings.MEDIA_ROOT = tmp_path / "media"


def csv(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def upload(client, django_capture_on_commit_callbacks, files, **fields):
    """POST the form the way a browser does; on-commit work (the task) runs."""
    data = {"files": files, **{k: "on" if v is True else v for k, v in fields.items() if v}}
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(LIST, data)


def latest() -> ImportRecord:
    return ImportRecord.objects.latest("created_at")


# --- uploads ----------------------------------------------------------------------------------


def test_admin_uploads_valid_accounts_csv(client, admin_user, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    r = upload(client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)])

    record = latest()
    assert r.status_code == 302
    assert r.url == reverse("accounts:import-detail", kwargs={"uuid": record.uuid})
    assert record.origin == ImportRecord.Origin.UPLOAD
    assert record.user == admin_user
    assert (record.kind, record.filename) == ("accounts", "accounts.csv")
    assert record.status == ImportRecord.Status.SUCCEEDED
    assert (record.rows, record.created, record.rejected) == (2, 2, 0)
    assert sorted(Account.objects.values_list("external_id", flat=True)) == ["A-1", "A-2"]
    assert Account.objects.get(external_id="A-1").owner == admin_user

    page = client.get(r.url)
    assert page.status_code == 200
    assert b"badge-succeeded" in page.content
    assert b"Imported 2 rows: 2 created, 0 updated, 0 unchanged." in page.content
    assert b"hx-trigger" not in page.content  # finished: nothing polls


def test_upload_bigger_than_memory_limit_is_streamed_through_a_temporary_file(
    client, admin_user, django_capture_on_commit_callbacks, settings
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # bytes: every upload goes to a temporary file
    client.force_login(admin_user)
    rows = b"".join(b"A-%d,Customer %d,SMB,\n" % (i, i) for i in range(2000))
    upload(
        client,
        django_capture_on_commit_callbacks,
        [csv("accounts.csv", b"external_id,name,segment,owner_email\n" + rows)],
    )
    record = latest()
    assert record.status == ImportRecord.Status.SUCCEEDED, record.errors
    assert Account.objects.count() == 2000


def test_stored_upload_is_deleted_after_the_import(
    client, admin_user, django_capture_on_commit_callbacks, settings
):
    client.force_login(admin_user)
    upload(client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)])
    record = latest()
    assert record.stored_file == f"imports/{record.uuid}"
    assert not (Path(settings.MEDIA_ROOT) / record.stored_file).exists()


def test_reupload_of_same_file_changes_nothing(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    upload(client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)])
    upload(client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)])
    record = latest()
    assert (record.created, record.updated, record.unchanged) == (0, 0, 2)
    assert Account.objects.count() == 2


def test_bad_row_rejects_the_file_and_the_page_shows_row_and_column(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    r = upload(client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_BAD)])

    record = latest()
    assert record.status == ImportRecord.Status.REJECTED
    assert record.rejected == 1
    assert Account.objects.count() == 0  # the good rows are not written either

    page = client.get(r.url).content.decode()
    assert "badge-rejected" in page
    assert "Nothing was written: 1 row has errors." in page
    errors = page.split(f'id="import-{record.pk}-errors"')[1].split("</table>")[0]
    assert "accounts.csv" in errors
    assert '<td class="num">3</td>' in errors  # the header is row 1
    assert "<code>name</code>" in errors


def test_dry_run_validates_and_writes_nothing(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    r = upload(
        client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)], dry_run=True
    )
    record = latest()
    assert record.dry_run is True
    assert record.status == ImportRecord.Status.VALIDATED
    assert record.created == 2  # what an import would do
    assert Account.objects.count() == 0
    assert b"Dry run: all 2 rows are valid. Nothing was written" in client.get(r.url).content


def test_gzipped_csv_upload(client, admin_user, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    upload(
        client,
        django_capture_on_commit_callbacks,
        [SimpleUploadedFile("accounts.csv.gz", gzip.compress(ACCOUNTS_OK), "application/gzip")],
    )
    record = latest()
    assert record.status == ImportRecord.Status.SUCCEEDED, record.errors
    assert Account.objects.count() == 2


def test_chosen_kind_for_a_file_not_named_after_it(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    upload(
        client,
        django_capture_on_commit_callbacks,
        [csv("crm-export 2024.csv", ACCOUNTS_OK)],
        kind="accounts",
    )
    record = latest()
    assert (record.kind, record.filename, record.status) == (
        "accounts",
        "crm-export_2024.csv",
        ImportRecord.Status.SUCCEEDED,
    )
    assert Account.objects.count() == 2


def test_several_files_are_one_import_in_dependency_order(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    # contracts first in the form: the page still takes accounts first
    r = upload(
        client,
        django_capture_on_commit_callbacks,
        [csv("contracts.csv", CONTRACTS_OK), csv("accounts.csv", ACCOUNTS_OK)],
    )
    assert ImportRecord.objects.count() == 1
    record = latest()
    assert record.status == ImportRecord.Status.SUCCEEDED, record.errors
    assert record.kind == "dir"
    assert (record.rows, record.created) == (4, 4)
    assert Contract.objects.count() == 2
    page = client.get(r.url).content.decode()
    kinds = page.split(f'id="import-{record.pk}-kinds"')[1].split("</table>")[0]
    assert kinds.index("accounts") < kinds.index("contracts")


def test_several_files_are_all_or_nothing(client, admin_user, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    upload(
        client,
        django_capture_on_commit_callbacks,
        [csv("accounts.csv", ACCOUNTS_OK), csv("contracts.csv", CONTRACTS_BAD)],
    )
    record = latest()
    assert record.status == ImportRecord.Status.REJECTED
    assert Account.objects.count() == 0 and Contract.objects.count() == 0


def test_htmx_upload_answers_with_a_client_redirect(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            LIST, {"files": [csv("accounts.csv", ACCOUNTS_OK)]}, headers={"HX-Request": "true"}
        )
    assert r.status_code == 200
    assert r["HX-Redirect"] == reverse("accounts:import-detail", kwargs={"uuid": latest().uuid})


@pytest.mark.parametrize(
    ("files", "fields", "message"),
    [
        ([], {}, "This field is required."),
        ([("notes.txt", b"hello")], {}, "notes.txt: not a .csv or .csv.gz file."),
        ([("export.csv", ACCOUNTS_OK)], {}, "export.csv: cannot tell the kind of data"),
        (
            [("accounts.csv", ACCOUNTS_OK), ("contracts.csv", CONTRACTS_OK)],
            {"kind": "accounts"},
            "With several files, leave the kind",
        ),
        (
            [("accounts.csv", ACCOUNTS_OK), ("accounts.csv.gz", gzip.compress(ACCOUNTS_OK))],
            {},
            "Two files hold accounts",
        ),
    ],
)
def test_unusable_upload_redisplays_the_form_with_the_reason(
    client, admin_user, django_capture_on_commit_callbacks, files, fields, message
):
    client.force_login(admin_user)

    def data():  # fresh file objects for each request
        return {"files": [csv(n, c) for n, c in files], **fields}

    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(LIST, data())
        h = client.post(LIST, data(), headers={"HX-Request": "true"})
    assert r.status_code == 200 and message in r.content.decode()
    assert h.status_code == 200 and message in h.content.decode()
    assert b"<html" not in h.content and b'id="upload-form"' in h.content
    assert not ImportRecord.objects.exists()


def test_file_that_cannot_be_read_fails_with_a_reason_not_a_500(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    r = upload(
        client,
        django_capture_on_commit_callbacks,
        [SimpleUploadedFile("accounts.csv.gz", b"this is not gzip", "application/gzip")],
    )
    assert r.status_code == 302
    record = latest()
    assert record.status in (ImportRecord.Status.FAILED, ImportRecord.Status.REJECTED)
    assert record.errors
    page = client.get(r.url)
    assert page.status_code == 200
    assert b"accounts.csv.gz" in page.content
    assert Account.objects.count() == 0


def test_crash_inside_the_import_shows_a_failed_import_not_a_500(
    client, admin_user, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("bug in the loader")

    monkeypatch.setattr("accounts.intake.run_import", broken)
    client.force_login(admin_user)
    r = upload(client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)])
    assert r.status_code == 302
    record = latest()
    assert record.status == ImportRecord.Status.FAILED
    page = client.get(r.url)
    assert b"The import could not run, and nothing was written." in page.content
    assert b"see the server log" in page.content and b"bug in the loader" not in page.content


def test_header_that_is_not_utf8_is_reported_on_the_page(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    r = upload(
        client,
        django_capture_on_commit_callbacks,
        [csv("accounts.csv", b"external_id,name,s\xe9gment\nA-1,Acme,SMB\n")],  # Latin-1
    )
    assert latest().status == ImportRecord.Status.REJECTED
    page = client.get(r.url)
    assert page.status_code == 200
    assert "column name is not valid UTF-8" in page.content.decode()
    assert Account.objects.count() == 0


# --- the task ---------------------------------------------------------------------------------


def test_task_skips_a_record_that_is_no_longer_queued(admin_user):
    record = ImportRecord.objects.create(
        origin=ImportRecord.Origin.UPLOAD, kind="accounts", status=ImportRecord.Status.SUCCEEDED
    )
    tasks.run_uploaded_import(record.pk)  # a second delivery of the message
    record.refresh_from_db()
    assert record.status == ImportRecord.Status.SUCCEEDED
    tasks.run_uploaded_import(record.pk + 1000)  # a vanished record: no error


def test_task_with_missing_files_marks_the_record_failed(admin_user):
    record = ImportRecord.objects.create(
        origin=ImportRecord.Origin.UPLOAD, kind="accounts", stored_file="imports/nowhere"
    )
    tasks.run_uploaded_import(record.pk)
    record.refresh_from_db()
    assert record.status == ImportRecord.Status.FAILED
    assert "missing" in str(record.errors)


def test_progress_writer_throttles_cache_writes():
    cache.delete(tasks.progress_cache_key(42))
    clock = iter([10.0, 10.1, 10.7])
    write = tasks._ProgressWriter(record_pk=42, bytes_total=1000, clock=lambda: next(clock))
    write(100, 250, 1000)
    write(200, 500, 1000)  # 0.1 s later: skipped
    assert tasks.import_progress(42) == {
        "rows": 100,
        "bytes_done": 250,
        "bytes_total": 1000,
        "percent": 25,
    }
    write(300, 750, 1000)
    assert tasks.import_progress(42)["percent"] == 75


# --- the detail page while running -------------------------------------------------------------


def test_running_import_polls_a_progress_fragment(client, admin_user):
    record = ImportRecord.objects.create(
        origin=ImportRecord.Origin.UPLOAD, kind="events", status=ImportRecord.Status.RUNNING
    )
    cache.set(
        tasks.progress_cache_key(record.pk),
        {"rows": 12000, "bytes_done": 512 * 1024, "bytes_total": 1024 * 1024, "percent": 50},
    )
    client.force_login(admin_user)
    url = reverse("accounts:import-detail", kwargs={"uuid": record.uuid})

    page = client.get(url).content.decode()
    assert 'hx-trigger="every 1s"' in page and 'value="50"' in page

    fragment = client.get(url, headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content
    assert f'id="import-{record.pk}-progress"'.encode() in fragment.content
    assert b"12,000 rows so far" in fragment.content
    assert b"512.0\xc2\xa0KB of 1.0\xc2\xa0MB" in fragment.content

    ImportRecord.objects.filter(pk=record.pk).update(status=ImportRecord.Status.SUCCEEDED)
    done = client.get(url, headers={"HX-Request": "true"})
    assert done["HX-Refresh"] == "true"  # stop polling; reload shows the outcome


# --- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["csm", "manager", "outsider"])
def test_non_admins_get_403(client, request, persona, django_capture_on_commit_callbacks):
    record = ImportRecord.objects.create(origin=ImportRecord.Origin.CLI, kind="accounts")
    client.force_login(request.getfixturevalue(persona))
    detail = reverse("accounts:import-detail", kwargs={"uuid": record.uuid})
    assert client.get(LIST).status_code == 403
    assert client.get(detail).status_code == 403
    assert client.get(detail, headers={"HX-Request": "true"}).status_code == 403
    r = upload(client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)])
    assert r.status_code == 403
    assert ImportRecord.objects.count() == 1 and Account.objects.count() == 0


def test_superuser_without_group_is_an_admin(client, django_user_model):
    boss = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    client.force_login(boss)
    assert client.get(LIST).status_code == 200


def test_anonymous_is_sent_to_login(client):
    record = ImportRecord.objects.create(origin=ImportRecord.Origin.CLI, kind="accounts")
    for url in (LIST, reverse("accounts:import-detail", kwargs={"uuid": record.uuid})):
        r = client.get(url)
        assert r.status_code == 302 and r.url.startswith(reverse("login"))


def test_unknown_import_is_404(client, admin_user):
    client.force_login(admin_user)
    r = client.get(reverse("accounts:import-detail", args=["00000000-0000-0000-0000-000000000000"]))
    assert r.status_code == 404


# --- history ----------------------------------------------------------------------------------


def test_history_lists_every_door_with_a_query_ceiling(
    client, admin_user, csm, django_assert_max_num_queries
):
    for i in range(25):
        ImportRecord.objects.create(
            origin=[ImportRecord.Origin.CLI, ImportRecord.Origin.UPLOAD, ImportRecord.Origin.API][
                i % 3
            ],
            user=[admin_user, csm, None][i % 3],
            kind="accounts",
            filename=f"file-{i}.csv",
            status=ImportRecord.Status.SUCCEEDED,
            rows=i,
            created=i,
        )
    client.force_login(admin_user)
    # session + user + role groups (view) + role groups (nav) + count + page
    with django_assert_max_num_queries(6):
        r = client.get(LIST)
    content = r.content.decode()
    assert content.count('<tr id="import-') == 20
    assert "Command line" in content and "Web upload" in content and "API" in content
    assert "file-24.csv" in content and "file-4.csv" not in content  # newest first
    assert "Page 1 of 2" in content

    with django_assert_max_num_queries(6):
        older = client.get(LIST, {"page": 2}, headers={"HX-Request": "true"})
    assert b"<html" not in older.content
    assert older.content.count(b'<tr id="import-') == 5
    assert b'id="import-history"' in older.content and b"file-4.csv" in older.content


def test_history_empty_state(client, admin_user):
    client.force_login(admin_user)
    assert b"No imports yet." in client.get(LIST).content


def test_a_record_abandoned_by_a_dead_worker_is_run_again(
    client, admin_user, django_capture_on_commit_callbacks, settings
):
    import datetime as dt

    from django.utils import timezone

    from accounts.tasks import run_uploaded_import

    client.force_login(admin_user)
    with mock.patch("accounts.views._import_enqueue"):  # the worker "dies": nothing runs
        upload(client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)])
    record = latest()
    # it had been claimed and was running when the worker died, longer ago than the limit
    long_ago = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    ImportRecord.objects.filter(pk=record.pk).update(status="running", started_at=long_ago)
    run_uploaded_import(record.pk)  # the broker delivers the message again
    assert latest().status == ImportRecord.Status.SUCCEEDED
    # a record running for less than the limit may still be alive elsewhere: left alone
    recent = timezone.now()
    ImportRecord.objects.filter(pk=record.pk).update(status="running", started_at=recent)
    run_uploaded_import(record.pk)
    assert latest().status == ImportRecord.Status.RUNNING


# --- a first import with a mistake -------------------------------------------------------------

CONTRACTS_NO_SUCH_DAY = (  # row 3 (the header is row 1): November has 30 days
    b"external_id,account_external_id,start_date,end_date,mrr\n"
    b"C-1,A-1,2024-01-01,2024-12-31,1000.00\n"
    b"C-2,A-2,2024-11-31,,250\n"
)


def test_a_day_that_does_not_exist_is_named_with_why(
    client, admin_user, django_capture_on_commit_callbacks
):
    """2024-11-31 has the YYYY-MM-DD shape: "expected YYYY-MM-DD" alone would send the
    reader looking for a format mistake that is not there."""
    client.force_login(admin_user)
    r = upload(
        client,
        django_capture_on_commit_callbacks,
        [csv("accounts.csv", ACCOUNTS_OK), csv("contracts.csv", CONTRACTS_NO_SUCH_DAY)],
    )
    record = latest()
    assert record.status == ImportRecord.Status.REJECTED
    assert Account.objects.count() == 0 and Contract.objects.count() == 0
    assert [(e["source"], e["row"], e["column"]) for e in record.errors] == [
        ("contracts.csv", 3, "start_date")
    ]
    assert record.errors[0]["message"] == 'not a date: "2024-11-31": day is out of range for month'
    page = client.get(r.url).content.decode()
    assert "day is out of range for month" in page


def test_a_timestamp_that_does_not_exist_is_named_with_why():
    from accounts.intake import cells

    with pytest.raises(ValueError) as no_day:
        cells.timestamp("2024-02-30T09:00:00Z")
    assert (
        str(no_day.value)
        == 'not a timestamp: "2024-02-30T09:00:00Z": day is out of range for month'
    )
    with pytest.raises(ValueError) as no_hour:
        cells.timestamp("2024-02-10T25:00:00Z")
    assert str(no_hour.value) == 'not a timestamp: "2024-02-10T25:00:00Z": hour must be in 0..23'
    with pytest.raises(ValueError, match=r"\(expected e\.g\. 2024-03-01T09:30:00Z\)"):
        cells.timestamp("1 March 2024 09:30")  # a shape mistake: the example


def test_a_rejected_import_does_not_count_rows_as_created(
    client, admin_user, django_capture_on_commit_callbacks
):
    """Nothing was written: the two valid accounts were not "created". The page says what
    the valid rows would have done; the history shows no created/updated/unchanged for it."""
    client.force_login(admin_user)
    r = upload(
        client,
        django_capture_on_commit_callbacks,
        [csv("accounts.csv", ACCOUNTS_OK), csv("contracts.csv", CONTRACTS_BAD)],
    )
    record = latest()
    assert record.status == ImportRecord.Status.REJECTED and record.created == 2
    page = client.get(r.url).content.decode()
    counts = page.split('id="counts-title"')[1].split("</section>")[0]
    assert "<dt>Created</dt>" not in counts and "<dt>Would create</dt><dd>2</dd>" in counts
    assert "<dt>Would update</dt>" in counts and "<dt>Would leave unchanged</dt>" in counts
    assert "had the import been accepted" in counts
    kinds = page.split(f'id="import-{record.pk}-kinds"')[1].split("</table>")[0]
    assert ">Would create</th>" in kinds and ">Created</th>" not in kinds

    history = client.get(LIST).content.decode()
    row = history.split(f'<tr id="import-{record.pk}">')[1].split("</tr>")[0]
    cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)
    assert cells == ["3", "—", "—", "—", "1"]  # rows 2 + 1, nothing written, 1 rejected


def test_a_dry_run_says_would_too(client, admin_user, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    r = upload(
        client, django_capture_on_commit_callbacks, [csv("accounts.csv", ACCOUNTS_OK)], dry_run=True
    )
    counts = client.get(r.url).content.decode().split('id="counts-title"')[1].split("</section>")[0]
    assert "<dt>Would create</dt><dd>2</dd>" in counts and "<dt>Created</dt>" not in counts
