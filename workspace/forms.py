from __future__ import annotations

from django import forms

from accounts.models import ActivityKind

LOGGABLE = [
    (k.value, k.label) for k in (ActivityKind.NOTE, ActivityKind.CALL, ActivityKind.MEETING)
]


class ActivityForm(forms.Form):
    """Log a note, call or meeting on the account page."""

    kind = forms.ChoiceField(choices=LOGGABLE, initial=ActivityKind.NOTE)
    subject = forms.CharField(max_length=300, help_text="One line: what happened")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
