"""Relationship score, pure: who the account's people are and when we last spoke with each,
in; a 0..100 score with its reasons, out. No database.

The rules (docs/metrics.md, "Relationship score"), out of 100:

* **Champion** (30), **decision maker** (20), **executive sponsor** (20): the full points
  when someone in that role had a two-way contact with us (a call or a meeting that names
  them) in the last 30 days; half between 31 and 90 days; a fifth when they are named but we
  have not spoken in 90 days (or never); nothing when nobody holds the role. With several
  people in a role, the most recently contacted counts.
* **Breadth** (30): 6 points per person with a two-way contact in the last 90 days, up to 5
  people (whatever their role).
* **A champion who left**: −20 (down to 0 at least) while no other champion is engaged
  (contacted in 90 days). "Left": the person was recorded as a champion when first
  imported and is no longer a champion of the account (role changed or person removed).

An account without any stakeholder has no score (None: "no data"), not 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ROLE_POINTS = (
    ("champion", "champion", 30),
    ("decision_maker", "decision maker", 20),
    ("executive_sponsor", "executive sponsor", 20),
)
ENGAGED_DAYS = 30  # full points
RECENT_DAYS = 90  # half points; also the breadth window
BREADTH_PER_PERSON = 6
BREADTH_MAX_PEOPLE = 5
CHAMPION_LEFT_PENALTY = 20


@dataclass(frozen=True)
class Person:
    name: str
    role: str  # StakeholderRole value or ""
    days_since_contact: int | None  # last two-way contact; None = never


@dataclass(frozen=True)
class Relationship:
    score: int | None  # 0..100; None = no stakeholders known
    reasons: tuple[str, ...]
    engaged_people: int  # two-way contact within RECENT_DAYS


def _ago(days: int | None) -> str:
    if days is None:
        return "never contacted"
    if days == 0:
        return "contacted today"
    return f"last contact {days} day{'' if days == 1 else 's'} ago"


def score(people: Sequence[Person], *, champions_left: Sequence[str] = ()) -> Relationship:
    """Score the relationship from the account's people; see the module docstring."""
    if not people:
        return Relationship(None, ("no stakeholders known",), 0)
    total = 0.0
    reasons: list[str] = []
    for role, label, points in ROLE_POINTS:
        holders = [p for p in people if p.role == role]
        if not holders:
            reasons.append(f"no {label} named (0/{points})")
            continue
        best = min(holders, key=lambda p: (p.days_since_contact is None, p.days_since_contact or 0))
        days = best.days_since_contact
        if days is not None and days <= ENGAGED_DAYS:
            got = points
        elif days is not None and days <= RECENT_DAYS:
            got = points / 2
        else:
            got = points / 5
        total += got
        reasons.append(f"{label} {best.name or 'unnamed'}: {_ago(days)} ({got:g}/{points})")
    engaged = sum(
        1 for p in people if p.days_since_contact is not None and p.days_since_contact <= 90
    )
    breadth = min(engaged, BREADTH_MAX_PEOPLE) * BREADTH_PER_PERSON
    total += breadth
    most = BREADTH_MAX_PEOPLE * BREADTH_PER_PERSON
    reasons.append(
        f"{engaged} {'person' if engaged == 1 else 'people'} engaged in {RECENT_DAYS} days "
        f"({breadth}/{most})"
    )
    if champions_left:
        champion_engaged = any(
            p.role == "champion"
            and p.days_since_contact is not None
            and p.days_since_contact <= RECENT_DAYS
            for p in people
        )
        names = ", ".join(champions_left)
        if champion_engaged:
            reasons.append(f"champion left ({names}); a new champion is engaged: no penalty")
        else:
            total -= CHAMPION_LEFT_PENALTY
            reasons.append(f"champion left ({names}) (−{CHAMPION_LEFT_PENALTY})")
    return Relationship(max(0, min(100, round(total))), tuple(reasons), engaged)
