"""The campaign editor (one form for the campaign and its survey) and the results filters."""

from __future__ import annotations

import json

from django import forms

from accounts.api_dates import ApiDateFormField
from accounts.models import Account, AccountLifecycle, StakeholderRole
from accounts.stale import opened_token

from .models import Campaign, SurveyKind
from .strings import strings_problems

BANDS = [("green", "Green"), ("yellow", "Yellow"), ("red", "Red")]
DEFAULT_QUESTIONS = {
    "nps": "How likely are you to recommend us to a friend or colleague?",
    "csat": "How satisfied are you with our service?",
    "ces": "How easy was it to get what you needed from us?",
}


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    status = forms.ChoiceField(choices=Campaign.Status.choices, initial=Campaign.Status.DRAFT)
    # the survey
    kind = forms.ChoiceField(label="Kind of survey", choices=SurveyKind.choices)
    question = forms.CharField(
        max_length=500, required=False, help_text="Empty: the standard question of the kind."
    )
    follow_up = forms.CharField(
        label="Follow-up question", max_length=500, required=False, help_text="Optional."
    )
    language = forms.CharField(max_length=10, initial="en", help_text="e.g. en, de, fr")
    strings = forms.CharField(
        label="Page strings (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Per language, e.g. {"de": {"submit": "Absenden"}}.',
    )
    # the audience
    segments = forms.MultipleChoiceField(  # the segments that exist: __init__
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: any segment."
    )
    bands = forms.MultipleChoiceField(
        label="Health bands", choices=BANDS, required=False, widget=forms.CheckboxSelectMultiple
    )
    lifecycle_stages = forms.MultipleChoiceField(
        choices=AccountLifecycle.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    roles = forms.MultipleChoiceField(
        label="Stakeholder roles",
        choices=StakeholderRole.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    # when
    trigger = forms.ChoiceField(choices=Campaign.Trigger.choices)
    next_run_at = forms.DateTimeField(
        label="Send at (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="One-off and recurring: the (first) send.",
    )
    recurrence_months = forms.IntegerField(
        label="Repeat every N months", min_value=1, max_value=24, required=False
    )
    event = forms.ChoiceField(choices=[("", "—"), *Campaign.Event.choices], required=False)
    renewal_days_before = forms.IntegerField(min_value=1, max_value=365, required=False)
    reminder_after_days = forms.IntegerField(
        label="Remind after N days", min_value=1, max_value=60, required=False
    )
    expires_after_days = forms.IntegerField(
        label="Link works for N days", min_value=1, max_value=365, initial=30
    )
    closes_at = forms.DateTimeField(
        label="Closes at (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    # an existing campaign: when the one the page shows was saved (its ``updated_at``); a
    # save of an older state is refused (``services.campaign_save``). A new one carries a
    # form key instead (``{% form_key %}``): the same form sent twice makes one campaign.
    opened_at = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, campaign: Campaign | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        if not self.is_bound and campaign is not None:
            self.fields["opened_at"].initial = opened_token(campaign.updated_at)
        # the segments the accounts have, and any the campaign names already (kept on save)
        names = sorted({*Account.objects.segments(), *(campaign.segments if campaign else [])})
        field = self.fields["segments"]
        field.choices = [(n, n) for n in names]
        field.error_messages["invalid_choice"] = (
            f"No segment is called “%(value)s”; the segments are: {', '.join(names) or 'none yet'}."
        )
        if not names:
            field.help_text = "No account has a segment yet: any segment."
        if campaign is not None and campaign.trigger == Campaign.Trigger.ONE_OFF and campaign.runs:
            self.fields[
                "next_run_at"
            ].help_text = (
                "Sent already: a one-off campaign sends once, so it takes no new send time."
            )

    def clean_strings(self) -> dict:
        raw = (self.cleaned_data.get("strings") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        problems = strings_problems(value)
        if problems:
            raise forms.ValidationError(problems)
        return value

    def clean(self) -> dict:
        data = super().clean()
        trigger = data.get("trigger")
        if trigger == Campaign.Trigger.RECURRING and not data.get("recurrence_months"):
            self.add_error("recurrence_months", "A recurring campaign needs an interval.")
        if trigger == Campaign.Trigger.EVENT:
            if not data.get("event"):
                self.add_error("event", "Choose the event that starts the survey.")
            elif data["event"] == Campaign.Event.RENEWAL and not data.get("renewal_days_before"):
                self.add_error("renewal_days_before", "How many days before the renewal?")
        elif data.get("event"):
            data["event"] = ""
        # a one-off campaign that has run is done: no send time needed, none accepted
        sent_once = trigger == Campaign.Trigger.ONE_OFF and self.campaign and self.campaign.runs
        if sent_once and data.get("next_run_at"):
            self.add_error(
                "next_run_at",
                "This one-off campaign was sent already and sends once: leave the send time "
                "empty. To survey its audience again, create a new campaign or make this one "
                "recurring.",
            )
        elif (
            not sent_once
            and trigger in (Campaign.Trigger.ONE_OFF, Campaign.Trigger.RECURRING)
            and data.get("status") == Campaign.Status.ACTIVE
            and not data.get("next_run_at")
        ):
            self.add_error("next_run_at", "An active scheduled campaign needs a send time.")
        if not data.get("question") and data.get("kind"):
            data["question"] = DEFAULT_QUESTIONS[data["kind"]]
        return data

    @classmethod
    def initial_for(cls, campaign: Campaign) -> dict:
        survey = campaign.survey
        return {
            "name": campaign.name,
            "status": campaign.status,
            "kind": survey.kind,
            "question": survey.question,
            "follow_up": survey.follow_up,
            "language": survey.language,
            "strings": json.dumps(survey.strings, ensure_ascii=False) if survey.strings else "",
            "segments": list(campaign.segments),
            "bands": campaign.bands,
            "lifecycle_stages": campaign.lifecycle_stages,
            "roles": campaign.roles,
            "trigger": campaign.trigger,
            # a one-off that ran shows no time, even one left from before it sent
            "next_run_at": None
            if campaign.trigger == Campaign.Trigger.ONE_OFF and campaign.runs
            else campaign.next_run_at,
            "recurrence_months": campaign.recurrence_months,
            "event": campaign.event,
            "renewal_days_before": campaign.renewal_days_before,
            "reminder_after_days": campaign.reminder_after_days,
            "expires_after_days": campaign.expires_after_days,
            "closes_at": campaign.closes_at,
        }


class ResultsFilterForm(forms.Form):
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"), required=False, empty_label="All campaigns"
    )
    segment = forms.ChoiceField(required=False)  # the segments the user sees: __init__
    account = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    # exactly YYYY-MM-DD, refused in the words of the list filters (accounts.days)
    start = ApiDateFormField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = ApiDateFormField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        # the selectors' periods are [start, end): before the end day's midnight (UTC)
        help_text=(
            "The end day is not included: answers and invitations up to the day before count."
        ),
    )
    kind = forms.ChoiceField(
        label="Comments and CSV: kind", choices=[("", "Any"), *SurveyKind.choices], required=False
    )
    group = forms.ChoiceField(
        label="Comments and CSV: who",
        choices=[("", "Everyone"), ("unhappy", "Unhappy"), ("happy", "Not unhappy")],
        required=False,
    )

    def __init__(self, *args, user, **kwargs):
        """``user``: whose results these are. The segments offered, and named by the error
        for one that is not, are those of the accounts the user may see: a CSM learns
        nothing of the segments outside their book."""
        super().__init__(*args, **kwargs)
        known = Account.objects.visible_to(user).segments()
        field = self.fields["segment"]
        field.choices = [("", "All segments"), *((name, name) for name in known)]
        listed = ", ".join(known) or "none yet"
        field.error_messages["invalid_choice"] = (
            f"No segment is called “%(value)s”; the segments are: {listed}."
        )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        return data
