"""Days in the API's query strings and bodies, one wording everywhere.

DRF and Django say "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
(or "Enter a valid date.") for ``2026-13-01`` too, whose format is right and whose month is
not. Here a value of the right shape that is no day says so, with Python's reason
("2026-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12"), and any other value
is named as not a date. The serializers use ``ApiDateField``, the list filters
``ApiDateFilter``; both accept exactly YYYY-MM-DD (``accounts.days``), as the commands do."""

from __future__ import annotations

import datetime as dt

import django_filters as filters
from django import forms
from rest_framework import serializers

from .days import day_error, parse_day

__all__ = ["ApiDateField", "ApiDateFilter", "ApiDateFormField", "day_error", "parse_day"]


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


class ApiDateFormField(forms.DateField):
    """The list filters' day (django-filter builds on Django forms): exactly YYYY-MM-DD,
    with ``day_error``'s messages (Django's DateField reads ``2026-1-5`` too)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return parse_day(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class ApiDateFilter(filters.DateFilter):
    field_class = ApiDateFormField
