from __future__ import annotations

import uuid

from django import forms

from accounts.models import ActivityKind, ApiToken, User

LOGGABLE = [
    (k.value, k.label) for k in (ActivityKind.NOTE, ActivityKind.CALL, ActivityKind.MEETING)
]


class ActivityForm(forms.Form):
    """Log a note, call or meeting on the account page."""

    kind = forms.ChoiceField(choices=LOGGABLE, initial=ActivityKind.NOTE)
    subject = forms.CharField(max_length=300, help_text="One line: what happened")
    body = forms.CharField(
        label="Details (optional)", widget=forms.Textarea(attrs={"rows": 3}), required=False
    )


class HealthOverrideForm(forms.Form):
    """Override an account's health, or one component's score, until a day, with a reason
    (``metrics.services.health_override_create`` checks the rest: range, locked components)."""

    component = forms.ChoiceField(label="What", required=False)  # the model's: __init__
    score = forms.FloatField(required=False, min_value=0, max_value=100, help_text="0 to 100")
    band = forms.ChoiceField(
        required=False,
        choices=[
            ("", "— as the score says —"),
            ("green", "Green"),
            ("yellow", "Yellow"),
            ("red", "Red"),
        ],
        help_text="the whole score only",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    until = forms.DateField(
        label="Until (UTC, end of the day)",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="at most a year ahead",
    )

    def __init__(
        self,
        *args,
        components: list[tuple[str, str]] = (),
        locked: list[tuple[str, str]] = (),
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.fields["component"].choices = [("", "The whole score"), *components]
        # the model's locked components are not offered: the help says which and why, and
        # a post that names one anyway is told so rather than "not a valid choice"
        self.locked = dict(locked)
        if self.locked:
            names = ", ".join(self.locked.values())
            help_text = f"Locked by the health model, so not offered: {names}"
            self.fields["component"].help_text = help_text

    def clean(self):
        cleaned = super().clean()
        raw = self.data.get(self.add_prefix("component"), "")
        if raw in self.locked:
            self._errors["component"] = self.error_class(
                [f"{self.locked[raw]} is locked by the health model: it cannot be overridden"]
            )
        return cleaned


class FirstValueForm(forms.Form):
    """Record or change the day the account reached first value, as the CSM knows it
    (``accounts.services.milestone_record`` refuses a day in the future)."""

    reached_on = forms.DateField(
        label="Reached on (UTC day)", widget=forms.DateInput(attrs={"type": "date"})
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "e.g. first report shared with their board"}),
        help_text="optional, what showed it",
    )


class ApiTokenForm(forms.Form):
    """Manage → API tokens: who the token acts as, what it is for, read or write. The
    service (``accounts.services.api_token_issue``) checks the rest: an inactive user, a
    blank name."""

    user = forms.ModelChoiceField(
        queryset=User.objects.order_by("-is_active", "email"),
        label="Acts as",
        empty_label="— choose a user —",
        error_messages={
            "required": "Choose the user the token acts as.",
            "invalid_choice": "That user does not exist (any more): choose one from the list.",
        },
        help_text="The token sees what this user sees; what it may write follows the role (above).",
    )
    name = forms.CharField(
        label="Name",
        max_length=100,
        error_messages={"required": "Say what the token is for, e.g. “CRM sync”."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. CRM sync"}),
        help_text="What it is for, so you know which one to revoke later.",
    )
    # one form, one token: a reload of the page that showed the key sends the same value
    # again, which the view refuses instead of issuing a second token
    once = forms.UUIDField(widget=forms.HiddenInput, required=False)
    scope = forms.ChoiceField(
        label="Scope",
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose read or read and write.",
            "invalid_choice": "“%(value)s” is no scope: read or write.",
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["once"].initial = uuid.uuid4()
        self.fields["user"].label_from_instance = lambda u: (
            f"{u.email}" + ("" if u.is_active else " (inactive)")
        )
