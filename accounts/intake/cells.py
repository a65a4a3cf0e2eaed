"""Cell parsers: one raw value (CSV text or a JSON scalar) in, a Python value out.

Each raises ``ValueError`` with a message meant for the person who made the file
("not a date (expected YYYY-MM-DD)"). Empty cells never reach a parser: the caller maps
them to ``None`` first.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.days import SHAPE, parse_day

Parser = Callable[[Any], Any]


def text(max_length: int) -> Parser:
    def parse(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("must be text")
        value = str(value).strip()
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        if len(value) > max_length:
            raise ValueError(f"longer than {max_length} characters ({len(value)})")
        return value

    return parse


def date(value: Any) -> dt.date:
    """Exactly YYYY-MM-DD (``accounts.days``): ``date.fromisoformat`` alone also reads
    ``2026-W40-4`` (ten characters too) as 1 Oct 2026."""
    if not isinstance(value, str):
        raise ValueError(f"not a date: {_show(value)} (expected YYYY-MM-DD)")
    raw = value.strip()
    try:
        return parse_day(raw)
    except ValueError:
        pass
    if SHAPE.fullmatch(raw):  # the right shape, no such day: say why, not the format again
        try:
            dt.date.fromisoformat(raw)
        except ValueError as exc:
            raise ValueError(f"not a date: {_show(value)}: {exc}") from None
    raise ValueError(f"not a date: {_show(value)} (expected YYYY-MM-DD)")


def timestamp(value: Any) -> dt.datetime:
    """ISO 8601 with a time; no offset means UTC. Returned aware, in UTC."""
    if not isinstance(value, str) or len(value.strip()) < 16:
        raise ValueError(f"not a timestamp: {_show(value)} (expected e.g. 2024-03-01T09:30:00Z)")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        # a calendar or clock mistake ("day is out of range for month", "hour must be in
        # 0..23") is said as such; a shape mistake gets the example
        if not str(exc).startswith("Invalid isoformat"):
            raise ValueError(f"not a timestamp: {_show(value)}: {exc}") from None
        raise ValueError(
            f"not a timestamp: {_show(value)} (expected e.g. 2024-03-01T09:30:00Z)"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {_show(value)}") from None


def decimal(max_digits: int, places: int, minimum: Decimal | None = None) -> Parser:
    limit = Decimal(10) ** (max_digits - places)

    def parse(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"not a number: {_show(value)}")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {_show(value)} (use . for decimals)") from None
        if not number.is_finite():
            raise ValueError(f"not a finite number: {_show(value)}")
        if minimum is not None and number < minimum:
            raise ValueError(f"must be at least {minimum}, got {number}")
        if abs(number) >= limit:
            raise ValueError(f"too large: {number}")
        if number.as_tuple().exponent < -places and number != number.quantize(
            Decimal(1).scaleb(-places)
        ):
            raise ValueError(f"more than {places} decimal places: {number}")
        return number.quantize(Decimal(1).scaleb(-places))

    return parse


def fraction(value: Any) -> Decimal:
    number = decimal(5, 4)(value)
    if not Decimal(0) <= number <= Decimal(1):
        raise ValueError(f"must be a fraction between 0 and 1, got {number}")
    return number


def integer(minimum: int = 0, maximum: int = 2_147_483_647) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"not a whole number: {_show(value)}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"not a whole number: {_show(value)}")
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"not a whole number: {_show(value)}") from None
        if not isinstance(value, int):
            raise ValueError(f"not a whole number: {_show(value)}")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}, got {value}")
        return value

    return parse


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a number: {_show(value)}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"not a usable number: {_show(value)}") from None
    except ValueError:
        raise ValueError(f"not a number: {_show(value)} (use . for decimals)") from None
    if not math.isfinite(result) or abs(result) > 1e15:
        raise ValueError(f"not a usable number: {_show(value)}")
    return result


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError(f"not true/false: {_show(value)}")


def choice(options: list[str]) -> Parser:
    allowed = set(options)

    def parse(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in allowed:
            return value.strip().lower()
        raise ValueError(f"{_show(value)} is not one of {', '.join(options)}")

    return parse


def email(value: Any) -> str:
    value = text(254)(value)
    try:
        validate_email(value)
    except ValidationError:
        raise ValueError(f"not an email address: {_show(value)}") from None
    return value.lower()


def storable(text: str) -> bool:
    """False for text PostgreSQL cannot hold: NUL characters, or lone surrogates (bytes that
    were not UTF-8, or a JSON "\\ud800" escape)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _show(value: Any) -> str:
    shown = repr(value) if not isinstance(value, str) else f'"{value}"'
    return shown if len(shown) <= 60 else shown[:57] + "…"
