"""Writes and previews behind the admin screens: the health model editor's draft preview
(band distribution and backtest AUC of the draft beside the current version, nothing
saved), saving a draft as a new version, and the health backfill with its progress."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Max

from accounts import utc
from accounts.models import Account, AccountLifecycle, User
from metrics import backtest
from metrics.kpis.revenue import contract_facts
from metrics.models import HealthModelVersion, HealthSnapshot
from metrics.services import health_model_version_create

HORIZON = 90  # days after the backtest day in which a customer's churn counts
BACKFILL_KEY = "workspace:backfill:{}"
BACKFILL_TTL = 24 * 3600
LABELS = {"green": "Green", "yellow": "Yellow", "red": "Red", "none": "No score"}


def band_of(score: float | None, *, green_min: float, yellow_min: float) -> str:
    if score is None:
        return "none"
    if score >= green_min:
        return "green"
    if score >= yellow_min:
        return "yellow"
    return "red"


def check_draft(
    version: HealthModelVersion, weights: dict[str, float], green_min: float, yellow_min: float
) -> dict[str, list[str]]:
    """Field errors of a draft (empty when it is fine)."""
    errors: dict[str, list[str]] = {}
    keys = {c["key"] for c in version.components}
    for key, weight in weights.items():
        if key not in keys:
            errors.setdefault("weights", []).append(f"no component {key!r} in {version}")
        elif weight < 0 or weight > 100:
            errors[f"weight_{key}"] = [f"must be between 0 and 100, got {weight:g}"]
    if sum(weights.values()) <= 0:
        errors.setdefault("weights", []).append("at least one weight must be above 0")
    if not 0 <= yellow_min <= 100:
        errors["yellow_min"] = ["must be between 0 and 100"]
    if not 0 <= green_min <= 100:
        errors["green_min"] = ["must be between 0 and 100"]
    elif yellow_min > green_min:
        errors["yellow_min"] = [f"must not be above the green threshold ({green_min:g})"]
    return errors


def _component_scores(components: list[dict]) -> dict[str, float | None]:
    return {c["key"]: c.get("score") for c in components}


def health_model_preview(
    *,
    version: HealthModelVersion,
    weights: dict[str, float],
    green_min: float,
    yellow_min: float,
) -> dict[str, Any]:
    """What a draft would do, without saving it: the band distribution of the current
    customers the model scores (churned accounts left out, as on the dashboard), each at its
    latest snapshot of the last ``PREVIEW_DAYS`` days, with the recorded component scores
    re-weighted (current vs draft), how many of them would change band (``changed``;
    ``moves`` by from → to band, moves down first), and the ROC AUC of
    ``100 − score`` for logo churn within ``HORIZON`` days of an earlier day whose window
    has passed (``_preview_backtest``; current vs draft weights, same accounts). Overrides
    are not replayed: the distribution is of computed scores. A fixed handful of queries.

    Not only the latest day's snapshots: the nightly run scores the whole book as of
    yesterday, while an account's new data rescores it as of today, so the latest day holds
    just the few accounts touched since midnight."""
    current_weights = {c["key"]: float(c["weight"]) for c in version.components}
    model_days = HealthSnapshot.objects.filter(model_version__model=version.model_id)
    latest = model_days.aggregate(d=Max("day"))["d"]
    result: dict[str, Any] = {
        "day": latest,
        "bands": [],
        "accounts": 0,
        "changed": 0,
        "moves": [],
        "backtest": None,
    }
    if latest is None:
        result["message"] = "No account has been scored by this model yet."
        return result
    rows = _latest_components(model_days, latest)
    now: Counter = Counter()
    draft: Counter = Counter()
    moves: Counter = Counter()
    for components in rows:
        scores = _component_scores(components)
        before = band_of(
            backtest.weighted_score(scores, current_weights),
            green_min=version.green_min,
            yellow_min=version.yellow_min,
        )
        after = band_of(
            backtest.weighted_score(scores, weights), green_min=green_min, yellow_min=yellow_min
        )
        now[before] += 1
        draft[after] += 1
        if before != after:
            moves[before, after] += 1
    total = len(rows)
    result["accounts"] = total
    # how many accounts the draft would move, and between which bands (worst news first)
    result["changed"] = sum(moves.values())
    order = {"green": 0, "yellow": 1, "red": 2, "none": 3}
    result["moves"] = [
        {"from": a, "to": b, "from_label": LABELS[a], "to_label": LABELS[b], "accounts": n}
        for (a, b), n in sorted(
            moves.items(), key=lambda m: (order[m[0][0]] - order[m[0][1]], m[0])
        )
    ]
    for band in ("green", "yellow", "red", "none"):
        result["bands"].append(
            {
                "band": band,
                "label": LABELS[band],
                "current": now[band],
                "draft": draft[band],
                "current_pct": round(100 * now[band] / total, 1) if total else 0,
                "draft_pct": round(100 * draft[band] / total, 1) if total else 0,
            }
        )
    result["backtest"] = _preview_backtest(version, weights, current_weights, latest)
    return result


PREVIEW_DAYS = 7  # an account's latest snapshot counts in the preview if this recent


def _latest_components(model_days, latest: dt.date) -> list[dict]:
    """The ``components`` of each account's latest snapshot within ``PREVIEW_DAYS`` days up
    to ``latest``: one grouped query, then one per distinct latest day (usually two:
    yesterday's nightly run and today's rescored accounts). Churned accounts are left out:
    they are still scored, but a draft is judged on the book of current customers."""
    recent = model_days.filter(day__gt=latest - dt.timedelta(days=PREVIEW_DAYS)).exclude(
        account__lifecycle_stage=AccountLifecycle.CHURNED
    )
    newest = dict(
        recent.order_by().values("account_id").annotate(d=Max("day")).values_list("account_id", "d")
    )
    rows = []
    for day in sorted(set(newest.values()), reverse=True):
        for account_id, components in recent.filter(day=day).values_list(
            "account_id", "components"
        ):
            if newest.get(account_id) == day:
                rows.append(components)
    return rows


def _preview_backtest(
    version: HealthModelVersion,
    weights: dict[str, float],
    current_weights: dict[str, float],
    latest: dt.date,
    *,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """AUC of both weightings on a recorded day at least 30 days before ``latest``, for
    churn within the following days, judged only on days that have passed: the latest such
    day whose whole ``HORIZON`` is over (``day + HORIZON <= today``), or, while the history
    is shorter, the latest day at least 30 days back with the window shortened to the days
    since then (``horizon_shortened``; the page says so). A contract that is merely
    scheduled to end is not churn yet."""
    today = today or utc.today()
    model_days = HealthSnapshot.objects.filter(model_version__model=version.model_id)
    newest_allowed = latest - dt.timedelta(days=30)
    full = min(newest_allowed, today - dt.timedelta(days=HORIZON))
    day = model_days.filter(day__lte=full).aggregate(d=Max("day")).get("d")
    shortened = False
    if day is None:
        day = model_days.filter(day__lte=newest_allowed).aggregate(d=Max("day")).get("d")
        shortened = day is not None
    if day is None:
        return {"day": None, "message": "less than 30 days of health history: no backtest yet"}
    horizon = HORIZON if not shortened else (today - day).days
    end = day + dt.timedelta(days=horizon)
    facts = {f.id: f for f in contract_facts(Account.objects.all(), days=[day, end])}
    snaps = model_days.filter(day=day)
    pairs = []
    for account_id, components in snaps.values_list("account_id", "components"):
        f = facts.get(account_id)
        if f is None or not f.customer_on(day):
            continue
        scores = _component_scores(components)
        a = backtest.weighted_score(scores, current_weights)
        b = backtest.weighted_score(scores, weights)
        if a is not None and b is not None:
            pairs.append((a, b, not f.customer_on(end)))

    def auc(index: int) -> float | None:
        value = backtest.roc_auc([100 - p[index] for p in pairs], [p[2] for p in pairs])
        return None if value is None else round(value, 3)

    out = {
        "day": day,
        "end": end,
        "horizon": horizon,
        "horizon_shortened": shortened,
        "customers": len(pairs),
        "churned": sum(p[2] for p in pairs),
        "current_auc": auc(0),
        "draft_auc": auc(1),
    }
    if shortened:
        out["horizon_note"] = (
            f"No recorded day is {HORIZON} days old yet, so churn is counted over the "
            f"{horizon} days from {utc.day_text(day)} to today, not {HORIZON}."
        )
    if out["current_auc"] is None:
        out["message"] = "AUC not computed: it needs customers who churned and who stayed"
    return out


def health_model_draft_save(
    *,
    version: HealthModelVersion,
    weights: dict[str, float],
    green_min: float,
    yellow_min: float,
    user: User,
    notes: str = "",
) -> HealthModelVersion:
    """The draft as the model's new active version."""
    errors = check_draft(version, weights, green_min, yellow_min)
    if errors:
        raise ValidationError(errors)
    components = [{**c, "weight": weights.get(c["key"], c["weight"])} for c in version.components]
    return health_model_version_create(
        model=version.model,
        components=components,
        green_min=green_min,
        yellow_min=yellow_min,
        created_by=user,
        notes=notes,
    )


# --- backfill ------------------------------------------------------------------------------


def backfill_start(*, days: int, user: User) -> str:
    """Queue the rescoring of the last ``days`` days (ending yesterday) with the models
    active now; returns the job id its progress is kept under."""
    from . import tasks

    job = uuid.uuid4().hex
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=max(1, days) - 1)
    cache.set(
        BACKFILL_KEY.format(job),
        {"status": "queued", "done": 0, "total": (end - start).days + 1, "by": user.email},
        BACKFILL_TTL,
    )
    tasks.health_backfill.delay(job, start.isoformat(), end.isoformat())
    return job


def backfill_progress(job: str) -> dict[str, Any] | None:
    return cache.get(BACKFILL_KEY.format(job))


def backfill_run(*, job: str, start: dt.date, end: dt.date) -> None:
    """Rescore each day from ``start`` to ``end``, then the queue standings; progress in the
    cache after each day."""
    from metrics.services import health_recompute
    from metrics.standings import account_standings_refresh

    key = BACKFILL_KEY.format(job)
    state = cache.get(key) or {"total": (end - start).days + 1}
    state.update({"status": "running", "done": 0})
    cache.set(key, state, BACKFILL_TTL)

    def progress(result: dict[str, Any]) -> None:
        state["done"] += 1
        state["last_day"] = result.get("day")
        cache.set(key, state, BACKFILL_TTL)

    try:
        health_recompute(start=start, end=end, progress=progress)
        account_standings_refresh()
    except Exception as exc:
        state.update({"status": "failed", "error": str(exc)[:300]})
        cache.set(key, state, BACKFILL_TTL)
        raise
    state["status"] = "done"
    cache.set(key, state, BACKFILL_TTL)
