from __future__ import annotations

from django import forms

from .models import NorthStar


class NorthStarForm(forms.Form):
    label = forms.CharField(
        max_length=100, help_text="What the number means to people, e.g. “Reports created”."
    )
    event = forms.CharField(
        max_length=200, help_text="The usage event to count, exactly as your product sends it."
    )
    aggregation = forms.ChoiceField(
        choices=NorthStar.Aggregation.choices,
        help_text="Count the events, or add up their value (e.g. an amount or a duration).",
    )
