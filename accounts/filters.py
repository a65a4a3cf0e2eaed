"""Query filters of the read API (django-filter). A bad value (``?updated_since=tomorrow``)
is a 400 naming the parameter, never a 500.

Each filter names the index or column it leans on where that matters for large books."""

from __future__ import annotations

import django_filters as filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.mixins import ListModelMixin

from . import timeline
from .api_dates import (
    DAY,
    INSTANT,
    VALUE,
    ApiDateFilter,
    ApiInstantFilter,
    single_value_errors,
    unknown_parameter_errors,
)
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
    """The API's filter backend (``REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]``), so every
    FilterSet of the API goes through it.

    django-filter reads an empty value, and a yes/no filter any word it does not know, as
    "no filter", and a parameter given twice as its last value. That hides a client's
    mistake (``?segment=`` or ``?escalated=yes`` lists every row; ``?segment=SMB&
    segment=Enterprise`` lists the Enterprise ones), so each is a 400 naming the parameter,
    with the KPI endpoints' words (``single_value_errors``). A multi-valued filter
    (``/ctas/?status=open&status=in_progress``) may repeat, never be empty.

    On a list (a GET of a ListAPIView), a parameter the list does not take is a 400 too, in
    the KPI endpoints' words (``unknown_parameter_errors``): ``?update_since=`` (for
    ``updated_since``) would otherwise list every row. A list takes its filters, its
    paginator's parameters (as its schema documents them), the parameters the view reads
    itself (its ``query_parameters``) and DRF's ``format``. Detail and write operations
    are not checked here.

    A value that is none of a choice filter's choices (``?status=bogus``) is a 400 naming
    the value and listing the valid ones, as the KPI endpoints' ``period`` says it
    (``name_the_choices``), instead of Django's "Select a valid choice. bogus is not one of
    the available choices."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        params = request.query_params
        single, errors = {}, {}
        if isinstance(view, ListModelMixin) and request.method in ("GET", "HEAD"):
            errors = unknown_parameter_errors(params, _list_takes(view, filterset))
        if filterset is None:
            if errors:
                raise ValidationError(errors)
            return filterset
        for name, f in filterset.filters.items():
            if isinstance(f, filters.MultipleChoiceFilter):
                if any(not v.strip() for v in params.getlist(name)):
                    errors[name] = [f"empty: give {VALUE}, or leave {name} out"]
            else:
                single[name] = _WHAT.get(type(f), VALUE)
        errors |= single_value_errors(params, single)
        for name, f in filterset.filters.items():
            values = params.getlist(name)
            if isinstance(f, filters.BooleanFilter) and set(values) - BOOLEANS:
                errors.setdefault(name, [f"must be true or false, got {values[0]!r}"])
        if errors:
            raise ValidationError(errors)
        name_the_choices(filterset.form)
        return filterset


def name_the_choices(form: forms.Form) -> None:
    """Give each choice field of ``form`` (a FilterSet's) the error ``"bogus" is not a valid
    choice: open, pending, closed.``, its valid values listed as the client types them. A
    model choice (a queryset's rows) would list rows: it keeps its own words."""
    for field in form.fields.values():
        if isinstance(field, forms.ChoiceField) and not isinstance(field, forms.ModelChoiceField):
            listed = ", ".join(choice_values(field)).replace("%", "%%")  # rendered with params
            field.error_messages["invalid_choice"] = f'"%(value)s" is not a valid choice: {listed}.'


def choice_values(field: forms.ChoiceField) -> list[str]:
    """The values ``field`` accepts, in its order: its choices' keys (those of a group's
    too), without the empty one django-filter adds for "no filter"."""
    values = []
    for key, label in field.choices:
        if isinstance(label, list | tuple):  # a group: (name, [(key, label), …])
            values += [str(k) for k, _ in label]
        else:
            values.append(str(key))
    return [v for v in values if v not in field.empty_values]


def _list_takes(view, filterset) -> list[str]:
    """The query parameters a list takes, in the order its schema lists them."""
    paginator = view.paginator
    paging = paginator.get_schema_operation_parameters(view) if paginator else []
    return [
        *(filterset.filters if filterset is not None else ()),
        *getattr(view, "query_parameters", ()),
        *(p["name"] for p in paging),
    ]


BOOLEANS = {"true", "false", "True", "False", "1", "0"}  # what NullBooleanField reads
_WHAT = {ApiDateFilter: DAY, ApiInstantFilter: INSTANT}


class ApiFilterSet(filters.FilterSet):
    """A FilterSet whose ``ranges`` name its (low, high) pairs of filters: a high before its
    low (``?since=2026-11-20&until=2026-11-01``) is a 400 on the high naming both, as the
    KPI endpoints' ``end`` says it ("must be after start (…)"), not an empty list that
    reads as "nothing happened". A high of ``lte`` may equal its low (one day), one of
    ``lt`` may not (nothing is before it and at or after the low)."""

    ranges: tuple[tuple[str, str], ...] = ()

    def is_valid(self) -> bool:
        if not super().is_valid():
            return False
        data = self.form.cleaned_data
        for low, high in self.ranges:
            a, b = data.get(low), data.get(high)
            if a is None or b is None:
                continue
            inclusive = self.filters[high].lookup_expr == "lte"
            if b < a or (b == a and not inclusive):
                after = "on or after" if inclusive else "after"
                self.form.add_error(
                    high,
                    forms.ValidationError(
                        "%(message)s",
                        code="invalid",
                        params={
                            "message": f"must be {after} {low} ({self.data[low]}), "
                            f"got {self.data[high]}"
                        },
                    ),
                )
        return self.form.is_valid()


def _timeline_kinds() -> list[tuple[str, str]]:
    # read when validating, not when the filter is declared: the apps above accounts add
    # theirs (``timeline.kinds_register``)
    return [(kind, kind) for kind in timeline.kinds()]


class _AccountExternalIdFilterSet(ApiFilterSet):
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
    updated_since = ApiInstantFilter(
        method="_updated_since",
        help_text="accounts whose own fields or standing (health, arr, renewal_on, priority) "
        "changed at or after it (after the nightly run every account counts as changed: its "
        "health is as of a new day)",
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

    def _updated_since(self, queryset: QuerySet, name: str, value) -> QuerySet:
        # the row shows the standing's fields (metrics.AccountStanding, refreshed nightly and
        # by the incremental recompute an import or a CTA change schedules, contracts too)
        return queryset.filter(Q(updated_at__gte=value) | Q(standing__updated_at__gte=value))


class ContractFilter(_AccountExternalIdFilterSet):
    external_id = filters.CharFilter()
    product = filters.CharFilter()
    active_on = ApiDateFilter(
        method="_active_on", help_text="contracts in service on this date (YYYY-MM-DD)"
    )
    ends_after = ApiDateFilter(field_name="end_date", lookup_expr="gte")
    ends_before = ApiDateFilter(field_name="end_date", lookup_expr="lte")
    ranges = (("ends_after", "ends_before"),)

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
    opened_after = ApiInstantFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = ApiInstantFilter(field_name="opened_at", lookup_expr="lt")
    ranges = (("opened_after", "opened_before"),)

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
    ranges = (("issued_after", "issued_before"),)

    class Meta:
        model = Invoice
        fields: list[str] = []


class ActivityFilter(_AccountExternalIdFilterSet):
    kind = filters.ChoiceFilter(choices=ActivityKind.choices)
    author_email = filters.CharFilter(field_name="author__email", lookup_expr="iexact")
    occurred_after = ApiInstantFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = ApiInstantFilter(field_name="occurred_at", lookup_expr="lt")
    ranges = (("occurred_after", "occurred_before"),)

    class Meta:
        model = Activity
        fields: list[str] = []


class TimelineFilter(ApiFilterSet):
    kind = filters.ChoiceFilter(
        choices=_timeline_kinds, help_text="e.g. ticket_opened, payment_failed"
    )
    since = ApiInstantFilter(field_name="occurred_at", lookup_expr="gte")
    until = ApiInstantFilter(
        field_name="occurred_at",
        lookup_expr="lt",
        help_text="only facts before this instant; the timeline includes facts dated ahead",
    )
    ranges = (("since", "until"),)

    class Meta:
        model = TimelineEntry
        fields: list[str] = []


class UsageDailyFilter(ApiFilterSet):
    # "from" is a Python keyword: declared through the dict below
    ranges = (("from", "to"),)

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
