"""``/api/v1/kpis/``: the KPI report, MRR movements with their accounts, and the cohort
table, for a period and a scope.

Interfaces only: parse the query string, call ``metrics.kpis``, return its JSON-ready dict.
The scope is always within what the caller may see (``Account.objects.visible_to``): a CSM
asking for the whole book gets their own accounts, a manager their team's. Bad input is a
400 naming the parameter (``{"end": ["must be after start …"]}``); a ratio without a
denominator is ``null``. Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import R401
from accounts.models import Account
from config.db import replica_reads

from . import kpis

# --- input -----------------------------------------------------------------------------------


class KpiQuerySerializer(serializers.Serializer):
    start = serializers.DateField(
        required=False, help_text="first day of the period (YYYY-MM-DD), inclusive"
    )
    end = serializers.DateField(
        required=False, help_text="day after the period (YYYY-MM-DD): the period is [start, end)"
    )
    period = serializers.ChoiceField(
        choices=kpis.PERIODS,
        required=False,
        help_text="instead of start/end: the calendar month, quarter or year containing `date`",
    )
    date = serializers.DateField(
        required=False, help_text="with `period`: a day in the wanted period (default: today)"
    )
    segment = serializers.CharField(required=False, allow_blank=True, help_text="account segment")
    owner = serializers.CharField(
        required=False, allow_blank=True, help_text="email of the CSM whose book to compute"
    )
    account = serializers.CharField(
        required=False, allow_blank=True, help_text="external id of one account"
    )


# --- output (documentation of the shapes; the views return kpis' dicts as they are) --------


class KpiSerializer(serializers.Serializer):
    value = serializers.JSONField(
        allow_null=True,
        help_text="decimal string (money, ratios), integer (counts), number (hours, days) or null "
        "(no data: the denominator is 0)",
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


class CohortTableSerializer(serializers.Serializer):
    period = serializers.DictField(required=False)
    scope = serializers.DictField(required=False)
    definition = serializers.CharField()
    rows = CohortRowSerializer(many=True)


class KpiReportSerializer(serializers.Serializer):
    period = serializers.DictField(
        help_text="start, end (exclusive), days, as_of (= end − 1), requested_end, to_date "
        "(true when a period reaching past today was cut to end tomorrow, i.e. through "
        "today) and then a note saying so"
    )
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
    period = serializers.DictField()
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
        start, end = kpis.period_resolve(
            start=data.get("start"),
            end=data.get("end"),
            period=data.get("period"),
            on=data.get("date"),
        )
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
