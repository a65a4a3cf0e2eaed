"""The REST API through its real doors: DRF's APIClient, token auth, the real database."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import (
    Account,
    Activity,
    ApiToken,
    Contract,
    ImportRecord,
    Invoice,
    Stakeholder,
    Ticket,
    TimelineEntry,
    UsageDaily,
    UsageEvent,
)
from tests.factories import (
    AccountFactory,
    ContractFactory,
    InvoiceFactory,
    StakeholderFactory,
    TicketFactory,
)

pytestmark = pytest.mark.django_db


def _api(user=None, *, scope=ApiToken.Scope.WRITE, scheme="Bearer") -> APIClient:
    client = APIClient()
    if user is not None:
        _token, key = ApiToken.issue(user=user, name="tests", scope=scope)
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    return _api(admin_user)


@pytest.fixture
def csm_api(csm) -> APIClient:
    return _api(csm)


def _post(client: APIClient, name: str, body, **params):
    url = reverse(f"api:{name}")
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(url, body, format="json")


def _counts():
    return (
        Account.objects.count(),
        Contract.objects.count(),
        Stakeholder.objects.count(),
        Ticket.objects.count(),
        Invoice.objects.count(),
        UsageEvent.objects.count(),
    )


# --- authentication and permissions ---------------------------------------------------------


def test_no_token_is_401(admin_user):
    r = APIClient().get(reverse("api:account-list"))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_token_is_401(admin_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer cs_not-a-real-key")
    r = client.get(reverse("api:account-list"))
    assert r.status_code == 401
    assert r.json() == {"detail": "Invalid token."}


def test_revoked_token_is_401(admin_user):
    token, key = ApiToken.issue(user=admin_user, name="old")
    token.revoked_at = timezone.now()
    token.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    r = _post(client, "account-bulk", {"rows": [{"external_id": "A1", "name": "Acme"}]})
    assert r.status_code == 401
    assert r.json() == {"detail": "Token revoked."}
    assert Account.objects.count() == 0


def test_token_keyword_and_basic_write_key_are_accepted(admin_user):
    _token, key = ApiToken.issue(user=admin_user, name="segment")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(reverse("api:account-list")).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Basic " + _b64(f"{key}:"))
    assert client.get(reverse("api:account-list")).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Basic !!!not-base64")
    assert client.get(reverse("api:account-list")).status_code == 401


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_csm_and_manager_cannot_write(request, persona):
    client = _api(request.getfixturevalue(persona))
    r = _post(client, "account-bulk", {"rows": [{"external_id": "A1", "name": "Acme"}]})
    assert r.status_code == 403
    assert "Admin" in r.json()["detail"]
    r = _post(client, "event-batch", {"events": []})
    assert r.status_code == 403
    assert Account.objects.count() == 0


def test_read_only_token_reads_but_cannot_write(admin_user):
    client = _api(admin_user, scope=ApiToken.Scope.READ)
    assert client.get(reverse("api:account-list")).status_code == 200
    r = _post(client, "account-bulk", {"rows": [{"external_id": "A1", "name": "Acme"}]})
    assert r.status_code == 403
    assert "read-only" in r.json()["detail"]
    assert Account.objects.count() == 0


def test_session_admin_can_write_with_csrf(admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    r = _post(client, "account-bulk", {"rows": [{"external_id": "A1", "name": "Acme"}]})
    assert r.status_code == 403  # a session write needs the CSRF token, like any form
    client = APIClient()
    client.force_login(admin_user)
    r = _post(client, "account-bulk", {"rows": [{"external_id": "A1", "name": "Acme"}]})
    assert r.status_code == 200, r.json()


# --- bulk upserts ------------------------------------------------------------------------------


ACCOUNT_ROWS = [
    {
        "external_id": "A1",
        "name": "Acme",
        "segment": "Enterprise",
        "owner_email": "csm@example.com",
    },
    {"external_id": "A2", "name": "Globex", "segment": "SMB"},
]


def test_bulk_accounts_creates_then_reposting_changes_nothing(admin_api, csm):
    r = _post(admin_api, "account-bulk", {"rows": ACCOUNT_ROWS})
    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["created"], body["updated"], body["unchanged"], body["rows"]) == (2, 0, 0, 2)
    assert body["ok"] and body["written"] and not body["dry_run"]
    assert body["status"] == "succeeded" and body["errors"] == [] and body["messages"] == []
    record = ImportRecord.objects.get(uuid=body["import_uuid"])
    assert (record.origin, record.kind, record.created) == ("api", "accounts", 2)
    assert record.user.email == "admin@example.com"
    assert Account.objects.get(external_id="A1").owner == csm

    r = _post(admin_api, "account-bulk", {"rows": ACCOUNT_ROWS})
    assert r.status_code == 200
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 2)

    changed = [{"external_id": "A2", "name": "Globex Corp"}]  # missing keys stay as they are
    r = _post(admin_api, "account-bulk", changed)  # a bare list is accepted too
    assert r.status_code == 200
    assert (r.json()["created"], r.json()["updated"]) == (0, 1)
    a2 = Account.objects.get(external_id="A2")
    assert (a2.name, a2.segment) == ("Globex Corp", "SMB")


def test_bulk_dry_run_counts_and_writes_nothing(admin_api, csm):
    r = _post(admin_api, "account-bulk", {"rows": ACCOUNT_ROWS}, dry_run="true")
    assert r.status_code == 200
    body = r.json()
    assert body["dry_run"] and not body["written"] and body["created"] == 2
    assert body["status"] == "validated"
    assert Account.objects.count() == 0


def test_bulk_every_kind(admin_api):
    AccountFactory(external_id="A1")
    cases = [
        ("contract-bulk", {"external_id": "C1", "account_external_id": "A1", "start_date": "2024-01-01", "mrr": 99.5}, Contract),
        ("stakeholder-bulk", {"external_id": "S1", "account_external_id": "A1", "email": "x@acme.example", "role": "champion"}, Stakeholder),
        ("ticket-bulk", {"external_id": "T1", "account_external_id": "A1", "opened_at": "2024-03-01T09:30:00Z", "status": "pending", "escalated": True}, Ticket),
        ("invoice-bulk", {"external_id": "I1", "account_external_id": "A1", "issued_on": "2024-03-01", "amount": "120.00", "status": "paid", "paid_on": "2024-03-05"}, Invoice),
    ]  # fmt: skip
    for name, row, model in cases:
        r = _post(admin_api, name, {"rows": [row]})
        assert r.status_code == 200, (name, r.json())
        assert r.json()["created"] == 1
        assert model.objects.get(external_id=row["external_id"]).account.external_id == "A1"
    assert Ticket.objects.get().escalated is True


VALID_CONTRACT = {
    "external_id": "C-OK",
    "account_external_id": "A1",
    "start_date": "2024-01-01",
    "mrr": "100",
}


@pytest.mark.parametrize(
    ("name", "bad_row", "column", "reason"),
    [
        ("contract-bulk", {"external_id": "C2", "account_external_id": "A1", "mrr": 5}, "start_date", "required"),
        ("contract-bulk", {**VALID_CONTRACT, "external_id": "C2", "start_date": "2024-13-01"}, "start_date", "date"),
        ("contract-bulk", {**VALID_CONTRACT, "external_id": "C2", "account_external_id": "NOPE"}, "account_external_id", "NOPE"),
        ("contract-bulk", {**VALID_CONTRACT, "external_id": "C2", "mrr": -1}, "mrr", ""),
        ("contract-bulk", {**VALID_CONTRACT, "external_id": "C2", "end_date": "2023-12-31"}, "end_date", ""),
        ("contract-bulk", {**VALID_CONTRACT}, "external_id", "C-OK"),  # duplicate in the batch
        ("ticket-bulk", {"external_id": "T2", "account_external_id": "A1", "opened_at": "2024-03-01T09:00:00Z", "status": "bogus"}, "status", "bogus"),
        ("stakeholder-bulk", {"external_id": "S2", "account_external_id": "A1", "role": "boss"}, "role", "boss"),
        ("invoice-bulk", {"external_id": "I2", "account_external_id": "A1", "issued_on": "2024-03-01", "amount": 10, "status": "late"}, "status", "late"),
    ],
)  # fmt: skip
def test_bad_row_is_400_with_row_and_column_and_nothing_written(
    admin_api, name, bad_row, column, reason
):
    AccountFactory(external_id="A1")
    good = {
        "contract-bulk": VALID_CONTRACT,
        "ticket-bulk": {"external_id": "T-OK", "account_external_id": "A1", "opened_at": "2024-03-01T09:00:00Z"},
        "stakeholder-bulk": {"external_id": "S-OK", "account_external_id": "A1"},
        "invoice-bulk": {"external_id": "I-OK", "account_external_id": "A1", "issued_on": "2024-03-01", "amount": 1},
    }[name]  # fmt: skip
    before = _counts()
    r = _post(admin_api, name, {"rows": [good, bad_row]})
    assert r.status_code == 400, r.json()
    body = r.json()
    assert _counts() == before  # the good row was not written either
    assert any(m.startswith(f"request: row 2, column {column}: ") for m in body["messages"]), body
    error = next(e for e in body["errors"] if e["column"] == column)
    assert error["row"] == 2 and error["source"] == "request"
    assert reason.lower() in error["message"].lower()
    record = ImportRecord.objects.get(uuid=body["import_uuid"])
    assert record.status == "rejected" and record.created == 0


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ('{"rows": [', "not valid JSON"),
        ("NaN", "not valid JSON"),
        ('"just a string"', "must be a list"),
        ("42", "must be a list"),
        ('{"rows": "A1"}', "must be a list"),
        ('{"accounts": []}', '{"rows": [...]}'),
        ("[1, null, []]", "row 1: must be a JSON object"),
        ('{"rows": [{"external_id": {"x": 1}, "name": "n"}]}', "column external_id"),
        ('{"rows": [{"external_id": ["A"], "name": "n"}]}', "column external_id"),
        ('{"rows": [{"external_id": "A\\u0000", "name": "n"}]}', "column external_id"),
        ('{"rows": [{"external_id": "A", "name": "n", "x\\u0000": 1}]}', "NUL"),
        (
            '{"rows": [{"external_id": "A", "name": "n", "customer_since": "2024\\u0000"}]}',
            "column customer_since: contains a NUL",
        ),
        (
            '{"rows": [{"external_id": "A", "name": "n", "customer_since": 20240101}]}',
            "column customer_since",
        ),
        ('{"rows": [{"external_id": "A", "name": "n", "nope": 1}]}', "nope"),
        ('{"rows": [{"external_id": "A", "name": true}]}', "column name"),
        ('{"rows": [{"external_id": "' + "x" * 300 + '", "name": "n"}]}', "column external_id"),
    ],
)
def test_wrong_payloads_are_400_never_500(admin_api, raw, fragment):
    r = admin_api.post(reverse("api:account-bulk"), raw, content_type="application/json")
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["messages"] and body["errors"]
    assert any(fragment in m for m in body["messages"]), body["messages"]
    assert Account.objects.count() == 0


@pytest.mark.parametrize(
    "mrr", ["1e400", "123456789012345678901234567890", "-0.001", "12.345", '"12,5"', "true"]
)
def test_out_of_range_numbers_are_400(admin_api, mrr):
    AccountFactory(external_id="A1")
    raw = '[{"external_id": "C1", "account_external_id": "A1", "start_date": "2024-01-01", "mrr": %s}]'
    r = admin_api.post(reverse("api:contract-bulk"), raw % mrr, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["errors"][0]["column"] == "mrr"
    assert Contract.objects.count() == 0


def test_bad_flag_and_wrong_content_type(admin_api):
    r = _post(admin_api, "account-bulk", {"rows": ACCOUNT_ROWS}, dry_run="maybe")
    assert r.status_code == 400
    assert r.json()["errors"][0]["column"] == "dry_run"
    r = admin_api.post(
        reverse("api:account-bulk"), "external_id,name\nA1,Acme", content_type="text/csv"
    )
    assert r.status_code == 415
    r = admin_api.get(reverse("api:account-bulk"))
    assert r.status_code == 405
    assert Account.objects.count() == 0


# --- event batch -------------------------------------------------------------------------------


def _events(n: int, account="A1"):
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    return [
        {
            "account_external_id": account,
            "user_id": f"u{i % 7}",
            "event": "report_created",
            "occurred_at": (start + dt.timedelta(minutes=i)).isoformat(),
            "value": i,
        }
        for i in range(n)
    ]


def test_event_batch_counts_and_never_double_counts(admin_api):
    AccountFactory(external_id="A1")
    events = _events(50)
    r = _post(admin_api, "event-batch", {"events": events})
    assert r.status_code == 200, r.json()
    assert (r.json()["created"], r.json()["unchanged"], r.json()["rows"]) == (50, 0, 50)
    r = _post(admin_api, "event-batch", {"events": events + _events(60)[50:]})
    assert r.status_code == 200
    assert (r.json()["created"], r.json()["unchanged"]) == (10, 50)
    assert UsageEvent.objects.count() == 60
    assert ImportRecord.objects.filter(kind="events", origin="api").count() == 2


def test_event_batch_bad_event_rejects_the_batch(admin_api):
    AccountFactory(external_id="A1")
    events = _events(3)
    events[1]["occurred_at"] = "yesterday"
    events[2]["account_external_id"] = "NOPE"
    r = _post(admin_api, "event-batch", {"events": events})
    assert r.status_code == 400
    messages = r.json()["messages"]
    assert any(m.startswith("request: row 2, column occurred_at: ") for m in messages), messages
    assert any(m.startswith("request: row 3, column account_external_id: ") for m in messages)
    assert UsageEvent.objects.count() == 0


def test_event_batch_over_the_limit_is_413(admin_api, settings):
    settings.EVENT_BATCH_MAX = 5
    AccountFactory(external_id="A1")
    r = _post(admin_api, "event-batch", {"events": _events(6)})
    assert r.status_code == 413
    assert "EVENT_BATCH_MAX" in r.json()["messages"][0]
    assert UsageEvent.objects.count() == 0


def test_body_larger_than_the_upload_limit_is_413(admin_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    AccountFactory(external_id="A1")
    r = _post(admin_api, "event-batch", {"events": _events(20)})
    assert r.status_code == 413
    assert "bytes" in r.json()["messages"][0]


# --- reads ---------------------------------------------------------------------------------------


@pytest.fixture
def book(csm, manager, admin_user):
    """Two accounts of the CSM, one of the manager, one of nobody."""
    mine = AccountFactory(external_id="A-CSM-1", name="Alpha", owner=csm, segment="Enterprise")
    AccountFactory(external_id="A-CSM-2", name="Beta", owner=csm, lifecycle_stage="mature")
    AccountFactory(external_id="A-MGR", name="Gamma", owner=manager)
    AccountFactory(external_id="A-NONE", name="Delta")
    return mine


def _ids(r) -> list[str]:
    assert r.status_code == 200, r.json()
    return [row["external_id"] for row in r.json()["results"]]


def test_account_filters(admin_api, book):
    url = reverse("api:account-list")
    assert sorted(_ids(admin_api.get(url))) == ["A-CSM-1", "A-CSM-2", "A-MGR", "A-NONE"]
    assert _ids(admin_api.get(url, {"segment": "Enterprise"})) == ["A-CSM-1"]
    assert _ids(admin_api.get(url, {"owner_email": "CSM@example.com"})) == ["A-CSM-1", "A-CSM-2"]
    assert _ids(admin_api.get(url, {"lifecycle_stage": "mature"})) == ["A-CSM-2"]
    assert _ids(admin_api.get(url, {"external_id": "A-MGR"})) == ["A-MGR"]
    assert _ids(admin_api.get(url, {"q": "delt"})) == ["A-NONE"]
    Account.objects.filter(external_id="A-NONE").update(
        updated_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    since = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    assert "A-NONE" not in _ids(admin_api.get(url, {"updated_since": since}))
    row = admin_api.get(url, {"external_id": "A-CSM-1"}).json()["results"][0]
    assert row["owner_email"] == "csm@example.com" and row["name"] == "Alpha"


def test_updated_since_lists_an_account_whose_standing_changed(
    admin_api, celery_eager, settings, django_capture_on_commit_callbacks
):
    """A row shows the standing's health, arr, renewal_on and priority: an account whose own
    fields did not change is listed once its standing was refreshed at or after the instant,
    and a contract import (which refreshes the standing of its accounts) lists it too."""
    from django.core.cache import cache

    from accounts import utc
    from metrics.models import AccountStanding
    from metrics.standings import account_standings_refresh

    url = reverse("api:account-list")
    fresh = AccountFactory(external_id="A-FRESH")
    stale = AccountFactory(external_id="A-STALE")
    account_standings_refresh(account_ids=[fresh.pk, stale.pk], day=utc.today())
    since = timezone.now()
    Account.objects.update(updated_at=since - dt.timedelta(days=1))
    AccountStanding.objects.update(updated_at=since - dt.timedelta(seconds=1))
    assert _ids(admin_api.get(url, {"updated_since": since.isoformat()})) == []
    account_standings_refresh(account_ids=[fresh.pk], day=utc.today())
    assert _ids(admin_api.get(url, {"updated_since": since.isoformat()})) == ["A-FRESH"]

    settings.ACCOUNT_DATA_CHANGED_HOOKS = ["metrics.tasks.account_changed"]  # as deployed
    cache.clear()  # no debounce left by another test: the recompute runs now
    contract = {**VALID_CONTRACT, "account_external_id": "A-STALE", "mrr": 200}
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(admin_api, "contract-bulk", {"rows": [contract]}).json()["created"] == 1
    stale.refresh_from_db()
    assert stale.updated_at < since  # the account's own row is untouched
    rows = admin_api.get(url, {"updated_since": since.isoformat()}).json()["results"]
    assert {r["external_id"]: r["arr"] for r in rows} == {"A-FRESH": "0.00", "A-STALE": "2400.00"}


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"lifecycle_stage": "zombie"}, "lifecycle_stage"),
    ],
)
def test_bad_filter_value_is_400_naming_the_parameter(admin_api, book, params, bad):
    r = admin_api.get(reverse("api:account-list"), params)
    assert r.status_code == 400
    assert bad in r.json()


def test_pagination(admin_api):
    AccountFactory.create_batch(7)
    url = reverse("api:account-list")
    first = admin_api.get(url, {"page_size": 3}).json()
    assert first["count"] == 7 and len(first["results"]) == 3 and first["next"]
    last = admin_api.get(url, {"page_size": 3, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    seen = {
        r["id"]
        for p in (1, 2, 3)
        for r in admin_api.get(url, {"page_size": 3, "page": p}).json()["results"]
    }
    assert len(seen) == 7
    assert admin_api.get(url, {"page": 99}).status_code == 404  # past the end
    assert admin_api.get(url, {"page": "last", "page_size": 3}).json()["results"] == last["results"]
    for bad in ("x", "", "0", "-1"):  # not a page number: said, not read as page 1 or a 404
        r = admin_api.get(url, {"page": bad})
        assert r.status_code == 400, bad
        assert r.json() == {"page": [f"must be a whole number from 1, got {bad!r}"]}


def test_contract_filters(admin_api, book):
    other = AccountFactory(external_id="A-OTHER")
    ContractFactory(
        external_id="C-OLD",
        account=book,
        start_date=dt.date(2023, 1, 1),
        end_date=dt.date(2023, 12, 31),
    )
    ContractFactory(
        external_id="C-NOW", account=book, start_date=dt.date(2024, 1, 1), end_date=None
    )
    ContractFactory(external_id="C-OTHER", account=other, start_date=dt.date(2024, 1, 1))  # fmt: skip
    url = reverse("api:contract-list")
    assert _ids(admin_api.get(url, {"account_external_id": "A-CSM-1"})) == ["C-OLD", "C-NOW"]
    assert _ids(admin_api.get(url, {"active_on": "2023-12-31"})) == ["C-OLD"]
    assert sorted(_ids(admin_api.get(url, {"active_on": "2025-06-01"}))) == ["C-NOW", "C-OTHER"]
    assert admin_api.get(url, {"active_on": "2025-13-01"}).status_code == 400
    row = admin_api.get(url, {"external_id": "C-NOW"}).json()["results"][0]
    assert row["account_external_id"] == "A-CSM-1" and row["mrr"] == "100.00"


def test_ticket_and_invoice_filters(admin_api, book):
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    TicketFactory(external_id="T-OPEN", account=book, status="open", opened_at=t0)
    TicketFactory(
        external_id="T-ESC",
        account=book,
        status="pending",
        escalated=True,
        opened_at=t0 + dt.timedelta(days=10),
    )
    TicketFactory(external_id="T-DONE", account=book, status="solved", opened_at=t0 + dt.timedelta(days=20))  # fmt: skip
    url = reverse("api:ticket-list")
    assert _ids(admin_api.get(url, {"status": "open"})) == ["T-OPEN"]
    assert _ids(admin_api.get(url, {"escalated": "true"})) == ["T-ESC"]
    r = admin_api.get(
        url, {"opened_after": "2024-03-05T00:00:00Z", "opened_before": "2024-03-15T00:00:00Z"}
    )
    assert _ids(r) == ["T-ESC"]
    assert admin_api.get(url, {"status": "bogus"}).status_code == 400

    InvoiceFactory(external_id="I-PAID", account=book, status="paid", paid_on=dt.date(2024, 3, 10))
    InvoiceFactory(
        external_id="I-OPEN",
        account=book,
        status="open",
        issued_on=dt.date(2024, 4, 1),
        due_on=None,
    )
    url = reverse("api:invoice-list")
    assert _ids(admin_api.get(url, {"status": "paid"})) == ["I-PAID"]
    assert _ids(admin_api.get(url, {"unpaid": "true"})) == ["I-OPEN"]
    assert _ids(admin_api.get(url, {"issued_after": "2024-03-15"})) == ["I-OPEN"]


def test_stakeholders_and_activities(admin_api, book, csm):
    person = StakeholderFactory(external_id="S1", account=book, role="champion")
    StakeholderFactory(external_id="S2", account=book, role="billing")
    activity = Activity.objects.create(account=book, author=csm, kind="call", subject="QBR")
    activity.stakeholders.add(person)
    assert _ids(admin_api.get(reverse("api:stakeholder-list"), {"role": "champion"})) == ["S1"]
    r = admin_api.get(reverse("api:activity-list"), {"account_external_id": "A-CSM-1"})
    row = r.json()["results"][0]
    assert (row["kind"], row["author_email"], row["stakeholder_external_ids"]) == (
        "call",
        "csm@example.com",
        ["S1"],
    )
    r = admin_api.get(reverse("api:activity-detail", args=[activity.pk]))
    assert r.status_code == 200 and r.json()["subject"] == "QBR"


def test_timeline_and_usage_per_account(admin_api, csm_api, book):
    other = Account.objects.get(external_id="A-NONE")
    for day in (1, 2, 3):
        TimelineEntry.objects.create(
            account=book,
            occurred_at=dt.datetime(2024, 3, day, tzinfo=dt.UTC),
            kind="ticket_opened",
            key=f"k{day}",
            title=f"Ticket {day}",
        )
        UsageDaily.objects.create(
            account=book, day=dt.date(2024, 3, day), events=day, active_users=1
        )
    TimelineEntry.objects.create(
        account=other, occurred_at=timezone.now(), kind="other", key="x", title="x"
    )
    r = admin_api.get(reverse("api:timeline-list", args=[book.pk]))
    assert [e["title"] for e in r.json()["results"]] == ["Ticket 3", "Ticket 2", "Ticket 1"]
    r = admin_api.get(
        reverse("api:timeline-list", args=[book.pk]), {"since": "2024-03-02T00:00:00Z"}
    )
    assert r.json()["count"] == 2
    r = admin_api.get(
        reverse("api:usage-list", args=[book.pk]), {"from": "2024-03-02", "to": "2024-03-02"}
    )
    assert r.json()["results"] == [
        {"day": "2024-03-02", "events": 2, "active_users": 1, "value_sum": 0.0}
    ]
    assert (
        admin_api.get(reverse("api:usage-list", args=[book.pk]), {"from": "March"}).status_code
        == 400
    )
    # the CSM does not own "other": 404 on its timeline and usage, not an empty list
    assert csm_api.get(reverse("api:timeline-list", args=[other.pk])).status_code == 404
    assert csm_api.get(reverse("api:usage-list", args=[other.pk])).status_code == 404
    assert csm_api.get(reverse("api:timeline-list", args=[book.pk])).json()["count"] == 3
    assert admin_api.get(reverse("api:usage-list", args=[10**30])).status_code == 404


def test_timeline_api_includes_facts_dated_ahead_until_cuts_them(admin_api, book):
    """The account page leaves a contract's future end out until its day; the API hands out
    the whole record, and ``until`` is how a client leaves the future out."""
    now = timezone.now()
    for title, when in (("Ended", now - dt.timedelta(days=1)), ("Ends", now + dt.timedelta(30))):
        TimelineEntry.objects.create(
            account=book, occurred_at=when, kind="contract_ended", key=title, title=title
        )
    url = reverse("api:timeline-list", args=[book.pk])
    assert [e["title"] for e in admin_api.get(url).json()["results"]] == ["Ends", "Ended"]
    until = now.isoformat().replace("+00:00", "Z")
    assert [e["title"] for e in admin_api.get(url, {"until": until}).json()["results"]] == ["Ended"]


def test_imports_list_and_detail(admin_api, csm, csm_api):
    r = _post(admin_api, "account-bulk", {"rows": ACCOUNT_ROWS})
    uuid = r.json()["import_uuid"]
    listed = admin_api.get(reverse("api:import-list"), {"origin": "api"}).json()["results"]
    assert [i["uuid"] for i in listed] == [uuid]
    detail = admin_api.get(reverse("api:import-detail", args=[uuid])).json()
    assert (detail["status"], detail["created"], detail["user_email"]) == (
        "succeeded",
        2,
        "admin@example.com",
    )
    # a CSM sees only the imports they ran themselves
    assert csm_api.get(reverse("api:import-list")).json()["count"] == 0
    assert csm_api.get(reverse("api:import-detail", args=[uuid])).status_code == 404


# --- visibility -----------------------------------------------------------------------------------


def test_csm_sees_own_accounts_only(csm_api, book):
    ContractFactory(external_id="C-MINE", account=book)
    ContractFactory(external_id="C-NOTMINE", account=Account.objects.get(external_id="A-NONE"))
    assert sorted(_ids(csm_api.get(reverse("api:account-list")))) == ["A-CSM-1", "A-CSM-2"]
    assert _ids(csm_api.get(reverse("api:contract-list"))) == ["C-MINE"]
    notmine = Contract.objects.get(external_id="C-NOTMINE")
    assert csm_api.get(reverse("api:contract-detail", args=[notmine.pk])).status_code == 404
    gamma = Account.objects.get(external_id="A-MGR")
    assert csm_api.get(reverse("api:account-detail", args=[gamma.pk])).status_code == 404
    assert csm_api.get(reverse("api:account-detail", args=[book.pk])).status_code == 200


def test_manager_sees_own_and_reports_accounts(manager, book):
    client = _api(manager, scope=ApiToken.Scope.READ)
    assert sorted(_ids(client.get(reverse("api:account-list")))) == ["A-CSM-1", "A-CSM-2", "A-MGR"]


def test_outsider_sees_nothing_and_gets_404_on_detail(outsider, book):
    client = _api(outsider)
    ticket = TicketFactory(account=book)
    for name in (
        "account-list",
        "contract-list",
        "stakeholder-list",
        "ticket-list",
        "invoice-list",
        "activity-list",
    ):
        r = client.get(reverse(f"api:{name}"))
        assert r.status_code == 200 and r.json()["count"] == 0, name
    assert client.get(reverse("api:account-detail", args=[book.pk])).status_code == 404
    assert client.get(reverse("api:ticket-detail", args=[ticket.pk])).status_code == 404
    assert client.get(reverse("api:timeline-list", args=[book.pk])).status_code == 404


# --- query counts ----------------------------------------------------------------------------------


def _big_book(owner):
    for i in range(12):
        account = AccountFactory(owner=owner, parent=None)
        ContractFactory(account=account)
        StakeholderFactory(account=account)
        TicketFactory(account=account)
        InvoiceFactory(account=account)
        activity = Activity.objects.create(
            account=account, author=owner, kind="note", subject=str(i)
        )
        activity.stakeholders.add(*account.stakeholders.all())
        TimelineEntry.objects.create(
            account=account, occurred_at=timezone.now(), kind="other", key="k", title="t"
        )


@pytest.mark.parametrize("persona", ["admin_user", "csm"])
@pytest.mark.parametrize(
    "name", ["account-list", "contract-list", "stakeholder-list", "ticket-list", "invoice-list", "activity-list", "import-list"]
)  # fmt: skip
def test_list_query_count_does_not_grow_with_rows(
    request, persona, name, django_assert_max_num_queries
):
    user = request.getfixturevalue(persona)
    _big_book(request.getfixturevalue("csm"))
    client = _api(user)
    client.get(reverse(f"api:{name}"))  # token last_used_at is written once a minute: warm it
    # token + user's groups (role) + count + page (+ the activities' stakeholders prefetch)
    with django_assert_max_num_queries(5):
        r = client.get(reverse(f"api:{name}"))
    assert r.status_code == 200
    if name != "import-list":
        assert r.json()["count"] == 12


def test_timeline_query_count(csm, django_assert_max_num_queries):
    _big_book(csm)
    account = Account.objects.first()
    client = _api(csm)
    client.get(reverse("api:timeline-list", args=[account.pk]))
    with django_assert_max_num_queries(5):
        assert client.get(reverse("api:timeline-list", args=[account.pk])).status_code == 200


# --- schema, docs, token command ---------------------------------------------------------------------


def test_schema_needs_auth_and_documents_every_endpoint(admin_api):
    assert APIClient().get("/api/schema/").status_code == 401
    r = admin_api.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    schema = json.loads(r.content)
    paths = schema["paths"]
    for path in ("/api/v1/accounts/bulk", "/api/v1/events/batch", "/api/v1/track", "/api/v1/batch",
                 "/api/v1/accounts/{account_id}/usage/", "/api/v1/imports/{uuid}/"):  # fmt: skip
        assert path in paths, path
    bulk = paths["/api/v1/contracts/bulk"]["post"]
    assert {"200", "400", "401", "403"} <= set(bulk["responses"])
    assert "ContractBulkRequest" in json.dumps(bulk["requestBody"])
    assert {"tokenAuth", "writeKeyAuth"} <= set(schema["components"]["securitySchemes"])


def test_docs_page_renders_for_signed_in_users(client, csm):
    r = client.get("/api/docs/")
    assert r.status_code == 302 and "/login/" in r.url
    client.force_login(csm)
    r = client.get("/api/docs/")
    assert r.status_code == 200
    assert b"redoc" in r.content.lower()
    assert b"cdn." not in r.content  # the sidecar serves Redoc: no CDN
    assert client.get("/api/schema/").status_code == 200


def test_create_api_token_command(admin_user):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_token",
        "--user",
        "ADMIN@example.com",
        "--name",
        "Segment",
        "--scope",
        "write",
        stdout=out,
        stderr=err,
    )
    key = out.getvalue().strip()
    assert key.startswith("cs_") and "not shown again" in err.getvalue()
    token = ApiToken.objects.get(key_hash=ApiToken.hash_key(key))
    assert (token.user, token.name, token.scope) == (admin_user, "Segment", "write")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert _post(client, "account-bulk", ACCOUNT_ROWS[1:]).status_code == 200

    call_command(
        "create_api_token",
        "--user",
        "admin@example.com",
        "--name",
        "BI",
        stdout=out,
    )
    # no --scope: read, the least privilege (as the web form's default)
    assert ApiToken.objects.get(name="BI").scope == "read"
    with pytest.raises(CommandError, match="no user"):
        call_command("create_api_token", "--user", "nobody@example.com", "--name", "x")
    with pytest.raises(CommandError):
        call_command(
            "create_api_token", "--user", "admin@example.com", "--name", "x", "--scope", "all"
        )


# --- edges that once were 500s --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("2024-03-01T09:30:00-19:05", 200),  # valid ISO 8601; PostgreSQL refuses the offset as is
        ("2024-03-01T09:30:00+23:59", 200),
        ("9999-12-31T23:00:00-05:00", 400),  # beyond year 9999 in UTC
        ("0001-01-01T00:30:00+05:00", 400),  # before year 1 in UTC
    ],
)
def test_timestamp_filters_take_any_offset(admin_api, book, value, status):
    TicketFactory(account=book, opened_at=dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC))
    r = admin_api.get(reverse("api:ticket-list"), {"opened_before": value})
    assert r.status_code == status, r.content
    if status == 200:
        assert r.json()["count"] == (1 if value.endswith("-19:05") else 0)
    else:
        assert "opened_before" in r.json()


def test_overflowed_usage_sum_reads_as_null(admin_api, book):
    UsageDaily.objects.create(
        account=book, day=dt.date(2024, 3, 1), events=2, active_users=1, value_sum=float("inf")
    )
    r = admin_api.get(reverse("api:usage-list", args=[book.pk]))
    assert r.status_code == 200
    assert r.json()["results"][0]["value_sum"] is None


# Every field of every kind, fed values that have broken importers before. The reply must be a
# 200 or a 400 naming the row, never a 500 (PostgreSQL is the strict one: run the suite there).
NASTY = [
    10**40,
    -(10**40),
    10**400,
    2**63,
    1e308,
    "1e400",
    "NaN",
    "9999-12-31",
    "0000-01-01",
    "2024-03-01T09:30:00-19:05",
    "A\x00",
    {"a": 1},
    [1],
    True,
    "",
    None,
    "x" * 1000,
    -1,
    1.5,
]


@pytest.mark.parametrize(
    "kind", ["accounts", "contracts", "stakeholders", "tickets", "invoices", "events"]
)
def test_no_field_value_makes_a_500(admin_api, kind):
    from accounts.intake.columns import COLUMNS

    AccountFactory(external_id="A1")
    base = {
        "accounts": {"external_id": "X1", "name": "n"},
        "contracts": {"external_id": "C1", "account_external_id": "A1", "start_date": "2024-01-01", "mrr": 1},
        "stakeholders": {"external_id": "S1", "account_external_id": "A1"},
        "tickets": {"external_id": "T1", "account_external_id": "A1", "opened_at": "2024-01-01T00:00:00Z"},
        "invoices": {"external_id": "I1", "account_external_id": "A1", "issued_on": "2024-01-01", "amount": 1},
        "events": {"account_external_id": "A1", "event": "e", "occurred_at": "2024-01-01T00:00:00Z"},
    }[kind]  # fmt: skip
    url = reverse("api:event-batch" if kind == "events" else f"api:{kind[:-1]}-bulk")
    answered = {}
    admin_api.raise_request_exception = False  # a 500 is counted, not raised
    for column in COLUMNS[kind]:
        for value in NASTY:
            r = admin_api.post(url, [{**base, column.name: value}], format="json")
            answered[(column.name, repr(value)[:30])] = r.status_code
            if r.status_code == 400:
                assert all(e["row"] == 1 for e in r.json()["errors"]), r.json()
    assert set(answered.values()) <= {200, 400}, {
        k: v for k, v in answered.items() if v not in (200, 400)
    }


# Values at the edges of what Python's types hold: each once answered 500.
@pytest.mark.parametrize(
    ("kind", "row"),
    [
        pytest.param("tickets", {"external_id": "T1", "account_external_id": "A1", "opened_at": "9999-12-31T23:00:00-05:00"}),
        pytest.param("events", {"account_external_id": "A1", "event": "e", "occurred_at": "0001-01-01T00:30:00+05:00"}),
        pytest.param("events", {"account_external_id": "A1", "event": "e", "occurred_at": "2024-01-01T00:00:00Z", "value": 10**400}),
        pytest.param("contracts", {"external_id": "C1", "account_external_id": "A1", "start_date": "2024-01-01", "end_date": "9999-12-31", "mrr": 1}),
        pytest.param("tickets", {"external_id": "T1", "account_external_id": "A1", "opened_at": "2024-01-01T00:00:00Z", "subject": "x" * 400}),
    ],
)  # fmt: skip
def test_values_at_type_edges_never_answer_500(admin_api, kind, row):
    AccountFactory(external_id="A1")
    url = reverse("api:event-batch" if kind == "events" else f"api:{kind[:-1]}-bulk")
    admin_api.raise_request_exception = False
    r = admin_api.post(url, [row], format="json")
    assert r.status_code in (200, 400)


def test_an_unknown_format_parameter_is_ignored_not_a_404(admin_api):
    """DRF answers ``?format=<no renderer>`` with a 404, which no operation documents (the
    API fuzz test found it); it is ignored like any unknown parameter. A known one still
    picks its renderer."""
    r = admin_api.get(reverse("api:account-list"), {"format": "-142025750"})
    assert r.status_code == 200 and r["Content-Type"].startswith("application/json")
    r = admin_api.post(reverse("api:event-batch") + "?format=nope", {"events": []}, format="json")
    assert r.status_code != 404
    schema = admin_api.get(reverse("api-schema"), {"format": "json"})
    assert schema.status_code == 200 and "json" in schema["Content-Type"]


# --- a path no URL pattern matches -------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_api_path_is_a_json_404_naming_it(admin_api, settings, debug):
    """In every mode: with DEBUG on (the embedded mode) Django would show its HTML page
    listing every URL pattern instead of calling handler404."""
    settings.DEBUG = debug
    for path in ("/api/v1/accounts/abc/health/", "/api/v1/nothing-here/", "/api/"):
        r = admin_api.get(path)
        assert (r.status_code, r["Content-Type"]) == (404, "application/json"), path
        assert r.json() == {
            "detail": f"No API endpoint at {path}; ids in API paths are whole numbers (an "
            "import's is its UUID), and /api/docs/ lists the endpoints."
        }


def test_the_json_404_leaves_real_routes_and_the_slash_redirect_alone(
    admin_api, admin_user, client, settings
):
    settings.DEBUG = True
    account = AccountFactory()
    r = admin_api.get(reverse("api:account-detail", args=[account.pk + 1000]))
    assert r.status_code == 404 and r.json() == {"detail": "No Account matches the given query."}
    assert admin_api.get(reverse("api:account-detail", args=[account.pk])).status_code == 200
    r = admin_api.get("/api/v1/accounts")
    assert (r.status_code, r["Location"]) == (301, "/api/v1/accounts/")
    assert admin_api.get("/api/schema/").status_code == 200
    client.force_login(admin_user)
    assert client.get("/api/docs/").status_code == 200
    # outside /api/ a missing page is still a page
    assert "text/html" in client.get("/no-such-page/")["Content-Type"]
