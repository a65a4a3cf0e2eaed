"""Survey arithmetic, pure (no database): scales, classification, the unhappy rule, and the
voice-of-the-customer figures of ``docs/metrics.md`` from score counts.

- NPS (0–10): promoters 9–10, passives 7–8, detractors 0–6;
  NPS = % promoters − % detractors (−100..100).
- CSAT (1–5): responses of 4 or 5 / all responses × 100.
- CES (1–7, 7 = very easy): mean score; also % of responses ≥ 5.
- Unhappy (opens a detractor CTA): NPS ≤ 6, CSAT ≤ 2, CES ≤ 3.
No responses → None ("n/a"), never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
UNHAPPY_AT_MOST: dict[str, int] = {"nps": 6, "csat": 2, "ces": 3}
# the scales' end labels ("Not at all likely" …) are texts a respondent reads: surveys.strings


class ScoreError(ValueError):
    """A score outside the survey's scale, or not a whole number. ``low``/``high`` are the
    scale's ends and ``value`` the number sent when it was one (None otherwise), for a page
    that says it in the survey's language (``surveys.strings``: ``score_out_of_range``,
    ``score_not_whole``); ``str()`` is the English message."""

    def __init__(
        self, message: str, *, low: int | None = None, high: int | None = None, value=None
    ):
        super().__init__(message)
        self.low, self.high, self.value = low, high, value


def scale(kind: str) -> range:
    lo, hi = SCALES[kind]
    return range(lo, hi + 1)


def parse_score(kind: str, raw: object) -> int:
    """The score as an int within the kind's scale; raises ScoreError saying what is wrong."""
    lo, hi = SCALES[kind]
    if isinstance(raw, bool):
        raise ScoreError(f"the score must be a whole number from {lo} to {hi}", low=lo, high=hi)
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw if raw is not None else "").strip()
        if not text or not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 3:
            raise ScoreError(f"the score must be a whole number from {lo} to {hi}", low=lo, high=hi)
        value = int(text)
    if not lo <= value <= hi:
        raise ScoreError(
            f"the score must be from {lo} to {hi}, got {value}", low=lo, high=hi, value=value
        )
    return value


def nps_class(score: int) -> str:
    """promoter (9–10), passive (7–8) or detractor (0–6)."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def is_unhappy(kind: str, score: int) -> bool:
    """A detractor, a CSAT of 2 or less, a CES of 3 or less."""
    return score <= UNHAPPY_AT_MOST[kind]


@dataclass(frozen=True)
class KindFigures:
    """The figures of one survey kind over a set of (current) responses."""

    kind: str
    responses: int
    value: float | None  # NPS −100..100, CSAT %, CES mean; None without responses
    distribution: tuple[tuple[int, int], ...]  # (score, count) over the whole scale
    promoters: int = 0  # NPS
    passives: int = 0
    detractors: int = 0
    satisfied: int = 0  # CSAT 4–5
    easy: int = 0  # CES ≥ 5
    easy_pct: float | None = None  # CES: % of responses ≥ 5
    unhappy: int = 0


def figures(kind: str, counts: Mapping[int, int]) -> KindFigures:
    """NPS / CSAT / CES from ``{score: number of responses}``."""
    distribution = tuple((s, int(counts.get(s, 0))) for s in scale(kind))
    total = sum(n for _, n in distribution)
    unhappy = sum(n for s, n in distribution if is_unhappy(kind, s))
    if kind == "nps":
        promoters = sum(n for s, n in distribution if s >= 9)
        passives = sum(n for s, n in distribution if 7 <= s <= 8)
        detractors = sum(n for s, n in distribution if s <= 6)
        value = 100 * (promoters - detractors) / total if total else None
        return KindFigures(
            kind, total, value, distribution, promoters, passives, detractors, unhappy=unhappy
        )
    if kind == "csat":
        satisfied = sum(n for s, n in distribution if s >= 4)
        value = 100 * satisfied / total if total else None
        return KindFigures(kind, total, value, distribution, satisfied=satisfied, unhappy=unhappy)
    if kind == "ces":
        easy = sum(n for s, n in distribution if s >= 5)
        mean = sum(s * n for s, n in distribution) / total if total else None
        easy_pct = 100 * easy / total if total else None
        return KindFigures(
            kind, total, mean, distribution, easy=easy, easy_pct=easy_pct, unhappy=unhappy
        )
    raise ValueError(f"unknown survey kind {kind!r}")


def response_rate(responded: int, delivered: int) -> float | None:
    """Invitations answered / invitations delivered × 100; None when none was delivered."""
    return 100 * responded / delivered if delivered else None


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
