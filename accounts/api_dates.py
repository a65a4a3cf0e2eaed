"""Days in the API's query strings and bodies, one wording everywhere.

DRF and Django say "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
(or "Enter a valid date.") for ``2026-13-01`` too, whose format is right and whose month is
not. Here a value of the right shape that is no day says so, with Python's reason
("2026-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12"), and any other value
is named as not a date. The serializers use ``ApiDateField``, the list filters
``ApiDateFilter``; what each accepts is unchanged."""

from __future__ import annotations

import datetime as dt
import re

import django_filters as filters
from django import forms
from rest_framework import serializers

SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _show(raw: object) -> str:
    text = str(raw)
    return text if len(text) <= 40 else text[:40] + "…"


def day_error(raw: object) -> str:
    """Why ``raw`` is not a day, in words for the client."""
    text = str(raw).strip()
    if SHAPE.fullmatch(text):
        try:
            dt.date.fromisoformat(text)
        except ValueError as exc:
            return f"{text} is not a valid date (YYYY-MM-DD): {exc}"
    return f"“{_show(raw)}” is not a date: use YYYY-MM-DD, e.g. 2026-03-01"


class ApiDateField(serializers.DateField):
    """DRF's DateField with ``day_error``'s messages."""

    def to_internal_value(self, value):
        try:
            return super().to_internal_value(value)
        except serializers.ValidationError as exc:
            if exc.get_codes() == ["invalid"]:
                raise serializers.ValidationError(day_error(value), code="invalid") from None
            raise


class ApiDateFormField(forms.DateField):
    """The list filters' day (django-filter builds on Django forms) with ``day_error``'s
    messages."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except forms.ValidationError as exc:
            if exc.code == "invalid":
                raise forms.ValidationError(day_error(value), code="invalid") from None
            raise


class ApiDateFilter(filters.DateFilter):
    field_class = ApiDateFormField
