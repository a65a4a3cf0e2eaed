"""The nightly pipeline: the steps that turn a day's raw data into what CSMs see next
morning, run in order for one ``as_of`` day and recorded as a ``PipelineRun``.

``as_of`` is the last *complete* UTC day (default: yesterday): a run at 02:15 on the 6th
finalizes the 5th. Steps: the usage rollup reconcile, the health snapshots, the KPI
snapshots (``STEPS``), then the steps of higher apps named in
``settings.PIPELINE_FINAL_HOOKS`` (the playbook evaluation: ``final_steps``), which metrics
calls by their dotted paths without importing them, recorded in the run like the others.

Two ways to run, same rows (pinned by tests, including one with a real worker):

- **in one process** (``run_nightly(as_of)``): ``python manage.py run_pipeline``, and the
  Celery task when it runs eagerly (embedded mode, ``.apply()``); on PostgreSQL the KPI
  snapshots are then recorded in a thread beside the health and standings steps (they read
  nothing those write), and their step waits for that thread;
- **fanned out** (``run_nightly(as_of, fan_out=True)``, what the task does in a worker): the
  steps before health run in the task, then the health step becomes one
  ``recompute_health_chunk`` task per chunk of ``HEALTH_CHUNK`` account ids, on the night's
  queue (``NIGHT_HEALTH_QUEUE``), not the incremental recomputes'; the task that
  finishes the last chunk claims the continuation (conditional UPDATE) and enqueues
  ``continue_nightly_pipeline``, which runs the steps after health and closes the run.

Both call the same service (``services.health_snapshots_record``) for the same accounts.
Safe to run twice: every step rebuilds its day (upserts on natural keys). Resumable: a run
still ``running`` when the next run for its day starts (it holds no lock: its process died)
is marked superseded, the new run redoes every step, and the old run's leftover chunk tasks
skip their work; a fanned-out run, once it has shown no life for a while (below).

One run at a time: a run holds the pipeline lock (``exclusive``) from its start to its end
in this process, its catch-up included, and a second run that cannot take it fails at once
(``PipelineBusy``) rather than superseding the first and being superseded back; so does a
health rescore (``manage.py recompute``, the Manage page's). A run that fans out holds it
in the task (the catch-up, the steps before health and the fan-out) and in its
continuation; between the two, while its chunks are pending, no process holds it, and its
``running`` row keeps the others out instead: taking the lock is refused while the run
shows life (a chunk done within ``settings.PIPELINE_RUN_STALE_MINUTES``), and a run that
has shown none for that long (its worker killed, its tasks lost) is superseded by whoever
takes the lock next (its leftover chunks then skip their work). A run stopped by Ctrl-C or
SIGTERM (``run_pipeline`` turns SIGTERM into ``Interrupted``) is recorded as failed,
"health: interrupted (SIGINT)", and the interruption goes on up.

A run for a day older than the latest day processed (the newest ``as_of`` of a succeeded
run) rebuilds that day's history only: it runs the steps that record rows dated by their
day (``HISTORY_STEPS``: the usage rollups and windows, the health and KPI snapshots) and
records the others as skipped, with the reason (``past_day``): the standings, the raw
events' upkeep and the final hooks act on the present (the queue, CTAs, alerts), and run
as of that old day they would close CTAs on data that did not exist yet, put the queue
back to old scores, or alert on an old period. The catch-up of missed nights
(``run_missed``) runs days newer than the latest one processed: every step, each day.

Called by ``metrics.tasks.run_nightly_pipeline`` (beat, 02:15 UTC) and by
``python manage.py run_pipeline``; plain functions, runnable from a shell.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts import utc
from accounts.intake import events as intake_events
from accounts.intake import partitions
from accounts.models import Account, UsageDaily, UsageFeatureDaily
from config.db import beside, heap_frozen, threads_possible

from . import services
from .kpis import adoption
from .kpis.common import midnight
from .models import HealthSnapshot, PipelineChunk, PipelineRun

try:
    import fcntl
except ImportError:  # Windows: embedded mode's lock is the threads' alone (``lock_file``)
    fcntl = None

logger = logging.getLogger(__name__)

# Days reconciled before and including as_of: yesterday and the day before, so events that
# arrived late (after the previous night's run) are counted too.
ROLLUP_DAYS = 2
HEALTH_CHUNK = 5000  # account ids per health chunk task: 100k accounts are 20 tasks
# The queue of a night's health chunks: the worker of the night's long steps (compose's
# `worker`, -Q celery,ingest), not `recompute`, whose worker keeps an account's health
# current within a minute of its new data and must not wait behind a whole book's chunks.
# Given with each chunk, as the same task sent by the incremental path stays on `recompute`
# (settings.CELERY_TASK_ROUTES).
NIGHT_HEALTH_QUEUE = "celery"
# chunks of the in-process health step recorded at once (config.db.in_threads): one
# chunk's Python runs while PostgreSQL works for the other, on this 2-core machine
HEALTH_THREADS = 2
# ... or in that many forked processes (config.db.in_processes) where it can fork, so the
# chunks' Python (scoring, encoding: ~16-19 s of CPU at 100k) uses both cores instead of
# one under the GIL. Near idle at 100k the health step took 34.6 and 33.2 s this way against
# 40.7 and 37.3 s in threads (docs/benchmarks.md, "The targets, re-measured", fourth
# session); 1 restores the threads
HEALTH_PROCESSES = 2
# The standings step's chunks (~4 s of Python at 100k accounts) in that many forked
# processes in the run in one process (1: in threads, as in a worker's continuation).
# Alone at 100k: 4.4-5.2 s against 7.0-9.0 s in two threads (docs/benchmarks.md, eighth
# session)
STANDINGS_PROCESSES = 2
# set while run_nightly runs the steps after health in this process (not fanned out)
_in_one_process = False
HEALTH_COUNTS = ("accounts", "green", "yellow", "red", "no_data", "no_model", "written")


def health_words(steps: list[dict[str, Any]]) -> str:
    """The health step of a run's ``steps`` in words, for the admin: "200 accounts scored
    (churned ones too): 103 green, 87 yellow, 10 red, 0 without data, 0 without a model;
    12 snapshots written, 188 already recorded as they are (unchanged)" (a second run of a
    day writes none), then a warning per active version scoring with two components of one
    name (its ``twin_names``: a version stored before that was refused).
    The step scores every account, churned ones included (their history stays complete),
    while the dashboard's distribution counts current customers only: the words say so,
    so the two numbers are not read as the same thing. "" before the step has counts (not
    run yet, or its chunks still running)."""
    step = next((s for s in steps if s.get("name") == "health"), None)
    if step is None or "accounts" not in step:
        return ""
    n = step["accounts"]
    head = f"{n:,} account{'' if n == 1 else 's'} scored (churned ones too)"
    parts = [f"{step.get(band, 0):,} {band}" for band in ("green", "yellow", "red")]
    parts.append(f"{step.get('no_data', 0):,} without data")
    parts.append(f"{step.get('no_model', 0):,} without a model")
    words = f"{head}: {', '.join(parts)}"
    if "written" in step:  # runs recorded before the count was kept have none
        same = n - step["written"]
        words += f"; {step['written']:,} snapshot{'' if step['written'] == 1 else 's'} written"
        if same:
            words += f", {same:,} already recorded as they are (unchanged)"
    for twins in step.get("twin_names") or ():
        words += f". Warning: {twins} (scored as it is; the account page shows the two as one)"
    return words


class PipelineError(Exception):
    """A step failed; the run is recorded as failed with the error."""

    def __init__(self, message: str, *, run_id: int, step: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step = step


class PipelineBusy(Exception):
    """Another pipeline run holds the lock (``exclusive``): this one did not start."""

    def holder(self) -> str:
        """Who holds the lock, without the advice to the one refused ("another pipeline run
        is in progress (…)"): the words of a caller that waits for it instead."""
        return str(self).removesuffix(BUSY_ADVICE)


BUSY_ADVICE = "; wait for it or stop it"  # the end of a refusal's words (``_busy_words``)


class Interrupted(SystemExit):
    """Raised by ``run_pipeline``'s SIGTERM handler while it runs: the run is recorded as
    failed as on Ctrl-C, and the command exits with 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name

    def __reduce__(self):  # from a forked chunk process (it inherits the handler) back
        return type(self), (self.signum,)


def interrupted_words(exc: BaseException) -> str:
    """The words of an interruption: "interrupted (SIGINT)" for Ctrl-C
    (``KeyboardInterrupt``), "interrupted (SIGTERM)" for ``Interrupted``, "interrupted
    (SystemExit)" for another ``SystemExit``."""
    if isinstance(exc, KeyboardInterrupt):
        why = "SIGINT"
    elif isinstance(exc, Interrupted):
        why = exc.signal_name
    else:
        why = type(exc).__name__
    return f"interrupted ({why})"


def default_as_of() -> dt.date:
    """The last complete UTC day."""
    return utc.yesterday()


def _day_sql() -> str:
    """SQL for an event's UTC day (SQLite keeps UTC datetimes as ISO text)."""
    if connection.vendor == "postgresql":
        return "(occurred_at AT TIME ZONE 'UTC')::date"
    return "date(occurred_at)"


_RECONCILE = "metrics_reconcile_events"


def _rollup_mismatches(
    *, first: dt.date, as_of: dt.date
) -> tuple[int, int, list[tuple[int, dt.date]]]:
    """Compare the rollups of ``first``..``as_of`` with what the raw events say, read-only:
    returns the number of (account, day) pairs with events in the window, the number of
    ``UsageDaily`` rows it holds, and the pairs whose
    ``UsageDaily``, ``UsageFeatureDaily`` or ``UsagePresence`` rows differ from them (wrong,
    missing or stale). One read of the events (into a temporary table) and three comparisons,
    whatever the number of accounts."""
    start = midnight(first)
    end = midnight(as_of + dt.timedelta(days=1))
    if connection.vendor != "postgresql":
        start = connection.ops.adapt_datetimefield_value(start)
        end = connection.ops.adapt_datetimefield_value(end)
    day = _day_sql()
    window = (first.isoformat(), as_of.isoformat())
    # the events of the window, read once (the events table has no index on the time alone:
    # each read is a scan) into a temporary table the three comparisons read
    events = f"FROM {_RECONCILE} WHERE true"
    daily = (
        f"WITH computed AS (SELECT account_id, day, count(*) AS n, "
        f"count(DISTINCT NULLIF(user_id, '')) AS u, COALESCE(sum(value), 0) AS v {events} "
        "GROUP BY 1, 2), "
        "stored AS (SELECT account_id, day, events, active_users, value_sum "
        "FROM accounts_usagedaily WHERE day >= %s AND day <= %s), "
        "wrong AS (SELECT account_id, day FROM "
        "(SELECT * FROM computed EXCEPT SELECT * FROM stored) x UNION "
        "SELECT account_id, day FROM (SELECT * FROM stored EXCEPT SELECT * FROM computed) y) "
        "SELECT c.n, s.n, w.account_id, w.day FROM (SELECT count(*) AS n FROM computed) c "
        "JOIN (SELECT count(*) AS n FROM stored) s ON 1 = 1 LEFT JOIN wrong w ON 1 = 1"
    )
    features = (
        f"WITH computed AS (SELECT account_id, day, event, count(*) AS n, "
        f"count(DISTINCT NULLIF(user_id, '')) AS u {events} GROUP BY 1, 2, 3), "
        "stored AS (SELECT account_id, day, event, events, users "
        "FROM accounts_usagefeaturedaily WHERE day >= %s AND day <= %s) "
        "SELECT account_id, day FROM (SELECT * FROM computed EXCEPT SELECT * FROM stored) x "
        "UNION SELECT account_id, day FROM (SELECT * FROM stored EXCEPT SELECT * FROM computed) y"
    )
    presences = (
        f"WITH computed AS (SELECT DISTINCT account_id, day, user_id, event {events} "
        "AND user_id <> ''), "
        "stored AS (SELECT account_id, day, user_id, event "
        "FROM accounts_usagepresence WHERE day >= %s AND day <= %s) "
        "SELECT account_id, day FROM (SELECT * FROM computed EXCEPT SELECT * FROM stored) x "
        "UNION SELECT account_id, day FROM (SELECT * FROM stored EXCEPT SELECT * FROM computed) y"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_RECONCILE} AS SELECT account_id, {day} AS day, "
            "user_id, event, value FROM accounts_usageevent "
            "WHERE occurred_at >= %s AND occurred_at < %s",
            (start, end),
        )
        try:
            cursor.execute(daily, window)
            rows = cursor.fetchall()
            pairs, before = rows[0][0], rows[0][1]
            found = [(a, d) for _, _, a, d in rows if a is not None]
            for query in (features, presences):
                cursor.execute(query, window)
                found += cursor.fetchall()
        finally:
            cursor.execute(f"DROP TABLE {_RECONCILE}")
    # SQLite gives the days as text, and the two queries may type them differently
    wrong = {(a, d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))) for a, d in found}
    return pairs, before, sorted(wrong)


def usage_rollups_reconcile(*, as_of: dt.date, days: int = ROLLUP_DAYS) -> dict[str, Any]:
    """Make UsageDaily, UsageFeatureDaily and UsagePresence of the ``days`` UTC days ending
    with ``as_of`` equal what the raw events say, whatever happened on ingest: compare them
    with the events (three aggregate queries, read-only) and rebuild only the (account, day)
    pairs that differ, with the intake's own rollup code (which also rebuilds their
    presences; their rollup rows are deleted first, so rows no event backs any more go too).
    Ingest keeps the rollups current, so a night usually rewrites nothing. One transaction,
    under every rollup lock: no load rebuilds a rollup meanwhile.

    Days before ``partitions.raw_events_since()`` are left out: their raw events were
    dropped by the retention, and comparing with them would wipe rollups that are right."""
    first = as_of - dt.timedelta(days=days - 1)
    since = partitions.raw_events_since()
    if since is not None and first < since:
        first = since
    if first > as_of:
        return {
            "first_day": None,
            "last_day": as_of.isoformat(),
            "skipped": f"raw events before {since} are no longer kept",
            "account_days_before": 0,
            "account_days": 0,
            "corrected": 0,
            "rebuilt": 0,
        }
    with transaction.atomic():
        intake_events.lock_all_rollups()
        pairs, before, wrong = _rollup_mismatches(first=first, as_of=as_of)
        rebuilt = 0
        if wrong:
            by_day: dict[dt.date, list[int]] = {}
            for account_id, day in wrong:
                by_day.setdefault(day, []).append(account_id)
            for day, ids in by_day.items():
                for n in range(0, len(ids), 5000):  # bounded parameter lists (SQLite)
                    chunk = ids[n : n + 5000]
                    UsageDaily.objects.filter(day=day, account_id__in=chunk).delete()
                    UsageFeatureDaily.objects.filter(day=day, account_id__in=chunk).delete()
            rebuilt = intake_events.rollups_rebuild(pairs=wrong)
    return {
        "first_day": first.isoformat(),
        "last_day": as_of.isoformat(),
        "account_days_before": before,  # UsageDaily rows of the window before the reconcile
        "account_days": pairs,  # ... and after it: one per account with events that day
        "corrected": len(wrong),  # pairs whose rollups differed from the events: rewritten
        "rebuilt": rebuilt,
    }


def usage_events_upkeep(*, as_of: dt.date) -> dict[str, Any]:
    """The raw events' storage: drop the months past ``USAGE_EVENTS_RETENTION_MONTHS`` (the
    rollups stay), keep the partitions of this month and the next ones ready, and move rows
    that landed in the DEFAULT partition into their month's (``accounts.intake.partitions``)."""
    return partitions.partitions_maintain(today=as_of)


def usage_rollups(*, as_of: dt.date) -> dict[str, Any]:
    """The rollups reconciled (``usage_rollups_reconcile``), then every account's usage
    inputs for the window ending with ``as_of`` stored (``adoption.usage_windows_refresh``:
    what the health step, the KPI snapshots and the KPI report then read)."""
    counts = usage_rollups_reconcile(as_of=as_of)
    counts["usage_windows"] = adoption.usage_windows_refresh(end=as_of + dt.timedelta(days=1))
    return counts


# The usage inputs of a day (every event before its end, per account: the costliest read of
# the night), read once by the health step when it runs in this process and handed to the
# KPI snapshots after it. Fanned-out runs do without: each chunk reads its own accounts.
_usage_of_the_day: dict[dt.date, adoption.UsageInputs] = {}


# The KPI snapshots read none of what the health and standings steps write (they read the
# accounts, contracts, tickets, invoices, surveys and the usage inputs above), and half
# their cost is PostgreSQL's: in one process, on PostgreSQL outside a transaction, they are
# recorded in a thread of their own (its own connection) started by the health step once it
# has the usage inputs, so they run while the health and standings steps run; the
# ``kpi_snapshots`` step then waits for that thread and reports its counts (or raises its
# error). Same rows as recorded after standings: the step's own transaction, same inputs.
KPI_BESIDE_HEALTH = True
_kpi_beside: dict[dt.date, Future] = {}


def _kpi_beside_start(as_of: dt.date, usage: adoption.UsageInputs) -> None:
    _kpi_beside_drop()
    if KPI_BESIDE_HEALTH and threads_possible():
        _kpi_beside[as_of] = beside(
            lambda: services.kpi_snapshots_record(as_of=as_of, usage=usage), name="kpi-snapshots"
        )


def _kpi_beside_wait() -> None:
    """Until the KPI snapshot thread (if any) has ended; its result stays to be collected."""
    futures.wait(list(_kpi_beside.values()))


def _kpi_beside_drop() -> None:
    """Wait for a KPI snapshot thread no step will collect (a step before it failed), so
    that no thread of a finished run writes on; its error, if any, is logged only."""
    while _kpi_beside:
        day, future = _kpi_beside.popitem()
        try:
            future.result()
        except Exception:
            logger.exception("KPI snapshots of %s recorded beside the health step failed", day)


def health_snapshots(*, as_of: dt.date) -> dict[str, Any]:
    """Every account's health snapshot as of ``as_of`` (after the rollups: usage first)."""
    _usage_of_the_day.clear()
    usage = adoption.usage_inputs(Account.objects.all(), end=as_of + dt.timedelta(days=1))
    _usage_of_the_day[as_of] = usage
    # the band changes reach the playbooks through the run's final step, not the event path;
    # the KPI thread starts once the chunks' processes are forked (a fork copies no thread)
    counts = services.health_snapshots_record(
        as_of=as_of,
        usage=usage,
        announce=False,
        threads=HEALTH_THREADS,
        processes=HEALTH_PROCESSES,
        forked=lambda: _kpi_beside_start(as_of, usage),
    )
    return {**counts, **_twin_names()}


def _twin_names() -> dict[str, Any]:
    """For the health step's record: the active versions scoring with two components of
    one name, in words (``services.health_versions_named_twice``), under ``twin_names``;
    nothing when there are none. One query of the active versions."""
    twins = services.health_versions_named_twice()
    return {"twin_names": twins} if twins else {}


def kpi_snapshots(*, as_of: dt.date) -> dict[str, Any]:
    """The KPI snapshots of ``as_of``: the whole book, each segment, owner and team (already
    under way beside the health step when it started them: wait for them)."""
    usage = _usage_of_the_day.pop(as_of, None)
    beside = _kpi_beside.pop(as_of, None)
    if beside is not None:
        return beside.result()
    return services.kpi_snapshots_record(as_of=as_of, usage=usage)


def account_standings(*, as_of: dt.date) -> dict[str, Any]:
    """Each account's standing and queue priority from the health of ``as_of``. In the run
    in one process its chunks are refreshed in ``STANDINGS_PROCESSES`` forked processes,
    once the KPI snapshots' thread has ended (a fork copies a running thread's locks, not
    the thread; the ``kpi_snapshots`` step still collects its result); a worker's
    continuation of a fanned-out run refreshes them in threads."""
    from .standings import account_standings_refresh

    processes = 1
    if _in_one_process:
        _kpi_beside_wait()
        processes = STANDINGS_PROCESSES
    counts = account_standings_refresh(day=as_of, threads=HEALTH_THREADS, processes=processes)
    # an account rescored after ``as_of`` (new data or an override today, before this run)
    # has a newer snapshot than the night's: its row shows that one, as its page does, not
    # the night's older day (one index range read on (day, band); nothing when none is)
    later = list(
        HealthSnapshot.objects.filter(day__gt=as_of)
        .order_by()
        .values_list("account_id", flat=True)
        .distinct()
    )
    if later:
        account_standings_refresh(account_ids=later)
    counts["newer"] = len(later)
    return counts


Step = Callable[..., dict[str, Any]]
BEFORE_HEALTH: list[tuple[str, Step]] = [
    ("usage_rollups", usage_rollups),
    ("usage_events", usage_events_upkeep),
]
HEALTH: tuple[str, Step] = ("health", health_snapshots)
AFTER_HEALTH: list[tuple[str, Step]] = [
    ("standings", account_standings),
    ("kpi_snapshots", kpi_snapshots),
]
STEPS: list[tuple[str, Step]] = [*BEFORE_HEALTH, HEALTH, *AFTER_HEALTH]


# The steps that record history as of their day (rows keyed by it: the usage rollups and
# windows, the health snapshots, the KPI snapshots). Every other step acts on the present
# and is skipped by a run for a day older than the latest one processed, each final hook
# included: a hook added later runs on past days only once it is named here.
HISTORY_STEPS = frozenset({"usage_rollups", "health", "kpi_snapshots"})
# why each step that acts on the present is skipped on an older day, in words
PRESENT_STEPS = {
    "usage_events": "the raw events' retention and partitions are kept from the latest day",
    "standings": "the queue keeps each account's latest health, not this day's",
    "playbooks": "CTAs are opened and closed on the latest data only",
    "reports": "KPI targets are evaluated, and alert, on the latest day only",
}


def final_steps() -> list[tuple[str, Step]]:
    """The last steps, from ``settings.PIPELINE_FINAL_HOOKS`` (dotted paths of functions
    called with ``as_of=``, returning counts): apps above metrics (playbooks) run after the
    health and KPI snapshots of the same run, named by their app ("playbooks")."""
    return [(path.split(".")[0], import_string(path)) for path in settings.PIPELINE_FINAL_HOOKS]


# --- runs ------------------------------------------------------------------------------------


# The lock of a whole run (``exclusive``), on PostgreSQL: an advisory lock in the namespace
# of the repo's others (accounts.intake: 7301 the rollups, 7302 the partitions)
RUN_LOCK = (7303, 0)
# ... and in this process: reentrant, as a run takes it inside its command's or task's
# hold; on SQLite with an OS lock on a file beside the database too (``lock_file``), so a
# run or rescore from the command line and the server's exclude each other
_run_lock = threading.RLock()
_run_lock_depth = 0
# seconds between two tries of the lock file's lock by a caller that waits (``wait``)
FILE_LOCK_POLL_SECONDS = 0.1


def _run_words(run: PipelineRun) -> str:
    """A run in words: "run #8 for 2026-11-23, started 02:15 UTC", with ", health chunks
    3/20 done" for a fanned-out run (``run`` annotated with ``chunks_done``)."""
    started = run.started_at.astimezone(dt.UTC)
    words = f"run #{run.pk} for {run.as_of}, started {started:%H:%M} UTC"
    if run.chunks_total:
        words += f", health chunks {getattr(run, 'chunks_done', 0)}/{run.chunks_total} done"
    return words


def _running_runs() -> QuerySet[PipelineRun]:
    """The runs still ``running``, newest first, each with ``chunks_done`` (its health
    chunks done) and ``chunk_last_done`` (when the newest of them was done, None before)."""
    return (
        PipelineRun.objects.filter(status=PipelineRun.Status.RUNNING)
        .annotate(
            chunks_done=Count("chunks", filter=Q(chunks__done_at__isnull=False)),
            chunk_last_done=Max("chunks__done_at"),
        )
        .order_by("-started_at", "-pk")
    )


def _busy_words() -> str:
    """Why a run cannot start: "another pipeline run is in progress (run #8 for 2026-11-23,
    started 02:15 UTC); wait for it or stop it" (", health chunks 20/20 done" after the
    time for a fanned-out run, in its continuation). The newest running run is taken for the
    holder's; with none (between two runs of a catch-up, before the first has begun, or a
    health rescore holding the lock: ``manage.py recompute``, the Manage page's rescore),
    "another pipeline run or health rescore is in progress; wait for it or stop it"."""
    run = _running_runs().first()
    if run is None:
        return f"another pipeline run or health rescore is in progress{BUSY_ADVICE}"
    return f"another pipeline run is in progress ({_run_words(run)}){BUSY_ADVICE}"


def stale_after() -> dt.timedelta:
    """How long a fanned-out run may show no progress before it counts as dead
    (``settings.PIPELINE_RUN_STALE_MINUTES``)."""
    return dt.timedelta(minutes=settings.PIPELINE_RUN_STALE_MINUTES)


def _health_sent_at(run: PipelineRun) -> dt.datetime:
    """When a fanned-out run sent its health chunks: its start plus the seconds of the steps
    recorded before health (the fan-out itself takes milliseconds)."""
    seconds = 0.0
    for step in run.steps:
        if step.get("name") == "health":
            break
        seconds += step.get("seconds", 0)
    return run.started_at + dt.timedelta(seconds=seconds)


def last_progress(run: PipelineRun) -> dt.datetime:
    """The last sign of life of a fanned-out run (``run`` from ``_running_runs``): the
    newest of its fan-out, its newest chunk done and the claim of its continuation."""
    signs = (_health_sent_at(run), run.chunk_last_done, run.health_finished_at)
    return max(t for t in signs if t is not None)


def _in_flight_words(run: PipelineRun, seen: dt.datetime) -> str:
    """Why nothing else may start while ``run``'s chunks or continuation are pending in the
    workers, and when it will count as dead if it is stuck."""
    dead_from = (seen + stale_after()).astimezone(dt.UTC)
    return (
        f"another pipeline run is in progress in the workers ({_run_words(run)}, last "
        f"progress {seen.astimezone(dt.UTC):%H:%M} UTC); wait for it to finish. If it is "
        f"stuck (its worker gone), it counts as dead after {settings.PIPELINE_RUN_STALE_MINUTES}"
        f" minutes without progress (PIPELINE_RUN_STALE_MINUTES), from {dead_from:%H:%M} UTC,"
        " and the next run or rescore supersedes it"
    )


def _runs_in_flight_check(*, continuing: int | None) -> list[str]:
    """Refuse (``PipelineBusy``) while a fanned-out run other than ``continuing`` shows life
    (``last_progress`` within ``stale_after``): its chunks and continuation run in the
    workers without the lock, and would write the same days as whatever starts now. Runs
    that showed none are dead (a worker killed, their tasks lost): they are superseded here,
    so that their chunks, should they come back, skip their work. Returns what was
    superseded, in words. Called with the lock held: two callers do not both decide. One
    query, and an UPDATE for each dead run."""
    now = timezone.now()
    runs = [r for r in _running_runs().exclude(chunks_total=0) if r.pk != continuing]
    seen = {r.pk: last_progress(r) for r in runs}
    for run in runs:
        if now - seen[run.pk] < stale_after():
            raise PipelineBusy(_in_flight_words(run, seen[run.pk]))
    superseded = []
    for run in runs:
        error = (
            f"stopped; superseded: no progress since "
            f"{seen[run.pk].astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC, over "
            f"{settings.PIPELINE_RUN_STALE_MINUTES} minutes (PIPELINE_RUN_STALE_MINUTES): "
            "treated as dead"
        )
        if PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.RUNNING).update(
            status=PipelineRun.Status.SUPERSEDED, finished_at=now, error=error
        ):
            logger.warning("pipeline run #%s for %s %s", run.pk, run.as_of, error)
            superseded.append(f"Pipeline run #{run.pk} for {run.as_of} {error}.")
    return superseded


@contextmanager
def _advisory_lock(*, wait: float = 0) -> Iterator[None]:
    """``RUN_LOCK`` on a connection of its own, in a transaction left open until the run
    ends: not the run's connection, which a step closes (``config.db.in_processes`` closes
    them all before it forks) and whose transactions the steps commit. A transaction lock,
    released when that transaction ends, by the rollback in ``finally`` or by the end of the
    session when the process dies; behind a transaction-mode pooler (PgBouncer, see
    DATABASE_PREPARE_THRESHOLD) the open transaction keeps the one server connection, where
    a session lock could outlive the process on a pooled connection. The transaction writes
    nothing and holds no snapshot between statements: VACUUM is not held back.

    ``wait``: seconds to wait for the lock (``lock_timeout``: ``OperationalError`` when they
    pass) instead of failing at once with ``PipelineBusy``."""
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        own.set_autocommit(False)
        with own.cursor() as cursor:
            if wait:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)", [f"{int(wait * 1000)}ms"]
                )
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", RUN_LOCK)
                taken = True
            else:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", RUN_LOCK)
                (taken,) = cursor.fetchone()
        if not taken:
            raise PipelineBusy(_busy_words())
        yield
    finally:
        try:
            own.rollback()
        except DatabaseError:  # its session is gone (idle_in_transaction_session_timeout?)
            logger.warning("the pipeline lock's connection was lost before the run ended")
        finally:
            own.close()


def lock_file() -> Path | None:
    """The file whose OS lock is the pipeline lock on SQLite (embedded mode), beside the
    database: "book.sqlite3" gives "book.sqlite3.pipeline-lock". It stays there between runs
    (empty; its lock is what counts). None for a database in memory (the test suite's, seen
    by this process alone: the lock of its threads is enough) and where Python has no
    ``fcntl`` (Windows): there the lock covers this process's threads only, as it did
    before, and a ``run_pipeline`` or ``recompute`` from the command line can run at the
    same time as the server's rescore."""
    if fcntl is None or connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    return Path(f"{connection.settings_dict['NAME']}.pipeline-lock")


@contextmanager
def _file_lock(path: Path, *, wait: float = 0) -> Iterator[None]:
    """An exclusive OS lock (``flock``) on ``path``, created if need be, held until the
    block ends: another process that holds it (a ``run_pipeline`` from cron, the server's
    rescore) makes this one fail at once with ``PipelineBusy``, or after ``wait`` seconds
    of tries every ``FILE_LOCK_POLL_SECONDS``. The OS lets go of it when the file is closed,
    here or by the end of the process, however it ends (``kill -9`` too). Read-only is
    enough for ``flock``: the web server's user and cron's may differ."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OSError(
            exc.errno, f"the pipeline lock's file {path} cannot be opened: {exc.strerror}"
        ) from exc
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PipelineBusy(_busy_words()) from None
                time.sleep(min(FILE_LOCK_POLL_SECONDS, left))
        yield
    finally:
        os.close(fd)  # the lock goes with it


@contextmanager
def exclusive(*, continuing: int | None = None, wait: float = 0) -> Iterator[list[str]]:
    """Hold the pipeline lock for a whole run, its catch-up included: ``run_nightly`` takes
    it, and ``run_pipeline`` and the nightly task take it around the catch-up and the
    night's run; so do the health rescores (``manage.py recompute``, the Manage page's).
    Raises ``PipelineBusy`` at once when another run holds it: in another process
    (PostgreSQL: ``_advisory_lock``, a dead process's lock goes with its session; SQLite:
    ``_file_lock`` on ``lock_file``, a dead process's lock goes with it) or in another
    thread of this one. Reentrant in the thread that holds it.

    A run fanned out to the workers holds it in its first task (up to sending its health
    chunks) and in its continuation (``continue_after_health``, ``continuing`` its run's
    id), not while its chunks are pending: a lock taken in one task cannot be handed to the
    last chunk's. Meanwhile its row stands for it: taking the lock is refused while such a
    run shows life, and supersedes it once it has shown none for ``stale_after``
    (``_runs_in_flight_check``). Yields the words of the runs so superseded (none when
    nested). ``wait``: seconds to wait for another process's hold to end (the continuation:
    a refused caller holds the lock for a moment) rather than fail at once."""
    global _run_lock_depth
    taken = _run_lock.acquire(timeout=wait) if wait else _run_lock.acquire(blocking=False)
    if not taken:
        raise PipelineBusy(_busy_words())
    try:
        _run_lock_depth += 1
        if _run_lock_depth > 1:
            yield []
        elif connection.vendor != "postgresql":
            path = lock_file()
            with _file_lock(path, wait=wait) if path else nullcontext():
                yield _runs_in_flight_check(continuing=continuing)
        else:
            with _advisory_lock(wait=wait):
                yield _runs_in_flight_check(continuing=continuing)
    finally:
        _run_lock_depth -= 1
        _run_lock.release()


# seconds between two tries of the lock by a caller that waits for it (``exclusive_when_free``)
WAIT_POLL_SECONDS = 10


@contextmanager
def exclusive_when_free(
    *, timeout: float, waiting: Callable[[str], None] | None = None
) -> Iterator[list[str]]:
    """``exclusive()`` for a caller that would rather wait than be refused (``recompute
    --wait``, a rescore run inline in embedded mode): while another run or rescore holds the
    lock (or a fanned-out run is in flight in the workers), try again every
    ``WAIT_POLL_SECONDS`` for up to ``timeout`` seconds. ``waiting`` is told why on the
    first refusal, in ``exclusive``'s words without their "; wait for it or stop it".
    Raises ``PipelineBusy`` (the last refusal's words) when the time is up. Nothing is
    queued: the caller waits in its own process."""
    deadline = time.monotonic() + timeout
    told = False
    with ExitStack() as stack:
        while True:
            try:
                superseded = stack.enter_context(exclusive())
                break
            except PipelineBusy as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                if waiting is not None and not told:
                    waiting(exc.holder())
                    told = True
                time.sleep(min(WAIT_POLL_SECONDS, left))
        yield superseded


def latest_day_processed() -> dt.date | None:
    """The newest ``as_of`` of a succeeded run; None before the first. One query."""
    return (
        PipelineRun.objects.filter(status=PipelineRun.Status.SUCCEEDED)
        .order_by("-as_of")
        .values_list("as_of", flat=True)
        .first()
    )


def past_day(as_of: dt.date) -> str | None:
    """Why a run for ``as_of`` rebuilds that day's history only ("2020-01-01 is older than
    2026-11-23, the latest day processed"), or None when it runs every step: the first run,
    a day newer than the latest one processed, or that day again."""
    latest = latest_day_processed()
    if latest is None or as_of >= latest:
        return None
    return f"{as_of} is older than {latest}, the latest day processed"


def skip_words(name: str) -> str:
    """Why the step ``name`` is skipped on a day older than the latest one processed."""
    return PRESENT_STEPS.get(name, "it acts on the present, not on a past day")


def _run_begin(as_of: dt.date) -> PipelineRun:
    """A new run for ``as_of``; runs of that day still ``running`` are superseded by it."""
    with transaction.atomic():
        run = PipelineRun.objects.create(as_of=as_of)
        stale = PipelineRun.objects.filter(as_of=as_of, status=PipelineRun.Status.RUNNING).exclude(
            pk=run.pk
        )
        superseded = stale.update(
            status=PipelineRun.Status.SUPERSEDED,
            finished_at=timezone.now(),
            error=f"stopped; superseded by run #{run.pk}",
        )
    if superseded:
        logger.warning(
            "pipeline run #%s for %s superseded %d running run(s)", run.pk, as_of, superseded
        )
    return run


def run_is_running(run_id: int) -> bool:
    return PipelineRun.objects.filter(pk=run_id, status=PipelineRun.Status.RUNNING).exists()


def _fail(run: PipelineRun, name: str, exc: BaseException) -> PipelineError:
    """Record ``run`` as failed in step ``name`` (unless superseded meanwhile)."""
    run.error = f"{name}: {type(exc).__name__}: {exc}"
    PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.RUNNING).update(
        status=PipelineRun.Status.FAILED, error=run.error, finished_at=timezone.now()
    )
    logger.error("nightly pipeline %s failed in step %s: %s", run.as_of, name, run.error)
    return PipelineError(run.error, run_id=run.pk, step=name)


def _interrupted(run: PipelineRun, where: str, exc: BaseException) -> None:
    """Record ``run`` as failed by the interruption ``exc`` (Ctrl-C, SIGTERM) in ``where``,
    "health: interrupted (SIGINT)", unless it already ended (recorded by a step, or
    superseded), and add that to ``exc``'s notes for whoever reports it. A database error
    here is logged, not raised: the interruption goes on up either way."""
    error = f"{where}: {interrupted_words(exc)}"
    try:
        done = PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.RUNNING).update(
            status=PipelineRun.Status.FAILED, error=error, finished_at=timezone.now()
        )
    except DatabaseError:
        logger.exception("pipeline run #%s: could not record %s", run.pk, error)
        return
    if done:
        run.error = error
        logger.error("nightly pipeline %s: run #%s %s", run.as_of, run.pk, error)
        exc.add_note(f"pipeline run #{run.pk} for {run.as_of} recorded as failed: {error}")


def _run_steps(run: PipelineRun, steps: list[tuple[str, Step]], *, past: str | None = None) -> None:
    """Run ``steps`` in order, appending each one's counts to ``run.steps``; a failing step
    marks the run failed and raises ``PipelineError``; an interruption (Ctrl-C, SIGTERM)
    marks it failed too, naming the step, and goes on up. ``past`` (``past_day``): the day is
    older than the latest one processed, so the steps not in ``HISTORY_STEPS`` are recorded
    as ``{"name", "skipped": why, "seconds": 0}`` instead of run.

    Each step starts with what is alive frozen (``config.db.heap_frozen``, unfrozen when the
    steps end, failed or not): a step's full garbage collections then walk what it
    allocates, not the models, Django and, from the health step to the KPI snapshots, the
    usage inputs of every account that outlive it. In one night at 100k accounts the full
    collections took 2.1-2.5 s of this process before, 0.9-1.8 s after (docs/benchmarks.md,
    seventh session)."""
    with heap_frozen():
        for name, step in steps:
            if past is not None and name not in HISTORY_STEPS:
                logger.info("nightly pipeline %s: step %s skipped: %s", run.as_of, name, past)
                _step_done(run, {"name": name, "skipped": skip_words(name), "seconds": 0.0})
                continue
            step_clock = time.monotonic()
            gc.freeze()  # what the steps before left alive, too
            try:
                info = step(as_of=run.as_of)
            except Exception as exc:
                logger.exception("nightly pipeline %s: step %s raised", run.as_of, name)
                failure = _fail(run, name, exc)
                if isinstance(exc, OperationalError):
                    raise  # the database may be back in a moment: the task retries the day
                raise failure from exc
            except (KeyboardInterrupt, SystemExit) as exc:
                _interrupted(run, name, exc)
                raise
            seconds = round(time.monotonic() - step_clock, 3)
            _step_done(run, {"name": name, **info, "seconds": seconds})


def _step_done(run: PipelineRun, entry: dict[str, Any]) -> None:
    run.steps.append(entry)
    PipelineRun.objects.filter(pk=run.pk).update(steps=run.steps)


def _run_finish(run: PipelineRun) -> None:
    run.finished_at = timezone.now()
    done = PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.RUNNING).update(
        status=PipelineRun.Status.SUCCEEDED, finished_at=run.finished_at
    )
    run.refresh_from_db(fields=["status", "finished_at"])
    if not done:
        logger.warning("pipeline run #%s ended as %s, not succeeded", run.pk, run.status)


def summary(run: PipelineRun, *, past: str | None = None) -> dict[str, Any]:
    """``{"run_id", "as_of", "status", "seconds", "steps", "past"}`` of a run (seconds so
    far); ``past``: why it rebuilt its day's history only (``past_day``), else None."""
    end = run.finished_at or timezone.now()
    return {
        "run_id": run.pk,
        "as_of": run.as_of.isoformat(),
        "status": str(run.status),
        "seconds": round((end - run.started_at).total_seconds(), 3),
        "steps": run.steps,
        "past": past,
    }


def run_nightly(
    as_of: dt.date | None = None, *, fan_out: bool = False, chunk_size: int = HEALTH_CHUNK
) -> dict[str, Any]:
    """Run every step for ``as_of`` (default: yesterday, UTC) and record the run.

    Returns ``{"run_id", "as_of", "status", "seconds", "steps": [{"name", "seconds", ...}],
    "past"}``. Re-running a day is harmless: every step rebuilds its output for that day. A
    failing step stops the run, which is recorded as failed, and raises ``PipelineError``.
    A day older than the latest one processed gets its history rebuilt only: the steps
    that act on the present are recorded as skipped, and ``past`` says why (``past_day``).

    ``fan_out``: the health step is sent as chunk tasks of ``chunk_size`` account ids and
    the run goes on in the task that finishes the last one; the summary returned is then
    the run so far (``running``, unless the tasks ran eagerly)."""
    global _in_one_process
    as_of = as_of or default_as_of()
    with exclusive():
        past = past_day(as_of)  # before this run begins: a run of the latest day is not past
        run = _run_begin(as_of)
        try:
            _run_steps(run, BEFORE_HEALTH, past=past)
            if fan_out:
                health_fan_out(run, chunk_size=chunk_size)
                run.refresh_from_db()
            else:
                _in_one_process = True
                try:
                    _run_steps(run, [HEALTH, *AFTER_HEALTH, *final_steps()], past=past)
                finally:
                    _in_one_process = False
                    _kpi_beside_drop()
                _run_finish(run)
        except (KeyboardInterrupt, SystemExit) as exc:
            # between steps (in one, _run_steps recorded it already, naming the step)
            last = run.steps[-1]["name"] if run.steps else None
            _interrupted(run, f"after {last}" if last else "before the first step", exc)
            raise
    result = summary(run, past=past)
    logger.info(
        "nightly pipeline for %s: run #%s %s after %.2fs%s",
        as_of,
        run.pk,
        run.status,
        result["seconds"],
        f" (history only: {past})" if past else "",
    )
    return result


# --- the health step through Celery ----------------------------------------------------------


def health_fan_out(run: PipelineRun, *, chunk_size: int = HEALTH_CHUNK) -> int:
    """Send one ``recompute_health_chunk`` task per ``chunk_size`` account ids to the
    ``NIGHT_HEALTH_QUEUE`` (after this transaction commits); returns the number of chunks.
    With no account, goes straight on."""
    from .tasks import recompute_health_chunk  # tasks import this module

    services.health_model_ensure_default()  # once, not raced by the chunks
    ids = list(Account.objects.order_by("id").values_list("id", flat=True))
    chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
    with transaction.atomic():
        PipelineChunk.objects.bulk_create(
            PipelineChunk(run=run, index=n, accounts=len(chunk)) for n, chunk in enumerate(chunks)
        )
        PipelineRun.objects.filter(pk=run.pk).update(
            chunks_total=len(chunks),
            steps=[*run.steps, {"name": "health", "chunks": len(chunks), **_twin_names()}],
        )
        for n, chunk in enumerate(chunks):
            transaction.on_commit(
                lambda chunk=chunk, n=n: recompute_health_chunk.apply_async(
                    args=[chunk, run.as_of.isoformat()],
                    kwargs={"run_id": run.pk, "chunk": n},
                    queue=NIGHT_HEALTH_QUEUE,
                )
            )
    if not chunks and health_claim_continuation(run.pk):
        continue_after_health(run.pk)
    return len(chunks)


def health_chunk_done(*, run_id: int, chunk: int, counts: dict[str, Any]) -> bool:
    """Mark a chunk of ``run_id`` done (once, whatever the number of deliveries); True when
    this call finished the run's last chunk and claimed the continuation for its caller."""
    PipelineChunk.objects.filter(run_id=run_id, index=chunk, done_at=None).update(
        done_at=timezone.now(), counts={k: counts.get(k, 0) for k in HEALTH_COUNTS}
    )
    if PipelineChunk.objects.filter(run_id=run_id, done_at=None).exists():
        return False
    return health_claim_continuation(run_id)


def health_claim_continuation(run_id: int) -> bool:
    """Exactly one caller gets True: the conditional UPDATE of ``health_finished_at``."""
    return (
        PipelineRun.objects.filter(
            pk=run_id, status=PipelineRun.Status.RUNNING, health_finished_at=None
        ).update(health_finished_at=timezone.now())
        == 1
    )


# seconds the continuation waits for the pipeline lock: held elsewhere only for a moment by
# a caller being refused (the run shows life), or by one that found the run dead and
# superseded it; when they pass, OperationalError, and the task retries
CONTINUATION_LOCK_WAIT = 30


def continue_after_health(run_id: int) -> dict[str, Any] | None:
    """Close the health step of a fanned-out run (its counts summed over the chunks, like
    the one-process step's), run the steps after it and finish the run, under the pipeline
    lock (``exclusive``, its run's). None when the run is no longer running (superseded or
    failed)."""
    if not run_is_running(run_id):
        logger.warning("pipeline run #%s is not running any more: nothing to continue", run_id)
        return None
    try:
        with exclusive(continuing=run_id, wait=CONTINUATION_LOCK_WAIT):
            return _continue(run_id)
    except PipelineBusy as exc:  # another fanned-out run shows life: not ours to overlap
        run = PipelineRun.objects.filter(pk=run_id).first()
        if run is not None:
            _fail(run, "continuation", exc)
        return None


def _continue(run_id: int) -> dict[str, Any] | None:
    run = PipelineRun.objects.filter(pk=run_id, status=PipelineRun.Status.RUNNING).first()
    if run is None:  # superseded while this waited for the lock
        logger.warning("pipeline run #%s is not running any more: nothing to continue", run_id)
        return None
    totals = dict.fromkeys(HEALTH_COUNTS, 0)
    for counts in run.chunks.values_list("counts", flat=True):
        for key in HEALTH_COUNTS:
            totals[key] += counts.get(key, 0)
    health = run.steps[-1] if run.steps and run.steps[-1]["name"] == "health" else None
    if health is not None:
        started = _health_sent_at(run)
        health.update({"day": run.as_of.isoformat(), **totals})
        health["seconds"] = round(max((run.health_finished_at - started).total_seconds(), 0), 3)
        PipelineRun.objects.filter(pk=run.pk).update(steps=run.steps)
    # decided again here: a newer day may have been processed while the chunks ran
    past = past_day(run.as_of)
    _run_steps(run, [*AFTER_HEALTH, *final_steps()], past=past)
    _run_finish(run)
    return summary(run, past=past)


def chunk_failed(run_id: int, chunk: int, exc: BaseException) -> None:
    """A chunk task gave up: the run fails (the next run for the day redoes it)."""
    run = PipelineRun.objects.filter(pk=run_id).first()
    if run is not None:
        _fail(run, f"health chunk {chunk}", exc)


# A missed night (Redis or the worker down at 02:15) is caught up by the next run, for at
# most this many days back; older gaps need an explicit `run_pipeline --as-of` or `recompute`.
CATCH_UP_DAYS = 7


def missed_days(as_of: dt.date, *, lookback: int = CATCH_UP_DAYS) -> list[dt.date]:
    """The days after the latest day processed (``latest_day_processed``) and before
    ``as_of``, oldest first, at most the last ``lookback`` of them: none when ``as_of`` is
    not newer than the day after it. None before the first succeeded run: a new
    installation does not backfill a week on its first night. One query.

    The latest day processed, not the latest before ``as_of``: after a run for the 23rd and
    a past-day rebuild of an older day, the 23rd again must not "catch up" the week before
    it, which no run ever skipped. A past-day rebuild never moves that day (its day is older
    than it by definition, ``past_day``), so the newest ``as_of`` of any succeeded run is
    the newest of the runs that were not."""
    latest = latest_day_processed()
    if latest is None:
        return []
    start = max(latest + dt.timedelta(days=1), as_of - dt.timedelta(days=lookback))
    return [start + dt.timedelta(days=n) for n in range((as_of - start).days)]


def run_missed(as_of: dt.date) -> list[dict[str, Any]]:
    """Run the pipeline, in this process and oldest first, for each missed day before
    ``as_of`` (``missed_days``); returns their summaries. Called before the night's own run."""
    summaries = []
    for day in missed_days(as_of):
        logger.info("catching up the missed nightly pipeline for %s", day)
        summaries.append(run_nightly(day))
    return summaries
