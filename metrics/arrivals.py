"""Which accounts have data their health does not include yet (``AccountDataArrival``).

Every writer of account data calls ``accounts.services.account_data_changed`` (imports,
tracked event batches, tickets, logged activities, announced survey answers), and its health
listener (``metrics.tasks.account_changed``) records the arrival here before it schedules
the debounced recompute; the recompute removes the rows of the data it read. A row older
than ``GRACE`` is a recompute that never ran (its worker was killed mid-task and the message
waits out the broker's visibility timeout, an hour): the sweep schedules it again.

One table for every source, instead of the "data as of" times of ``accounts.selectors``:
``last_event_at`` is when an event happened, not when it arrived (an imported history is
older than the last recompute, a clock ahead would look new for ever), ``last_import_at``
is five subqueries per account (too dear every minute at 100,000 accounts), a survey answer
moves neither, and the standing's ``updated_at`` also moves when only its CTAs change (a
playbook reacting to the same answer would hide the lost recompute). Set-based: one
statement each, whatever the number of accounts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.utils import timezone

from .models import AccountDataArrival

# a normal debounced recompute runs DEBOUNCE_SECONDS (30 s) after the first change and takes
# a few seconds; later than this, it was lost (or its queue is badly behind)
GRACE = dt.timedelta(seconds=90)
SWEEP_LIMIT = 500  # accounts per sweep, the oldest arrivals first


def arrivals_record(account_ids: Iterable[int], *, at: dt.datetime | None = None) -> None:
    """Record that data of these accounts arrived at ``at`` (now): one upsert (PostgreSQL
    and SQLite), the new time replacing a row already there."""
    ids = sorted({int(i) for i in account_ids})
    if not ids:
        return
    at = at or timezone.now()
    AccountDataArrival.objects.bulk_create(
        [AccountDataArrival(account_id=i, arrived_at=at) for i in ids],
        update_conflicts=True,
        unique_fields=["account"],
        update_fields=["arrived_at"],
    )


def arrivals_clear(account_ids: Iterable[int], *, through: dt.datetime) -> int:
    """The recompute that started at ``through`` has read these accounts' data up to then:
    remove their arrivals until that instant (a later one stays, its recompute is still due).
    Returns how many were removed."""
    ids = sorted({int(i) for i in account_ids})
    if not ids:
        return 0
    rows = AccountDataArrival.objects.filter(account_id__in=ids, arrived_at__lte=through)
    return rows.delete()[0]


def accounts_due(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT) -> list[int]:
    """Ids of the accounts whose data arrived more than ``GRACE`` ago and that no recompute
    has read since, the oldest arrivals first, at most ``limit``: one query over the
    ``arrived_at`` index (the table holds only the accounts waiting, not every account)."""
    cutoff = (now or timezone.now()) - GRACE
    rows = AccountDataArrival.objects.filter(arrived_at__lte=cutoff).order_by("arrived_at", "pk")
    return list(rows.values_list("account_id", flat=True)[:limit])
