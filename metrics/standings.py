"""Where each account stands today (``AccountStanding``): the latest health (the score and
band shown, an override's while one is in force) and its trends (the change of the score the
model computed, so that an override moves no trend, between snapshots of the same model
version, so that a new version moves none either), ARR, seats, next renewal, CTAs and the
queue priority (``metrics.priority``).

Set-based: per chunk of accounts, one query per source (the latest health day, the
snapshots the 7-day and the 30-day trends compare with, the contracts in force, the CTA
counts) and one bulk upsert, whatever the chunk's size. The CTA counts
come from the functions named in ``settings.ACCOUNT_STANDING_CTA_COUNTS`` (the playbooks
app sits above this one and is not imported here)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    DateField,
    ExpressionWrapper,
    F,
    JSONField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce, JSONObject
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts import utc
from accounts.models import Account, Contract
from config.db import copy_stage, in_processes, in_threads

from . import priority as prio
from .models import AccountStanding, HealthSnapshot

CHUNK = 5000
# the 30-day trend compares with the latest snapshot on or before 30 days back, at most
# TREND_30_TOLERANCE days earlier: a history backfilled a week apart (the demo's, a sampled
# rebuild) has none on the exact day, and the trend is then "vs 35 days back", not "—"
TREND_30_BACK = 30
TREND_30_TOLERANCE = 7
# the 7-day trend likewise: the latest snapshot on or before 7 days back, at most 2 days
# earlier. An account rescored during the day (its latest snapshot dated today, a day after
# the nightly one) or a missed night has none exactly 7 days back; 2 days keep the span
# honest for a trend called "in 7 days" (at most 9), and a history recorded a week apart is
# recorded on the nightly days, so its snapshot 7 days back is on the exact day
TREND_7_BACK = 7
TREND_7_TOLERANCE = 2

# a snapshot a trend compares with (``_scores_back``): computed score, computed band, day, and
# whether the model version that scored it is the one of the snapshot compared
Back = tuple[float | None, str, dt.date, bool]


def latest_health_day() -> dt.date | None:
    return HealthSnapshot.objects.aggregate(d=Max("day"))["d"]


def renews_within(days: int) -> Q:
    """Standings whose renewal falls within ``days`` days of their own data day (the day
    included): the filter of every "renews within N days" window (renewals, the queue's
    filter, the dashboard's "renewals due", the weekly digest). Each row counts from its
    ``day``, the day its reason's "renews in N days" counts from, so a row reading "renews
    in 30 days" is in the 30-day window and never one day out of it; a book-wide day would
    put an account rescored during the day (its day later than the night's) a day or two
    off its own text. A contract in force on the data day ends on or after it, so the lower
    bound only leaves out a standing older than its contract (none after a refresh)."""
    until = Cast(F("day") + dt.timedelta(days=days), output_field=DateField())
    return Q(renewal_on__gte=F("day"), renewal_on__lte=until)


def _cta_counts(ids: list[int], today: dt.date) -> dict[int, tuple[int, int, int]]:
    """(open, overdue, waiting) CTAs per account, summed over the hooks. A hook returns
    (open, overdue) or (open, overdue, waiting) per account: open counts every CTA not
    closed, waiting (pending over the owner's cap) among them; a hook without the third
    number has none waiting."""
    counts: dict[int, tuple[int, int, int]] = {}
    for path in getattr(settings, "ACCOUNT_STANDING_CTA_COUNTS", []):
        for pk, found in import_string(path)(ids, today).items():
            open_, overdue, *rest = found
            waiting = rest[0] if rest else 0
            before = counts.get(pk, (0, 0, 0))
            counts[pk] = (before[0] + open_, before[1] + overdue, before[2] + waiting)
    return counts


def _of(ids: Sequence[int], *, ranged: bool) -> Q:
    """Rows of the accounts ``ids``: as an id range when they are every account in it (the
    nightly run over the whole book), so no query sends thousands of ids."""
    if ranged:
        return Q(account_id__gte=min(ids), account_id__lte=max(ids))
    return Q(account_id__in=ids)


def _scores(of: Q, day: dt.date) -> dict[int, tuple[float | None, str, bool, float | None]]:
    """(score, band, overridden, computed score) of each account's snapshot of ``day``:
    the score and band shown, overridden when an override was in force on it (its
    ``overrides`` not empty), and the score the model computed, which the trends compare
    (``_trend``)."""
    rows = (
        HealthSnapshot.objects.filter(of, day=day)
        .annotate(set_by_hand=ExpressionWrapper(~Q(overrides=[]), output_field=BooleanField()))
        .values_list("account_id", "score", "band", "set_by_hand", "computed_score")
    )
    return {
        pk: (score, band, bool(by_hand), computed) for pk, score, band, by_hand, computed in rows
    }


def _scores_back(
    ids: Sequence[int], *, ranged: bool, day: dt.date, on: dt.date, tolerance: int
) -> dict[int, Back]:
    """Each account's snapshot a trend compares its snapshot of ``day`` with: the latest on
    or before ``on``, at most ``tolerance`` days earlier, *scored by the same model version*
    as the one of ``day`` (trends never mix versions, nor models), as (computed score,
    computed band, day, True): what the model computed from the data, before any override
    (``_trend``). With no snapshot of that version in the window but one of another (the
    model changed, or an assignment rule moved the account to another model, and those days
    were not rescored), the latest of those as (…, day, False): no trend, and the page says
    why. Accounts with neither (or without a snapshot of ``day``) are left out.

    One query: a correlated subquery per account of the chunk, which PostgreSQL runs as one
    seek of ``health_snapshot_unique`` (account, day) for the version of ``day`` and one
    backward seek from ``(account, on)``, skipping rows of other versions (none unless the
    version changed in the window), so its cost is about one index probe per account
    whatever the history's density or the book's size (a DISTINCT ON over the day range
    reads every snapshot of those days, ``tolerance + 1`` per account on a daily history,
    through the day index of the whole book). The second probe, the latest snapshot of any
    version, runs only where the first finds none (``COALESCE`` stops at its first non-null
    argument). The values come back as one JSON object (``JSONObject``) so that one probe
    gives them all."""
    lo = on - dt.timedelta(days=tolerance)
    window = HealthSnapshot.objects.filter(
        account_id=OuterRef("pk"), day__lte=on, day__gte=lo
    ).order_by("-day")
    version_now = HealthSnapshot.objects.filter(account_id=OuterRef(OuterRef("pk")), day=day)

    def back(same: bool) -> JSONObject:
        return JSONObject(day="day", score="computed_score", band="computed_band", same=Value(same))

    same = window.filter(model_version_id=Subquery(version_now.values("model_version_id")[:1]))
    found = Coalesce(
        Subquery(same.values(back=back(True))[:1], output_field=JSONField()),
        Subquery(window.values(back=back(False))[:1], output_field=JSONField()),
        output_field=JSONField(),
    )
    if ranged:
        accounts = Account.objects.filter(pk__gte=min(ids), pk__lte=max(ids))
    else:
        accounts = Account.objects.filter(pk__in=ids)
    rows = accounts.annotate(back=found).values_list("pk", "back")
    return {
        pk: (
            back["score"],
            back["band"] or "",
            dt.date.fromisoformat(back["day"]),
            bool(back["same"]),
        )
        for pk, back in rows
        if back is not None
    }


def _contracts(of: Q, days: dict[int, dt.date]) -> dict[int, dict[str, Any]]:
    """ARR (12 × MRR), seats and the earliest end of the contracts of each account in force
    on its day in ``days`` (the day of its data). One query over the span of those days,
    each contract then checked against its own account's day."""
    out: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"mrr": Decimal(0), "seats": None, "renewal_on": None}
    )
    if not days:
        return out
    first, last = min(days.values()), max(days.values())
    rows = (
        Contract.objects.filter(of, start_date__lte=last)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=first))
        .values_list("account_id", "start_date", "end_date", "mrr", "quantity")
    )
    for pk, start, end, mrr, quantity in rows:
        day = days.get(pk)
        if day is None or start > day or (end is not None and end < day):
            continue
        entry = out[pk]
        entry["mrr"] += mrr
        if quantity is not None:
            entry["seats"] = (entry["seats"] or 0) + quantity
        if end is not None and (entry["renewal_on"] is None or end < entry["renewal_on"]):
            entry["renewal_on"] = end
    return out


def _trend(now: float | None, before: Back | None) -> float | None:
    """The change from ``before`` (a ``_scores_back`` row) to ``now``, both computed scores
    of the same model version: a trend says how the customer's data moved, so an override
    set or expired in between (it changes the score shown, not the data) moves neither end,
    and a new version of the model (or another model) is no movement either. None when
    either is missing, as for an account whose score only an override sets (no data to
    compute), or when the snapshot back is of another version."""
    if now is None or before is None or before[0] is None or not before[3]:
        return None
    return round(now - before[0], 1)


def _back_day(now: float | None, before: Back | None) -> dt.date | None:
    """The day a standing names beside its trend (``trend_7_day``, ``trend_30_day``): the
    day of the snapshot the trend compares with; with no trend because that snapshot is of
    another model version (and a score now), its day, so that the account page can say
    why the trend is "—" (``workspace.selectors.trend_notes``); else None."""
    if before is None or now is None:
        return None
    if before[3] and _trend(now, before) is None:
        return None
    return before[2]


def _days(ids: list[int], day: dt.date | None) -> dict[int, dt.date]:
    """The health day of each account: ``day``, or else its own latest snapshot's day."""
    if day is not None:
        return dict.fromkeys(ids, day)
    rows = (
        HealthSnapshot.objects.filter(account_id__in=ids)
        .values("account_id")
        .annotate(d=Max("day"))
        .values_list("account_id", "d")
    )
    return dict(rows)


def _chunk(ids: list[int], *, day: dt.date | None, today: dt.date, ranged: bool = False) -> int:
    days = _days(ids, day)
    latest: dict[int, tuple[float | None, str, bool, float | None]] = {}
    week: dict[int, Back] = {}
    month: dict[int, Back] = {}
    by_day: dict[dt.date, list[int]] = defaultdict(list)
    for pk, d in days.items():
        by_day[d].append(pk)
    for d, members in by_day.items():  # one day for the nightly run, rarely two otherwise
        whole = ranged and len(members) == len(ids)
        of = _of(members, ranged=whole)
        latest.update(_scores(of, d))
        for trends, back, tolerance in (
            (week, TREND_7_BACK, TREND_7_TOLERANCE),
            (month, TREND_30_BACK, TREND_30_TOLERANCE),
        ):
            on = d - dt.timedelta(days=back)
            trends.update(_scores_back(members, ranged=whole, day=d, on=on, tolerance=tolerance))
    # every count of days on the row ("renews in N days") and the contracts in force are
    # as of the day of the account's data, the day the pages show ("Data as of"), as the
    # playbooks count them; an account without a snapshot has today's contracts
    data_days = {pk: days.get(pk) or today for pk in ids}
    contracts = _contracts(_of(ids, ranged=ranged), data_days)
    # overdue CTAs: a due date is a promise on the calendar, late from today on
    ctas = _cta_counts(ids, today)
    rows = []
    for pk in ids:
        data_day = data_days[pk]
        score, band, overridden, computed = latest.get(pk, (None, "", False, None))
        c = contracts.get(pk) or {"mrr": Decimal(0), "seats": None, "renewal_on": None}
        arr = (c["mrr"] * 12).quantize(Decimal("0.01"))
        open_ctas, overdue, waiting = ctas.get(pk, (0, 0, 0))
        week_back = week.get(pk)
        trend_7 = _trend(computed, week_back)
        back = month.get(pk)
        trend_30 = _trend(computed, back)
        result = prio.priority(
            band=band or "",
            arr=arr,
            days_to_renewal=prio.days_between(data_day, c["renewal_on"]),
            trend_7=trend_7,
            overdue_ctas=overdue,
        )
        rows.append(  # in _COLUMNS order; model instances only where bulk_create needs them
            (
                pk,
                data_day,
                score,
                band or "",
                overridden,
                trend_7,
                _back_day(computed, week_back),  # the day trend_7 compares with (or cannot)
                trend_30,
                _back_day(computed, back),  # the day trend_30 compares with (or cannot)
                arr,
                c["seats"],
                c["renewal_on"],
                open_ctas,
                overdue,
                waiting,
                result.points,
                result.reason[:300],
            )
        )
    _upsert(rows)
    return len(rows)


_FIELDS = [
    "day",
    "score",
    "band",
    "overridden",
    "trend_7",
    "trend_7_day",
    "trend_30",
    "trend_30_day",
    "arr",
    "seats",
    "renewal_on",
    "open_ctas",
    "overdue_ctas",
    "waiting_ctas",
    "priority",
    "reason",
    "updated_at",
]
_STAGE = "metrics_standing_stage"
_COLUMNS = ["account_id", *_FIELDS[:-1]]  # a row of ``_chunk``: updated_at is set here


def _upsert(rows: list[tuple]) -> None:
    """Upsert standings (tuples in ``_COLUMNS`` order) on their account. PostgreSQL:
    ``COPY`` into a temporary table and one ``INSERT … ON CONFLICT DO UPDATE``
    (``bulk_create`` quotes every value of 5,000 rows in Python: half the step's time,
    docs/benchmarks.md); elsewhere ``bulk_create``."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        AccountStanding.objects.bulk_create(
            [AccountStanding(**dict(zip(_COLUMNS, r, strict=True)), updated_at=now) for r in rows],
            update_conflicts=True,
            unique_fields=["account"],
            update_fields=_FIELDS,
        )
        return
    columns = ["account_id", *_FIELDS]
    names = ", ".join(columns)
    table = AccountStanding._meta.db_table
    staged = ((*r, now) for r in rows)
    with (
        connection.cursor() as cursor,
        copy_stage(cursor, _STAGE, f"LIKE {table} INCLUDING DEFAULTS", names, staged),
    ):
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {_STAGE} "  # noqa: S608
            "ON CONFLICT (account_id) DO UPDATE SET "
            + ", ".join(f"{f} = EXCLUDED.{f}" for f in _FIELDS)
        )


def account_standings_refresh(
    *,
    account_ids: Sequence[int] | None = None,
    day: dt.date | None = None,
    threads: int = 1,
    processes: int = 1,
) -> dict[str, Any]:
    """Rebuild the standing of ``account_ids`` (default: every account) from the health
    snapshots of ``day`` (default: each account's latest snapshot), the latest on or before
    7 days before (``TREND_7_TOLERANCE`` days earlier at most) and on or before 30 days
    before (``TREND_30_TOLERANCE`` days earlier at most) scored by the same model version, the
    contracts in force on that day (the days to renewal count from it too) and the CTAs
    overdue today (UTC). Idempotent. Returns ``{"day", "accounts"}``.
    ``threads``: chunks refreshed at once (``config.db.in_threads``: PostgreSQL outside
    a transaction only; the same rows). ``processes``: that many chunks at once in forked
    processes instead (``config.db.in_processes``: the chunks' Python, ~4 s of CPU at
    100,000 accounts, on as many cores; the caller must have no other thread running)."""
    today = utc.today()
    ranged = account_ids is None  # every account: each chunk is all the ids in its range
    if account_ids is None:
        ids = list(Account.objects.order_by("id").values_list("id", flat=True))
    else:
        ids = sorted(set(account_ids))

    def refresh(chunk: list[int]) -> int:
        with transaction.atomic():
            return _chunk(chunk, day=day, today=today, ranged=ranged)

    chunks = [ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)]
    if processes > 1:
        done = sum(in_processes(refresh, chunks, processes=processes))
    else:
        done = sum(in_threads(refresh, chunks, threads=threads))
    return {"day": day.isoformat() if day else None, "accounts": done}
