"""Database helpers: reads on a replica, prepared statements for the survey answers' hot
path, and work on a connection of its own in another thread (``beside``, ``in_threads``) or
process (``in_processes``).

Read-only queries go to a replica where one is configured (``DATABASE_REPLICA_URL``).

Only code that asks for it reads from the replica: dashboards and KPI reads wrap their work
in ``replica_reads()``. Everything else, and every write, stays on the primary, so a page
never misses a row its own request (or the previous one) just wrote because of replication
lag; KPIs are computed from nightly-settled data, where a second of lag does not matter."""

from __future__ import annotations

import gc
import multiprocessing
import os
import select
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, connections

T = TypeVar("T")

REPLICA = "replica"
_use_replica: ContextVar[bool] = ContextVar("use_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[str]:
    """ORM reads inside this block go to the replica if there is one; yields the alias used."""
    token = _use_replica.set(True)
    try:
        yield REPLICA if replica_configured() else "default"
    finally:
        _use_replica.reset(token)


class ReplicaRouter:
    """``db_for_read`` is the replica inside ``replica_reads()``; otherwise Django's default."""

    def db_for_read(self, model, **hints):
        if _use_replica.get() and replica_configured():
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, two connections to it

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"  # the replica follows the primary by replication


@contextmanager
def prepared_cursor(using: str = "default") -> Iterator:
    """A cursor whose statements PostgreSQL plans once per connection and then reuses
    (psycopg prepares a statement from its ``prepare_threshold``-th run on, see
    ``settings.DATABASES``), for a few fixed statements on hot paths (the survey answer).

    Django's own cursors bind parameters on the client, which never prepares; switching the
    whole site to server-side binding (``OPTIONS["server_side_binding"]``) would change every
    ORM query, and some the ORM builds cannot be bound that way (Django ticket #20516). The
    same checks and wrappers as ``connection.cursor()``: the connection, Django's error
    classes and query logging, and the health check, except that it is passive
    (``_passive_health_check``). Elsewhere than PostgreSQL: the usual cursor.

    The connection plans these statements generically (``_generic_plans``): they take
    batches of rows, whose number a generic plan cannot see, and PostgreSQL's default would
    plan them anew on every run."""

    connection = connections[using]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    _passive_health_check(connection)
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        _generic_plans(connection.connection)
        raw = ServerBindingCursor(connection.connection)
    logged = connection.queries_logged
    with connection.make_debug_cursor(raw) if logged else connection.make_cursor(raw) as cursor:
        yield cursor


def _generic_plans(raw) -> None:
    """Once per psycopg connection that runs prepared statements: ``plan_cache_mode =
    force_generic_plan``. A prepared statement is planned for its parameters' values on its
    first five runs; then PostgreSQL keeps the generic plan only if its estimated cost is no
    higher than theirs. The survey answers' statement takes its batch as JSON rows (one per
    answer), which a generic plan estimates at a hundred, so the one-answer custom plans
    always looked cheaper, and the statement was planned again on every run: twice its
    execution's CPU (docs/benchmarks.md, sixth session). The setting concerns nothing else: Django's
    own cursors bind on the client and never prepare, and the triggers' functions take no
    parameters. Skipped when psycopg never prepares (``DATABASE_PREPARE_THRESHOLD=0``)."""
    if raw.prepare_threshold is None or getattr(raw, "_opencs_generic_plans", False):
        return
    raw.execute("SET plan_cache_mode = force_generic_plan")
    raw._opencs_generic_plans = True


def _passive_health_check(connection) -> None:
    """Django's health check (``CONN_HEALTH_CHECKS``) sends ``SELECT 1`` before the first
    statement of a request on a reused connection. Here the round trip is sent only when
    the socket says something happened: a server that ends a connection (restart,
    ``pg_terminate_backend``, an idle timeout) sends its FATAL error and closes, which
    makes the idle socket readable. A connection idle and in no transaction, with nothing
    to read, is taken as healthy; anything else (something to read, a transaction open, a
    closed or broken connection) gets Django's check. What this cannot see, a peer gone
    without a word (a host powered off, a cut network), makes the statement fail: its
    caller may retry once on a new connection (``surveys.services._first_answer``)."""
    if (
        connection.connection is None
        or not connection.health_check_enabled
        or connection.health_check_done
    ):
        return
    if _quiet(connection.connection):
        connection.health_check_done = True
    else:
        connection.close_if_health_check_failed()


def _quiet(conn) -> bool:
    """A psycopg connection idle in no transaction with nothing waiting on its socket."""
    from psycopg import pq

    if conn.closed or conn.broken:
        return False
    pgconn = conn.pgconn
    if pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)  # readable, hung up or in error: something happened


def threads_possible() -> bool:
    """Whether work may run in other threads on connections of their own: on PostgreSQL
    (SQLite has one writer) and outside a transaction (another connection would not see the
    caller's uncommitted rows)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _on_own_connection(work: Callable[..., T]) -> Callable[..., T]:
    """``work`` for another thread: Django's connections are per thread, so the thread gets
    its own, closed when the work ends."""

    def run(*args: Any) -> T:
        try:
            return work(*args)
        finally:
            connection.close()

    return run


def beside(work: Callable[[], T], *, name: str = "beside") -> Future[T]:
    """Start ``work`` in a thread of its own on its own connection and return its future,
    so the caller's connection goes on meanwhile (the caller checks ``threads_possible``;
    the work must not depend on the caller's uncommitted writes)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    try:
        return pool.submit(_on_own_connection(work))
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def beside_or_now(work: Callable[[], T], aside: bool, *, name: str = "beside") -> Callable[[], T]:
    """Start ``work`` and return what gives its result: ``aside``, in a thread on its own
    connection (``beside``), so the caller's connection works meanwhile (the caller checks
    ``threads_possible``; ``work`` must not depend on the caller's uncommitted writes);
    otherwise right away, on the caller's connection."""
    if aside:
        return beside(work, name=name).result
    result = work()
    return lambda: result


def in_threads(work: Callable[[Any], T], chunks: Sequence[Any], *, threads: int) -> list[T]:
    """``[work(chunk) for chunk in chunks]``, with up to ``threads`` chunks at a time when
    ``threads_possible``, each thread on its own connection (closed after each chunk), so
    each chunk must be its own transaction and not depend on another's. While one thread
    waits for PostgreSQL (the GIL released), another runs its Python. The first error is
    raised after the chunks already started end."""
    if threads <= 1 or len(chunks) <= 1 or not threads_possible():
        return [work(chunk) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(_on_own_connection(work), chunks))


def processes_possible() -> bool:
    """Whether work may run in forked processes on connections of their own: as for threads
    (``threads_possible``), on a system that forks, from a process allowed to have children
    (not a daemonic one)."""
    return (
        threads_possible() and hasattr(os, "fork") and not multiprocessing.current_process().daemon
    )


# what the forked processes of ``in_processes`` run: set before they are forked, so they
# inherit it (the work is a closure over large inputs: nothing is pickled but chunk numbers)
_forked: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


# prctl(2) option: the signal the kernel sends a process when the thread that forked it ends
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """The initializer of ``in_processes``' children: on Linux, each gets SIGKILL when the
    process that forked it dies. Without it a child outlives a parent killed with SIGKILL
    (the OOM killer, ``kill -9`` of a ``run_pipeline``): it finishes its chunk, then waits on
    the pool's queue for ever, and it holds copies of every socket the parent had open at
    the fork, among them the pipeline lock's connection (``metrics.pipeline``), so the lock
    the dead run held stayed taken as long as the orphan lived. Elsewhere (no ``prctl``)
    nothing is set: a child there still outlives a killed parent."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # the parent died before the line above: go now
        os._exit(1)


def _forked_chunk(index: int) -> Any:
    assert _forked is not None  # noqa: S101 - set in the parent before the fork
    work, chunks = _forked
    return _on_own_connection(work)(chunks[index])


def in_processes(
    work: Callable[[Any], T],
    chunks: Sequence[Any],
    *,
    processes: int,
    forked: Callable[[], None] | None = None,
) -> list[T]:
    """``[work(chunk) for chunk in chunks]``, with up to ``processes`` chunks at a time in
    processes forked from this one when ``processes_possible`` (else as ``in_threads`` with
    as many threads), so the chunks' Python runs on as many cores, not one at a time under
    the GIL. Each process inherits ``work`` and ``chunks`` (copy-on-write: large inputs are
    not copied or pickled), opens its own connection (this one is closed before the fork)
    and closes it after each chunk, so each chunk must be its own transaction and not depend
    on another's; what ``work`` returns is pickled back. ``forked``: called once the
    processes exist (at once if there are none): a thread must start only after the fork,
    as a forked child has none of its parent's threads but all their locks. The first error
    is raised after the chunks already started end."""
    global _forked
    if processes <= 1 or len(chunks) <= 1 or not processes_possible():
        if forked is not None:
            forked()
        return in_threads(work, chunks, threads=processes)
    connections.close_all()  # a forked child must not use (or close) its parent's sockets
    _forked = (work, chunks)
    try:
        pool = ProcessPoolExecutor(
            max_workers=min(processes, len(chunks)),
            mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        with pool:
            # the children's collector leaves the inherited objects' pages alone
            with heap_frozen():
                futures = [pool.submit(_forked_chunk, n) for n in range(len(chunks))]  # forks
            if forked is not None:
                forked()
            return [future.result() for future in futures]
    finally:
        _forked = None


_frozen_lock = threading.Lock()
_frozen_depth = 0
_frozen_by_others = False


@contextmanager
def heap_frozen() -> Iterator[None]:
    """What is alive now is left out of the garbage collector's passes (``gc.freeze``) for
    the block, so that a full pass walks only what the block allocates, not the large inputs
    and Django that outlive it. Nests: the objects go back to the collector (``gc.unfreeze``)
    when the outermost block ends, and never if something else had frozen objects before it
    (a gunicorn worker's ``post_worker_init``): ``gc.unfreeze`` cannot tell whose they are.
    Reference counting still frees what the block drops; only cyclic garbage not yet
    collected when a block starts waits for the outermost block's end."""
    global _frozen_depth, _frozen_by_others
    with _frozen_lock:
        if _frozen_depth == 0:
            _frozen_by_others = gc.get_freeze_count() > 0
        _frozen_depth += 1
        gc.freeze()
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_depth -= 1
            if _frozen_depth == 0 and not _frozen_by_others:
                gc.unfreeze()


@contextmanager
def copy_stage(
    cursor, table: str, definition: str, columns: str, rows: Iterable[tuple]
) -> Iterator[None]:
    """PostgreSQL: ``rows`` COPYed into the temporary table ``table`` (created if needed with
    ``definition``, emptied at commit) for the statements of the block, which set-based write
    from it what ``bulk_create``/``bulk_update`` would (without quoting every value in
    Python); the table is emptied after the block, as the caller's transaction may go on."""
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({definition}) ON COMMIT DELETE ROWS"
    )
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    yield
    cursor.execute(f"TRUNCATE {table}")
