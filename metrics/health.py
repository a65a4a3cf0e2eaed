"""Health scoring, pure: plain values in, dataclasses out; no database (docs/metrics.md, Health).

A *health model version* is a list of **components** (usage, support, …), each with a
weight and one or more **measures** (seat utilisation, open escalations, …). Each measure maps
its value to 0..100 points with either

- a **linear range** ``{"linear": [lo, hi]}``: ``lo`` or worse → 0, ``hi`` or better → 100,
  straight line between. ``lo > hi`` means lower is better (``[90, 14]`` days since the last
  CSM touch: 14 days or fewer → 100, 90 or more → 0); or
- **thresholds** ``{"thresholds": [[at_least, points], …]}`` in ascending ``at_least``
  order: the points of the last threshold the value reaches; below the first → 0.
  ``[[0, 100], [1, 50], [2, 0]]`` gives 0 escalations 100, 1 → 50, 2 or more → 0.

A component's score is the mean of its measures that have data (a measure value of ``None``
is no data). The account's score is the weighted mean of the components that have data,
with the weights of the rest renormalised; components without data are left out and listed;
with no component data the score is ``None``, never 0. The score is rounded to one decimal,
a half up (49.95 → 50.0, as are a measure's points and a component's score), and the band is
taken from the rounded score: ``score >= green_min`` is green, ``score >=
yellow_min`` yellow, anything lower red (a score of exactly ``green_min`` is green).

**Overrides** (decided here, recorded on each snapshot):

- An override of the *whole account* sets the score and/or the band shown; the computed
  score, band and every component stay as computed and are stored beside it.
- An override of *one component* (``component=key``) replaces that component's score; the
  account score is then recomputed from the components. A component marked ``"locked":
  true`` in the model cannot be overridden: the service refuses such an override, and one
  made before the lock (or for a component the model no longer has) is ignored and the
  reasons say so.
- When several overrides are in force for the same target, the newest wins.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from accounts import utc
from accounts.money import number_text as _num  # every figure of the words: 12,500

GREEN, YELLOW, RED = "green", "yellow", "red"
BANDS = (GREEN, YELLOW, RED)


class HealthConfigError(ValueError):
    """A health model that cannot be used. ``str(error)`` says what and where in the JSON
    ("components[2].measures[0].linear: lo and hi must differ, got 5.0 and 5.0"); ``words``
    says it to a person, naming the component and measure by number and label ("component 3
    (Support), measure 'open escalations': the linear range needs two different values");
    ``path`` locates the value: ``("components", 2, "measures", 0, "linear")``, or
    ``("green_min",)`` / ``("yellow_min",)`` for the bands."""

    def __init__(
        self, message: str, *, path: tuple[str | int, ...] = (), place: str = "", problem: str = ""
    ) -> None:
        super().__init__(message)
        self.path = path
        self.place = place
        self.problem = problem or message

    @property
    def words(self) -> str:
        return f"{self.place}: {self.problem}" if self.place else self.problem

    @property
    def words_and_path(self) -> str:
        """``words`` and where in the JSON: for the admin's JSON field and the API."""
        return f"{self.words} ({_path_text(self.path)})" if self.path else self.words


# --- measures --------------------------------------------------------------------------------


SCORE_PLACES = 3  # at most this many decimals to tell two different scores apart


def score_as_recorded(score: Any) -> str:
    """A score with the one decimal it is recorded with when not whole: "80", "79.6"."""
    return _num(score)


def score_text(score: Any, *, none: str = "n/a") -> str:
    """One score as the short texts print it: a whole number ("80"); ``none`` for None."""
    if score is None:
        return none
    return f"{float(score):.0f}"


def score_beside_band(
    score: Any,
    *,
    green_min: float | None,
    yellow_min: float | None,
    none: str = "n/a",
) -> str:
    """One score as a page prints it next to its band: a whole number, unless the whole
    number would fall in another band than the score does (the bands ``green_min`` and
    ``yellow_min`` of the model version that made the score), then one decimal, or more if
    one still crosses the line, up to ``SCORE_PLACES``: with green from 80, 80.4 → "80",
    79.6 → "79.6" (not "80" beside a yellow badge), 79.96 → "79.96" (not "80.0"). With
    unknown bands (``None``) the score prints as recorded ("79.6"), which cannot cross a
    line its band was decided on. ``None`` prints as ``none``."""
    if score is None:
        return none
    value = float(score)
    if green_min is None or yellow_min is None:
        return score_as_recorded(value)
    lines = {"green_min": float(green_min), "yellow_min": float(yellow_min)}
    band = band_for(value, **lines)
    for places in range(SCORE_PLACES + 1):
        text = f"{value:.{places}f}"
        if band_for(float(text), **lines) == band:
            return text
    return repr(value)  # within 10**-SCORE_PLACES of a line: every digit


def score_pair(
    before: Any,
    after: Any,
    *,
    none: str = "n/a",
    text: Callable[[Any], str] | None = None,
) -> tuple[str, str]:
    """Two scores as a change prints them ("72 → 41"), each as ``text`` prints one (default
    ``score_text``, whole numbers), unless the two would read as the same number while the
    values differ: 79.6 → 80.4 is not "80 → 80" but "79.6 → 80.4", and 79.96 → 80.0 (a
    band change at 80) "79.96 → 80.00": as many decimals as it takes, up to
    ``SCORE_PLACES``. Equal values that are not whole print with one decimal (79.6 → 79.6:
    the band moved, not the score). ``None`` prints as ``none``."""
    show = text or score_text
    if before is None or after is None:
        return (
            none if before is None else show(before),
            none if after is None else show(after),
        )
    a, b = float(before), float(after)
    if a == b:
        same = show(a) if a.is_integer() else f"{a:,.1f}"
        return same, same
    first = show(a), show(b)
    if _read_as(first[0]) != _read_as(first[1]):
        return first
    for places in range(1, SCORE_PLACES + 1):
        pair = f"{a:,.{places}f}", f"{b:,.{places}f}"
        if pair[0] != pair[1]:
            return pair
    return repr(a), repr(b)  # closer than SCORE_PLACES decimals: every digit


def _read_as(text: str) -> float | str:
    """The number a printed score reads as ("80.0" and "80" both read 80)."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return text


def _amount(value: Any) -> str:
    """An amount of money as the reasons show it, as the pages do: "$633,600.00" (the sign of
    ``settings.CURRENCY``, ``accounts.timeline.money_text``); a value that is not a number as
    it is."""
    from accounts.timeline import money_text

    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    return money_text(number)


def until_words(expires_at: str) -> str:
    """How long an override holds, in the words of the account page, which names its last
    day: one that expires at midnight UTC (a form's "until" day, as the service stores it)
    holds through the day before, "until the end of 24 Dec 2026, UTC"; any other moment
    is said as it is, "until 25 Dec 2026, 15:30 UTC". An unreadable value is said as is."""
    try:
        moment = dt.datetime.fromisoformat(expires_at)
    except (TypeError, ValueError):
        return f"until {expires_at}"
    last, whole = utc.deadline_day(moment)
    if whole:
        return f"until the end of {utc.day_text(last)}, UTC"
    at = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return f"until {utc.day_text(last)}, {at:%H:%M} UTC"


def _plural(n: Any, word: str, plural: str = "") -> str:
    """ "1 seat", "20 seats"; ``plural`` for a word that does not take an s ("people")."""
    return f"{_num(n)} {word if n == 1 else plural or word + 's'}"


@dataclass(frozen=True)
class Measure:
    """One measure a component can use: the name of its value in the inputs, the raw inputs
    behind it (stored on the snapshot), and how to say it to a CSM."""

    key: str
    label: str
    raw: tuple[str, ...]
    describe: Callable[[Mapping[str, Any]], str]
    # why the measure lacks data, in words: a text, or a function of the account's values
    # when the cause depends on them (no key features chosen vs no usage in the window)
    no_data: str | Callable[[Mapping[str, Any]], str]
    unit: str = ""  # what its value counts, for the model editor ("% of licensed seats")

    def no_data_words(self, values: Mapping[str, Any]) -> str:
        """Why this measure has no value for an account with these ``values``."""
        return self.no_data(values) if callable(self.no_data) else self.no_data


KEY_FEATURES_UNSET = "no key features chosen yet (an admin sets them)"
KEY_FEATURES_NO_USAGE = "no events and no licensed seats in the 30 days"


def _key_features_missing(v: Mapping[str, Any]) -> str:
    """Why key-feature adoption has no value. The inputs say how many key features are
    chosen on every account with any data (``key_features_defined``, 0 = none chosen): with
    some chosen the account had neither events nor licensed seats in the 30 days. An account
    without any data at all carries no count, so both causes are said."""
    defined = v.get("key_features_defined")
    if defined == 0:
        return KEY_FEATURES_UNSET
    if defined:
        return KEY_FEATURES_NO_USAGE
    return f"{KEY_FEATURES_NO_USAGE}, or {KEY_FEATURES_UNSET}"


def _tickets_per_seat_missing(v: Mapping[str, Any]) -> str:
    """Why tickets per 100 seats has no value: no ticket opened yet (no ``tickets_30d``),
    else no licensed seats on the day."""
    if v.get("tickets_30d") is None:
        return "no tickets opened yet"
    return "no licensed seats"


def _trend_words(value: float, now: Any, before: Any, what: str) -> str:
    direction = "up" if value > 0 else "down" if value < 0 else "flat"
    size = _num(abs(value))
    if value and _read_as(size) == 0:  # under 0.05 %: not "up 0.0%"; the decimals that show it
        size = next((f"{abs(value):.{p}f}" for p in (2, 3, 4) if round(abs(value), p)), "<0.0001")
    change = f" {size}%" if value else ""
    return f"{what} {direction}{change} on the previous 30 days ({_num(before)} → {_num(now)})"


MEASURES: dict[str, Measure] = {
    m.key: m
    for m in (
        Measure(
            "seat_utilisation",
            "seat utilisation",
            ("active_users_30d", "licensed_seats"),
            lambda v: (
                f"{_num(v['active_users_30d'])} of "
                f"{_plural(v['licensed_seats'], 'licensed seat')} active in 30 days"
            ),
            "no licensed seats",
            unit="% of licensed seats active in 30 days",
        ),
        Measure(
            "usage_trend",
            "usage trend",
            ("events_30d", "events_previous_30d"),
            lambda v: _trend_words(
                v["usage_trend"], v["events_30d"], v["events_previous_30d"], "events"
            ),
            "no events in the 30 days before",
            unit="% change in events on the 30 days before",
        ),
        Measure(
            "usage_trend_users",
            "active user trend",
            ("active_users_30d", "active_users_previous_30d"),
            lambda v: _trend_words(
                v["usage_trend_users"],
                v["active_users_30d"],
                v["active_users_previous_30d"],
                "active users",
            ),
            "no active users in the 30 days before",
            unit="% change in active users on the 30 days before",
        ),
        Measure(
            "key_feature_adoption",
            "key feature adoption",
            ("key_features_used_30d", "key_features_defined"),
            lambda v: (
                f"{_num(v['key_features_used_30d'])} of "
                f"{_plural(v['key_features_defined'], 'key feature')} used in 30 days"
            ),
            # a CSM reads this: words, not the setting (KEY_FEATURES, docs/metrics.md)
            _key_features_missing,
            unit="% of key features used in 30 days",
        ),
        Measure(
            "open_escalations",
            "open escalations",
            (),
            lambda v: f"{_plural(v['open_escalations'], 'open escalation')}",
            "no tickets opened yet",
            unit="open escalated tickets",
        ),
        Measure(
            "tickets_per_100_seats_30d",
            "tickets per 100 seats",
            ("tickets_30d", "licensed_seats"),
            lambda v: (
                f"{_plural(v['tickets_30d'], 'ticket')} in 30 days for "
                f"{_plural(v['licensed_seats'], 'seat')}"
            ),
            _tickets_per_seat_missing,
            unit="tickets in 30 days per 100 licensed seats",
        ),
        Measure(
            "overdue_invoices",
            "overdue invoices",
            ("overdue_amount",),
            lambda v: (
                f"{_plural(v['overdue_invoices'], 'overdue invoice')}"
                + (f" ({_amount(v['overdue_amount'])} due)" if v["overdue_invoices"] else "")
            ),
            "no invoices issued yet",
            unit="invoices past due",
        ),
        Measure(
            "failed_payments_90d",
            "failed payments",
            (),
            lambda v: f"{_plural(v['failed_payments_90d'], 'failed payment')} in 90 days",
            "no invoices issued yet",
            unit="failed payments in 90 days",
        ),
        Measure(
            "nps",
            "NPS",
            (),
            lambda v: f"NPS {_num(v['nps'])}",
            "no NPS answers in the 365 days up to the day",
            unit="NPS, −100 to 100",
        ),
        Measure(
            "csat",
            "CSAT",
            (),
            lambda v: f"CSAT {_num(v['csat'])}%",
            "no CSAT answers in the 365 days up to the day",
            unit="% of answers 4 or 5",
        ),
        Measure(
            "ces",
            "CES",
            (),
            lambda v: f"CES {_num(v['ces'])}",
            "no CES answers in the 365 days up to the day",
            unit="mean answer, 1 (hard) to 7 (easy)",
        ),
        Measure(
            "champion_present",
            "champion",
            ("stakeholders",),
            lambda v: "a champion is named" if v["champion_present"] else "no champion named",
            # stakeholders count from the day their row was created (the as-of rule)
            "none known by the end of the day (no stakeholders on record)",
            unit="1 when a champion is named, else 0",
        ),
        Measure(
            "days_since_last_touch",
            "last CSM touch",
            ("last_touch_on",),
            lambda v: (
                "last CSM touch today"
                if v["days_since_last_touch"] == 0
                else f"last CSM touch {_plural(v['days_since_last_touch'], 'day')} ago"
            ),
            "no CSM activity recorded",
            unit="days since the last CSM activity",
        ),
        # voice of the customer (voice app, docs/metrics.md): not in the default model; an
        # admin adds them to a component, e.g. {"measure": "text_sentiment", "linear": [-50, 50]}
        Measure(
            "text_sentiment",
            "sentiment of customer texts",
            ("text_sentiment_texts",),
            lambda v: (
                f"sentiment {_num(v['text_sentiment'])} over "
                f"{_plural(v['text_sentiment_texts'], 'text')} in 90 days"
            ),
            "no customer texts in 90 days",
            unit="−100 (negative) to 100 (positive), texts of 90 days",
        ),
        Measure(
            "relationship_score",
            "relationship score",
            ("relationship_engaged",),
            lambda v: (
                f"relationship {_num(v['relationship_score'])}/100, "
                f"{_plural(v['relationship_engaged'], 'person', 'people')} engaged in 90 days"
            ),
            "no stakeholders known",
            unit="0 to 100",
        ),
    )
}


# --- model configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class MeasureMapping:
    """How one measure becomes 0..100 points."""

    measure: str
    linear: tuple[float, float] | None = None
    thresholds: tuple[tuple[float, float], ...] = ()

    def points(self, value: float) -> float:
        if self.linear is not None:
            lo, hi = self.linear
            fraction = (value - lo) / (hi - lo)
            return 100.0 * min(1.0, max(0.0, fraction))
        result = 0.0
        for at_least, points in self.thresholds:
            if value >= at_least:
                result = points
            else:
                break
        return float(result)

    def as_json(self) -> dict[str, Any]:
        if self.linear is not None:
            return {"measure": self.measure, "linear": list(self.linear)}
        return {"measure": self.measure, "thresholds": [list(t) for t in self.thresholds]}


@dataclass(frozen=True)
class ComponentSpec:
    key: str
    label: str
    weight: float
    measures: tuple[MeasureMapping, ...]
    locked: bool = False  # True: overrides may not change this component

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "weight": self.weight,
            "locked": self.locked,
            "measures": [m.as_json() for m in self.measures],
        }


@dataclass(frozen=True)
class ModelSpec:
    components: tuple[ComponentSpec, ...]
    green_min: float = 80
    yellow_min: float = 50

    def component(self, key: str) -> ComponentSpec | None:
        return next((c for c in self.components if c.key == key), None)


def _path_text(path: tuple[str | int, ...]) -> str:
    """("components", 2, "measures", 0) → "components[2].measures[0]"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


@dataclass(frozen=True)
class _Where:
    """Where a value sits in a model's JSON: its path, and the same in words."""

    path: tuple[str | int, ...]
    place: str

    def __str__(self) -> str:
        return _path_text(self.path)

    def at(self, *parts: str | int, place: str = "") -> _Where:
        joined = ", ".join(p for p in (self.place, place) if p)
        return _Where((*self.path, *parts), joined)

    def error(self, message: str, problem: str, *more: str | int) -> HealthConfigError:
        where = self.at(*more)
        return HealthConfigError(
            f"{where}: {message}", path=where.path, place=where.place, problem=problem
        )


def _number(value: Any, where: _Where, what: str = "the value") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problem = f"{what} is missing" if value in (None, "") else f"{what} must be a number"
        if value not in (None, ""):
            problem += f", got “{value}”"
        raise where.error(f"expected a number, got {value!r}", problem)
    return float(value)


def _measure_place(raw: Any, j: int) -> str:
    measure = MEASURES.get(raw.get("measure")) if isinstance(raw, dict) else None
    return f"measure '{measure.label}'" if measure else f"measure {j + 1}"


def _mapping(raw: Any, where: _Where) -> MeasureMapping:
    if not isinstance(raw, dict):
        raise where.error(
            "expected an object with measure and linear/thresholds",
            "expected an object with measure and linear or thresholds",
        )
    measure = raw.get("measure")
    if measure not in MEASURES:
        known = ", ".join(sorted(MEASURES))
        problem = (
            "choose a measure"
            if measure in (None, "")
            else f"unknown measure “{measure}”; choose one from the list"
        )
        raise where.error(f"unknown measure {measure!r} (known: {known})", problem, "measure")
    unknown = set(raw) - {"measure", "linear", "thresholds"}
    if unknown:
        text = f"unknown keys {', '.join(sorted(unknown))}"
        raise where.error(text, text)
    if ("linear" in raw) == ("thresholds" in raw):
        raise where.error(
            "give exactly one of linear [lo, hi] or thresholds",
            "choose either a linear range or thresholds",
        )
    if "linear" in raw:
        pair = raw["linear"]
        at = where.at("linear")
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise at.error(
                f"expected [lo, hi], got {pair!r}",
                "the linear range needs two values: the value at 0 points and at 100 points",
            )
        lo = _number(pair[0], at.at(0), "the value at 0 points")
        hi = _number(pair[1], at.at(1), "the value at 100 points")
        if lo == hi:
            raise at.error(
                f"lo and hi must differ, got {lo} and {hi}",
                f"the linear range needs two different values (both are {_num(lo)})",
            )
        return MeasureMapping(measure, linear=(lo, hi))
    steps = raw["thresholds"]
    at = where.at("thresholds")
    if not isinstance(steps, list | tuple) or not steps:
        raise at.error(
            "expected [[at_least, points], …]",
            "fill in at least one threshold row (a value and its points)",
        )
    parsed = []
    for i, step in enumerate(steps):
        row = at.at(i, place=f"row {i + 1}")
        if not isinstance(step, list | tuple) or len(step) != 2:
            raise row.error(
                f"expected [at_least, points], got {step!r}", "a row needs a value and its points"
            )
        at_least = _number(step[0], row.at(0), "the value")
        points = _number(step[1], row.at(1), "the points")
        if not 0 <= points <= 100:
            raise row.error(
                "points must be 0..100", f"points must be between 0 and 100, got {_num(points)}"
            )
        if parsed and at_least <= parsed[-1][0]:
            raise HealthConfigError(
                f"{at}: at_least values must ascend",
                path=row.path,
                place=row.place,
                problem=(
                    f"the values must go up row by row: {_num(at_least)} is not above "
                    f"{_num(parsed[-1][0])}"
                ),
            )
        parsed.append((at_least, points))
    return MeasureMapping(measure, thresholds=tuple(parsed))


def _component_spec(raw: Any, where: _Where, keys: set[str]) -> tuple[ComponentSpec | None, list]:
    """One component of the JSON, and the errors found in it: the first error of the
    component's own fields, or else the first error of each of its measures."""
    if not isinstance(raw, dict):
        return None, [where.error("expected an object", "expected an object")]
    unknown = set(raw) - {"key", "label", "weight", "locked", "measures"}
    if unknown:
        text = f"unknown keys {', '.join(sorted(unknown))}"
        return None, [where.error(text, text)]
    try:
        key = raw.get("key")
        if not isinstance(key, str) or not key.strip():
            raise where.error("required", "needs a name", "key")
        if key in keys:
            raise where.error(
                f"{key!r} appears twice", f"another component has the key “{key}”", "key"
            )
        weight = _number(raw.get("weight"), where.at("weight"), "the weight")
        if weight < 0:
            raise where.error(
                f"must not be negative, got {weight:g}",
                f"the weight must be 0 or more, got {_num(weight)}",
                "weight",
            )
        measures = raw.get("measures")
        if not isinstance(measures, list | tuple) or not measures:
            raise where.error("expected a non-empty list", "add at least one measure", "measures")
        locked = raw.get("locked", False)
        if not isinstance(locked, bool):
            raise where.error("expected true or false", "expected true or false", "locked")
    except HealthConfigError as exc:
        return None, [exc]
    mappings, errors = [], []
    for j, m in enumerate(measures):
        try:
            mappings.append(_mapping(m, where.at("measures", j, place=_measure_place(m, j))))
        except HealthConfigError as exc:
            errors.append(exc)
    if errors:
        return None, errors
    spec = ComponentSpec(
        key=key,
        label=str(raw.get("label") or key),
        weight=weight,
        measures=tuple(mappings),
        locked=locked,
    )
    return spec, []


def duplicate_names(components: Any) -> list[tuple[int, int, str]]:
    """The components named like an earlier one: ``(first, other, name)``, indexes from 0,
    for each component whose name (its label, else its key; trimmed, any capitals) an
    earlier component already has. The account page and the override form name components
    by it, so two alike would read as one. A rule for saving or restoring a version, not
    for scoring: a version stored before it scores as it always did."""
    found = []
    first: dict[str, int] = {}
    for i, raw in enumerate(components if isinstance(components, list | tuple) else ()):
        if not isinstance(raw, dict):
            continue
        name = str(raw.get("label") or raw.get("key") or "").strip()
        if not name:
            continue
        at = first.setdefault(name.casefold(), i)
        if at != i:
            found.append((at, i, name))
    return found


def twin_names_words(components: Any) -> str:
    """``duplicate_names`` in words, "" when there are none: "components 1 and 4 are both
    named “Usage”" (joined with "; " for several)."""
    return "; ".join(
        f"components {first + 1} and {other + 1} are both named “{name}”"
        for first, other, name in duplicate_names(components)
    )


def model_errors(
    components: Any, *, green_min: Any = 80, yellow_min: Any = 50
) -> tuple[ModelSpec | None, list[HealthConfigError]]:
    """``parse_model``'s checks, all of them: the model (None when it has errors) and every
    error found, in the order of the JSON: per component the first error of its own fields
    or else the first of each measure, then the weights taken together, then the bands."""
    errors: list[HealthConfigError] = []
    specs: list[ComponentSpec] = []
    top = _Where(("components",), "")
    if not isinstance(components, list | tuple) or not components:
        errors.append(
            top.error("expected a non-empty list of components", "add at least one component")
        )
        components = ()
    keys: set[str] = set()
    for i, raw in enumerate(components):
        label = raw.get("label") or raw.get("key") if isinstance(raw, dict) else None
        place = f"component {i + 1}" + (f" ({label})" if label else "")
        spec, found = _component_spec(raw, _Where(("components", i), place), keys)
        if isinstance(raw, dict) and isinstance(raw.get("key"), str):
            keys.add(raw["key"])
        errors.extend(found)
        if spec is not None:
            specs.append(spec)
    if not errors and not any(s.weight > 0 for s in specs):
        errors.append(
            top.error(
                "every weight is zero; give at least one weight > 0",
                "every weight is 0: give at least one component a weight above 0",
            )
        )
    try:
        green = _number(green_min, _Where(("green_min",), "bands"), "green’s lower bound")
        yellow = _number(yellow_min, _Where(("yellow_min",), "bands"), "yellow’s lower bound")
    except HealthConfigError as exc:
        errors.append(exc)
    else:
        if not 0 <= yellow <= green <= 100:
            bad = "yellow_min" if 0 <= green <= 100 else "green_min"
            errors.append(
                HealthConfigError(
                    f"bands: need 0 <= yellow_min <= green_min <= 100, got {yellow:g} and "
                    f"{green:g}",
                    path=(bad,),
                    place="bands",
                    problem=(
                        "yellow must start at or below green, both between 0 and 100 "
                        f"(yellow from {_num(yellow)}, green from {_num(green)})"
                    ),
                )
            )
    if errors:
        return None, errors
    return ModelSpec(components=tuple(specs), green_min=green, yellow_min=yellow), []


def parse_model(components: Any, *, green_min: float = 80, yellow_min: float = 50) -> ModelSpec:
    """Check a model's JSON configuration and return it typed. Raises HealthConfigError
    naming the offending place ("components[2].weight: …"; in words: ``error.words``); a
    model whose weights are all zero or negative is refused, and so is a negative weight.
    The first of ``model_errors``."""
    spec, errors = model_errors(components, green_min=green_min, yellow_min=yellow_min)
    if errors:
        raise errors[0]
    assert spec is not None
    return spec


# The default model of docs/metrics.md, seeded for new installations (editable by admins).
DEFAULT_COMPONENTS: list[dict[str, Any]] = [
    {
        "key": "usage",
        "label": "Usage",
        "weight": 35,
        "measures": [
            # docs/metrics.md: "seat utilisation 15 % → 30 points"; 50 % or more is full marks
            {"measure": "seat_utilisation", "linear": [0, 50]},
            # growing ≥ 10 % → 100, flat → 75, down to 25 % → 50, to 50 % → 25, worse → 0
            {
                "measure": "usage_trend",
                "thresholds": [[-50, 25], [-25, 50], [0, 75], [10, 100]],
            },
        ],
    },
    {
        "key": "feature_adoption",
        "label": "Feature adoption",
        "weight": 20,
        "measures": [{"measure": "key_feature_adoption", "linear": [0, 100]}],
    },
    {
        "key": "support",
        "label": "Support",
        "weight": 15,
        "measures": [
            {"measure": "open_escalations", "thresholds": [[0, 100], [1, 50], [2, 0]]},
            # 5 or fewer tickets per 100 seats in 30 days → 100, 30 or more → 0
            {"measure": "tickets_per_100_seats_30d", "linear": [30, 5]},
        ],
    },
    {
        "key": "payments",
        "label": "Payments",
        "weight": 10,
        "locked": True,  # billing facts: a CSM's opinion does not change them
        "measures": [
            {"measure": "overdue_invoices", "thresholds": [[0, 100], [1, 40], [2, 0]]},
            {"measure": "failed_payments_90d", "thresholds": [[0, 100], [1, 50], [3, 0]]},
        ],
    },
    {
        "key": "sentiment",
        "label": "Sentiment",
        "weight": 10,
        "measures": [
            {"measure": "nps", "linear": [-50, 50]},
            {"measure": "csat", "linear": [50, 100]},
            {"measure": "ces", "linear": [1, 7]},
        ],
    },
    {
        "key": "relationship",
        "label": "Relationship",
        "weight": 10,
        "measures": [
            {"measure": "champion_present", "thresholds": [[0, 0], [1, 100]]},
            {"measure": "days_since_last_touch", "linear": [90, 14]},
        ],
    },
]


# --- scoring ---------------------------------------------------------------------------------


def band_for(score: float | None, *, green_min: float, yellow_min: float) -> str:
    """The band of a score: ``>= green_min`` green, ``>= yellow_min`` yellow, else red;
    "" for no score."""
    if score is None:
        return ""
    if score >= green_min:
        return GREEN
    if score >= yellow_min:
        return YELLOW
    return RED


@dataclass(frozen=True)
class Override:
    """A manual override in force: of the whole account (``component=""``: score and/or
    band) or of one component's score."""

    id: int
    reason: str
    expires_at: str  # ISO, for the record
    score: float | None = None
    band: str = ""
    component: str = ""
    created_by: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "component": self.component,
            "score": self.score,
            "band": self.band,
            "reason": self.reason,
            "expires_at": self.expires_at,
            "created_by": self.created_by,
        }


@dataclass  # not frozen: 100,000 accounts × 6 of them a night, and a frozen init costs 3×
class ComponentResult:
    key: str
    label: str
    weight: float  # as configured
    share: float | None  # renormalised weight in the score (0..1); None when left out
    score: float | None  # 0..100 as used (after an override); None = no data
    computed_score: float | None  # what the model computed
    inputs: dict[str, Any]  # measure values and the raw values behind them
    measure_points: dict[str, float | None]
    reason: str
    overridden: bool = False
    # the part of the JSON that only depends on the measures (``_Computed``): shared by the
    # accounts a ``Scorer`` scored alike, encoded once
    computed: _Computed | None = field(default=None, compare=False, repr=False)
    # ``json_text()`` once computed: a ``Scorer`` hands the same (unchanging) result to every
    # account whose component it computed alike, with the same share, and no override
    _text: str | None = field(default=None, compare=False, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "weight": self.weight,
            "share": self.share,
            "score": self.score,
            "computed_score": self.computed_score,
            "inputs": self.inputs,
            "measure_points": self.measure_points,
            "reason": self.reason,
            "overridden": self.overridden,
        }

    def json_text(self) -> str:
        """``json.dumps(self.as_json())``, up to key order and spaces (the same JSON value)."""
        if self._text is not None:
            return self._text
        if self.computed is None:
            static = _static_json(
                self.key,
                self.label,
                self.weight,
                self.computed_score,
                self.inputs,
                self.measure_points,
                self.reason,
            )
        else:
            static = self.computed.static_json(self.key, self.label, self.weight)
        return (
            f'{{"share": {_json_number(self.share)}, "score": {_json_number(self.score)}, '
            f'"overridden": {"true" if self.overridden else "false"}, {static}}}'
        )


def _json_number(value: float | None) -> str:
    if value is None:
        return "null"
    if type(value) is float and math.isfinite(value):
        return repr(value)  # what json.dumps writes for a float
    return json.dumps(value)


def _static_json(key, label, weight, computed_score, inputs, points, reason) -> str:
    """The fields of a component's JSON that do not depend on the other components or on
    overrides, as ``"name": value`` pairs without the braces."""
    return json.dumps(
        {
            "key": key,
            "label": label,
            "weight": weight,
            "computed_score": computed_score,
            "inputs": inputs,
            "measure_points": points,
            "reason": reason,
        }
    )[1:-1]


def components_json(components: Iterable[ComponentResult]) -> str:
    """The JSON text of ``[c.as_json() for c in components]`` (what a snapshot stores)."""
    return "[" + ", ".join(c.json_text() for c in components) + "]"


@dataclass(frozen=True)
class Health:
    score: float | None  # 0..100, one decimal, as shown (after overrides); None = no data
    band: str  # green / yellow / red; "" without a score
    computed_score: float | None  # what the model computed, before any override
    computed_band: str
    components: tuple[ComponentResult, ...]
    left_out: tuple[str, ...]  # keys of components without data
    reasons: tuple[str, ...]  # human-readable, one per component, then overrides
    overrides: tuple[Override, ...] = field(default=())  # the overrides applied


# how far a float sum may stray from the decimal value it stands for and still count as it
_HALF_SLACK = 1e-9


def _round(value: float) -> float:
    """One decimal, a half always up (scores and points are 0..100): 49.95 → 50.0, whatever
    float arithmetic made of it. ``round`` alone goes by the binary value, which lands on
    either side of a half: 0.5 × 0.1 + 0.5 × 99.8 (49.95) sums to 49.94999… and rounded to
    49.9, red, while 0.5 × 49.8 + 0.5 × 50.1 (49.95 too) gave 50.0, yellow."""
    return math.floor(value * 10 + 0.5 + _HALF_SLACK) / 10 + 0.0


@dataclass
class _Computed:
    """What a component computes from its measures' values, before overrides and weights."""

    score: float | None
    inputs: dict[str, Any]
    points: dict[str, float | None]
    words: str
    _json: str | None = None
    reason: str | None = None  # its line in the reasons when not overridden (``_reason``)
    # ``Scorer``: the ComponentResult of an account without override, by its share
    results: dict[float | None, ComponentResult] | None = None

    def static_json(self, key: str, label: str, weight: float) -> str:
        if self._json is None:
            self._json = _static_json(
                key, label, weight, self.score, self.inputs, self.points, self.words
            )
        return self._json


def _component(spec: ComponentSpec, values: Mapping[str, Any]) -> _Computed:
    inputs: dict[str, Any] = {}
    points: dict[str, float | None] = {}
    words, missing = [], []
    for mapping in spec.measures:
        measure = MEASURES[mapping.measure]
        value = values.get(measure.key)
        inputs[measure.key] = value
        for raw in measure.raw:
            inputs[raw] = values.get(raw)
        if value is None:
            points[measure.key] = None
            missing.append(f"{measure.label}: {measure.no_data_words(values)}")
            continue
        points[measure.key] = _round(mapping.points(float(value)))
        try:
            words.append(measure.describe(values))
        except (KeyError, TypeError):  # raw values not given: say the measure itself
            words.append(f"{measure.label} {_num(value)}")
    scored = [p for p in points.values() if p is not None]
    if not scored:
        return _Computed(
            None, inputs, points, f"{spec.label.lower()}: no data ({'; '.join(missing)})"
        )
    # the measures without data are left out of the mean, and said so: a relationship of
    # 100 from the last touch alone also says that no champion was known that day
    words += missing
    return _Computed(_round(sum(scored) / len(scored)), inputs, points, "; ".join(words))


def _component_fields(spec: ComponentSpec) -> tuple[str, ...]:
    """The values a component reads: its measures and the raw inputs behind them."""
    fields: list[str] = []
    for mapping in spec.measures:
        measure = MEASURES[mapping.measure]
        for name in (measure.key, *measure.raw):
            if name not in fields:
                fields.append(name)
    return tuple(fields)


class Scorer:
    """``score`` for many accounts with one model (the nightly health step). A component's
    result depends only on the values of its own measures and their raw inputs
    (``Measure.raw``: what ``_component`` reads), so accounts with the same values share one
    computation and one encoded JSON of it. ``Scorer(spec).score(values, overrides=…)`` is
    ``score(spec, values, overrides=…)``, value for value (pinned by tests)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._fields = {c.key: _component_fields(c) for c in spec.components}
        self._memo: dict[str, dict[tuple, _Computed]] = {c.key: {} for c in spec.components}
        self._plans: dict[tuple[bool, ...], tuple[list, list[int], tuple[str, ...]]] = {}

    def component(self, spec: ComponentSpec, values: Mapping[str, Any]) -> _Computed:
        # the types too: 1, 1.0 and True are equal keys but print differently
        found = tuple(map(values.get, self._fields[spec.key]))
        key = (found, tuple(map(type, found)))
        memo = self._memo[spec.key]
        computed = memo.get(key)
        if computed is None:
            computed = memo[key] = _component(spec, values)
        return computed

    def score(self, values: Mapping[str, Any], *, overrides: Sequence[Override] = ()) -> Health:
        if overrides:
            return score(self.spec, values, overrides=overrides, component=self.component)
        # no override (nearly every account): what ``score`` does, with what only depends on
        # which components have data (their shares, the left-out keys) worked out once per
        # such set, and each component's result shared by the accounts that got it alike
        components = self.spec.components
        results = [self.component(c, values) for c in components]
        mask = tuple([r.score is not None for r in results])
        plan = self._plans.get(mask)
        if plan is None:
            plan = self._plans[mask] = self._plan(mask)
        shares, weighted_at, left_out = plan
        if weighted_at:
            computed_score = _round(sum([shares[i] * results[i].score for i in weighted_at]))
        else:
            computed_score = None
        final = []
        reasons = []
        for comp, result, share in zip(components, results, shares, strict=True):
            shown = None if share is None else round(share, 4)
            shared = result.results
            if shared is None:
                shared = result.results = {}
            found = shared.get(shown)
            if found is None:
                found = shared[shown] = ComponentResult(
                    key=comp.key,
                    label=comp.label,
                    weight=comp.weight,
                    share=shown,
                    score=result.score,
                    computed_score=result.score,
                    inputs=result.inputs,
                    measure_points=result.points,
                    reason=result.words,
                    overridden=False,
                    computed=result,
                )
                found._text = found.json_text()  # shared and never changed: encoded once
            final.append(found)
            if result.reason is None:
                result.reason = _reason(comp, result.score, result.words)
            reasons.append(result.reason)
        band = band_for(
            computed_score, green_min=self.spec.green_min, yellow_min=self.spec.yellow_min
        )
        return Health(
            score=computed_score,
            band=band,
            computed_score=computed_score,
            computed_band=band,
            components=tuple(final),
            left_out=left_out,
            reasons=tuple(reasons),
            overrides=(),
        )

    def _plan(self, mask: tuple[bool, ...]) -> tuple[list, list[int], tuple[str, ...]]:
        """For accounts whose components have data as ``mask`` says: each component's
        share (``score``'s ``weighted``: the weights of those with data and a weight > 0,
        renormalised; None for the rest), the indexes summed into the score (in the
        components' order, like ``score``), and the keys left out."""
        components = self.spec.components
        at = [i for i, c in enumerate(components) if c.weight > 0 and mask[i]]
        total = sum(components[i].weight for i in at)
        if not at or total <= 0:
            at = []
        shares: list[float | None] = [None] * len(components)
        for i in at:
            shares[i] = components[i].weight / total
        left_out = tuple(c.key for c, has in zip(components, mask, strict=True) if not has)
        return shares, at, left_out


def weighted_mean(pairs: Sequence[tuple[float, float]]) -> tuple[float | None, list[float]]:
    """The account score from ``(weight, score)`` of the components that count (a weight
    above 0 and a score): each weight renormalised to a share of their total, the score the
    sum of share × score, rounded to one decimal; also the shares, in order. ``(None, [])``
    without any. ``score`` combines its components with it, and the account page's health
    breakdown shows its working from a snapshot's components with it; ``Scorer._plan`` does
    the same sums in the same order (pinned equal to ``score`` by tests)."""
    total = sum(w for w, _ in pairs)
    if not pairs or total <= 0:
        return None, []
    shares = [w / total for w, _ in pairs]
    return _round(sum([share * s for share, (_, s) in zip(shares, pairs, strict=True)])), shares


def left_out_note(components: Sequence[Mapping[str, Any]]) -> str:
    """What the score did with the components of a snapshot (``HealthSnapshot.components``)
    that had no data, in words for the account page: they were left out and the weights of
    those with data rescaled to count alone. "" when every component had data."""
    missing = [c["label"].lower() for c in components if c.get("score") is None]
    if not missing:
        return ""
    kept = [c for c in components if c.get("score") is not None and (c.get("weight") or 0) > 0]
    head = f"Left out for lack of data: {', '.join(missing)}."
    if not kept:
        return f"{head} No weighted component has data, so there is no score."
    n = len(kept)
    return (
        f"{head} The weights of the {'component' if n == 1 else f'{n} components'} with "
        f"data were rescaled to count alone."
    )


def _reason(comp: ComponentSpec, used: float | None, words: str) -> str:
    """A component's line in the snapshot's reasons (before any override note)."""
    if used is None:
        return f"{words}, left out"
    if comp.weight <= 0:
        return f"{comp.label.lower()} {_num(used)}/100 (weight 0): {words}"
    return f"{comp.label.lower()} {_num(used)}/100: {words}"


def score(
    spec: ModelSpec,
    values: Mapping[str, Any],
    *,
    overrides: Sequence[Override] = (),
    component: Callable[[ComponentSpec, Mapping[str, Any]], _Computed] = _component,
) -> Health:
    """Score one account from its measure values (``None`` = no data). See the module
    docstring for the rules; every number is rounded to one decimal. ``component``: how a
    component is computed from the values (``Scorer`` passes its memoised one)."""
    applied: list[Override] = []
    ignored: list[str] = []
    component_override: dict[str, Override] = {}
    account_override: Override | None = None
    # newest first: the first one seen for a target wins
    for ov in sorted(overrides, key=lambda o: o.id, reverse=True) if overrides else ():
        if ov.component:
            target = spec.component(ov.component)
            if target is None:
                ignored.append(f"override #{ov.id} of {ov.component!r} ignored: no such component")
            elif target.locked:
                ignored.append(f"override #{ov.id} of {target.label} ignored: component is locked")
            elif ov.component not in component_override and ov.score is not None:
                component_override[ov.component] = ov
        elif account_override is None:
            account_override = ov

    # (component, computed score, score used, inputs, points, words, override)
    parts = []
    for comp in spec.components:
        result = component(comp, values)
        computed = result.score
        ov = component_override.get(comp.key)
        used = computed if ov is None else _round(float(ov.score))
        if ov is not None:
            applied.append(ov)
        parts.append((comp, computed, used, result, ov))

    def weighted(index: int) -> tuple[float | None, dict[str, float]]:
        pairs = [(p[0], p[index]) for p in parts if p[0].weight > 0 and p[index] is not None]
        total, shares = weighted_mean([(c.weight, s) for c, s in pairs])
        return total, {c.key: share for (c, _), share in zip(pairs, shares, strict=True)}

    computed_score, shares = weighted(1)
    used_score = computed_score
    if component_override:
        used_score, shares = weighted(2)
    final = []
    reasons = []
    for comp, computed, used, result, ov in parts:
        share = shares.get(comp.key)
        words = result.words
        final.append(
            ComponentResult(
                key=comp.key,
                label=comp.label,
                weight=comp.weight,
                share=None if share is None else round(share, 4),
                score=used,
                computed_score=computed,
                inputs=result.inputs,
                measure_points=result.points,
                reason=words,
                overridden=ov is not None,
                computed=result,
            )
        )
        if ov is None:  # the same words for every account scored alike
            if result.reason is None:
                result.reason = _reason(comp, used, words)
            reasons.append(result.reason)
        else:
            text = _reason(comp, used, words)
            if used is not None and comp.weight > 0:
                was = score_pair(computed, used, text=_num)[0]
                text += f" (overridden from {was}: {ov.reason})"
            reasons.append(text)

    bands = {"green_min": spec.green_min, "yellow_min": spec.yellow_min}
    computed_band = band_for(computed_score, **bands)
    shown_score, shown_band = used_score, band_for(used_score, **bands)
    if account_override is not None:
        applied.append(account_override)
        if account_override.score is not None:
            shown_score = _round(float(account_override.score))
            shown_band = band_for(shown_score, **bands)
        if account_override.band:
            shown_band = account_override.band
        until = until_words(account_override.expires_at)
        if account_override.score is None:  # the band alone: the score is the model's
            model_band = band_for(used_score, **bands) or "none"
            at = "no score" if used_score is None else f"score {_num(used_score)}"
            reasons.append(
                f"band set to {shown_band} by an override, computed {model_band} ({at}) "
                f"{until}: {account_override.reason}"
            )
        else:
            shown_text, used_text = score_pair(shown_score, used_score, text=_num)
            reasons.append(
                f"overridden to {shown_text} ({shown_band}) from {used_text} "
                f"{until}: {account_override.reason}"
            )
    reasons.extend(ignored)
    left_out = tuple(r.key for r in final if r.score is None)
    return Health(
        score=shown_score,
        band=shown_band,
        computed_score=computed_score,
        computed_band=computed_band,
        components=tuple(final),
        left_out=left_out,
        reasons=tuple(reasons),
        overrides=tuple(applied),
    )


# --- assignment ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """One way a model gets accounts: an assignment rule (a segment and/or a lifecycle
    stage, "" = any; ``rule_id`` names it) or the default (``is_default``: every account no
    rule matches). A model with several rules is several candidates."""

    model_id: int
    segment: str = ""
    lifecycle: str = ""
    is_default: bool = False
    rule_id: int | None = None


def specificity(*, is_default: bool, segment: str, lifecycle: str) -> int | None:
    """How specific a rule is: 3 for a segment and a lifecycle stage, 2 for a segment, 1
    for a stage, 0 for the default; None for a candidate that applies to no account."""
    if is_default:
        return 0
    if segment and lifecycle:
        return 3
    if segment:
        return 2
    if lifecycle:
        return 1
    return None


def assign_rule(
    candidates: Iterable[Assignment], *, segment: str, lifecycle: str
) -> Assignment | None:
    """The candidate that scores an account: the most specific that matches it (segment
    and lifecycle both match > segment only > lifecycle only > the default). None when
    nothing applies. Rules are unique per (segment, stage) and there is one default, so
    at most one candidate of each rank matches: never a tie."""
    best: tuple[int, Assignment] | None = None
    for c in candidates:
        rank = specificity(is_default=c.is_default, segment=c.segment, lifecycle=c.lifecycle)
        if rank is None:
            continue
        if not c.is_default and (
            (c.segment and c.segment != segment) or (c.lifecycle and c.lifecycle != lifecycle)
        ):
            continue  # a rule for another segment or stage
        if best is None or rank > best[0]:
            best = (rank, c)
    return None if best is None else best[1]


def assign(candidates: Iterable[Assignment], *, segment: str, lifecycle: str) -> int | None:
    """The id of the model that scores an account (``assign_rule``'s), or None."""
    chosen = assign_rule(candidates, segment=segment, lifecycle=lifecycle)
    return None if chosen is None else chosen.model_id


# --- what changed ----------------------------------------------------------------------------

RAW_LABELS = {
    "active_users_30d": "active users",
    "licensed_seats": "licensed seats",
    "events_30d": "events in 30 days",
    "events_previous_30d": "events in the 30 days before",
    "active_users_previous_30d": "active users in the 30 days before",
    "key_features_used_30d": "key features used",
    "key_features_defined": "key features defined",
    "open_escalations": "open escalations",
    "tickets_30d": "tickets in 30 days",
    "overdue_invoices": "overdue invoices",
    "overdue_amount": "overdue amount",
    "failed_payments_90d": "failed payments in 90 days",
    "champion_present": "champion named",
    "stakeholders": "stakeholders",
    "days_since_last_touch": "days since the last CSM touch",
    "nps": "NPS",
    "csat": "CSAT",
    "ces": "CES",
    "seat_utilisation": "seat utilisation",
    "usage_trend": "event trend",
    "usage_trend_users": "active user trend",
    "tickets_per_100_seats_30d": "tickets per 100 seats",
    "text_sentiment": "sentiment of customer texts",
    "text_sentiment_texts": "customer texts in 90 days",
    "relationship_score": "relationship score",
    "relationship_engaged": "people engaged in 90 days",
}
# derived values: their raw inputs already say what changed
_DERIVED = {
    "seat_utilisation",
    "usage_trend",
    "usage_trend_users",
    "tickets_per_100_seats_30d",
    "key_feature_adoption",
    "last_touch_on",
}


# yes/no inputs, stored as 1/0 (``metrics.kpis.health_inputs``): "champion named no → yes"
YES_NO = {"champion_present"}
# amounts of money, stored as decimal strings ("1200.00"): "$0.00 → $1,200.00"
MONEY = {"overdue_amount"}
# inputs that are percentages: "CSAT 80% → 90%", as the reasons print them
PERCENT = {"csat", "seat_utilisation", "usage_trend", "usage_trend_users", "key_feature_adoption"}


def _input_text(key: str, value: Any) -> str:
    """An input's value in a "what changed" line: yes/no for a yes/no input, else the
    number; n/a for no data."""
    if value is None:
        return "n/a"
    if key in YES_NO or isinstance(value, bool):
        return "yes" if value else "no"
    return _num(value)


def _same_input(key: str, old: Any, new: Any) -> bool:
    """Whether an input holds the same value on both days ("120.50" and "120.5" are one
    amount)."""
    if key in MONEY and old is not None and new is not None:
        try:
            return Decimal(str(old)) == Decimal(str(new))
        except ArithmeticError:
            pass
    return old == new


def _input_pair(key: str, old: Any, new: Any) -> tuple[str, str]:
    """An input's two values in a "what changed" line, with their unit: yes/no, an amount
    with its currency, a percentage with %; numbers that would print alike while they
    differ get the decimals that tell them apart ("CES 5.45 → 5.50", not "5.5 → 5.5")."""
    if key in MONEY:
        return ("n/a" if old is None else _amount(old)), ("n/a" if new is None else _amount(new))
    if key in YES_NO or isinstance(old, bool) or isinstance(new, bool):
        return _input_text(key, old), _input_text(key, new)
    if all(v is None or isinstance(v, int | float) for v in (old, new)):
        was, now = score_pair(old, new, none="n/a", text=_num)
    else:
        was, now = _input_text(key, old), _input_text(key, new)
    if key in PERCENT:
        was, now = (t if t == "n/a" else f"{t}%" for t in (was, now))
    return was, now


def _input_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    changes = []
    # a fixed order (RAW_LABELS'): stored JSON (PostgreSQL jsonb) does not keep key order
    order = {key: i for i, key in enumerate(RAW_LABELS)}
    keys = sorted(
        (set(before) | set(after)) - _DERIVED, key=lambda k: (order.get(k, len(order)), k)
    )
    seats_same = before.get("licensed_seats") == after.get("licensed_seats")
    for key in keys:
        old, new = before.get(key), after.get(key)
        if _same_input(key, old, new):
            continue
        label = RAW_LABELS.get(key, key.replace("_", " "))
        was, now = _input_pair(key, old, new)
        text = f"{label} {was} → {now}"
        if key == "active_users_30d" and seats_same and after.get("licensed_seats"):
            text += f" of {_plural(after['licensed_seats'], 'seat')}"
        defined = after.get("key_features_defined")
        if (
            key == "key_features_used_30d"
            and defined
            and defined == before.get("key_features_defined")
        ):
            text += f" of {_num(defined)}"
        changes.append(text)
    if not changes:  # only derived values moved (e.g. rounding)
        for key in sorted(_DERIVED & (set(before) | set(after)), key=lambda k: order.get(k, 0)):
            if key != "last_touch_on" and before.get(key) != after.get(key):
                label = RAW_LABELS.get(key, key)
                was, now = _input_pair(key, before.get(key), after.get(key))
                changes.append(f"{label} {was} → {now}")
    return changes


def what_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The difference between two snapshots of an account, in words, component by component.

    ``before`` and ``after`` are snapshot dicts: ``{"day", "score", "band", "model_version",
    "components": [ComponentResult.as_json(), …], "computed_score", "computed_band",
    "overrides"}`` (``HealthSnapshot.as_dict()``). The first
    line is about the score; then one line per component whose score or inputs changed, e.g.
    "usage fell from 70 to 30: active users 14 → 6 of 20 seats". An empty list would mean
    "nothing changed", so that case returns one line saying so."""
    lines = []
    s0, s1 = before.get("score"), after.get("score")
    if s0 != s1 or before.get("band") != after.get("band"):
        if s0 is None and s1 is None:
            lines.append("score: still no data")
        elif s0 is None:
            lines.append(f"score now {_num(s1)} ({after.get('band')}); there was no data before")
        elif s1 is None:
            lines.append(f"score: no data any more (was {_num(s0)})")
        else:
            verb = "rose" if s1 > s0 else "fell" if s1 < s0 else "stayed at"
            was, now = score_pair(s0, s1, text=_num)
            text = f"score {verb} from {was} to {now}"
            if s1 == s0:
                text = f"score stayed at {now}"
            if before.get("band") != after.get("band"):
                text += f" ({before.get('band') or 'none'} → {after.get('band') or 'none'})"
            lines.append(text)
    whole0 = [o for o in before.get("overrides") or [] if not o.get("component")]
    whole1 = [o for o in after.get("overrides") or [] if not o.get("component")]
    if whole1 and whole1 != whole0:
        reason = f"(“{whole1[0].get('reason', '')}”)"
        if whole1[0].get("score") is None:  # the band alone: the score is the model's
            model_band = after.get("computed_band")
            computed = f", computed {model_band}" if model_band else ""
            lines.append(f"band set to {after.get('band')} by hand{computed} {reason}")
        else:
            computed, shown = score_pair(after.get("computed_score"), s1, text=_num)
            lines.append(f"overridden by hand: computed {computed}, set to {shown} {reason}")
    elif whole0 and not whole1:
        what = "band" if whole0[0].get("score") is None else "score"
        lines.append(f"the override ended: the {what} is the model's again")
    if before.get("model_version") != after.get("model_version"):
        lines.append(
            f"scored by {after.get('model_version') or 'no model'} "
            f"(was {before.get('model_version') or 'no model'})"
        )
    old = {c["key"]: c for c in before.get("components", [])}
    for comp in after.get("components", []):
        key, label = comp["key"], comp["label"].lower()
        prev = old.pop(key, None)
        if prev is None:
            now = comp.get("score")
            now_text = "no data, left out" if now is None else f"{_num(now)} of 100"
            lines.append(f"{label} is new in this model: {now_text}")
            continue
        a, b = prev.get("score"), comp.get("score")
        w0, w1 = prev.get("weight"), comp.get("weight")
        # another model version may weigh it differently: the score moves with it; the weight
        # of a component left out counts for nothing
        reweighed = b is not None and None not in (w0, w1) and w0 != w1
        was_set, is_set = prev.get("overridden"), comp.get("overridden")
        c0, c1 = prev.get("computed_score", a), comp.get("computed_score", b)
        held = was_set and is_set and c0 != c1  # the data moved under an override
        if a == b and was_set == is_set and not reweighed and not held:
            continue  # inputs may move (days since the last touch) without changing a score
        changes = _input_changes(prev.get("inputs", {}), comp.get("inputs", {}))
        if a is None:
            head = f"{label} now has data, {_num(b)} of 100"
        elif b is None:
            head = f"{label} has no data any more (was {_num(a)}), left out"
        elif b > a:
            head = "{} rose from {} to {}".format(label, *score_pair(a, b, text=_num))
        elif b < a:
            head = "{} fell from {} to {}".format(label, *score_pair(a, b, text=_num))
        else:
            head = f"{label} stayed at {_num(b)}"
        if is_set and not was_set:
            model = "no data to compute it" if c1 is None else f"computed {_num(c1)}"
            changes.append(f"set by an override ({model})")
        elif was_set and not is_set:
            changes.append("the override ended")
        elif held:
            moved = score_pair(c0, c1, text=_num, none="no data")
            changes.insert(0, "set by an override, computed {} → {}".format(*moved))
        if reweighed:
            changes.append(f"weight {_num(w0)} → {_num(w1)}")
        lines.append(f"{head}: {', '.join(changes)}" if changes else head)
    for prev in old.values():
        lines.append(f"{prev['label'].lower()} is not in this model any more")
    return lines or ["nothing changed"]
