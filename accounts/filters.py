"""Query filters of the read API (django-filter). A bad value (``?updated_since=tomorrow``)
is a 400 naming the parameter, never a 500.

Each filter names the index or column it leans on where that matters for large books."""

from __future__ import annotations

import datetime as dt

import django_filters as filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

from .api_dates import ApiDateFilter
from .models import (
    Account,
    AccountLifecycle,
    Activity,
    ActivityKind,
    Contract,
    ImportRecord,
    Invoice,
    InvoiceStatus,
    Stakeholder,
    StakeholderRole,
    Ticket,
    TicketPriority,
    TicketStatus,
    TimelineEntry,
    UsageDaily,
)
from .serializers import HEALTH_BANDS


class StrictFilterBackend(DjangoFilterBackend):
    """The API's filter backend (``REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]``).

    django-filter reads an empty value, and a yes/no filter any word it does not know, as
    "no filter". That hides a client's mistake (``?status=`` or ``?escalated=yes`` lists
    every row), so it is a 400 naming the parameter; only a text filter may be empty."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return filterset
        errors = {}
        for name, f in filterset.filters.items():
            values = request.query_params.getlist(name)
            if f.field_class is not forms.CharField and "" in values:
                errors[name] = ["must not be empty (leave the parameter out to not filter)"]
            elif isinstance(f, filters.BooleanFilter) and set(values) - BOOLEANS:
                errors[name] = [f"must be true or false, got {values[0]!r}"]
        if errors:
            raise ValidationError(errors)
        return filterset


BOOLEANS = {"true", "false", "True", "False", "1", "0"}  # what NullBooleanField reads


class UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601, converted to UTC. PostgreSQL refuses offsets beyond ±15:59 ("-19:05" is
    valid ISO 8601 and Python), and the stored timestamps are UTC anyway."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Out of range: not a timestamp we can store.") from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class _AccountExternalIdFilterSet(filters.FilterSet):
    account_external_id = filters.CharFilter(
        field_name="account__external_id", help_text="the account's external id"
    )


class AccountFilter(filters.FilterSet):
    external_id = filters.CharFilter(help_text="exact external id")
    segment = filters.CharFilter(  # indexed
        help_text="exact segment, e.g. Enterprise; one no account has gives an empty page"
    )
    owner_email = filters.CharFilter(
        field_name="owner__email", lookup_expr="iexact", help_text="the owning CSM's email"
    )
    lifecycle_stage = filters.ChoiceFilter(choices=AccountLifecycle.choices)
    parent_external_id = filters.CharFilter(field_name="parent__external_id")
    updated_since = UtcIsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text="ISO 8601 timestamp: accounts changed at or after it",
    )
    q = filters.CharFilter(method="_search", help_text="name or external id contains")
    band = filters.ChoiceFilter(
        field_name="standing__band",
        choices=HEALTH_BANDS,
        help_text="the band of the latest health score (accounts without a score never match)",
    )

    class Meta:
        model = Account
        fields: list[str] = []

    def _search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(external_id__icontains=value))


class ContractFilter(_AccountExternalIdFilterSet):
    external_id = filters.CharFilter()
    product = filters.CharFilter()
    active_on = ApiDateFilter(
        method="_active_on", help_text="contracts in service on this date (YYYY-MM-DD)"
    )
    ends_after = ApiDateFilter(field_name="end_date", lookup_expr="gte")
    ends_before = ApiDateFilter(field_name="end_date", lookup_expr="lte")

    class Meta:
        model = Contract
        fields: list[str] = []

    def _active_on(self, queryset: QuerySet, name: str, value) -> QuerySet:
        # end_date is inclusive; empty = open-ended (contract_cover_idx)
        return queryset.filter(
            Q(end_date__isnull=True) | Q(end_date__gte=value), start_date__lte=value
        )


class StakeholderFilter(_AccountExternalIdFilterSet):
    external_id = filters.CharFilter()
    email = filters.CharFilter(lookup_expr="iexact")
    role = filters.ChoiceFilter(choices=StakeholderRole.choices)
    is_primary = filters.BooleanFilter()

    class Meta:
        model = Stakeholder
        fields: list[str] = []


class TicketFilter(_AccountExternalIdFilterSet):
    external_id = filters.CharFilter()
    status = filters.ChoiceFilter(choices=TicketStatus.choices)
    priority = filters.ChoiceFilter(choices=TicketPriority.choices)
    escalated = filters.BooleanFilter()
    opened_after = UtcIsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = UtcIsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = Ticket
        fields: list[str] = []


class InvoiceFilter(_AccountExternalIdFilterSet):
    external_id = filters.CharFilter()
    status = filters.ChoiceFilter(choices=InvoiceStatus.choices)
    issued_after = ApiDateFilter(field_name="issued_on", lookup_expr="gte")
    issued_before = ApiDateFilter(field_name="issued_on", lookup_expr="lte")
    unpaid = filters.BooleanFilter(
        field_name="paid_on", lookup_expr="isnull", help_text="true: not paid yet"
    )

    class Meta:
        model = Invoice
        fields: list[str] = []


class ActivityFilter(_AccountExternalIdFilterSet):
    kind = filters.ChoiceFilter(choices=ActivityKind.choices)
    author_email = filters.CharFilter(field_name="author__email", lookup_expr="iexact")
    occurred_after = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Activity
        fields: list[str] = []


class TimelineFilter(filters.FilterSet):
    kind = filters.CharFilter(help_text="e.g. ticket_opened, payment_failed")
    since = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(
        field_name="occurred_at",
        lookup_expr="lt",
        help_text="only facts before this instant; the timeline includes facts dated ahead",
    )

    class Meta:
        model = TimelineEntry
        fields: list[str] = []


class UsageDailyFilter(filters.FilterSet):
    # "from" is a Python keyword: declared through the dict below
    class Meta:
        model = UsageDaily
        fields: list[str] = []


UsageDailyFilter.base_filters["from"] = ApiDateFilter(
    field_name="day", lookup_expr="gte", help_text="first day (YYYY-MM-DD), inclusive"
)
UsageDailyFilter.base_filters["to"] = ApiDateFilter(
    field_name="day", lookup_expr="lte", help_text="last day (YYYY-MM-DD), inclusive"
)


class ImportRecordFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ImportRecord.Status.choices)
    origin = filters.ChoiceFilter(choices=ImportRecord.Origin.choices)
    kind = filters.CharFilter()

    class Meta:
        model = ImportRecord
        fields: list[str] = []
