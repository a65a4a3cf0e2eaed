"""The product's calendar: UTC days. Nightly runs, as-of dates and "today" on pages all
count in UTC, whatever the server's or the user's time zone; these two are the one place
that says so."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def today() -> dt.date:
    """The current UTC day."""
    return timezone.now().astimezone(dt.UTC).date()


def yesterday() -> dt.date:
    """The last complete UTC day (the nightly pipeline's default as-of day)."""
    return today() - dt.timedelta(days=1)


def incomplete_day_words(day: dt.date) -> str:
    """Why ``day`` cannot be processed as a complete day, or "" when it can (before today,
    UTC): "2026-11-24 is today (UTC), a day not complete yet; the latest complete day is
    2026-11-23", or "… is in the future (today is …, UTC); the latest complete day is …".
    The one rule behind ``run_pipeline``'s and ``recompute``'s refusals (callers put their
    flag in front): a day still running would be recorded with part of its data."""
    now = today()
    latest = now - dt.timedelta(days=1)
    if day > now:
        return f"{day} is in the future (today is {now}, UTC); the latest complete day is {latest}"
    if day == now:
        return f"{day} is today (UTC), a day not complete yet; the latest complete day is {latest}"
    return ""


def day_text(day: dt.date | str | None) -> str:
    """A day as every page and message prints it: "22 Nov 2026" (an ISO string is read,
    None is "n/a"). Built by hand: ``%-d`` is not portable."""
    if day is None:
        return "n/a"
    if isinstance(day, str):
        day = dt.date.fromisoformat(day[:10])
    return f"{day.day} {day:%b %Y}"


def month_text(month: dt.date | str | None) -> str:
    """A month as pages and emails name it: "Nov 2026", from a day or a month's key
    ("2026-11", as lists and the API keep months); anything else is said as it is."""
    if isinstance(month, str):
        try:
            month = dt.date.fromisoformat(f"{month[:7]}-01")
        except ValueError:
            return month
    if not isinstance(month, dt.date):
        return "n/a" if month is None else str(month)
    return f"{month:%b %Y}"


def span_text(first: dt.date, last: dt.date) -> str:
    """Two days as a span, as short as it reads unambiguously: "22 Nov 2026" for one day,
    "22–24 Nov 2026", "30 Nov – 2 Dec 2026", "30 Dec 2026 – 2 Jan 2027"."""
    if first == last:
        return day_text(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{day_text(last)}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {day_text(last)}"
    return f"{day_text(first)} – {day_text(last)}"


def period_text(first: dt.date | str, last: dt.date | str) -> str:
    """A period as people read it, from its first to its last day, both included: "25 Oct
    to 24 Nov 2026", "1 Dec 2025 to 31 Jan 2026" (the engine's ``end`` is the day after
    the last: give ``end − 1``). ISO strings are read, as ``day_text`` reads them."""
    first, last = (
        dt.date.fromisoformat(d[:10]) if isinstance(d, str) else d for d in (first, last)
    )
    if first.year == last.year:
        return f"{first.day} {first:%b} to {day_text(last)}"
    return f"{day_text(first)} to {day_text(last)}"


def as_of_text(first: dt.date | None, last: dt.date | None, *, today: dt.date) -> str:
    """The data day(s) a page's counts of days run from, as it names them once: "" when
    that is today (or there is no day), "as of 22 Nov 2026", a span "as of 21–22 Nov 2026"
    when its accounts' days differ, and, when some accounts were rescored today (an
    incremental recompute) and the rest are older, "as of 23 Nov 2026; some accounts
    rescored on 24 Nov 2026 since", as ``data_days_text`` says it on a list (a span such as
    "23–24 Nov" read as if the data covered both days). The older days run up to
    yesterday at most."""
    if first is None or last is None or first == last == today:
        return ""
    if first < last == today:
        settled = max(first, today - dt.timedelta(days=1))
        return (
            f"as of {span_text(first, settled)}; some accounts rescored on {day_text(today)} since"
        )
    return f"as of {span_text(first, last)}"


def data_days_text(
    first: dt.date | None,
    last: dt.date | None,
    *,
    settled: dt.date | None,
    rescored: int,
    today: dt.date,
) -> str:
    """A list's line naming the data day(s) its rows count from, the same whatever the
    sort, search or page: "" for no row; "Data as of 23 Nov 2026" for one day (even today:
    a list always names it); when some accounts were rescored today (``rescored`` of them,
    an incremental recompute) and the rest are older, "Data as of 23 Nov 2026; 2 accounts
    rescored on 24 Nov 2026 since", ``settled`` being the latest day before today; any
    other spread is the span, "Data as of 22–23 Nov 2026"."""
    if first is None or last is None:
        return ""
    if first < last == today and rescored and settled is not None:
        accounts = "account" if rescored == 1 else "accounts"
        return (
            f"Data as of {span_text(first, settled)}; "
            f"{rescored} {accounts} rescored on {day_text(today)} since"
        )
    return f"Data as of {span_text(first, last)}"


def moment_text(moment: dt.datetime) -> str:
    """An instant in UTC as messages print it: "22 Nov 2026 14:05" (the caller says UTC)."""
    moment = moment.astimezone(dt.UTC)
    return f"{day_text(moment.date())} {moment:%H:%M}"


def deadline_day(moment: dt.datetime) -> tuple[dt.date, bool]:
    """The UTC day a deadline instant closes, and whether it closes that whole day: an
    instant at exactly 00:00 UTC is the end of the day before (a form's "until 24 Dec" is
    stored as 25 Dec 00:00), ``(24 Dec, True)``; any other falls within its own day,
    ``(its day, False)``. A naive instant is read as UTC. The one rule behind a CTA's "due
    by" and an override's "until"."""
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
    moment = moment.astimezone(dt.UTC)
    if moment.time() == dt.time():
        return moment.date() - dt.timedelta(days=1), True
    return moment.date(), False


def due_by_text(moment: dt.datetime | None) -> str:
    """What a deadline instant is due by, as a person reads it (``deadline_day``): "by 24
    Nov 2026" for one at the end of that day (a CTA due with its last step of 24 Nov is
    stored as 25 Nov 00:00, which read as a day later); any other instant is "by 24 Nov
    2026, 14:05 UTC". "" for None. Every page and message that shows a CTA's due instant
    says it this way (the ``due_by`` filter of ``playbooks.templatetags.ctas``)."""
    if moment is None:
        return ""
    day, whole = deadline_day(moment)
    if whole:
        return f"by {day_text(day)}"
    return f"by {day_text(day)}, {moment.astimezone(dt.UTC):%H:%M} UTC"


def hours_text(hours: float | None) -> str:
    """A span of hours as a person reads it: "25 min" under an hour, "5.5 h" under two days,
    "12.1 days" from then on (a follow-up time of 290.5 h is "12.1 days"); "n/a" for none."""
    if hours is None:
        return "n/a"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.1f} h".replace(".0 h", " h")
    return f"{hours / 24:.1f} days".replace(".0 days", " days")
