"""The nightly pipeline's runs as an admin reads them: each step's counts in words, and
whether the book's data is as fresh as it should be. Reads only; the Manage page
"Nightly pipeline" (``workspace.manage.pipeline_runs``) shows them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from accounts import utc

from .models import PipelineRun
from .pipeline import CATCH_UP_DAYS, default_as_of, health_words

STEP_LABELS = {
    "usage_rollups": "Usage rollups",
    "usage_events": "Usage events upkeep",
    "health": "Health snapshots",
    "standings": "Queue rows",
    "kpi_snapshots": "KPI snapshots",
    "playbooks": "Playbooks",
    "reports": "KPI alerts",
}


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _plural(n: Any, one: str, many: str | None = None) -> str:
    return f"{_n(n)} {one if n == 1 else (many or one + 's')}"


def _usage_rollups(s: dict[str, Any]) -> str:
    out = (
        f"{_plural(s.get('account_days', 0), 'account-day')} of usage reconciled for "
        f"{utc.day_text(s.get('first_day'))} to {utc.day_text(s.get('last_day'))}"
    )
    fixed = [
        _plural(s[k], what)
        for k, what in (("corrected", "day corrected"), ("rebuilt", "day rebuilt"))
        if s.get(k)
    ]
    if fixed:
        out += f" ({', '.join(fixed)})"
    windows = s.get("usage_windows") or {}
    if windows.get("accounts"):
        last = dt.date.fromisoformat(windows["end_day"]) - dt.timedelta(days=1)
        out += (
            f"; usage windows of {_plural(windows['accounts'], 'account')} to the end of "
            f"{utc.day_text(last)}"
        )
    return out


def _usage_events(s: dict[str, Any]) -> str:
    parts = []
    if s.get("deleted_events"):
        parts.append(f"{_plural(s['deleted_events'], 'event')} past the retention deleted")
    if s.get("moved"):
        parts.append(f"{_plural(s['moved'], 'event')} moved to their month's partition")
    if s.get("created"):
        parts.append(f"{_plural(len(s['created']), 'partition')} made")
    if s.get("dropped_partitions"):
        parts.append(f"{_plural(len(s['dropped_partitions']), 'partition')} dropped")
    return "; ".join(parts) or "nothing to do"


def _kpi_snapshots(s: dict[str, Any]) -> str:
    scopes = [
        _plural(s[k], what)
        for k, what in (("segments", "segment"), ("owners", "owner"), ("teams", "team"))
        if s.get(k)
    ]
    out = f"{_plural(s.get('scopes', 0), 'scope')}"
    if scopes:
        out += f" (the whole book, {', '.join(scopes)})"
    if s.get("period_start") and s.get("period_end"):
        last = dt.date.fromisoformat(s["period_end"]) - dt.timedelta(days=1)
        out += f" for {utc.day_text(s['period_start'])} to {utc.day_text(last)}"
    return out


def _playbooks(s: dict[str, Any]) -> str:
    parts = [
        f"{_plural(s.get('opened', 0), 'CTA')} opened",
        f"{_n(s.get('pending', 0))} held over a CSM's cap",
        f"{_n(s.get('promoted', 0))} promoted",
        f"{_n(s.get('successes', 0))} closed as met",
        f"{_n(s.get('escalated', 0))} escalated",
    ]
    if s.get("failures"):
        parts.append(f"{_plural(s['failures'], 'failure')}")
    if s.get("skipped_already_met"):
        # matched, but the success condition held already: no CTA to close at once
        parts.append(f"{_n(s['skipped_already_met'])} not opened, success already met")
    return f"{_plural(s.get('playbooks', 0), 'playbook')}: {', '.join(parts)}"


def _reports(s: dict[str, Any]) -> str:
    targets = _plural(s.get("evaluated", 0), "KPI target")
    out = f"{targets} checked, {_plural(s.get('alerts', 0), 'alert')}"
    if s.get("no_data"):
        out += f", {_n(s['no_data'])} without data"
    return out


def _generic(s: dict[str, Any]) -> str:
    shown = [
        f"{k.replace('_', ' ')} {_n(v)}"
        for k, v in s.items()
        if k not in ("name", "seconds", "day") and isinstance(v, int | float | str)
    ]
    return ", ".join(shown)


_WORDS = {
    "usage_rollups": _usage_rollups,
    "usage_events": _usage_events,
    "health": lambda s: health_words([s]),
    "standings": lambda s: (
        f"{_plural(s.get('accounts', 0), 'account')}' queue rows refreshed"
        + (
            f"; {_plural(s['newer'], 'account')} rescored since show that newer snapshot"
            if s.get("newer")
            else ""
        )
    ),
    "kpi_snapshots": _kpi_snapshots,
    "playbooks": _playbooks,
    "reports": _reports,
}


def step_words(step: dict[str, Any]) -> str:
    """One recorded step in words. A step that was skipped says why (its ``skipped``)."""
    if isinstance(step.get("skipped"), str):
        return f"skipped: {step['skipped']}"
    words = _WORDS.get(step.get("name", ""), _generic)
    try:
        return words(step)
    except (KeyError, TypeError, ValueError):  # a step recorded by an older release
        return _generic(step)


@dataclass(frozen=True)
class StepRow:
    name: str
    label: str
    seconds: float | None
    words: str


@dataclass(frozen=True)
class RunRow:
    run: PipelineRun
    steps: list[StepRow]
    seconds: float | None


@dataclass(frozen=True)
class Freshness:
    """How fresh the book's scores are: the newest day a run completed, the day a run
    should have completed by now (yesterday, UTC), and the days in between."""

    latest: PipelineRun | None
    expected: dt.date
    missing: int

    @property
    def behind(self) -> bool:
        return self.missing > 0

    @property
    def catch_up(self) -> int:
        return min(self.missing, CATCH_UP_DAYS)


def runs_recent(*, limit: int = 30) -> list[RunRow]:
    """The latest ``limit`` runs, newest first, each step in words. One query."""
    rows = []
    for run in PipelineRun.objects.order_by("-started_at")[:limit]:
        steps = [
            StepRow(
                name=s.get("name", ""),
                label=STEP_LABELS.get(s.get("name", ""), s.get("name", "").replace("_", " ")),
                seconds=None if isinstance(s.get("skipped"), str) else s.get("seconds"),
                words=step_words(s),
            )
            for s in run.steps or []
            if isinstance(s, dict)
        ]
        rows.append(RunRow(run=run, steps=steps, seconds=run.duration))
    return rows


def freshness(*, expected: dt.date | None = None) -> Freshness:
    """The newest succeeded run and how many days the book is behind ``expected`` (by
    default the last complete UTC day). One query."""
    expected = expected or default_as_of()
    latest = (
        PipelineRun.objects.filter(status=PipelineRun.Status.SUCCEEDED)
        .order_by("-as_of", "-started_at")
        .first()
    )
    missing = (expected - latest.as_of).days if latest else 0
    return Freshness(latest=latest, expected=expected, missing=max(0, missing))
