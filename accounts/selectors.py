"""Reads over the customer data. Set-based: a fixed handful of queries per call."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    F,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce, Greatest

from .models import (
    Account,
    Contract,
    Invoice,
    Milestone,
    Stakeholder,
    Ticket,
    UsageEvent,
    UsageFeatureDaily,
    User,
)


def book_summary(*, user: User) -> dict:
    """How many accounts the user can see, and the ten most recently updated."""
    accounts = Account.objects.visible_to(user)
    return {
        "accounts": accounts.aggregate(n=Count("id"))["n"],
        "recent_accounts": list(accounts.select_related("owner").order_by("-updated_at")[:10]),
    }


# --- how current an account's data is ---------------------------------------------------------

_WRITTEN_WITH_THE_ACCOUNT = (Contract, Stakeholder, Ticket, Invoice)


def _latest_write(model) -> Subquery:
    rows = (
        model.objects.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(last=Max("updated_at"))
        .values("last")
    )
    return Subquery(rows, output_field=DateTimeField())


def with_data_as_of(accounts: QuerySet[Account]) -> QuerySet[Account]:
    """``accounts`` annotated with how current each one's data is (subqueries: no query per
    account, and each reads one account's rows through an index):

    - ``last_event_at``: the time of its latest usage event (None without events);
    - ``last_import_at``: the latest write of its own row or of any of its contracts,
      stakeholders, tickets or invoices (every import door sets ``updated_at``).

    ``data_as_of(account)`` turns them into the dict the UI and the API show."""
    latest_event = (
        UsageEvent.objects.filter(account=OuterRef("pk"))
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    writes = [Coalesce(_latest_write(m), F("updated_at")) for m in _WRITTEN_WITH_THE_ACCOUNT]
    return accounts.annotate(
        last_event_at=Subquery(latest_event, output_field=DateTimeField()),
        last_import_at=Greatest(F("updated_at"), *writes, output_field=DateTimeField()),
    )


def data_as_of(account: Account) -> dict[str, Any]:
    """``{"last_event_at", "last_import_at", "as_of"}`` of an account from ``with_data_as_of``
    (read here when the account was not loaded through it: three small queries);
    ``as_of`` is the later of the two, what "data as of …" shows."""
    if not hasattr(account, "last_import_at"):
        account = with_data_as_of(Account.objects.filter(pk=account.pk)).get()
    last_event: dt.datetime | None = account.last_event_at
    last_import: dt.datetime = account.last_import_at
    return {
        "last_event_at": last_event,
        "last_import_at": last_import,
        "as_of": max(last_event, last_import) if last_event else last_import,
    }


# --- first value -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstValue:
    """Where an account stands on first value, as the account page shows it: ``day`` is the
    earlier of the first FIRST_VALUE_EVENT's UTC day and the recorded milestone's day (the
    day TTFV counts), ``source`` which one gave it ("event" on the same day), None and ""
    when not reached; ``days_waiting`` is the days from ``customer_since`` to the day it
    counts to (``first_value_of``), 0 for a customer since after that day."""

    day: dt.date | None
    source: str
    event: str
    event_day: dt.date | None
    milestone: Milestone | None
    days_waiting: int | None


def first_value_of(
    account: Account, *, today: dt.date, count_to: dt.date | None = None
) -> FirstValue:
    """The account's first value as of ``today`` (a UTC day; included), and while it is not
    reached the days waiting for it counted to ``count_to`` (default ``today``): the
    account page counts them to the day of its data, as its other counts of days, and
    still shows a first value recorded or seen since. Two queries."""
    event = settings.FIRST_VALUE_EVENT
    milestone = (
        Milestone.objects.filter(
            account=account, kind=Milestone.Kind.FIRST_VALUE, reached_on__lte=today
        )
        .select_related("recorded_by")
        .first()
    )
    event_day = None
    if event:
        event_day = (
            UsageFeatureDaily.objects.filter(account=account, event=event, day__lte=today)
            .order_by("day")
            .values_list("day", flat=True)
            .first()
        )
    if milestone is not None and (event_day is None or milestone.reached_on < event_day):
        day, source = milestone.reached_on, "milestone"
    elif event_day is not None:
        day, source = event_day, "event"
    else:
        day, source = None, ""
    since = account.customer_since
    end = count_to or today
    waiting = max((end - since).days, 0) if day is None and since is not None else None
    return FirstValue(day, source, event, event_day, milestone, waiting)


# --- the account's standing, for the API's account list and detail --------------------------


def with_standing(accounts: QuerySet[Account]) -> QuerySet[Account]:
    """``accounts`` with their standing (``account.standing``, the latest health, whether an
    override set it, ARR, renewal and priority: metrics.AccountStanding) joined in, through
    the reverse relation, since this app sits below metrics and does not import it. No
    query per row."""
    return accounts.select_related("standing")


def api_token_list() -> QuerySet:
    """Every API token, the ones in use first, newest first; with each user and their role
    groups (the page says when a write token's user is no admin) and who made and revoked
    it. Three queries."""
    from .models import ApiToken

    return (
        ApiToken.objects.select_related("user", "created_by", "revoked_by")
        .prefetch_related("user__groups")
        .order_by(F("revoked_at").asc(nulls_first=True), "-created_at", "-pk")
    )
