"""``/api/v1/kpis/``: the KPI report, MRR movements with their accounts, and the cohort
table, for a period and a scope; and ``/api/v1/accounts/<id>/health/…``: an account's latest
health snapshot, its history over a period and what changed between two snapshots.

Interfaces only: parse the query string, call ``metrics.kpis``, return its JSON-ready dict.
The scope is always within what the caller may see (``Account.objects.visible_to``): a CSM
asking for the whole book gets their own accounts, a manager their team's. Bad input is a
400 naming the parameter (``{"end": ["must be after start …"]}``); a ratio without a
denominator is ``null``. Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import datetime as dt

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import R401, R404, ApiPagination
from accounts.api_choices import ChoiceField, ModelSerializer
from accounts.api_dates import (
    DAY,
    VALUE,
    ApiDateField,
    single_value_errors,
    unknown_parameter_errors,
)
from accounts.models import Account
from config.db import replica_reads

from . import kpis, selectors
from .models import Band, HealthSnapshot

# --- input -----------------------------------------------------------------------------------


class QuerySerializer(serializers.Serializer):
    """A query string whose parameters each take one value: a parameter given twice
    (``?segment=SMB&segment=Enterprise``, where DRF would quietly read the last) or given
    empty (``?segment=``, which would quietly mean every account) is a 400 naming it, and so
    is a parameter the endpoint does not take (``?months=abc`` on the cohorts): a report
    silently computed without what the caller asked for looks right and is not. A list's
    query (``lists = True``) leaves that last check to the filter backend, which knows the
    pagination parameters too (``accounts.filters.StrictFilterBackend``)."""

    lists = False

    def to_internal_value(self, data):
        errors = single_value_errors(
            data,
            {
                name: DAY if isinstance(field, serializers.DateField) else VALUE
                for name, field in self.fields.items()
            },
        )
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        errors = {} if self.lists else unknown_parameter_errors(self.initial_data, self.fields)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class PeriodQuerySerializer(QuerySerializer):
    """``start``/``end`` or ``period`` (+ ``date``): the period parameters every door over
    days takes (the KPI endpoints, an account's health history). ``query_period`` turns
    them into ``[start, end)`` with ``kpis.period_resolve``'s checks and messages."""

    start = ApiDateField(
        required=False, help_text="first day of the period (YYYY-MM-DD), inclusive"
    )
    end = ApiDateField(
        required=False, help_text="day after the period (YYYY-MM-DD): the period is [start, end)"
    )
    period = ChoiceField(
        choices=kpis.PERIODS,
        required=False,
        help_text="instead of start/end: the calendar month, quarter or year containing `date`",
    )
    date = ApiDateField(
        required=False, help_text="with `period`: a day in the wanted period (default: today)"
    )


def query_period(query: PeriodQuerySerializer) -> tuple[dt.date, dt.date]:
    """The ``[start, end)`` of a validated period query; a ValidationError (400) naming the
    parameter when it does not make a period (end not after start, period with start …)."""
    data = query.validated_data
    return kpis.period_resolve(
        start=data.get("start"), end=data.get("end"), period=data.get("period"), on=data.get("date")
    )


class KpiQuerySerializer(PeriodQuerySerializer):
    """The KPI endpoints' query."""

    segment = serializers.CharField(
        required=False,
        help_text="account segment, exact (a segment no account you see has is a 400 listing "
        "the ones you see)",
    )
    owner = serializers.CharField(
        required=False, help_text="email of the CSM whose book to compute"
    )
    account = serializers.CharField(required=False, help_text="external id of one account")


# --- output (documentation of the shapes; the views return kpis' dicts as they are) --------


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string"},
            {"type": "number"},
            {"type": "object", "additionalProperties": {"type": "string"}},
        ]
    }
)
class KpiValueField(serializers.JSONField):
    pass


class KpiSerializer(serializers.Serializer):
    value = KpiValueField(
        allow_null=True,
        help_text="decimal string (money, ratios), integer (counts), number (hours, days), "
        "an object of decimal strings (adoption.feature_adoption: each feature's adoption %) "
        "or null (no data: the denominator is 0)",
    )
    unit = serializers.CharField(help_text="%, USD (the CURRENCY), days, hours, accounts …")
    inputs = serializers.DictField(help_text="the figures the value is computed from")


def _section(help_text: str) -> serializers.DictField:
    return serializers.DictField(child=KpiSerializer(), help_text=help_text)


class CohortColumnSerializer(serializers.Serializer):
    k = serializers.IntegerField(help_text="months after the cohort month")
    on = serializers.DateField(help_text="the day the state is measured: 1st of month cohort+k+1")
    customers = serializers.IntegerField()
    logos = serializers.CharField(allow_null=True, help_text="% of the cohort still customers")
    mrr_amount = serializers.CharField()
    mrr = serializers.CharField(allow_null=True, help_text="% of the cohort's first-month MRR")


class CohortRowSerializer(serializers.Serializer):
    cohort = serializers.CharField(help_text="YYYY-MM: month of the first paid day")
    size = serializers.IntegerField()
    first_mrr = serializers.CharField(
        allow_null=True,
        help_text="the cohort's MRR at the end of its first month (on column 0's day); "
        "null while that day is after the period",
    )
    columns = CohortColumnSerializer(many=True)


class KpiPeriodSerializer(serializers.Serializer):
    """The period a report covers, the same object in /kpis/, /kpis/movements/ and
    /kpis/cohorts/."""

    start = serializers.DateField()
    end = serializers.DateField(help_text="exclusive")
    days = serializers.IntegerField(help_text="end − start")
    as_of = serializers.DateField(help_text="end − 1: the day point-in-time figures are read on")
    requested_end = serializers.DateField(help_text="the end asked for")
    to_date = serializers.BooleanField(
        help_text="true when a period reaching past today was cut to end tomorrow, i.e. "
        "through today"
    )
    note = serializers.CharField(required=False, help_text="when to_date: says so in words")


class CohortTableSerializer(serializers.Serializer):
    period = KpiPeriodSerializer(required=False, help_text="absent inside the /kpis/ report")
    scope = serializers.DictField(required=False)
    definition = serializers.CharField()
    rows = CohortRowSerializer(many=True)


class KpiReportSerializer(serializers.Serializer):
    period = KpiPeriodSerializer()
    scope = serializers.DictField(help_text="segment, owner, account as asked")
    revenue = _section("MRR, ARR, customers, MRR movements")
    retention = _section("NRR, GRR, churn and expansion rates, quick ratio, CRR, ARPA, CLV …")
    adoption = _section("seat utilisation, DAU/WAU %, stickiness, features, trend, TTFV")
    support = _section("ticket volume, response and resolution times, FCR, escalations")
    billing = _section("overdue invoices, failed payments, DSO")
    voice_of_customer = _section("NPS, CSAT, CES, response rate, detractor follow-up time")
    cohorts = CohortTableSerializer()
    docs = serializers.CharField(help_text="where each KPI is explained")


class MovementAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    segment = serializers.CharField()
    m0 = serializers.CharField(help_text="MRR on start")
    m1 = serializers.CharField(help_text="MRR on end")
    amount = serializers.CharField(help_text="this account's part of the movement")


class MovementSerializer(serializers.Serializer):
    amount = serializers.CharField()
    accounts = MovementAccountSerializer(many=True)


class MovementsSerializer(serializers.Serializer):
    period = KpiPeriodSerializer()
    scope = serializers.DictField()
    start_mrr = serializers.CharField()
    end_mrr = serializers.CharField()
    movements = serializers.DictField(
        child=MovementSerializer(),
        help_text="new, reactivation, expansion, contraction, churn",
    )


R400 = OpenApiResponse(
    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    description="a parameter is not valid: the parameter and what is wrong",
    examples=[
        OpenApiExample("end before start", value={"end": ["must be after start (2024-03-01)"]}),
        OpenApiExample("unknown segment", value={"segment": ["no account has segment 'XL'"]}),
        OpenApiExample(
            "not YYYY-MM-DD",
            value={"start": ["“2026-1-5” is not a date: use YYYY-MM-DD, e.g. 2026-03-01"]},
        ),
        OpenApiExample(
            "given twice",
            value={"segment": ["given 2 times (“SMB”, “Enterprise”): give it once"]},
        ),
        OpenApiExample("empty", value={"segment": ["empty: give a value, or leave segment out"]}),
    ],
)


# --- views -----------------------------------------------------------------------------------


class _KpiApi(APIView):
    permission_classes = [IsAuthenticated]

    def compute(self, **kwargs) -> dict:
        raise NotImplementedError

    def get(self, request: Request) -> Response:
        query = KpiQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        start, end = query_period(query)
        with replica_reads():  # read-only: a replica serves it when there is one
            report = self.compute(
                start=start,
                end=end,
                segment=data.get("segment"),
                owner=data.get("owner"),
                account=data.get("account"),
                accounts=Account.objects.visible_to(request.user),
            )
        return Response(report)


@extend_schema(
    summary="Every KPI for a period and scope",
    description=(
        "Revenue, retention, adoption, support, billing and survey KPIs for `[start, end)` (or "
        "a `period`), over the accounts you may see, narrowed by segment, owner or account. "
        "Each KPI is `{value, unit, inputs}`; money and ratios are decimal strings, and a "
        "ratio whose denominator is 0 is null. Definitions: docs/metrics.md."
    ),
    parameters=[KpiQuerySerializer],
    responses={200: KpiReportSerializer, 400: R400, 401: R401},
    tags=["kpis"],
)
class KpiReportApi(_KpiApi):
    def compute(self, **kwargs) -> dict:
        return kpis.kpi_report(**kwargs)


@extend_schema(
    summary="MRR movements with the accounts behind each",
    description=(
        "For each account, m0 = MRR on start and m1 = MRR on end. New, reactivation, "
        "expansion, contraction and churn amounts, each with its accounts (largest first). "
        "end_mrr = start_mrr + new + reactivation + expansion − contraction − churn."
    ),
    parameters=[KpiQuerySerializer],
    responses={200: MovementsSerializer, 400: R400, 401: R401},
    tags=["kpis"],
)
class MovementsApi(_KpiApi):
    def compute(self, **kwargs) -> dict:
        return kpis.movements_report(**kwargs)


@extend_schema(
    summary="Cohort retention table",
    description=(
        "Accounts that first paid in `[start, end)`, grouped by that month; column k is their "
        "state on the first day of month cohort+k+1 (while not after `end`): % of logos and % "
        "of first-month MRR (the cohort's MRR at the end of its first month) retained."
    ),
    parameters=[KpiQuerySerializer],
    responses={200: CohortTableSerializer, 400: R400, 401: R401},
    tags=["kpis"],
)
class CohortsApi(_KpiApi):
    def compute(self, **kwargs) -> dict:
        return kpis.cohorts_report(**kwargs)


# --- an account's health: /api/v1/accounts/<account_id>/health/ … (metrics/health_api_urls.py)

HEALTH_DOCS = "docs/metrics.md#health-scores"


class BandField(ChoiceField):
    """A band, or null when there is no score (the model stores "")."""

    def __init__(self, **kwargs):
        super().__init__(choices=Band.choices, allow_null=True, **kwargs)

    def to_representation(self, value):
        return value or None


class HealthComponentSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    score = serializers.FloatField(
        allow_null=True, help_text="0..100 as used (after a component override); null = no data"
    )
    computed_score = serializers.FloatField(
        allow_null=True, help_text="what the model computed, before any override"
    )
    weight = serializers.FloatField(help_text="as configured in the model version")
    share = serializers.FloatField(
        allow_null=True,
        help_text="0..1: the weight scaled over the components with data; null when left out",
    )
    inputs = serializers.DictField(help_text="the measure values and the raw values behind them")
    measure_points = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="points per measure (0..100); null = no data",
    )
    reason = serializers.CharField(allow_blank=True, help_text="the component's score in words")
    overridden = serializers.BooleanField(help_text="an override sets this component's score")


class HealthOverrideSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    component = serializers.CharField(allow_blank=True, help_text="empty: the whole score")
    score = serializers.FloatField(allow_null=True)
    band = serializers.CharField(allow_blank=True)
    reason = serializers.CharField()
    expires_at = serializers.CharField(help_text="ISO 8601")
    created_by = serializers.CharField(allow_blank=True)


class _HealthSnapshotBase(ModelSerializer):
    band = BandField()
    overridden = serializers.SerializerMethodField(
        help_text="an override (of the score, the band or a component) is in force"
    )
    model = serializers.CharField(source="model_version.model.name", help_text="health model")
    model_version = serializers.IntegerField(
        source="model_version.version", help_text="the model's version number that scored it"
    )

    def get_overridden(self, snapshot: HealthSnapshot) -> bool:
        return bool(snapshot.overrides)


class HealthSnapshotSerializer(_HealthSnapshotBase):
    """An account's health on one day, with everything behind the score."""

    score = serializers.FloatField(allow_null=True, help_text="0..100 as shown; null = no data")
    computed_score = serializers.SerializerMethodField(
        help_text="the model's score under an override in force; null without one"
    )
    computed_band = serializers.SerializerMethodField(
        help_text="the model's band under an override in force; null without one"
    )
    components = HealthComponentSerializer(many=True)
    left_out = serializers.ListField(
        child=serializers.CharField(), help_text="keys of the components without data"
    )
    reasons = serializers.ListField(child=serializers.CharField(), help_text="the score in words")
    overrides = HealthOverrideSerializer(many=True, help_text="the overrides in force that day")
    docs = serializers.SerializerMethodField(help_text="where health scores are explained")

    class Meta:
        model = HealthSnapshot
        fields = [
            "account_id",
            "day",
            "score",
            "band",
            "overridden",
            "computed_score",
            "computed_band",
            "components",
            "left_out",
            "reasons",
            "overrides",
            "model",
            "model_version",
            "docs",
        ]

    def get_computed_score(self, snapshot: HealthSnapshot) -> float | None:
        return snapshot.computed_score if snapshot.overrides else None

    @extend_schema_field(BandField())
    def get_computed_band(self, snapshot: HealthSnapshot) -> str | None:
        return (snapshot.computed_band or None) if snapshot.overrides else None

    def get_docs(self, snapshot: HealthSnapshot) -> str:
        return HEALTH_DOCS


class HealthDaySerializer(_HealthSnapshotBase):
    """One day of an account's health history: compact; ``components`` only when asked."""

    components = HealthComponentSerializer(
        many=True, required=False, help_text="only with ?components=true"
    )

    class Meta:
        model = HealthSnapshot
        fields = ["day", "score", "band", "overridden", "model", "model_version", "components"]

    def get_fields(self) -> dict:
        fields = super().get_fields()
        # compact rows (the view says components False): not read at all, since the
        # selector leaves the column deferred and reading it is a query per row. Without
        # the view's word (the schema) the field stays, documented.
        if self.context.get("components") is False:
            del fields["components"]
        return fields


HealthChangesSerializer = type(
    "HealthChangesSerializer",
    (serializers.Serializer,),
    {  # "from" is a Python keyword: the fields are declared as a dict
        "__doc__": "What changed in an account's health between two snapshots, in words.",
        "from": HealthDaySerializer(help_text="the earlier snapshot"),
        "to": HealthDaySerializer(help_text="the later snapshot"),
        "changes": serializers.ListField(
            child=serializers.CharField(),
            help_text='one line per change: the score, then each component ("nothing changed" '
            "when nothing did)",
        ),
    },
)


class HealthHistoryQuerySerializer(PeriodQuerySerializer):
    """An account's health history: the KPI endpoints' period parameters and their checks
    (``query_period``, and ``kpis.period_to_date``'s: a period that starts after today is a
    400), not their scope (segment, owner, account: the account is in the path)."""

    lists = True  # the filter backend refuses what it does not take, page and page_size too

    components = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true: each day with its components (about 3 kB a day instead of 100 bytes)",
    )


HealthChangesQuerySerializer = type(
    "HealthChangesQuerySerializer",
    (QuerySerializer,),
    {
        "from": ApiDateField(
            required=False,
            help_text="the earlier snapshot: of this day or the latest before it (default: "
            "a week before the later snapshot)",
        ),
        "to": ApiDateField(
            required=False,
            help_text="the later snapshot: of this day or the latest before it (default: the "
            "newest)",
        ),
    },
)

R400_HEALTH = OpenApiResponse(
    R400.response,
    description="a parameter is not valid: the parameter and what is wrong",
    examples=[
        OpenApiExample("end before start", value={"end": ["must be after start (2024-03-01)"]}),
        OpenApiExample(
            "a bad date",
            value={
                "start": ["2026-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12"]
            },
        ),
        OpenApiExample(
            "both days come to one snapshot",
            value={
                "from": [
                    "2026-11-12 and to (2026-11-13) both come to the snapshot of 2026-11-11, "
                    "the latest on or before each (there is none after it up to 2026-11-13): "
                    "nothing to compare; give a from before 2026-11-11"
                ]
            },
        ),
    ],
)
_HEALTH_ERRORS = {401: R401, 404: R404}
NO_SNAPSHOT = "This account has no health snapshot yet."


def _visible_account(request: Request, account_id: int) -> Account:
    """The account if the caller may see it (the accounts endpoints' scoping); else a 404
    that does not tell whether it exists."""
    return get_object_or_404(Account.objects.visible_to(request.user), pk=account_id)


@extend_schema(
    summary="An account's latest health score",
    description=(
        "The newest daily health snapshot: score (0..100, null without data) and band as "
        "shown, and under an override in force the model's own score and band beside them; "
        "each component's score, weight, share of the score, inputs and reason; the "
        "components left out for lack of data; the reasons in words; the overrides in force; "
        "the model and version that scored it. 404 when the account has none yet or is not "
        "yours to see."
    ),
    responses={200: HealthSnapshotSerializer, **_HEALTH_ERRORS},
    tags=["health"],
)
class AccountHealthApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, account_id: int) -> Response:
        account = _visible_account(request, account_id)
        snapshot = selectors.health_snapshot_latest(account)
        if snapshot is None:
            raise NotFound(NO_SNAPSHOT)
        return Response(HealthSnapshotSerializer(snapshot).data)


@extend_schema(
    summary="An account's health history",
    description=(
        "The account's daily snapshots in `[start, end)` (or a `period` with `date`: the "
        "period parameters of /api/v1/kpis/ with its checks, so a period that starts after "
        "today is a 400), oldest first, paginated (`page`, `page_size`): day, score, band, "
        "whether an override was in force, model and version. Without `start`, `end`, "
        "`period` or `date`: the 90 days ending with the newest snapshot (the last 90 days to "
        "yesterday, UTC, when there is none: an empty list). `components=true` adds each "
        "day's components. Days without a snapshot are not listed. It takes no other "
        "parameter: the KPI scope (`segment`, `owner`, `account`) or any other is a 400."
    ),
    parameters=[HealthHistoryQuerySerializer],
    responses={200: HealthDaySerializer(many=True), 400: R400_HEALTH, **_HEALTH_ERRORS},
    tags=["health"],
)
class AccountHealthHistoryApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated]
    pagination_class = ApiPagination
    serializer_class = HealthDaySerializer
    queryset = HealthSnapshot.objects.none()  # the model, for the schema; get_queryset reads
    # read here, not by a filterset: the filter backend takes them with page and page_size
    query_parameters = tuple(HealthHistoryQuerySerializer().fields)

    def get_queryset(self):
        query = HealthHistoryQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        named = set(query.validated_data) & {"start", "end", "period", "date"}
        start, end = query_period(query) if named else (None, None)
        if named:  # the KPI endpoints' check: a period that starts after today is a 400
            kpis.period_to_date(start, end)
        self.components = query.validated_data["components"]
        account = _visible_account(self.request, self.kwargs["account_id"])
        if not named:  # no period asked for: the last 90 days of snapshots
            start, end = selectors.health_history_default(account)
        return selectors.health_snapshot_history(
            account, start=start, end=end, components=self.components
        )

    def get_serializer_context(self) -> dict:
        components = getattr(self, "components", False)  # set by get_queryset
        return {**super().get_serializer_context(), "components": components}


@extend_schema(
    summary="What changed in an account's health",
    description=(
        "Two snapshots compared in words, component by component, as on the account page "
        '("usage fell from 70 to 30: active users 14 → 6 of 20 seats"). `to`: the snapshot '
        "of that day or the latest before it (default: the newest); `from`: likewise "
        "(default: a week before the later one). A 400 on `from` says which snapshot each "
        "day came to when they cannot be compared: both days coming to the same snapshot, "
        "or no snapshot on or before a day (with the earliest there is)."
    ),
    parameters=[HealthChangesQuerySerializer],
    responses={200: HealthChangesSerializer, 400: R400_HEALTH, **_HEALTH_ERRORS},
    tags=["health"],
)
class AccountHealthChangesApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, account_id: int) -> Response:
        query = HealthChangesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        account = _visible_account(request, account_id)
        found = selectors.health_changes(
            account,
            before_on=query.validated_data.get("from"),
            after_on=query.validated_data.get("to"),
        )
        if found is None:
            raise NotFound(NO_SNAPSHOT)
        return Response(HealthChangesSerializer(found).data)
