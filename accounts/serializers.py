"""API serializers: what the API shows of each kind, and the documented shapes of its
request bodies and error replies.

Output serializers are shared by a kind's list and detail views, so they live here with
names of their own (the schema's component names) rather than nested in each view.
They only present: no queries across relations beyond what the view ``select_related``
(pinned by the query-count tests), no logic.

The ``*Row`` serializers document the JSON rows of the bulk endpoints in the OpenAPI schema;
requests are **not** validated with them: rows go straight to ``accounts.intake``, the one
validator for every door, which reports ``row N, column C: reason``.
"""

from __future__ import annotations

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .api_choices import ChoiceField, ModelSerializer
from .api_dates import ApiDateField
from .models import (
    Account,
    Activity,
    Contract,
    ImportRecord,
    Invoice,
    Milestone,
    Stakeholder,
    Ticket,
    TimelineEntry,
    UsageDaily,
)

# --- output -------------------------------------------------------------------------------


class DataAsOfSerializer(serializers.Serializer):
    last_event_at = serializers.DateTimeField(
        allow_null=True, help_text="time of the account's latest usage event"
    )
    last_import_at = serializers.DateTimeField(
        help_text="latest write of the account or its contracts, stakeholders, tickets, invoices"
    )
    as_of = serializers.DateTimeField(help_text="the later of the two: 'data as of'")


# --- an account's standing (metrics.AccountStanding, read through the reverse relation
# ``account.standing``: this app does not import metrics) --------------------------------

HEALTH_BANDS = [("green", "Green"), ("yellow", "Yellow"), ("red", "Red")]  # metrics.models.Band


class AccountHealthSerializer(serializers.Serializer):
    """The latest health of an account, as its standing holds it."""

    score = serializers.FloatField(allow_null=True, help_text="0..100; null = no data")
    band = ChoiceField(choices=HEALTH_BANDS, allow_null=True, help_text="null without a score")
    day = serializers.DateField(help_text="the day of the snapshot")
    overridden = serializers.BooleanField(help_text="an override was in force that day")


class _AccountStandingFields(serializers.Serializer):
    """Health, ARR, next renewal and queue priority from the account's standing (null
    before the nightly pipeline first ran for it). The view loads the standing with
    ``select_related("standing")``: no query per row."""

    health = serializers.SerializerMethodField(
        help_text="the latest health snapshot's score and band; /accounts/{id}/health/ has "
        "the whole snapshot"
    )
    arr = serializers.DecimalField(
        source="standing.arr",
        max_digits=16,
        decimal_places=2,
        allow_null=True,
        default=None,
        help_text="annual recurring revenue of the contracts in force (12 × MRR)",
    )
    renewal_on = serializers.DateField(
        source="standing.renewal_on",
        allow_null=True,
        default=None,
        help_text="end of the current contract (the next renewal)",
    )
    priority = serializers.FloatField(
        source="standing.priority",
        allow_null=True,
        default=None,
        help_text="the CSM queue's priority (higher first; docs/metrics.md, Queue priority)",
    )

    @extend_schema_field(AccountHealthSerializer(allow_null=True))
    def get_health(self, account: Account) -> dict | None:
        standing = getattr(account, "standing", None)  # None: select_related found no row
        if standing is None:
            return None
        return {
            "score": standing.score,
            "band": standing.band or None,
            "day": standing.day,
            "overridden": standing.overridden,
        }


class AccountSerializer(_AccountStandingFields, ModelSerializer):
    owner_email = serializers.EmailField(source="owner.email", default=None, allow_null=True)
    parent_external_id = serializers.CharField(
        source="parent.external_id", default=None, allow_null=True
    )
    data_as_of = serializers.SerializerMethodField(
        help_text="how current the account's data is (selectors.data_as_of)"
    )

    @extend_schema_field(DataAsOfSerializer)
    def get_data_as_of(self, account: Account) -> dict:
        return DataAsOfSerializer(selectors.data_as_of(account)).data

    class Meta:
        model = Account
        fields = [
            "id",
            "external_id",
            "name",
            "segment",
            "industry",
            "domain",
            "owner_email",
            "parent_external_id",
            "lifecycle_stage",
            "customer_since",
            "created_at",
            "updated_at",
            "data_as_of",
            "health",
            "arr",
            "renewal_on",
            "priority",
        ]


class _AccountRefMixin(serializers.Serializer):
    account_external_id = serializers.CharField(source="account.external_id")


class ContractSerializer(_AccountRefMixin, ModelSerializer):
    class Meta:
        model = Contract
        fields = [
            "id",
            "external_id",
            "account_external_id",
            "product",
            "start_date",
            "end_date",
            "mrr",
            "quantity",
            "billing_period_months",
            "auto_renew",
            "discount",
            "created_at",
            "updated_at",
        ]


class StakeholderSerializer(_AccountRefMixin, ModelSerializer):
    class Meta:
        model = Stakeholder
        fields = [
            "id",
            "external_id",
            "account_external_id",
            "name",
            "email",
            "title",
            "role",
            "is_primary",
            "created_at",
            "updated_at",
        ]


class TicketSerializer(_AccountRefMixin, ModelSerializer):
    class Meta:
        model = Ticket
        fields = [
            "id",
            "external_id",
            "account_external_id",
            "subject",
            "priority",
            "status",
            "opened_at",
            "first_response_at",
            "resolved_at",
            "escalated",
            "agent_contacts",
            "csat",
            "created_at",
            "updated_at",
        ]


class InvoiceSerializer(_AccountRefMixin, ModelSerializer):
    class Meta:
        model = Invoice
        fields = [
            "id",
            "external_id",
            "account_external_id",
            "issued_on",
            "due_on",
            "amount",
            "paid_on",
            "status",
            "failed_attempts",
            "created_at",
            "updated_at",
        ]


class ActivitySerializer(_AccountRefMixin, ModelSerializer):
    author_email = serializers.EmailField(source="author.email", default=None, allow_null=True)
    stakeholder_external_ids = serializers.SerializerMethodField()

    class Meta:
        model = Activity
        fields = [
            "id",
            "account_external_id",
            "author_email",
            "kind",
            "occurred_at",
            "subject",
            "body",
            "stakeholder_external_ids",
            "created_at",
            "updated_at",
        ]

    def get_stakeholder_external_ids(self, obj: Activity) -> list[str]:
        # .all() reads the view's prefetch_related("stakeholders"): no query per row
        return [s.external_id for s in obj.stakeholders.all()]


class MilestoneSerializer(ModelSerializer):
    recorded_by_email = serializers.EmailField(
        source="recorded_by.email", default=None, allow_null=True
    )

    class Meta:
        model = Milestone
        fields = ["kind", "reached_on", "note", "recorded_by_email", "recorded_at"]


class MilestoneInputSerializer(serializers.Serializer):
    """Record or change a milestone (``services.milestone_record`` checks the rest: a day in
    the future is refused)."""

    kind = ChoiceField(choices=Milestone.Kind.choices, default=Milestone.Kind.FIRST_VALUE)
    reached_on = ApiDateField(help_text="the UTC day it was reached, today at the latest")
    note = serializers.CharField(max_length=500, allow_blank=True, default="")


class TimelineEntrySerializer(ModelSerializer):
    data = serializers.JSONField()

    class Meta:
        model = TimelineEntry
        fields = ["id", "occurred_at", "kind", "key", "title", "detail", "data", "created_at"]


class FiniteFloatField(serializers.FloatField):
    """JSON has no infinity: a sum that overflowed is shown as null, not a crash."""

    def to_representation(self, value):
        value = super().to_representation(value)
        return value if math.isfinite(value) else None


class UsageDailySerializer(ModelSerializer):
    value_sum = FiniteFloatField(
        allow_null=True, help_text="sum of event values; null if it overflowed"
    )

    class Meta:
        model = UsageDaily
        fields = ["day", "events", "active_users", "value_sum"]


class ImportRecordSerializer(ModelSerializer):
    user_email = serializers.EmailField(source="user.email", default=None, allow_null=True)
    errors = serializers.ListField(child=serializers.DictField(), help_text="first 100 row errors")
    per_kind = serializers.DictField(help_text="counts per kind")

    class Meta:
        model = ImportRecord
        fields = [
            "uuid",
            "user_email",
            "origin",
            "kind",
            "filename",
            "dry_run",
            "ignore_unknown",
            "status",
            "rows",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "errors",
            "per_kind",
            "created_at",
            "started_at",
            "finished_at",
        ]


# --- intake replies -------------------------------------------------------------------------


class RowErrorSerializer(serializers.Serializer):
    source = serializers.CharField(help_text='"request" for the request body')
    row = serializers.IntegerField(help_text="1-based position in the list; 0 = the whole body")
    column = serializers.CharField(allow_blank=True, help_text="field name; empty = whole row")
    message = serializers.CharField()


class IntakeErrorSerializer(serializers.Serializer):
    """400: nothing was written."""

    errors = RowErrorSerializer(many=True)
    messages = serializers.ListField(
        child=serializers.CharField(), help_text='"request: row N, column C: reason"'
    )
    import_uuid = serializers.UUIDField(
        allow_null=True, required=False, help_text="import record of a rejected import"
    )


class ImportResultSerializer(serializers.Serializer):
    """200: what an import did (or, with dry_run, would do)."""

    import_uuid = serializers.UUIDField(help_text="the import record (see /api/v1/imports/)")
    status = ChoiceField(choices=ImportRecord.Status.choices)
    ok = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    written = serializers.BooleanField()
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    per_kind = serializers.DictField(help_text="counts per kind")
    errors = RowErrorSerializer(many=True)
    messages = serializers.ListField(child=serializers.CharField())


class EventCountsSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField(help_text="new events")
    unchanged = serializers.IntegerField(help_text="duplicates of events already stored")


class TrackReplySerializer(serializers.Serializer):
    success = serializers.BooleanField()
    events = EventCountsSerializer()
    identified = serializers.IntegerField(help_text="identify calls applied")
    grouped = serializers.IntegerField(help_text="group calls applied")
    accounts_created = serializers.IntegerField(help_text="accounts created by group traits.name")
    ignored = serializers.IntegerField(help_text="page/screen/alias calls, accepted and not stored")


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --- request bodies (documentation only: intake validates) ----------------------------------


class AccountRow(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    segment = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    industry = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    owner_email = serializers.EmailField(
        required=False, allow_null=True, allow_blank=True, help_text="a user of this installation"
    )
    customer_since = serializers.DateField(required=False, allow_null=True)
    parent_external_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    domain = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    lifecycle_stage = ChoiceField(
        choices=Account.Lifecycle.choices, required=False, allow_null=True
    )


class ContractRow(serializers.Serializer):
    external_id = serializers.CharField()
    account_external_id = serializers.CharField()
    product = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    start_date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True, help_text="inclusive")
    mrr = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, coerce_to_string=False
    )
    quantity = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    billing_period_months = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    auto_renew = serializers.BooleanField(required=False, allow_null=True)
    discount = serializers.DecimalField(
        max_digits=5,
        decimal_places=4,
        min_value=0,
        max_value=1,
        required=False,
        allow_null=True,
        coerce_to_string=False,
    )


class StakeholderRow(serializers.Serializer):
    external_id = serializers.CharField()
    account_external_id = serializers.CharField()
    name = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    email = serializers.EmailField(required=False, allow_null=True, allow_blank=True)
    title = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    role = ChoiceField(
        choices=Stakeholder.Role.choices, required=False, allow_null=True, allow_blank=True
    )
    is_primary = serializers.BooleanField(required=False, allow_null=True)


class TicketRow(serializers.Serializer):
    external_id = serializers.CharField()
    account_external_id = serializers.CharField()
    subject = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    priority = ChoiceField(choices=Ticket.Priority.choices, required=False, allow_null=True)
    status = ChoiceField(choices=Ticket.Status.choices, required=False, allow_null=True)
    opened_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(required=False, allow_null=True)
    resolved_at = serializers.DateTimeField(required=False, allow_null=True)
    escalated = serializers.BooleanField(required=False, allow_null=True)
    agent_contacts = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    csat = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=5)


class InvoiceRow(serializers.Serializer):
    external_id = serializers.CharField()
    account_external_id = serializers.CharField()
    issued_on = serializers.DateField()
    due_on = serializers.DateField(required=False, allow_null=True)
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, coerce_to_string=False
    )
    paid_on = serializers.DateField(required=False, allow_null=True)
    status = ChoiceField(choices=Invoice.Status.choices, required=False, allow_null=True)
    failed_attempts = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class EventRow(serializers.Serializer):
    account_external_id = serializers.CharField()
    user_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    event = serializers.CharField()
    occurred_at = serializers.DateTimeField(help_text="ISO 8601; no offset = UTC")
    value = serializers.FloatField(required=False, allow_null=True)


ROW_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    "accounts": AccountRow,
    "contracts": ContractRow,
    "stakeholders": StakeholderRow,
    "tickets": TicketRow,
    "invoices": InvoiceRow,
    "events": EventRow,
}


def _bulk_request(kind: str) -> type[serializers.Serializer]:
    """``{"rows": [<kind>Row, ...]}``; a bare JSON list of rows is accepted too."""
    name = f"{kind[:-1].capitalize()}Bulk"  # the schema component's name: ContractBulk
    return type(name, (serializers.Serializer,), {"rows": ROW_SERIALIZERS[kind](many=True)})


BULK_REQUESTS: dict[str, type[serializers.Serializer]] = {
    kind: _bulk_request(kind)
    for kind in ("accounts", "contracts", "stakeholders", "tickets", "invoices")
}


class EventBatchRequest(serializers.Serializer):
    events = EventRow(many=True, help_text="at most settings.EVENT_BATCH_MAX (default 10,000)")


# --- Segment-compatible tracking (documentation only: accounts.tracking parses) -------------


class SegmentContext(serializers.Serializer):
    groupId = serializers.CharField(
        required=False, allow_null=True, help_text="account external id"
    )


class _SegmentCall(serializers.Serializer):
    userId = serializers.CharField(
        required=False, allow_null=True, help_text="userId or anonymousId is required"
    )
    anonymousId = serializers.CharField(required=False, allow_null=True)
    groupId = serializers.CharField(
        required=False, allow_null=True, help_text="account external id (or context.groupId)"
    )
    context = SegmentContext(required=False, allow_null=True)
    timestamp = serializers.DateTimeField(
        required=False, allow_null=True, help_text="default: sentAt, receivedAt, then now"
    )
    sentAt = serializers.DateTimeField(required=False, allow_null=True)
    receivedAt = serializers.DateTimeField(required=False, allow_null=True)
    messageId = serializers.CharField(
        required=False, allow_null=True, help_text="accepted, not used"
    )


class TrackProperties(serializers.Serializer):
    value = serializers.FloatField(required=False, allow_null=True, help_text="the event's value")
    revenue = serializers.FloatField(required=False, allow_null=True, help_text="used if no value")


class GroupTraits(serializers.Serializer):
    name = serializers.CharField(
        required=False, allow_null=True, help_text="creates the account if it does not exist"
    )


class TrackRequest(_SegmentCall):
    event = serializers.CharField()
    properties = TrackProperties(required=False, allow_null=True)


class IdentifyRequest(_SegmentCall):
    traits = serializers.DictField(
        required=False, allow_null=True, help_text="merged into the user's"
    )


class GroupRequest(_SegmentCall):
    groupId = serializers.CharField(help_text="account external id")
    traits = GroupTraits(required=False, allow_null=True)


class SegmentBatchCall(_SegmentCall):
    type = ChoiceField(
        choices=["track", "identify", "group", "page", "screen", "alias"],
        help_text="page, screen and alias are accepted and not stored",
    )
    event = serializers.CharField(required=False, help_text="track only")
    properties = TrackProperties(required=False, allow_null=True)
    traits = serializers.DictField(required=False, allow_null=True)


class SegmentBatchRequest(serializers.Serializer):
    batch = SegmentBatchCall(many=True)
