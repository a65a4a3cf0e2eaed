"""Usage events for metric tests, loaded through the intake like any import: the daily
rollups, presences and known users (``metrics.UsageUser``) the KPIs and health read are
kept with them."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from accounts.intake import events as intake_events


def load_events(rows) -> int:
    """Load ``(account, user_id, event, occurred_at[, value])`` rows; returns how many were
    new (an identical row twice is one event: the dedup key)."""
    loaded = []
    for account, user, event, when, *rest in rows:
        value = rest[0] if rest else None
        key = intake_events.dedup_key(account.pk, user, event, when, value)
        loaded.append((account.pk, user, event, when, value, key))
    with transaction.atomic():
        return intake_events.events_load(loaded)


def load_event(account, when: dt.datetime, user: str = "u1", event: str = "login", value=None):
    load_events([(account, user, event, when, value)])
