from __future__ import annotations

from django import forms

from accounts.models import Role, User

from . import services
from .models import KpiTarget, ScheduledReport


class TargetForm(forms.ModelForm):
    class Meta:
        model = KpiTarget
        fields = [
            "kpi",
            "scope_kind",
            "scope_key",
            "direction",
            "value",
            "cadence",
            "max_change",
            "owner",
        ]
        labels = {"scope_key": "Segment or owner id", "max_change": "Alert on a change over"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = (
            User.objects.filter(
                is_active=True, groups__name__in=[Role.ADMIN, Role.MANAGER, Role.CSM]
            )
            .distinct()
            .order_by("email")
        )
        # the services check ranges with clear messages; let any number reach them
        self.fields["value"].widget.attrs["step"] = "any"
        self.fields["max_change"].widget.attrs["step"] = "any"

    def clean(self):
        data = super().clean()
        raw = {
            **{k: data.get(k) for k in self.Meta.fields},
            "value": data.get("value", self.data.get("value")),
        }
        for field, messages in services.target_errors(raw).items():
            if field in self.fields and field not in self.errors:
                for message in messages:
                    self.add_error(field, message)
        return data


class DigestForm(forms.Form):
    weekly = forms.BooleanField(required=False, label="Send me the weekly digest")


class ScheduledReportForm(forms.ModelForm):
    class Meta:
        model = ScheduledReport
        fields = ["name", "scope_kind", "scope_key", "cadence", "recipients"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["recipients"].queryset = User.objects.filter(is_active=True).order_by("email")

    def clean(self):
        data = super().clean()
        probe = {
            "kpi": "nrr",
            "direction": "at_least",
            "cadence": data.get("cadence") or "weekly",
            "value": 0,
            "scope_kind": data.get("scope_kind"),
            "scope_key": data.get("scope_key"),
        }
        for field, messages in services.target_errors(probe).items():
            if field in ("scope_key", "scope_kind"):
                for message in messages:
                    self.add_error(field, message)
        return data
