"""The import_data command: the data contract of data-import.md through the CLI door."""

from __future__ import annotations

import datetime as dt
import gzip
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import (
    Account,
    Contract,
    ImportRecord,
    Invoice,
    Stakeholder,
    Ticket,
    TimelineEntry,
    UsageDaily,
    UsageEvent,
    UsageFeatureDaily,
)

pytestmark = pytest.mark.django_db

ACCOUNTS = """external_id,name,segment,industry,owner_email,customer_since,parent_external_id,domain
A1,Acme Corp,Enterprise,Manufacturing,csm@example.com,,,acme.example
A2,Acme Europe,Enterprise,Manufacturing,csm@example.com,2023-05-01,A1,acme.example
B1,Beta Ltd,SMB,Retail,,,,beta.example
"""
CONTRACTS = """external_id,account_external_id,product,start_date,end_date,mrr,quantity,billing_period_months,auto_renew,discount
C1,A1,Pro,2024-01-01,2024-12-31,1000.00,20,12,true,0.1
C2,A2,Pro,2024-02-01,,250.50,5,1,false,
C3,B1,Starter,2024-03-15,2024-09-14,99,3,1,,
"""
STAKEHOLDERS = """external_id,account_external_id,name,email,title,role,is_primary
S1,A1,Jane Doe,jane@acme.example,VP Ops,champion,true
S2,B1,Bob Roe,bob@beta.example,CEO,decision_maker,false
"""
TICKETS = """external_id,account_external_id,subject,priority,status,opened_at,first_response_at,resolved_at,escalated,agent_contacts,csat
T1,A1,Export is slow,high,solved,2024-03-01T09:00:00Z,2024-03-01T10:30:00Z,2024-03-02T09:00:00Z,true,3,4
T2,B1,Login issue,normal,open,2024-03-05T12:00:00,,,false,,
"""
INVOICES = """external_id,account_external_id,issued_on,due_on,amount,paid_on,status,failed_attempts
I1,A1,2024-01-01,2024-01-31,12000.00,2024-01-20,paid,0
I2,B1,2024-03-15,2024-04-14,99.00,,failed,2
"""
EVENTS = """account_external_id,user_id,event,occurred_at,value
A1,u1,login,2024-03-01T09:00:00Z,
A1,u1,report_created,2024-03-01T09:05:00Z,2.5
A1,u2,login,2024-03-01T23:59:59Z,
A1,u1,login,2024-03-01T09:00:00Z,
A1,,login,2024-03-02T00:00:00Z,
B1,u9,login,2024-03-02T08:00:00+02:00,
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def book_dir(tmp_path, csm) -> Path:
    for name, text in [
        ("accounts.csv", ACCOUNTS),
        ("contracts.csv", CONTRACTS),
        ("stakeholders.csv", STAKEHOLDERS),
        ("tickets.csv", TICKETS),
        ("invoices.csv", INVOICES),
        ("events.csv", EVENTS),
    ]:
        write(tmp_path, name, text)
    return tmp_path


def counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count()
        for m in (
            Account,
            Contract,
            Stakeholder,
            Ticket,
            Invoice,
            UsageEvent,
            UsageDaily,
            UsageFeatureDaily,
            TimelineEntry,
        )
    }


def run(*args) -> None:
    call_command("import_data", *[str(a) for a in args])


def test_directory_import_writes_every_kind(book_dir):
    run(book_dir)
    acme, europe, beta = (Account.objects.get(external_id=e) for e in ("A1", "A2", "B1"))
    assert europe.parent == acme and acme.parent is None
    assert acme.owner.email == "csm@example.com" and beta.owner is None
    # customer_since defaults to the first contract start; a given value is kept
    assert acme.customer_since == dt.date(2024, 1, 1)
    assert europe.customer_since == dt.date(2023, 5, 1)
    assert beta.customer_since == dt.date(2024, 3, 15)
    c1 = Contract.objects.get(external_id="C1")
    assert c1.mrr == Decimal("1000.00") and c1.discount == Decimal("0.1") and c1.auto_renew is True
    assert Contract.objects.get(external_id="C2").end_date is None
    assert Stakeholder.objects.get(external_id="S1").role == "champion"
    t1 = Ticket.objects.get(external_id="T1")
    assert t1.escalated and t1.csat == 4
    # no offset means UTC
    assert Ticket.objects.get(external_id="T2").opened_at == dt.datetime(
        2024, 3, 5, 12, tzinfo=dt.UTC
    )
    assert Invoice.objects.get(external_id="I2").failed_attempts == 2
    record = ImportRecord.objects.get()
    assert record.status == "succeeded" and record.origin == "cli"
    # 3 accounts + 3 contracts + 2 stakeholders + 2 tickets + 2 invoices + 6 event rows
    assert record.rows == 18
    # the 4th event row repeats the 1st: 5 events created, 1 unchanged
    assert record.per_kind["events.csv"]["created"] == 5
    assert record.per_kind["events.csv"]["unchanged"] == 1
    assert record.created == 3 + 3 + 2 + 2 + 2 + 5


def test_usage_rollups_are_computed_on_ingest(book_dir):
    run(book_dir)
    acme = Account.objects.get(external_id="A1")
    beta = Account.objects.get(external_id="B1")
    # A1 on 2024-03-01: login(u1), report_created(u1), login(u2) -> 3 events, users {u1,u2}
    day1 = UsageDaily.objects.get(account=acme, day=dt.date(2024, 3, 1))
    assert (day1.events, day1.active_users, day1.value_sum) == (3, 2, 2.5)
    # A1 on 2024-03-02: one login without a user id -> 1 event, 0 known users
    day2 = UsageDaily.objects.get(account=acme, day=dt.date(2024, 3, 2))
    assert (day2.events, day2.active_users) == (1, 0)
    # B1: 08:00+02:00 is 06:00 UTC on 2024-03-02
    assert UsageDaily.objects.get(account=beta).day == dt.date(2024, 3, 2)
    logins = UsageFeatureDaily.objects.get(account=acme, day=dt.date(2024, 3, 1), event="login")
    assert (logins.events, logins.users) == (2, 2)
    first = TimelineEntry.objects.get(account=acme, key="usage:first")
    assert first.occurred_at == dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)


def test_timeline_gets_a_row_per_fact(book_dir):
    run(book_dir)
    acme = Account.objects.get(external_id="A1")
    keys = set(TimelineEntry.objects.filter(account=acme).values_list("key", flat=True))
    assert keys == {
        "contract:C1:started",
        "contract:C1:ended",
        "stakeholder:S1:added",
        "ticket:T1:opened",
        "ticket:T1:escalated",
        "ticket:T1:resolved",
        "invoice:I1:issued",
        "invoice:I1:paid",
        "usage:first",
    }
    ended = TimelineEntry.objects.get(account=acme, key="contract:C1:ended")
    assert ended.occurred_at.date() == dt.date(2025, 1, 1)  # first day without service
    assert TimelineEntry.objects.filter(key="invoice:I2:failed").exists()


def test_reimport_changes_no_counts(book_dir):
    run(book_dir)
    before = counts()
    rollup = list(UsageDaily.objects.order_by("account_id", "day").values_list("events", flat=True))
    run(book_dir)
    assert counts() == before
    assert (
        list(UsageDaily.objects.order_by("account_id", "day").values_list("events", flat=True))
        == rollup
    )
    second = ImportRecord.objects.order_by("-created_at").first()
    assert (
        second.created == 0 and second.updated == 0 and second.unchanged == 18
    )  # 3+3+2+2+2 rows and 6 event rows


def test_changed_row_is_updated_in_place(book_dir, tmp_path):
    run(book_dir)
    changed = tmp_path / "more"
    changed.mkdir()
    write(changed, "contracts.csv", CONTRACTS.replace("250.50", "300.00"))
    run(changed / "contracts.csv")
    record = ImportRecord.objects.order_by("-created_at").first()
    assert (record.created, record.updated, record.unchanged) == (0, 1, 2)
    assert Contract.objects.get(external_id="C2").mrr == Decimal("300.00")


def test_missing_column_means_unchanged_and_empty_cell_means_empty(book_dir, tmp_path):
    run(book_dir)
    # no segment column: segments stay; an empty domain cell clears the domain
    path = write(tmp_path, "accounts2.csv", "external_id,name,domain\nA1,Acme Corp,\n")
    run(path, "--kind", "accounts")
    acme = Account.objects.get(external_id="A1")
    assert acme.segment == "Enterprise" and acme.domain == ""


def test_dry_run_writes_nothing(book_dir):
    run(book_dir, "--dry-run")
    assert Account.objects.count() == 0 and UsageEvent.objects.count() == 0
    record = ImportRecord.objects.get()
    assert record.status == "validated" and record.created == 3 + 3 + 2 + 2 + 2 + 5


def test_gzip_file_is_read(tmp_path, book_dir):
    run(book_dir / "accounts.csv")
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(EVENTS.replace("B1", "A1"))
    run(path)
    assert UsageEvent.objects.count() == 5


def test_bom_is_accepted(tmp_path, csm):
    path = tmp_path / "accounts.csv"
    path.write_bytes("\ufeff".encode() + ACCOUNTS.encode())
    run(path)
    assert Account.objects.count() == 3


BAD_ROWS = [
    # (file, header+rows, expected message fragment)
    (
        "contracts.csv",
        "external_id,account_external_id,start_date,mrr\nC9,A1,2024-01-01,\n",
        "row 2, column mrr: required, but empty",
    ),
    (
        "contracts.csv",
        "external_id,account_external_id,start_date,mrr\nC9,A1,01/02/2024,10\n",
        "row 2, column start_date: not a date",
    ),
    (
        "contracts.csv",
        "external_id,account_external_id,start_date,mrr\nC9,NOPE,2024-01-01,10\n",
        "row 2, column account_external_id: unknown account NOPE",
    ),
    (
        "contracts.csv",
        "external_id,account_external_id,start_date,mrr\nC9,A1,2024-01-01,-5\n",
        "row 2, column mrr: must be at least 0",
    ),
    (
        "contracts.csv",
        "external_id,account_external_id,start_date,end_date,mrr\nC9,A1,2024-02-01,2024-01-01,10\n",
        "row 2, column end_date: end_date 2024-01-01 is before start_date 2024-02-01",
    ),
    (
        "contracts.csv",
        "external_id,account_external_id,start_date,mrr\nC9,A1,2024-01-01,10\nC9,A1,2024-01-01,11\n",
        "row 3, column external_id: C9 already appears in row 2",
    ),
    (
        "tickets.csv",
        "external_id,account_external_id,opened_at,priority\nT9,A1,2024-01-01T00:00:00Z,p1\n",
        'row 2, column priority: "p1" is not one of low, normal, high, urgent',
    ),
    (
        "events.csv",
        "account_external_id,event,occurred_at\nA1,login,yesterday\n",
        "row 2, column occurred_at: not a timestamp",
    ),
    (
        "contracts.csv",
        "external_id,account_external_id,start_date\nC9,A1,2024-01-01\n",
        "row 1, column mrr: required column is missing",
    ),
    (
        "contracts.csv",
        "external_id,account_external_id,start_date,mrr,color\nC9,A1,2024-01-01,1,red\n",
        "row 1, column color: unknown column",
    ),
    (
        "stakeholders.csv",
        "external_id,account_external_id,email\nS9,A1,not-an-email\n",
        "row 2, column email: not an email address",
    ),
    (
        "accounts.csv",
        "external_id,name,parent_external_id\nX1,X,X2\nX2,Y,X1\n",
        "row 2, column parent_external_id: the parent chain loops back",
    ),
    (
        "accounts.csv",
        "external_id,name,owner_email\nX1,X,ghost@example.com\n",
        "row 2, column owner_email: no user with email ghost@example.com",
    ),
    (
        "contracts.csv",
        "external_id,account_external_id,start_date,mrr\nC9,A1,2024-01-01\n",
        "row 2: expected 4 cells, found 3",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_ROWS)
def test_bad_row_rejects_the_file_and_writes_nothing(
    book_dir, tmp_path, capsys, name, text, message
):
    run(book_dir / "accounts.csv")
    before = counts()
    bad = tmp_path / "bad"
    bad.mkdir()
    # a good row before the bad one must not be written either
    path = write(bad, name, text)
    with pytest.raises(CommandError, match="import rejected"):
        run(path)
    assert message in capsys.readouterr().err
    assert counts() == before
    record = ImportRecord.objects.order_by("-created_at").first()
    assert record.status == "rejected"
    # header problems reject the file before any row is read
    if message.startswith("row 1,"):
        assert record.rejected == 0
    else:
        assert record.rejected >= 1
    assert any(message in error_text(e) for e in record.errors)


def error_text(error: dict) -> str:
    column = f", column {error['column']}" if error["column"] else ""
    return f"row {error['row']}{column}: {error['message']}"


def test_non_utf8_bytes_are_reported_with_row_and_column(book_dir, tmp_path, capsys):
    run(book_dir / "accounts.csv")
    path = tmp_path / "stakeholders.csv"
    path.write_bytes(b"external_id,account_external_id,name\nS1,A1,Jos\xe9\nS2,A1,Ann\n")
    with pytest.raises(CommandError):
        run(path)
    assert "row 2, column name: not valid UTF-8" in capsys.readouterr().err
    assert Stakeholder.objects.count() == 0


def test_one_bad_file_in_a_directory_rejects_all_files(book_dir, capsys):
    write(book_dir, "invoices.csv", INVOICES.replace("12000.00", "twelve"))
    with pytest.raises(CommandError):
        run(book_dir)
    assert "invoices.csv: row 2, column amount: not a number" in capsys.readouterr().err
    assert counts() == dict.fromkeys(counts(), 0)


def test_contracts_may_reference_accounts_of_the_same_bad_import(book_dir, capsys):
    # accounts.csv is bad, contracts.csv refers to its accounts: only the real error shows
    write(book_dir, "accounts.csv", ACCOUNTS.replace("Acme Corp", ""))
    with pytest.raises(CommandError):
        run(book_dir)
    err = capsys.readouterr().err
    assert "accounts.csv: row 2, column name: required, but empty" in err
    assert "unknown account" not in err


def test_rejected_count_is_exact_beyond_the_first_hundred_messages(book_dir, tmp_path, capsys):
    run(book_dir / "accounts.csv")
    rows = "".join(f"A1,login,not-a-time-{i}\n" for i in range(250))
    path = write(tmp_path, "events.csv", "account_external_id,event,occurred_at\n" + rows)
    with pytest.raises(CommandError, match="250 bad row"):
        run(path)
    record = ImportRecord.objects.order_by("-created_at").first()
    assert record.rejected == 250 and len(record.errors) == 100


def test_ignore_unknown_columns(book_dir, tmp_path):
    run(book_dir / "accounts.csv")
    path = write(tmp_path, "accounts.csv", "external_id,name,color\nZ1,Zed,red\n")
    run(path, "--ignore-unknown")
    assert Account.objects.filter(external_id="Z1").exists()


def test_unusable_path_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "missing.csv")
    with pytest.raises(CommandError, match="no known files"):
        run(tmp_path)
    write(tmp_path, "stuff.csv", "a\n1\n")
    with pytest.raises(CommandError, match="cannot tell the kind"):
        run(tmp_path / "stuff.csv")


def test_json_output(book_dir, capsys):
    import json

    call_command("import_data", str(book_dir / "accounts.csv"), "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "succeeded" and out["created"] == 3


def test_nul_and_bad_bytes_in_a_cell_are_reported_safely(book_dir, tmp_path, capsys):
    run(book_dir / "accounts.csv")
    path = tmp_path / "tickets.csv"
    path.write_bytes(
        b"external_id,account_external_id,opened_at,priority\n"
        b"T1,A1,2024-01-01T00:00:00Z,hi\x00gh\n"
        b"T2,A1,2024-01-01T00:00:00Z,\xff\n"
    )
    with pytest.raises(CommandError):
        run(path)
    record = ImportRecord.objects.order_by("-created_at").first()
    messages = [error_text(e) for e in record.errors]
    assert messages[0].startswith('row 2, column priority: "hi\\0gh" is not one of')
    assert messages[1] == "row 3, column priority: not valid UTF-8 text (save the file as UTF-8)"
    assert Ticket.objects.count() == 0


def test_contract_ending_on_the_last_representable_day(book_dir, tmp_path):
    run(book_dir / "accounts.csv")
    path = write(
        tmp_path,
        "contracts.csv",
        "external_id,account_external_id,start_date,end_date,mrr\nC9,A1,2024-01-01,9999-12-31,10\n",
    )
    run(path)
    assert Contract.objects.get().end_date == dt.date(9999, 12, 31)
    # no "ended" fact for a contract that never ends in practice
    assert not TimelineEntry.objects.filter(key="contract:C9:ended").exists()


def test_a_loop_through_stored_parents_is_refused(book_dir, tmp_path, capsys):
    run(book_dir / "accounts.csv")  # A2's parent is A1
    path = write(tmp_path, "accounts.csv", "external_id,name,parent_external_id\nA1,Acme Corp,A2\n")
    with pytest.raises(CommandError):
        run(path)
    assert (
        "row 2, column parent_external_id: the parent chain loops back" in capsys.readouterr().err
    )
    assert Account.objects.get(external_id="A1").parent is None


def test_facts_follow_the_row_when_it_changes(book_dir, tmp_path):
    run(book_dir)
    # T1 is no longer escalated nor resolved; I2 was paid after failing
    changed = tmp_path / "changed"
    changed.mkdir()
    write(
        changed,
        "tickets.csv",
        TICKETS.replace("2024-03-02T09:00:00Z,true", ",false").replace(",solved,", ",open,"),
    )
    write(changed, "invoices.csv", INVOICES.replace(",,failed,2", ",2024-04-01,paid,2"))
    run(changed)
    keys = set(TimelineEntry.objects.values_list("key", flat=True))
    assert "ticket:T1:escalated" not in keys and "ticket:T1:resolved" not in keys
    assert "ticket:T1:opened" in keys
    assert "invoice:I2:failed" not in keys and "invoice:I2:paid" in keys


def test_many_open_ended_contract_updates_in_one_file(book_dir, tmp_path):
    run(book_dir / "accounts.csv")
    rows = "".join(f"C{i},A1,2024-01-01,2024-06-30,10\n" for i in range(1500))
    header = "external_id,account_external_id,start_date,end_date,mrr\n"
    run(write(tmp_path, "contracts.csv", header + rows))
    run(write(tmp_path, "contracts.csv", header + rows.replace("2024-06-30", "")))
    assert Contract.objects.filter(end_date__isnull=True).count() == 1500
    assert not TimelineEntry.objects.filter(kind="contract_ended").exists()


def test_a_row_rejected_for_its_own_reason_is_counted_once(book_dir, tmp_path):
    run(book_dir / "accounts.csv")
    path = write(tmp_path, "accounts.csv", "external_id,name,parent_external_id\nX1,,NOPE\n")
    with pytest.raises(CommandError):
        run(path)
    assert ImportRecord.objects.order_by("-created_at").first().rejected == 1


def test_customer_since_follows_the_first_contract_until_given(book_dir, tmp_path):
    run(book_dir)
    # an earlier contract for B1 arrives: the derived date moves back with it
    path = write(
        tmp_path,
        "contracts.csv",
        "external_id,account_external_id,start_date,mrr\nC0,B1,2023-11-01,50\nC00,A2,2020-01-01,5\n",
    )
    run(path)
    assert Account.objects.get(external_id="B1").customer_since == dt.date(2023, 11, 1)
    # A2's date was given in accounts.csv (2023-05-01): an earlier contract does not move it
    assert Account.objects.get(external_id="A2").customer_since == dt.date(2023, 5, 1)
