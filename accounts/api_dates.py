"""Days in the API's query strings and bodies, one wording everywhere.

DRF and Django say "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
(or "Enter a valid date.") for ``2026-13-01`` too, whose format is right and whose month is
not. Here a value of the right shape that is no day says so, with Python's reason
("2026-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12"), and any other value
is named as not a date. The serializers use ``ApiDateField``, the list filters
``ApiDateFilter``; both accept exactly YYYY-MM-DD (``accounts.days``), as the commands do.
The list filters over timestamps use ``ApiInstantFilter``: a day or a full timestamp
(``accounts.days.parse_instant``), never ``20261001`` or ``2026-W40-4``.

``single_value_errors`` is the one check, for the list filters and the KPI and health
queries alike, that a single-valued parameter is given once and not empty;
``unknown_parameter_errors`` the one check that a parameter is one the endpoint takes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import django_filters as filters
from django import forms
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from .days import INSTANT_EXAMPLE, INSTANT_FORMS, INSTANT_SHAPE, day_error, parse_day, parse_instant

__all__ = [
    "DAY",
    "INSTANT",
    "VALUE",
    "ApiDateField",
    "ApiDateFilter",
    "ApiDateFormField",
    "ApiInstantFilter",
    "ApiInstantFormField",
    "day_error",
    "parse_day",
    "single_value_errors",
    "unknown_parameter_errors",
]

# What an empty parameter is asked to give instead ("empty: give a day (YYYY-MM-DD), or …")
DAY = "a day (YYYY-MM-DD)"
INSTANT = f"a day or a timestamp ({INSTANT_FORMS})"
VALUE = "a value"


def single_value_errors(params, fields: Mapping[str, str]) -> dict[str, list[str]]:
    """The query parameters of ``fields`` (name → what to give, e.g. ``DAY``) that are given
    more than once (``?segment=SMB&segment=Enterprise``, which DRF and django-filter would
    quietly read as the last) or given empty or blank (``?segment=``, which would quietly
    mean "no filter"): ``{name: [message]}``, empty when all is well."""
    errors: dict[str, list[str]] = {}
    for name, what in fields.items():
        values = params.getlist(name) if hasattr(params, "getlist") else []
        if len(values) > 1:
            shown = ", ".join(f"“{v}”" for v in values)
            errors[name] = [f"given {len(values)} times ({shown}): give it once"]
        elif values and not values[0].strip():
            errors[name] = [f"empty: give {what}, or leave {name} out"]
    return errors


def unknown_parameter_errors(params, takes: Iterable[str]) -> dict[str, list[str]]:
    """The query parameters not in ``takes`` (nor DRF's own ``?format=``): ``{name:
    [message]}``, empty when all is well. A misspelled filter (``?update_since=``) would
    otherwise be ignored, and a report or a list without what the caller asked for looks
    right and is not (a whole export instead of a page of changes)."""
    takes = list(dict.fromkeys(takes))
    unknown = sorted(set(params) - set(takes) - {api_settings.URL_FORMAT_OVERRIDE})
    listed = ", ".join(takes) or "no parameters"
    return {name: [f"not a parameter of this endpoint; it takes {listed}"] for name in unknown}


class ApiDateField(serializers.DateField):
    """A day of a query string or a body: exactly YYYY-MM-DD (``accounts.days.parse_day``),
    with ``day_error``'s messages. DRF's own DateField reads ``2026-1-5`` and ``20261001``."""

    def to_internal_value(self, value):
        if isinstance(value, dt.datetime):
            self.fail("datetime")
        if isinstance(value, dt.date):
            return value
        try:
            return parse_day(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None


def _invalid(exc: ValueError) -> forms.ValidationError:
    # through params: django-filter renders ``message % params`` even without params, so a
    # "%" of the value (``?active_on=50%25``) or of the message (%2B) would be a 500
    return forms.ValidationError("%(reason)s", code="invalid", params={"reason": str(exc)})


class _StrictFormField:
    """A list filter's form field (django-filter builds on Django forms) that reads its text
    with ``parse`` alone, whose ValueError is the message; a value already parsed passes
    through ``passed``."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, dt.date):
            return self.passed(value)
        try:
            return self.parse(value)
        except ValueError as exc:
            raise _invalid(exc) from None


class ApiDateFormField(_StrictFormField, forms.DateField):
    """The list filters' day: exactly YYYY-MM-DD, with ``day_error``'s messages (Django's
    DateField reads ``2026-1-5`` too)."""

    parse = staticmethod(parse_day)

    @staticmethod
    def passed(value: dt.date) -> dt.date:
        return value.date() if isinstance(value, dt.datetime) else value


class ApiDateFilter(filters.DateFilter):
    field_class = ApiDateFormField


class ApiInstantFormField(_StrictFormField, forms.Field):
    """A list filter's instant: ``YYYY-MM-DD`` (midnight UTC) or a full ISO timestamp, aware
    and in UTC (``accounts.days.parse_instant``), with its messages."""

    parse = staticmethod(parse_instant)

    @staticmethod
    def passed(value: dt.date) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


class ApiInstantFilter(filters.Filter):
    """Every list filter over a timestamp (``opened_after``, ``since`` …). Its help text
    ends with the forms it takes; its schema is a string of that shape, not ``date-time``
    (which would say a day is not taken)."""

    field_class = ApiInstantFormField

    def __init__(self, *args, help_text: str = "", **kwargs):
        forms_text = f"{INSTANT_FORMS} (a day is its midnight UTC; no offset is UTC)"
        help_text = f"{help_text}: {forms_text}" if help_text else forms_text
        super().__init__(*args, help_text=help_text, **kwargs)
        # per filter, on the instance: drf-spectacular takes the description from an
        # override's schema only, and each filter has its own help text
        extend_schema_field(
            {
                "type": "string",
                "pattern": f"^{INSTANT_SHAPE.pattern}$",
                "example": INSTANT_EXAMPLE,
                "description": help_text,
            }
        )(self)
