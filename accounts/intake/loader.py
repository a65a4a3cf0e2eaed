"""The loader behind ``run_import``: parse, validate, resolve references, write in batches.

It validates every row of every source. As soon as one row is bad it stops writing but keeps
validating, so the person gets the complete count of rejected rows and the first 100
messages; ``run_import`` then rolls the whole transaction back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import queue
import threading
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from accounts import timeline
from accounts.models import (
    Account,
    Contract,
    Invoice,
    Stakeholder,
    Ticket,
    TimelineEntry,
    User,
)

from . import events
from .columns import COLUMNS, DEFAULTS, ORDER_RULES, Column
from .core import EXTRA_KINDS, ImportResult, KindResult, ProgressCallback, RowError, Source
from .reading import HeaderProblem, Progress, check_header, csv_rows, raw_cell

MODELS: dict[str, type[models.Model]] = {
    "accounts": Account,
    "contracts": Contract,
    "stakeholders": Stakeholder,
    "tickets": Ticket,
    "invoices": Invoice,
}
BATCH = 2_000  # entity rows per write
EVENT_BATCH = 20_000  # event rows per COPY
LOOKUP_CHUNK = 5_000  # ids per IN (...) lookup
PROGRESS_EVERY = 5_000  # rows between progress reports
FUTURE_SLACK = dt.timedelta(days=1)  # clock skew tolerated on event timestamps

ParsedRow = tuple[int, dict[str, Any], list[tuple[str, str]]]
EventTuple = tuple[str, str, str, dt.datetime, float | None]  # account, user, event, at, value
EventRow = tuple[int, EventTuple | None, list[tuple[str, str]] | tuple[()]]
# a well-formed row's problems: a row kept in a batch then holds no list, which keeps the
# garbage collector from walking 20,000 of them at every collection (~40 % of the parse)
_NO_PROBLEMS = ()


class Loader:
    def __init__(
        self,
        *,
        dry_run: bool,
        ignore_unknown: bool,
        progress: ProgressCallback | None,
        max_errors: int,
    ) -> None:
        self.result = ImportResult(dry_run=dry_run)
        self.ignore_unknown = ignore_unknown
        self.max_errors = max_errors
        self.failed = False
        self.progress_cb = progress
        self.progress = Progress()
        self.rows_done = 0
        self.bytes_before = 0  # bytes of the sources already read
        self.account_ids: dict[str, int] = {}  # external id -> id, filled on demand
        self.declared_accounts: set[str] = set()  # in an accounts source of this import
        self._users: dict[str, int] | None = None
        self.now = timezone.now()

    # --- errors and progress -------------------------------------------------------------

    def error(self, source: Source, row: int, column: str, message: str) -> None:
        self.failed = True
        if len(self.result.errors) < self.max_errors:
            self.result.errors.append(
                RowError(_printable(source.name), row, _printable(column), _printable(message))
            )

    def _tick(self, count: int = 1) -> None:
        before = self.rows_done
        self.rows_done += count
        if (
            self.progress_cb is not None
            and before // PROGRESS_EVERY < self.rows_done // PROGRESS_EVERY
        ):
            self._report()

    def _report(self) -> None:
        if self.progress_cb is not None:
            self.progress_cb(
                self.rows_done,
                self.bytes_before + self.progress.bytes_done,
                self.bytes_before + self.progress.bytes_total,
            )

    # --- reading -------------------------------------------------------------------------

    def load(self, source: Source) -> None:
        result = KindResult(kind=source.kind, source=source.name)
        self.result.results.append(result)
        self.progress = Progress(bytes_total=source.size)
        rows = self._rows(source)
        if rows is None:
            return
        if source.kind in EXTRA_KINDS:  # registered by an app above accounts
            EXTRA_KINDS[source.kind](self, source, result, rows)
        elif source.kind == "events":
            self._load_events(source, result, rows)
        else:
            self._load_entities(source, result, rows)
        self.bytes_before += self.progress.bytes_total
        self.progress = Progress()
        self._report()

    def _rows(self, source: Source) -> Iterator[ParsedRow] | None:
        columns = {c.name: c for c in COLUMNS[source.kind]}
        if source.path is not None:
            try:
                header, cells = csv_rows(source.path, self.progress)
            except HeaderProblem as problem:
                self.error(source, 1, problem.column, problem.message)
                return None
            problems = check_header(source.kind, header, ignore_unknown=self.ignore_unknown)
            for problem in problems:
                self.error(source, 1, problem.column, problem.message)
            if problems:
                cells.close()
                return None
            if source.kind == "events":
                return self._csv_events(header, cells, columns)
            return self._csv_parsed(source.kind, header, cells, columns)
        if source.kind == "events":
            return self._json_events(source.rows or [], columns)
        return self._json_parsed(source.kind, source.rows or [], columns)

    def _csv_events(self, header, cells, columns) -> Iterator[EventRow]:
        """Events are most of the volume: well-formed rows take a fast path; any row it does
        not accept goes through the general parser, which says what is wrong."""
        width = len(header)
        at = {name: i for i, name in enumerate(header)}
        ia, ie, it = at["account_external_id"], at["event"], at["occurred_at"]
        iu, iv = at.get("user_id"), at.get("value")
        for number, row in cells:
            if not row:
                continue
            if len(row) != width:
                yield number, None, [("", f"expected {width} cells, found {len(row)}")]
                continue
            fast = _fast_event(
                row[ia],
                "" if iu is None else row[iu],
                row[ie],
                row[it],
                "" if iv is None else row[iv],
            )
            if fast is not None:
                yield number, fast, _NO_PROBLEMS
                continue
            values, problems = self._parse("events", columns, zip(header, row, strict=True))
            yield number, _event_tuple(values, problems), problems

    def _csv_parsed(self, kind, header, cells, columns) -> Iterator[ParsedRow]:
        width = len(header)
        for number, row in cells:
            if not row:
                continue  # a blank line
            if len(row) != width:
                yield number, {}, [("", f"expected {width} cells, found {len(row)}")]
                continue
            yield (number, *self._parse(kind, columns, zip(header, row, strict=True)))

    def _json_events(self, rows, columns) -> Iterator[EventRow]:
        """Like ``_csv_events``: well-formed events (the API's batches) take the fast path,
        anything else the general parser, which says what is wrong."""
        for number, row in enumerate(rows, start=1):
            fast = _fast_json_event(row)
            if fast is not None:
                yield number, fast, _NO_PROBLEMS
                continue
            values, problems = self._json_row("events", row, columns)
            yield number, _event_tuple(values, problems), problems

    def _json_parsed(self, kind, rows, columns) -> Iterator[ParsedRow]:
        for number, row in enumerate(rows, start=1):
            yield (number, *self._json_row(kind, row, columns))

    def _json_row(self, kind, row, columns) -> tuple[dict, list]:
        values, problems = self._parse(kind, columns, row.items())
        for name in row:
            if name not in columns and not self.ignore_unknown:
                problems.append((str(name)[:100], "unknown field"))
        for column in COLUMNS[kind]:
            if column.required and column.name not in row:
                problems.append((column.name, "required field is missing"))
        return values, problems

    def _parse(self, kind: str, columns: dict[str, Column], items) -> tuple[dict, list]:
        values: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for name, raw in items:
            column = columns.get(name)
            if column is None:
                continue  # unknown: reported by the caller unless ignored
            try:
                value = raw_cell(raw)
            except ValueError as exc:
                problems.append((name, str(exc)))
                continue
            if value is None:
                if column.required:
                    problems.append((name, "required, but empty"))
                if not column.keep_on_empty:
                    values[name] = None
                continue
            try:
                values[name] = column.parse(value)
            except ValueError as exc:
                problems.append((name, str(exc)))
        problem = _order_problem(kind, values.get)
        if problem:
            problems.append(problem)
        return values, problems

    # --- references ----------------------------------------------------------------------

    def _resolve_accounts(self, external_ids: set[str]) -> None:
        missing = [e for e in external_ids if e not in self.account_ids]
        if missing and connection.vendor == "postgresql":
            # one array parameter: an IN list of thousands costs more in Django and psycopg
            # (a placeholder each) than the lookup itself does in PostgreSQL
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT external_id, id FROM accounts_account WHERE external_id = ANY(%s)",
                    [missing],
                )
                self.account_ids.update(cursor.fetchall())
            return
        for start in range(0, len(missing), LOOKUP_CHUNK):
            chunk = missing[start : start + LOOKUP_CHUNK]
            self.account_ids.update(
                Account.objects.filter(external_id__in=chunk).values_list("external_id", "id")
            )

    def _account_id(self, external_id: str, problems: list) -> int | None:
        found = self.account_ids.get(external_id)
        if found is None and external_id not in self.declared_accounts:
            problems.append(("account_external_id", f"unknown account {external_id}"))
        return found

    @property
    def users(self) -> dict[str, int]:
        if self._users is None:
            self._users = dict(User.objects.values_list(Lower("email"), "id"))
        return self._users

    # --- customer data (everything with an external_id) ----------------------------------

    def _load_entities(self, source: Source, result: KindResult, rows: Iterator[ParsedRow]) -> None:
        kind = source.kind
        seen: dict[str, int] = {}
        batch: list[ParsedRow] = []
        self._parent_links: list[tuple[int, str, str]] = []
        self._unchanged_accounts: set[str] = set()
        touched_accounts: set[int] = set()
        for number, values, problems in rows:
            result.rows += 1
            self._tick()
            external_id = values.get("external_id")
            if external_id is not None:
                if external_id in seen:
                    problems.append(
                        ("external_id", f"{external_id} already appears in row {seen[external_id]}")
                    )
                else:
                    seen[external_id] = number
                if kind == "accounts":
                    self.declared_accounts.add(external_id)
                    if values.get("parent_external_id") == external_id:
                        problems.append(
                            ("parent_external_id", "an account cannot be its own parent")
                        )
            batch.append((number, values, problems))
            if len(batch) >= BATCH:
                touched_accounts |= self._entity_batch(source, result, batch)
                batch = []
        if batch:
            touched_accounts |= self._entity_batch(source, result, batch)
        if kind == "accounts":
            self._link_parents(source, result)
        if kind == "contracts" and not self.failed:
            _default_customer_since(touched_accounts)
        self.result.accounts |= touched_accounts

    def _entity_batch(self, source: Source, result: KindResult, batch: list[ParsedRow]) -> set[int]:
        kind = source.kind
        model = MODELS[kind]
        if kind != "accounts":
            self._resolve_accounts(
                {v["account_external_id"] for _, v, _ in batch if v.get("account_external_id")}
            )
        valid: list[tuple[int, dict]] = []
        for number, values, problems in batch:
            fields = self._fields(kind, values, number, problems)
            if problems:
                result.rejected += 1
                for column, message in problems:
                    self.error(source, number, column, message)
            else:
                valid.append((number, fields))
        if self.failed or not valid:
            return set()
        return self._write_entities(source, result, model, valid)

    def _fields(self, kind: str, values: dict, number: int, problems: list) -> dict:
        """Model field values of one row: references resolved, empty cells mapped."""
        fields: dict[str, Any] = {}
        for name, value in values.items():
            if name == "account_external_id":
                if value is not None:
                    fields["account_id"] = self._account_id(value, problems)
            elif name == "owner_email":
                if value is None:
                    fields["owner_id"] = None
                elif value not in self.users:
                    problems.append(("owner_email", f"no user with email {value}"))
                else:
                    fields["owner_id"] = self.users[value]
            elif name == "parent_external_id":
                if value is None:
                    fields["parent_id"] = None
            elif name == "customer_since":  # only present when given (keep_on_empty)
                fields["customer_since"] = value
                fields["customer_since_derived"] = False
            else:
                fields[name] = value
        parent = values.get("parent_external_id")
        if parent is not None and not problems:  # linked once every account exists
            self._parent_links.append((number, values["external_id"], parent))
        return fields

    def _write_entities(self, source, result, model, valid) -> set[int]:
        kind = source.kind
        empty = _empty_values(model, DEFAULTS.get(kind, {}))
        existing = {
            obj.external_id: obj
            for obj in model.objects.filter(external_id__in=[f["external_id"] for _, f in valid])
        }
        created, updated, changed_fields = [], [], set()
        for number, fields in valid:
            fields = {k: (empty.get(k) if v is None else v) for k, v in fields.items()}
            obj = existing.get(fields["external_id"])
            if obj is None:
                obj = model(
                    **{**{k: v for k, v in empty.items() if k in DEFAULTS.get(kind, {})}, **fields}
                )
                created.append((number, obj))
                continue
            diff = {k for k, v in fields.items() if getattr(obj, k) != v}
            for name in diff:
                setattr(obj, name, fields[name])
            if diff:
                problem = _order_problem(kind, functools.partial(getattr, obj))
                if problem:
                    result.rejected += 1
                    self.error(source, number, *problem)
                    continue
                obj.updated_at = self.now
                updated.append((number, obj))
                changed_fields |= diff
            else:
                result.unchanged += 1
                if kind == "accounts":
                    self._unchanged_accounts.add(obj.external_id)
        if self.failed:
            return set()
        try:
            with transaction.atomic():
                model.objects.bulk_create([o for _, o in created], batch_size=1000)
                if updated:
                    model.objects.bulk_update(
                        [o for _, o in updated], [*changed_fields, "updated_at"], batch_size=1000
                    )
        except (IntegrityError, DatabaseError) as exc:
            first = (created or updated)[0][0]
            self.error(source, first, "", f"rejected by the database in rows {first}+: {exc}")
            return set()
        result.created += len(created)
        result.updated += len(updated)
        objects = [o for _, o in created] + [o for _, o in updated]
        if kind == "accounts":
            self.account_ids.update((o.external_id, o.pk) for o in objects)
        self._record_facts(kind, [o for _, o in created], [o for _, o in updated])
        return {o.account_id if kind != "accounts" else o.pk for o in objects}

    def _record_facts(self, kind: str, created: list, updated: list) -> None:
        if kind == "stakeholders":
            timeline.timeline_upsert(
                f for s in created for f in timeline.stakeholder_facts(s, now=self.now)
            )
            return
        if kind not in timeline.DERIVED_FACTS:
            return
        # a changed row's facts are rewritten whole: stale ones go (a ticket no longer
        # escalated, a row moved to another account), current ones are written anew
        stale = [k for o in updated for k in timeline.derived_fact_keys(kind, o.external_id)]
        for start in range(0, len(stale), LOOKUP_CHUNK):
            TimelineEntry.objects.filter(key__in=stale[start : start + LOOKUP_CHUNK]).delete()
        facts = [f for o in created + updated for f in timeline.derived_facts(kind, o)]
        timeline.timeline_upsert(facts)
        # escalations and failed payments are signals higher apps react to at once (the
        # playbooks' event triggers), after this import commits; a dry run rolls back: none
        from accounts.services import timeline_facts_recorded  # services imports the intake

        timeline_facts_recorded(
            f.pk for f in facts if f.kind in timeline.SIGNAL_KINDS and f.pk is not None
        )

    def _link_parents(self, source: Source, result: KindResult) -> None:
        links = self._parent_links
        if not links:
            return
        self._resolve_accounts({parent for _, _, parent in links})
        parent_of = {child: parent for _, child, parent in links}
        # the hierarchy after this import: stored links, overridden by the file's
        graph = dict(
            Account.objects.filter(parent__isnull=False).values_list(
                "external_id", "parent__external_id"
            )
        )
        graph.update(parent_of)
        for number, child, parent in links:
            if parent not in self.account_ids and parent not in self.declared_accounts:
                self.error(source, number, "parent_external_id", f"unknown account {parent}")
                result.rejected += 1
                continue
            step, hops = parent, 0
            while step is not None and hops <= len(graph):
                if step == child:
                    self.error(
                        source,
                        number,
                        "parent_external_id",
                        "the parent chain loops back to this account",
                    )
                    result.rejected += 1
                    break
                step, hops = graph.get(step), hops + 1
        if self.failed:
            return
        children = list(parent_of)
        for start in range(0, len(children), LOOKUP_CHUNK):
            chunk = children[start : start + LOOKUP_CHUNK]
            changed = []
            for account in Account.objects.filter(external_id__in=chunk).only(
                "id", "external_id", "parent_id"
            ):
                parent_id = self.account_ids[parent_of[account.external_id]]
                if account.parent_id != parent_id:
                    account.parent_id = parent_id
                    account.updated_at = self.now
                    changed.append(account)
                    if account.external_id in self._unchanged_accounts:
                        result.unchanged -= 1
                        result.updated += 1
            Account.objects.bulk_update(changed, ["parent_id", "updated_at"], batch_size=1000)

    # --- usage events --------------------------------------------------------------------

    def _load_events(self, source: Source, result: KindResult, rows: Iterator[EventRow]) -> None:
        """Two threads: a worker reads, validates and keys the rows (pure Python) while this
        thread, which owns the connection and the import's one transaction, writes the
        chunk before (waiting on PostgreSQL releases the GIL, so on two cores the Python
        work costs little wall time). The worker asks this thread for account ids it does
        not know yet; at most two chunks wait between them, so memory stays flat."""
        events.prepare()
        first_seen: dict[int, dt.datetime] = {}  # account -> earliest event in this import
        # on PostgreSQL the worker also builds each chunk's COPY text
        payloads = connection.vendor == "postgresql"
        produce = functools.partial(self._event_chunks, source, result, rows, first_seen, payloads)
        work = _Worker(produce)
        with contextlib.closing(work.items()) as chunks:  # stops the worker on any exit
            for count, chunk, payload in chunks:
                result.rows += count
                self._tick(count)
                if chunk:
                    created = events.load_chunk(chunk, payload)
                    result.created += created
                    result.unchanged += len(chunk) - created
        if not self.failed:
            events.apply_new_rollups()
            events.first_usage_record(first_seen)
            self.result.accounts |= first_seen.keys()

    def _event_chunks(
        self,
        source: Source,
        result: KindResult,
        rows: Iterator[EventRow],
        first_seen: dict[int, dt.datetime],
        payloads: bool,
        ask,
    ) -> Iterator[tuple[int, list[tuple], bytes | None]]:
        """(rows read, rows to load, their COPY text if ``payloads``) per batch of
        EVENT_BATCH rows; runs in the worker thread and reaches the database only through
        ``ask`` (account lookups). Once a row is bad, nothing more is loaded but every row
        is still validated."""
        latest_allowed = self.now + FUTURE_SLACK
        dedup_key = events.dedup_key
        account_ids = self.account_ids
        for batch in _batches(rows, EVENT_BATCH):
            missing = {r[0] for _, r, _ in batch if r is not None and r[0] not in account_ids}
            if missing:
                ask(self._resolve_accounts, missing)
            chunk = []
            for number, row, problems in batch:
                if row is not None:
                    external, user_id, event, occurred_at, value = row
                    account_id = account_ids.get(external)
                    if account_id is None:
                        problems = [*problems]
                        self._account_id(external, problems)
                    if occurred_at > latest_allowed:
                        problems = [
                            *problems,
                            ("occurred_at", f"{_iso(occurred_at)} is in the future"),
                        ]
                if problems:
                    result.rejected += 1
                    for column, message in problems:
                        self.error(source, number, column, message)
                    continue
                if self.failed or account_id is None:
                    continue
                chunk.append(
                    (
                        account_id,
                        user_id,
                        event,
                        occurred_at,
                        value,
                        dedup_key(account_id, user_id, event, occurred_at, value),
                    )
                )
                seen = first_seen.get(account_id)
                if seen is None or occurred_at < seen:
                    first_seen[account_id] = occurred_at
            if self.failed:
                yield len(batch), [], None
            else:
                yield (
                    len(batch),
                    chunk,
                    (events.copy_payload(chunk) if payloads and chunk else None),
                )


def _batches(rows: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Stopped(Exception):
    """The consuming thread stopped early: the worker ends quietly."""


class _Worker:
    """Runs the generator ``produce(ask)`` in a thread; ``items()`` hands its items to the
    thread that iterates it, with at most two waiting (flat memory). In the worker,
    ``ask(fn, *args)`` runs ``fn(*args)`` in the iterating thread (the one that owns the
    database connection and its transaction) between two items and returns its result.
    An exception in the worker is raised in the iterating thread; closing ``items()``
    early (an exception there) stops the worker."""

    _ITEM, _CALL, _DONE, _ERROR = range(4)

    def __init__(self, produce) -> None:
        self._produce = produce
        self._items: queue.Queue = queue.Queue(maxsize=2)
        self._replies: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()

    def _put(self, tag: int, value) -> None:
        while not self._stop.is_set():
            try:
                self._items.put((tag, value), timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _ask(self, fn, *args):
        self._put(self._CALL, (fn, args))
        while not self._stop.is_set():
            try:
                return self._replies.get(timeout=0.1)
            except queue.Empty:
                continue
        raise _Stopped

    def _run(self) -> None:
        items = self._produce(self._ask)
        try:
            for item in items:
                self._put(self._ITEM, item)
            self._put(self._DONE, None)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the iterating thread, raised there
            with contextlib.suppress(_Stopped):
                self._put(self._ERROR, exc)
        finally:
            items.close()

    def items(self) -> Iterator:
        thread = threading.Thread(target=self._run, name="intake-events", daemon=True)
        thread.start()
        try:
            while True:
                tag, value = self._items.get()
                if tag == self._ITEM:
                    yield value
                elif tag == self._CALL:
                    fn, args = value
                    self._replies.put(fn(*args))
                elif tag == self._DONE:
                    return
                else:
                    raise value
        finally:
            self._stop.set()
            thread.join(timeout=5)


def _fast_event(
    account: str, user: str, event: str, occurred: str, value: str
) -> EventTuple | None:
    """The common well-formed event row, parsed without the general machinery; None when
    anything is unusual (the general parser then reports precisely)."""
    if not (account.isascii() and user.isascii() and event.isascii() and occurred.isascii()):
        return None
    account, user, event = account.strip(), user.strip(), event.strip()
    if not account or not event or len(account) > 200 or len(user) > 200 or len(event) > 200:
        return None
    if "\x00" in account or "\x00" in user or "\x00" in event or len(occurred) < 16:
        return None
    try:
        occurred_at = _fromisoformat(occurred)
        number = float(value) if value else None
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=dt.UTC)
        else:
            occurred_at = occurred_at.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    if number is not None and not (-1e15 <= number <= 1e15):  # also rejects nan
        return None
    return account, user, event, occurred_at, number


_fromisoformat = dt.datetime.fromisoformat
_JSON_EVENT_FIELDS = frozenset(c.name for c in COLUMNS["events"])


def _fast_json_event(row: dict) -> EventTuple | None:
    """``_fast_event`` for one JSON object: text fields as strings, the value a JSON number
    or null; None for anything else (unknown fields included)."""
    if not row.keys() <= _JSON_EVENT_FIELDS:
        return None
    account, event, occurred = (
        row.get("account_external_id"),
        row.get("event"),
        row.get("occurred_at"),
    )
    user, value = row.get("user_id", ""), row.get("value")
    if not (type(account) is str and type(user) is str and type(event) is str):
        return None
    if type(occurred) is not str:
        return None
    parsed = _fast_event(account, user, event, occurred, "")
    if parsed is None or value is None:
        return parsed
    if type(value) is not int and type(value) is not float:
        return None  # text, booleans: the general parser decides
    try:
        number = float(value)
    except OverflowError:
        return None
    if not (-1e15 <= number <= 1e15):  # also rejects nan
        return None
    return parsed[0], parsed[1], parsed[2], parsed[3], number


def _event_tuple(values: dict, problems: list) -> EventTuple | None:
    if problems:
        return None
    return (
        values["account_external_id"],
        values.get("user_id") or "",
        values["event"],
        values["occurred_at"],
        values.get("value"),
    )


def _default_customer_since(account_ids: set[int]) -> None:
    """``customer_since`` defaults to the account's first contract start, kept current while
    it is the default (an earlier contract may arrive later)."""
    first_start = (
        Contract.objects.filter(account=OuterRef("pk"))
        .order_by("start_date")
        .values("start_date")[:1]
    )
    ids = list(account_ids)
    for start in range(0, len(ids), LOOKUP_CHUNK):
        Account.objects.filter(id__in=ids[start : start + LOOKUP_CHUNK]).filter(
            Q(customer_since__isnull=True) | Q(customer_since_derived=True)
        ).update(customer_since=Subquery(first_start), customer_since_derived=True)


def _empty_values(model, defaults: dict) -> dict[str, Any]:
    """What an empty cell stores in each field: None, "" for text, or the kind's default."""
    empty: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.name in defaults:
            empty[field.attname] = defaults[field.name]
        elif field.null:
            empty[field.attname] = None
        elif isinstance(field, models.CharField | models.TextField):
            empty[field.attname] = ""
        elif field.has_default():
            empty[field.attname] = field.get_default()
    return empty


def _order_problem(kind: str, get) -> tuple[str, str] | None:
    """The first ordering rule (start before end …) the values broke: (column, message).
    ``get(name)`` reads a value: of a parsed row, or of a stored row merged with it."""
    for earlier, later in ORDER_RULES.get(kind, ()):
        first, second = get(earlier), get(later)
        if first is not None and second is not None and second < first:
            return later, f"{later} {_iso(second)} is before {earlier} {_iso(first)}"
    return None


def _printable(text: str) -> str:
    """Messages quote what they found; NUL and undecodable bytes would poison JSON, HTML and
    PostgreSQL text, so they are shown as escapes and replacement characters instead."""
    text = str(text)
    if text.isascii() and "\x00" not in text:
        return text
    text = text.replace("\x00", "\\0")
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
