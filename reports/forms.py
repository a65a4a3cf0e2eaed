from __future__ import annotations

from types import SimpleNamespace

from django import forms

from accounts.models import Account, Role, User
from accounts.stale import opened_token

from . import services
from .models import KpiTarget, ScheduledReport, ScopeKind


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return services.owner_label(obj)


class ScopeFormMixin:
    """The scope of a target or a report, for people: the owner of a book is chosen from the
    account owners by name (``book_owner``, stored as their user id in ``scope_key``, as the
    KPI snapshots key it); a segment is typed with the existing ones offered and matched
    ignoring case. ``scope_key`` also takes an owner's id, email or name."""

    def _scope_fields(self) -> None:
        self.fields["book_owner"] = OwnerChoiceField(
            queryset=services.book_owners_queryset(),
            required=False,
            label="Owner's book",
            empty_label="— choose an account owner —",
            help_text="for the scope “owner's book”: whose accounts",
        )
        key = self.fields["scope_key"]
        key.label = "Segment"
        self.segment_options = Account.objects.segments()
        key.help_text = (
            "for the scope “segment”: "
            + (", ".join(self.segment_options[: services.LISTED]) or "no account has a segment yet")
            + "; for “manager's team”: the manager (empty: your own team)"
        )
        key.widget.attrs["list"] = "segment-options"
        key.widget.attrs["autocomplete"] = "off"
        instance = getattr(self, "instance", None)
        if instance is not None and instance.pk and instance.scope_kind == "owner":
            self.initial["book_owner"] = instance.scope_key
            self.initial["scope_key"] = ""
        # the owner's book right after the scope kind
        order = list(self.fields)
        order.remove("book_owner")
        order.insert(order.index("scope_key") + 1, "book_owner")
        self.order_fields(order)

    def _scope_clean(self, data: dict) -> None:
        """Turns what was chosen or typed into the stored key (before the checks); a team
        left empty is the team of the manager filling the form."""
        kind = data.get("scope_kind")
        typed = (data.get("scope_key") or "").strip()
        if kind == "owner" and data.get("book_owner") is not None:
            data["scope_key"] = str(data["book_owner"].pk)
        elif kind == "all":
            data["scope_key"] = typed
        elif kind == "team" and not typed and self.user is not None:
            data["scope_key"] = str(self.user.pk)
        elif kind in ("segment", "owner", "team"):
            key, problem = services.scope_key_resolve(kind, data.get("scope_key") or "")
            if problem is None:
                data["scope_key"] = key

    def _scope_error_field(self, data: dict) -> str:
        """Where a scope error shows: under the owner select when that was the way in, under
        the scope kind for all accounts (there is no key to blame)."""
        typed = (data.get("scope_key") or "").strip()
        if data.get("scope_kind") == "all" and not typed:
            return "scope_kind"
        return "book_owner" if data.get("scope_kind") == "owner" and not typed else "scope_key"

    def _scope_start(self, initial: dict | None) -> None:
        """A new form of a manager starts at their team, a scope of their own: the whole
        book (the model's default) is for admins."""
        user = self.user
        fresh = not self.is_bound and not self.instance.pk
        if user is not None and fresh and "scope_kind" not in (initial or {}):
            check = services.scope_check(user)
            if check(ScopeKind.ALL, "") is not None and check(ScopeKind.TEAM, str(user.pk)) is None:
                self.initial["scope_kind"] = ScopeKind.TEAM

    def chosen_scope(self) -> tuple[str, str] | None:
        """The scope as chosen so far (the data sent, else the initial values), resolved as
        the save resolves it; None while it is incomplete or unknown."""
        given = self.data if self.is_bound else self.initial
        kind = given.get("scope_kind") or ScopeKind.ALL
        typed = str(given.get("scope_key") or "").strip()
        if kind == ScopeKind.OWNER and given.get("book_owner"):
            typed = str(given.get("book_owner"))
        if kind == ScopeKind.TEAM and not typed and self.user is not None:
            return kind, str(self.user.pk)  # the team left empty: the manager's own
        if kind not in ScopeKind.values:
            return None
        key, problem = services.scope_key_resolve(kind, typed)
        return None if problem else (kind, key)

    def _people_judge(self, name: str, *, pending: str, able_words: str) -> None:
        """Mark in the picker ``name`` (a ``JudgedSelect`` over people) who cannot see the
        chosen scope, and say so in its help: ``pending`` while the scope is incomplete,
        else "{able} of {n} people can see {scope}" followed by ``able_words``. For
        rendering; the save checks again. A fixed number of queries whatever the number of
        people (``services.scope_checks``)."""
        field = self.fields[name]
        scope = self.chosen_scope()
        if scope is None:
            field.widget.blocked = {}
            help_text = pending
        else:
            people = list(field.queryset)  # cached on the queryset: the options reuse it
            checks = services.scope_checks(people)
            field.widget.blocked = {
                str(u.pk): why for u in people if (why := checks[u.pk](*scope)) is not None
            }
            kind, key = scope
            text = services.scope_texts([SimpleNamespace(scope_kind=kind, scope_key=key)])
            able = len(people) - len(field.widget.blocked)
            help_text = f"{able} of {len(people)} people can see {text[scope]}{able_words}"
        field.help_text = help_text
        # a validated form made its bound field already, copying the help then
        self[name].help_text = help_text

    def _access_clean(self, data: dict, *, recipients_field: str, recipients) -> None:
        """The rule of ``services.scope_errors``: the person saving, and everyone who will
        receive the figures, must be able to see the scope. Runs once the scope is valid."""
        if self.user is None or {"scope_kind", "scope_key", "book_owner"} & set(self.errors):
            return  # an unknown scope says so first
        errors = services.scope_errors(
            self.user,
            data.get("scope_kind") or "all",
            data.get("scope_key") or "",
            recipients=recipients,
        )
        chosen = data.get("scope_kind") == "owner" and data.get("book_owner") is not None
        field = "book_owner" if chosen else self._scope_error_field(data)
        for message in errors.get("scope_key", []):
            self.add_error(field, message)
        for message in errors.get("recipients", []):
            self.add_error(recipients_field, message)


class JudgedSelect:
    """A list of people where one who cannot see the chosen scope (``blocked``: user id →
    why) is listed with the reason and disabled. Unless chosen already: a disabled option
    is not submitted, so it would drop them without a word; chosen, they stay, and the
    refusal on save names them. Mixed into a select widget (``_people_judge`` fills it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.blocked: dict[str, str] = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        why = self.blocked.get(str(value))
        if why is not None:
            option["label"] = f"{label}: cannot see it ({why})"
            if not selected:
                option["attrs"]["disabled"] = True
        return option


class RecipientsSelect(JudgedSelect, forms.CheckboxSelectMultiple):
    """The scheduled report's recipients, one box each: a checkbox's label wraps, so the
    reason beside a greyed-out person reads whole on a phone (a list box's option is cut
    at its width)."""


class OwnerSelect(JudgedSelect, forms.Select):
    """The target's owner, who gets its alerts and sees it in their digest."""


RECIPIENTS_RULE = "an admin sees any scope, a manager their team, a CSM their own book"
OWNER_RULE = f"they must be able to see the scope ({RECIPIENTS_RULE})"


class TargetForm(ScopeFormMixin, forms.ModelForm):
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
        labels = {"kpi": "KPI", "max_change": "Alert on a change over"}
        field_classes = {"owner": OwnerChoiceField}
        widgets = {"owner": OwnerSelect}

    # when the target the page shows was saved (its ``updated_at``): a save of an older
    # state is refused (``services.target_save``), not written over the newer one
    opened_at = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user: User | None = None, **kwargs):
        self.user = user  # the one saving: their view bounds the scope (None: no check)
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["opened_at"].initial = opened_token(self.instance.updated_at)
        self._scope_fields()
        self._scope_start(kwargs.get("initial"))
        owner = self.fields["owner"]
        owner.queryset = (
            User.objects.filter(
                is_active=True, groups__name__in=[Role.ADMIN, Role.MANAGER, Role.CSM]
            )
            .distinct()
            .prefetch_related("groups")  # their roles, for the picker's judgement
            .order_by("email")
        )
        owner.empty_label = "— nobody: the admins get its alerts —"
        owner.help_text = f"Gets its alerts and sees it in their digest; {OWNER_RULE}."
        # the services check ranges with clear messages; let any number reach them
        self.fields["value"].widget.attrs["step"] = "any"
        self.fields["max_change"].widget.attrs["step"] = "any"

    def clean(self):
        data = super().clean()
        self._scope_clean(data)
        raw = {
            **{k: data.get(k) for k in self.Meta.fields},
            "value": data.get("value", self.data.get("value")),
        }
        for field, messages in services.target_errors(raw).items():
            if field == "scope_key":
                field = self._scope_error_field(data)
            if field in self.fields and field not in self.errors:
                for message in messages:
                    self.add_error(field, message)
        owner = data.get("owner")
        self._access_clean(data, recipients_field="owner", recipients=[owner] if owner else [])
        return data

    def owner_judge(self) -> None:
        """Grey out in the owner's list who cannot see the chosen scope, with why: their
        alerts would go to the admins instead and their digest would leave the target out."""
        self._people_judge(
            "owner",
            pending=(
                f"Choose the scope first: the owner must be able to see it ({RECIPIENTS_RULE})."
            ),
            able_words=(
                "; the others are greyed out, with why. The owner gets its alerts and sees it "
                "in their digest."
            ),
        )


class DigestForm(forms.Form):
    weekly = forms.BooleanField(required=False, label="Send me the weekly digest")


class NotificationSettingsForm(DigestForm):
    """The emails a person gets: the weekly digest, and one box per kind of CTA email
    (``playbooks.models.CtaEmailKind``; fields ``cta_<kind>``)."""

    def __init__(self, *args, **kwargs):
        from playbooks.models import CtaEmailKind

        super().__init__(*args, **kwargs)
        for kind in CtaEmailKind:
            self.fields[f"cta_{kind.value}"] = forms.BooleanField(required=False, label=kind.label)

    def cta_fields(self):
        return [self[name] for name in self.fields if name.startswith("cta_")]


class RecipientsField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return services.owner_label(obj)


class ScheduledReportForm(ScopeFormMixin, forms.ModelForm):
    class Meta:
        model = ScheduledReport
        fields = ["name", "scope_kind", "scope_key", "cadence", "recipients"]
        field_classes = {"recipients": RecipientsField}
        widgets = {"recipients": RecipientsSelect(attrs={"class": "people-list"})}

    def __init__(self, *args, user: User | None = None, **kwargs):
        self.user = user  # the one saving: their view bounds the scope (None: no check)
        super().__init__(*args, **kwargs)
        self.fields["recipients"].queryset = (
            User.objects.filter(is_active=True).prefetch_related("groups").order_by("email")
        )
        self.fields[
            "recipients"
        ].help_text = f"Each must be able to see the scope: {RECIPIENTS_RULE}."
        self._scope_fields()
        self._scope_start(kwargs.get("initial"))

    def recipients_judge(self) -> None:
        """Grey out in the recipients' list who cannot see the chosen scope, with why."""
        self._people_judge(
            "recipients",
            pending=(
                "Choose the scope first: who may receive the report depends on it "
                f"({RECIPIENTS_RULE})."
            ),
            able_words="; the others are greyed out, with why.",
        )

    def clean(self):
        data = super().clean()
        self._scope_clean(data)
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
                if field == "scope_key":
                    field = self._scope_error_field(data)
                for message in messages:
                    self.add_error(field, message)
        self._access_clean(
            data, recipients_field="recipients", recipients=data.get("recipients") or []
        )
        return data
