"""The playbook editor's form: parses text into a configuration; the checks themselves are
``rules.validate_playbook`` (through ``services.playbook_create/update``), whose field errors
the view puts back on the form's fields, all at once: a field the form could not parse (bad
JSON) keeps its own error and the others are still checked."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from accounts.models import Account, AccountLifecycle, User

from . import rules, selectors
from .models import CtaType, OwnerRule, Playbook, Priority

SURVEY_SLOTS_SPARE = 2  # survey choices beyond the steps typed, for steps about to be added


def steps_to_text(steps: list[dict]) -> str:
    return "\n".join(f"{s.get('due_days', 0)} | {s.get('title', '')}" for s in steps or [])


def text_to_steps(text: str) -> list[dict[str, Any]]:
    """One step per line, in order: ``<due days> | <title>`` (or just a title: due day 0)."""
    steps = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        days, sep, title = line.partition("|")
        if not sep:
            days, title = "0", line
        days = days.strip()
        steps.append({"title": title.strip(), "due_days": int(days) if _int(days) else days})
    return steps


def _int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _params_help(table: dict) -> str:
    """Each choice by its label with the parameters it takes ("?": optional)."""
    return "; ".join(
        f"{t.label}: {', '.join(p.name + ('' if p.required else '?') for p in t.params) or 'none'}"
        for t in table.values()
    )


class PlaybookForm(forms.Form):
    # the version the page showed: a save based on an older one is refused
    # (``services.playbook_update``), not published over the newer one
    based_on = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)
    name = forms.CharField(max_length=200, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    enabled = forms.BooleanField(required=False, initial=True)
    trigger = forms.ChoiceField(
        choices=[("", "—")] + [(k, t.label) for k, t in rules.TRIGGERS.items()], required=False
    )
    trigger_params = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
        help_text='JSON, e.g. {"band": "red"}. Parameters of each trigger (? = optional): '
        + _params_help(rules.TRIGGERS),
    )
    segments = forms.MultipleChoiceField(
        choices=(),  # the segments accounts have: __init__
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none ticked: any",
    )
    lifecycle_stages = forms.MultipleChoiceField(
        choices=AccountLifecycle.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none ticked: any",
    )
    owners = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("email"),
        required=False,
        help_text="accounts owned by these users only; none: any",
    )
    arr_min = forms.CharField(required=False, label="ARR at least")
    arr_max = forms.CharField(required=False, label="ARR at most")
    cta_title = forms.CharField(max_length=200, required=False, label="CTA title")
    cta_type = forms.ChoiceField(choices=CtaType.choices, label="CTA type")
    priority = forms.ChoiceField(
        choices=Priority.choices,
        help_text="due: high the same day, medium in 48 h, low in a week",
    )
    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        required=False,
        help_text="one step per line, in order: due days after opening | title",
    )
    owner_rule = forms.ChoiceField(choices=OwnerRule.choices)
    owner_user = forms.ModelChoiceField(
        queryset=User.objects.order_by("email"), required=False, label="Named user"
    )
    success = forms.ChoiceField(
        choices=[("", "—")] + [(k, s.label) for k, s in rules.SUCCESSES.items()],
        required=False,
        label="Success condition",
    )
    success_params = forms.CharField(
        required=False,
        help_text="JSON. Parameters of each condition: " + _params_help(rules.SUCCESSES),
    )
    success_days = forms.CharField(label="Success deadline (days)", initial="30")
    cooldown_days = forms.CharField(label="Cooldown after close (days)", initial="30")
    email_owner = forms.BooleanField(required=False, label="Email the owner")
    webhook_url = forms.URLField(required=False, assume_scheme="https")
    webhook_secret = forms.CharField(required=False, help_text="signs the body (HMAC-SHA256)")
    slack_url = forms.URLField(required=False, assume_scheme="https", label="Slack webhook URL")

    def __init__(self, *args: Any, playbook: Playbook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the segments accounts have, and the playbook's own (one no account has any more
        # stays ticked, so it can be unticked)
        names = sorted({*Account.objects.segments(), *(playbook.segments if playbook else [])})
        self.fields["segments"].choices = [(n, n) for n in names]
        if not names:
            self.fields["segments"].help_text = "no account has a segment yet: any"
        self._add_survey_fields(playbook)

    def _add_survey_fields(self, playbook: Playbook | None) -> None:
        """A choice of survey per step, right after the steps (``step_survey_<n>``): the
        campaigns a step may start, and those the playbook's steps name already (shown as
        no longer startable when they are not). None to choose: no fields, a hint."""
        saved = rules.step_campaigns(playbook.steps) if playbook else []
        eligible = list(selectors.step_survey_campaigns().values_list("pk", "name"))
        known = {pk for pk, _ in eligible}
        stale = [
            (pk, f"{name} (not active or not started by a playbook step: sends nothing)")
            for pk, name in sorted(selectors.campaign_names(set(saved) - known).items())
        ]
        if not eligible and not stale:
            self.fields["steps"].help_text += (
                ". A step can send a survey once an active survey campaign is started by "
                "the event “A playbook step”"
            )
            return
        choices = [("", "— no survey —"), *((str(pk), name) for pk, name in eligible + stale)]
        if self.is_bound:
            steps = text_to_steps(self.data.get("steps", ""))
        else:
            steps = list(playbook.steps) if playbook else []
        slots = len(steps) + SURVEY_SLOTS_SPARE
        if self.is_bound:  # a choice posted below the steps is kept, to be refused
            posted = [
                k.removeprefix("step_survey_")
                for k in self.data
                if k.startswith("step_survey_") and self.data.get(k)
            ]
            slots = max([slots, *(int(n) for n in posted if n.isdigit() and int(n) < 100)])
        fields = {}
        # the title each choice was shown beside: a step whose title changed in the same
        # save (lines inserted or moved) must not silently take another step's survey
        self.titles_shown = {}
        if self.is_bound:
            self.titles_shown = {n: self.data.get(f"step_title_{n}") for n in range(1, slots + 1)}
            self.data = self.data.copy()  # shown again: beside the steps as they are now
        for n in range(1, slots + 1):
            title = steps[n - 1].get("title") if n <= len(steps) else ""
            fields[f"step_title_{n}"] = forms.CharField(
                required=False, widget=forms.HiddenInput, initial=title
            )
            if self.is_bound:
                self.data[f"step_title_{n}"] = title
            fields[f"step_survey_{n}"] = forms.CharField(
                required=False,
                label=f"Step {n}" + (f" ({title})" if title else "") + ": sends survey",
                widget=forms.Select(choices=choices),
                initial=(
                    str(steps[n - 1].get("survey_campaign") or "")
                    if not self.is_bound and n <= len(steps)
                    else ""
                ),
            )
        fields[f"step_survey_{slots}"].help_text = (
            "a step that sends a survey starts the campaign for the CTA's account when the "
            "CTA opens (its audience, fatigue and opt-outs apply), then is done"
        )
        # right after the steps, in order
        ordered = {}
        for name, field in self.fields.items():
            ordered[name] = field
            if name == "steps":
                ordered.update(fields)
        self.fields = ordered

    @classmethod
    def for_playbook(cls, playbook: Playbook) -> PlaybookForm:
        return cls(
            playbook=playbook,
            initial={
                **{
                    name: getattr(playbook, name)
                    for name in cls.base_fields
                    if hasattr(playbook, name)
                },
                "trigger_params": json.dumps(playbook.trigger_params),
                "success_params": json.dumps(playbook.success_params),
                "segments": list(playbook.segments),
                "owners": playbook.owners,
                "steps": steps_to_text(playbook.steps),
                "owner_user": playbook.owner_user_id,
                "based_on": playbook.version,
            },
        )

    def _json(self, name: str) -> Any:
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            self.add_error(name, f"not valid JSON: {exc.msg} (column {exc.colno})")
            return None

    def config(self) -> dict[str, Any]:
        """The configuration for the services, from what parsed (call after ``is_valid``):
        a field in error is left empty, so the services still check every other field;
        their errors on a field in error are dropped (``add_service_errors``)."""
        d = self.cleaned_data
        trigger_params = self._json("trigger_params")
        success_params = self._json("success_params")

        def whole(name: str) -> Any:
            text = (d.get(name) or "").strip()
            return int(text) if _int(text) else text

        return {
            "name": d.get("name", ""),
            "description": d.get("description", ""),
            "enabled": bool(d.get("enabled")),
            "trigger": d.get("trigger") or None,
            "trigger_params": trigger_params if trigger_params is not None else {},
            "segments": list(d.get("segments") or []),
            "lifecycle_stages": list(d.get("lifecycle_stages") or []),
            "owners": [u.pk for u in d.get("owners") or []],
            "arr_min": d.get("arr_min") or None,
            "arr_max": d.get("arr_max") or None,
            "cta_title": d.get("cta_title", ""),
            "cta_type": d.get("cta_type"),
            "priority": d.get("priority"),
            "steps": self._steps_with_surveys(),
            "owner_rule": d.get("owner_rule"),
            "owner_user": d["owner_user"].pk if d.get("owner_user") else None,
            "success": d.get("success") or None,
            "success_params": success_params if success_params is not None else {},
            "success_days": whole("success_days"),
            "cooldown_days": whole("cooldown_days"),
            "email_owner": bool(d.get("email_owner")),
            "webhook_url": d.get("webhook_url", ""),
            "webhook_secret": d.get("webhook_secret", ""),
            "slack_url": d.get("slack_url", ""),
        }

    def _steps_with_surveys(self) -> list[dict[str, Any]]:
        """The steps typed, each with the survey chosen for it (an id as the services
        check it); a survey chosen below the last step is an error on its choice."""
        steps = text_to_steps(self.cleaned_data.get("steps", ""))
        for name in self.fields:
            if not name.startswith("step_survey_"):
                continue
            chosen = (self.cleaned_data.get(name) or "").strip()
            n = int(name.rsplit("_", 1)[1])
            if not chosen:
                continue
            if n > len(steps):
                self.add_error(name, f"there is no step {n}: add it to the steps first")
                continue
            shown, now = self.titles_shown.get(n), steps[n - 1].get("title", "")
            if shown is not None and shown != now:
                self.add_error(
                    name,
                    f"step {n} is now “{now}”, it was “{shown}” when this page was shown: "
                    "check that this survey belongs to it, then save again",
                )
                continue
            steps[n - 1]["survey_campaign"] = int(chosen) if chosen.isdigit() else chosen
        return steps

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """The services' errors beside their fields, except on a field that has its own
        error already (its value did not reach the services)."""
        for name, messages in errors.items():
            field = name if name in self.fields else None
            if field and field in self.errors:
                continue
            for message in messages:
                whole = field or name == NON_FIELD_ERRORS
                self.add_error(field, message if whole else f"{name}: {message}")


class SnoozeForm(forms.Form):
    until = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)
