"""Segment-compatible tracking: ``track``, ``identify`` and ``group`` calls, alone or in a
``batch``, so a product already instrumented with Segment can send its usage here.

What each call does:

* ``track``: one usage event through ``accounts.intake`` (validated and deduplicated like any
  imported event). Its account is ``groupId`` / ``context.groupId``, or else the account the
  user was last ``identify``'d or ``group``'ed with; with neither the call is rejected.
* ``identify``: stores the user (``TrackedUser``) and merges its ``traits``; with a
  ``groupId`` it also links the user to that account.
* ``group``: links the user to the account ``groupId``. **Decision:** an unknown account is
  rejected ("unknown account <id>") unless ``traits.name`` is given, in which case the
  account is created through intake with ``external_id=groupId`` and ``name=traits.name``
  (Segment's ``group`` is where a product names its customer companies). An account that
  exists is never changed by tracking: the CRM import stays its source of truth.
* ``page``, ``screen`` and ``alias`` are accepted in a batch and not stored.

A batch is all or nothing for the data it carries: every call is checked first, then the
accounts and events go in through one intake run (one transaction), then the users are
written. Errors read ``request: row N, column C: reason`` with N the call's 1-based position
in the batch and C the Segment field (``groupId``, ``timestamp``, ``properties.value`` …).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import intake, services
from .intake import RowError, cells
from .models import Account, TrackedUser

CALL_TYPES = ("track", "identify", "group")
IGNORED_TYPES = ("page", "screen", "alias")
MAX_ID_LENGTH = 200  # TrackedUser.user_id and Account.external_id


class TrackingRejected(Exception):
    """The calls were rejected; nothing was written. ``errors`` say what and where."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


@dataclass
class Call:
    """One parsed Segment call. ``row`` is its 1-based position in the request."""

    type: str
    row: int
    user_id: str = ""
    group_id: str | None = None
    event: Any = None
    timestamp: Any = None
    timestamp_key: str = "timestamp"
    value: Any = None
    value_key: str = "properties.value"
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrackingResult:
    received: int = 0
    created: int = 0
    unchanged: int = 0
    identified: int = 0
    grouped: int = 0
    accounts_created: int = 0
    ignored: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": True,
            "events": {
                "received": self.received,
                "created": self.created,
                "unchanged": self.unchanged,
            },
            "identified": self.identified,
            "grouped": self.grouped,
            "accounts_created": self.accounts_created,
            "ignored": self.ignored,
        }


# --- parsing ------------------------------------------------------------------------------


def _unstorable(value: Any) -> bool:
    """True if a string anywhere in ``value`` (keys too) holds text PostgreSQL cannot store
    (NUL, lone surrogates). Iterative: JSON nests deeper than Python recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not cells.storable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _id(msg: dict, key: str) -> str | None:
    """Segment ids may be strings or numbers; both become strings. Raises ValueError."""
    value = msg.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"must be at most {MAX_ID_LENGTH} characters")
    if not cells.storable(text):
        raise ValueError("must not contain NUL characters or invalid Unicode")
    return text


def _object(msg: dict, key: str) -> dict:
    value = msg.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    return value


def parse_call(
    msg: Any, *, row: int, source: str, type_: str | None = None
) -> tuple[Call | None, list[RowError]]:
    """Check one Segment message. ``type_`` is the endpoint's type; in a batch it comes from
    the message's ``type``. Returns the call (None when rejected or ignored) and its errors."""
    errors: list[RowError] = []

    def err(column: str, message: str) -> None:
        errors.append(RowError(source, row, column, message))

    if not isinstance(msg, dict):
        err("", "must be a JSON object")
        return None, errors
    if type_ is None:
        type_ = msg.get("type")
        if type_ in IGNORED_TYPES:
            return Call(type="ignored", row=row), errors
        if type_ not in CALL_TYPES:
            allowed = ", ".join(CALL_TYPES + IGNORED_TYPES)
            err("type", f"must be one of {allowed}, got {type_!r}"[:300])
            return None, errors
    call = Call(type=type_, row=row)

    try:
        call.user_id = _id(msg, "userId") or _id(msg, "anonymousId") or ""
    except ValueError as exc:
        err("userId", str(exc))
    if not call.user_id and not errors:
        err("userId", "userId or anonymousId is required")

    try:
        context = _object(msg, "context")
    except ValueError as exc:
        err("context", str(exc))
        context = {}
    try:
        call.group_id = _id(msg, "groupId")
    except ValueError as exc:
        err("groupId", str(exc))
    if call.group_id is None and "groupId" not in msg:
        try:
            call.group_id = _id(context, "groupId")
        except ValueError as exc:
            err("context.groupId", str(exc))
    if type_ == "group" and call.group_id is None and not errors:
        err("groupId", "groupId is required")

    try:
        call.traits = _object(msg, "traits")
    except ValueError as exc:
        err("traits", str(exc))
    if _unstorable(call.traits):
        err("traits", "must not contain NUL characters")

    if type_ == "track":
        call.event = msg.get("event")
        if call.event is None or call.event == "":
            err("event", "event is required")
        elif not isinstance(call.event, str):
            err("event", "must be a string")
        for key in ("timestamp", "sentAt", "receivedAt"):
            if msg.get(key) is not None:
                call.timestamp, call.timestamp_key = msg[key], key
                break
        else:
            call.timestamp = timezone.now().isoformat()
        if not isinstance(call.timestamp, str):
            err(call.timestamp_key, "must be an ISO 8601 timestamp string")
        try:
            properties = _object(msg, "properties")
        except ValueError as exc:
            err("properties", str(exc))
            properties = {}
        for key in ("value", "revenue"):
            if properties.get(key) is not None:
                call.value, call.value_key = properties[key], f"properties.{key}"
                break
        if isinstance(call.value, dict | list):
            err(call.value_key, "must be a number")

    return (None if errors else call), errors


# --- applying -------------------------------------------------------------------------------


_EVENT_COLUMNS = {"account_external_id": "groupId", "user_id": "userId", "event": "event"}


def _remap(
    errors: Iterable[RowError], *, source: str, rows: list[Call], kind: str
) -> list[RowError]:
    """Intake's errors name its own columns and row positions; the client sent Segment
    fields at batch positions."""
    out = []
    for e in errors:
        call = rows[e.row - 1] if 0 < e.row <= len(rows) else None
        column = e.column
        if kind == "events":
            if column == "occurred_at" and call is not None:
                column = call.timestamp_key
            elif column == "value" and call is not None:
                column = call.value_key
            else:
                column = _EVENT_COLUMNS.get(column, column)
        else:
            column = {"external_id": "groupId", "name": "traits.name"}.get(column, column)
        out.append(RowError(source, call.row if call else e.row, column, e.message))
    return out


@transaction.atomic  # accounts, events and users of one request: all or nothing
def tracking_apply(calls: list[Call], *, source: str = "request") -> TrackingResult:
    """Apply parsed calls in order. Raises ``TrackingRejected`` (nothing written) when an
    account or event is not acceptable."""
    result = TrackingResult()
    result.ignored = sum(1 for c in calls if c.type == "ignored")
    calls = [c for c in calls if c.type != "ignored"]
    errors: list[RowError] = []

    group_ids = {c.group_id for c in calls if c.group_id}
    known = set(
        Account.objects.filter(external_id__in=group_ids).values_list("external_id", flat=True)
    )
    new_accounts: dict[str, Call] = {}  # created from group traits.name, first call wins
    for c in calls:
        if c.type != "group" or c.group_id in known or c.group_id in new_accounts:
            continue
        name = c.traits.get("name")
        if isinstance(name, str) and name.strip():
            new_accounts[c.group_id] = c

    user_ids = {c.user_id for c in calls}
    user_account: dict[str, str | None] = dict(
        TrackedUser.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "account__external_id"
        )
    )
    event_calls: list[Call] = []
    for c in calls:
        if c.group_id and c.group_id not in known and c.group_id not in new_accounts:
            column = "groupId"
            if c.type == "group":
                message = f"unknown account {c.group_id}; send traits.name to create it"
            else:
                message = f"unknown account {c.group_id}"
            errors.append(RowError(source, c.row, column, message))
            continue
        if c.type in ("identify", "group") and c.group_id:
            user_account[c.user_id] = c.group_id
        elif c.type == "track":
            if not c.group_id:
                c.group_id = user_account.get(c.user_id)
            if not c.group_id:
                errors.append(
                    RowError(
                        source,
                        c.row,
                        "groupId",
                        f"no account known for user {c.user_id}: send groupId (or "
                        "context.groupId), or identify/group the user with one first",
                    )
                )
                continue
            event_calls.append(c)
    if errors:
        raise TrackingRejected(errors)

    sources = []
    account_calls = list(new_accounts.values())
    if account_calls:
        rows = [{"external_id": c.group_id, "name": c.traits["name"]} for c in account_calls]
        sources.append(intake.source_from_rows("accounts", rows, name="group-accounts"))
    if event_calls:
        rows = [
            {
                "account_external_id": c.group_id,
                "user_id": c.user_id,
                "event": c.event,
                "occurred_at": c.timestamp,
                "value": c.value,
            }
            for c in event_calls
        ]
        sources.append(intake.source_from_rows("events", rows, name="track-events"))
    if sources:
        outcome = intake.run_import(sources)
        if not outcome.ok:
            mapped: list[RowError] = []
            for e in outcome.errors:
                if e.source == "group-accounts":
                    mapped += _remap([e], source=source, rows=account_calls, kind="accounts")
                else:
                    mapped += _remap([e], source=source, rows=event_calls, kind="events")
            raise TrackingRejected(mapped)
        services.account_data_changed(outcome.accounts)
        for r in outcome.results:
            if r.kind == "events":
                result.received += r.rows
                result.created += r.created
                result.unchanged += r.unchanged
            elif r.kind == "accounts":
                result.accounts_created += r.created

    people = [c for c in calls if c.type in ("identify", "group")]
    if people:
        _tracked_users_write(people)
    result.identified = sum(1 for c in people if c.type == "identify")
    result.grouped = sum(1 for c in people if c.type == "group")
    return result


@transaction.atomic
def _tracked_users_write(calls: list[Call]) -> None:
    """Fold the identify/group calls into one final state per user, then write each user
    once. identify merges its traits (Segment semantics); group traits describe the company
    and are not stored on the user."""
    final: dict[str, dict[str, Any]] = {}
    for c in calls:
        state = final.setdefault(c.user_id, {"traits": {}, "group_id": None})
        if c.type == "identify":
            state["traits"].update(c.traits)
        if c.group_id:
            state["group_id"] = c.group_id
    group_ids = {s["group_id"] for s in final.values() if s["group_id"]}
    account_ids = dict(
        Account.objects.filter(external_id__in=group_ids).values_list("external_id", "id")
    )
    TrackedUser.objects.bulk_create(
        [TrackedUser(user_id=user_id) for user_id in final], ignore_conflicts=True
    )
    users = list(TrackedUser.objects.select_for_update().filter(user_id__in=final))
    now = timezone.now()
    for user in users:
        state = final[user.user_id]
        if state["traits"]:
            user.traits = {**(user.traits or {}), **state["traits"]}
        if state["group_id"]:
            user.account_id = account_ids.get(state["group_id"])
        user.updated_at = now
    TrackedUser.objects.bulk_update(users, ["traits", "account", "updated_at"], batch_size=1000)
