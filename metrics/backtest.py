"""Health backtest, pure: plain values in, plain values out; no database (docs/metrics.md,
Health, "Predictive check (backtest)").

- ``roc_auc``: the ROC AUC of a risk score as a predictor of churn, by the rank formula
  (Mann-Whitney U): tied scores share their average rank, so a tied churner/non-churner
  pair counts 0.5. ``None`` without at least one churner and one non-churner.
- ``churn_by_band``: accounts, churned accounts and churn rate per band (a percentage, like
  every rate of docs/metrics.md: 1 of 3 is 33.33…, not 0.33).
- ``fit_weights``: component weights suggested by a logistic regression of churn on the
  components' risk (``(100 − component score) / 100``), fitted by plain projected gradient
  descent (weights kept >= 0), then scaled to whole numbers summing to 100. Deterministic:
  fixed start, fixed step, fixed number of iterations, and above ``MAX_SAMPLES`` accounts a
  fixed stride through the samples in the order given.
- ``weighted_score``: a score from component scores and weights, the way
  ``metrics.health.score`` combines them (components without data left out, weights of the
  rest renormalised).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from .health import BANDS

NO_BAND = "no_data"  # accounts without a score
MAX_SAMPLES = 5000  # accounts used by the fit (pure Python: bounded time)
ITERATIONS = 400
STEP = 2.0


def roc_auc(risks: Sequence[float], churned: Sequence[bool]) -> float | None:
    """AUC of ``risks`` (higher = riskier) for the outcome ``churned``, ties counted 0.5.

    AUC = (R₊ − n₊(n₊ + 1)/2) / (n₊ · n₋), R₊ the sum of the churners' ranks (1 = lowest
    risk; tied risks get the mean of the ranks they span)."""
    if len(risks) != len(churned):
        raise ValueError(f"{len(risks)} scores but {len(churned)} outcomes")
    positives = sum(1 for c in churned if c)
    negatives = len(churned) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(risks)), key=lambda i: risks[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and risks[order[j + 1]] == risks[order[i]]:
            j += 1
        mean_rank = (i + 1 + j + 1) / 2  # ranks i+1 .. j+1 share their mean
        rank_sum += mean_rank * sum(1 for k in order[i : j + 1] if churned[k])
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def churn_by_band(rows: Iterable[tuple[str, bool]]) -> list[dict]:
    """``rows`` of (band, churned) → one entry per band (green, yellow, red, then
    ``no_data`` for accounts without a score) with accounts, churned and churn_rate: churned
    / accounts × 100, a percentage with full precision as every KPI's rate (docs/metrics.md,
    Conventions; the doors round to one decimal), ``None`` for a band without accounts."""
    counts = {band: [0, 0] for band in (*BANDS, NO_BAND)}
    for band, churned in rows:
        entry = counts[band or NO_BAND]
        entry[0] += 1
        entry[1] += bool(churned)
    return [
        {
            "band": band,
            "accounts": n,
            "churned": c,
            "churn_rate": 100 * c / n if n else None,
        }
        for band, (n, c) in counts.items()
    ]


def weighted_score(
    scores: Mapping[str, float | None], weights: Mapping[str, float]
) -> float | None:
    """Weighted mean of the component scores that have data (weights > 0 only); ``None``
    when no weighted component has data. The same arithmetic as ``health.score`` (each
    weight's share of the total first, then the sum, rounded to one decimal), so the weights
    a snapshot was scored with give back its score to the last bit: ``sum(w * s) / total``
    can round the other way at a half (61.15 vs 61.149999…), and the backtest's "current"
    AUC then differed from the headline AUC for the same weights."""
    pairs = [(weights[k], s) for k, s in scores.items() if s is not None and weights.get(k, 0) > 0]
    total = sum(w for w, _ in pairs)
    if not pairs or total <= 0:
        return None
    return round(sum((w / total) * s for w, s in pairs) + 0.0, 1)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def whole_percentages(raw: Mapping[str, float]) -> dict[str, int]:
    """Non-negative ``raw`` weights scaled to whole numbers summing to 100 (largest
    remainder; ties go to the earlier key)."""
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("every weight is zero")
    exact = {k: 100 * v / total for k, v in raw.items()}
    result = {k: math.floor(v) for k, v in exact.items()}
    keys = list(raw)
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - result[k]), keys.index(k)))
    for k in by_remainder[: 100 - sum(result.values())]:
        result[k] += 1
    return result


def fit_weights(
    samples: Sequence[Mapping[str, float | None]],
    churned: Sequence[bool],
    keys: Sequence[str],
    *,
    iterations: int = ITERATIONS,
    step: float = STEP,
) -> dict[str, int] | None:
    """Weights for ``keys`` (whole numbers >= 0 summing to 100) from a logistic regression
    of ``churned`` on each component's risk, or ``None`` when there is nothing to learn
    from (no churner, no non-churner, no component data) or no component raises the risk
    of churn (every fitted weight 0). A component without data for an account is given
    the mean risk of the accounts that have it (it then does not move that account)."""
    if len(samples) != len(churned):
        raise ValueError(f"{len(samples)} samples but {len(churned)} outcomes")
    if not keys or not any(churned) or all(churned):
        return None
    if len(samples) > MAX_SAMPLES:
        stride = math.ceil(len(samples) / MAX_SAMPLES)
        samples, churned = samples[::stride], churned[::stride]
    all_keys = list(keys)
    means = {}
    for k in all_keys:
        present = [(100 - s[k]) / 100 for s in samples if s.get(k) is not None]
        means[k] = sum(present) / len(present) if present else None
    keys = [k for k in all_keys if means[k] is not None]
    if not keys:
        return None
    rows = [
        [(100 - s[k]) / 100 if s.get(k) is not None else means[k] for k in keys] for s in samples
    ]
    y = [1.0 if c else 0.0 for c in churned]
    n = len(rows)
    w = [0.0] * len(keys)
    b = 0.0
    for _ in range(iterations):
        grad_w = [0.0] * len(keys)
        grad_b = 0.0
        for x, target in zip(rows, y, strict=True):
            error = _sigmoid(b + sum(wk * xk for wk, xk in zip(w, x, strict=True))) - target
            grad_b += error
            for j, xk in enumerate(x):
                grad_w[j] += error * xk
        b -= step * grad_b / n
        w = [max(0.0, wk - step * g / n) for wk, g in zip(w, grad_w, strict=True)]
    fitted = dict(zip(keys, w, strict=True))
    if sum(fitted.values()) <= 1e-9:
        return None
    return dict.fromkeys(all_keys, 0) | whole_percentages(fitted)
