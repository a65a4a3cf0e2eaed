"""The REST API under ``/api/v1/``: reads of the customer data, bulk upserts per kind, an
event batch, and Segment-compatible tracking.

One view per operation. Writes go through the same intake code as the import command and
the upload page (``accounts.intake`` + ``services.import_record_run``), so the rules and the
``row N, column C: reason`` messages are the same at every door.

Who may do what:
* reads: any valid token (read or write scope) or a signed-in session; rows are scoped with
  ``Account.objects.visible_to(user)``: a detail the user may not see is a 404, never a 403;
* writes (bulk, events, tracking): a write-scope token (or a session) of an Admin; a CSM or a
  Manager gets 403, so does a read-only token.

List views are DRF generics so that drf-spectacular documents their django-filter parameters
and pagination from the same classes that run them (the schema cannot drift from the code).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import (
    NotFound,
    ParseError,
    PermissionDenied,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import filters, intake, selectors, serializers, services, tracking
from .api_dates import VALUE, single_value_errors
from .authentication import WritesNeedWriteScope
from .intake import RowError
from .models import (
    Account,
    Activity,
    ApiToken,
    Contract,
    ImportRecord,
    Invoice,
    Milestone,
    Role,
    Stakeholder,
    Ticket,
    TimelineEntry,
    UsageDaily,
)

SOURCE = "request"  # the source name in error messages: "request: row 3, column mrr: ..."

# --- auth, permissions, pagination ----------------------------------------------------------


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Documents ApiTokenAuthentication: a Bearer token, or HTTP Basic with the token as the
    user name (Segment's write key)."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = ["tokenAuth", "writeKeyAuth"]

    def get_security_requirement(self, auto_schema):
        return [{"tokenAuth": []}, {"writeKeyAuth": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <token>` (or `Token <token>`); "
                "create one with `manage.py create_api_token`",
            },
            {
                "type": "http",
                "scheme": "basic",
                "description": "HTTP Basic with the token as user name and no password "
                "(Segment's write key)",
            },
        ]


class CanWriteCustomerData(BasePermission):
    """Admins only, and with a write-scope token (a session counts as write)."""

    message = "Only an Admin may write customer data."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        if isinstance(request.auth, ApiToken) and request.auth.scope != ApiToken.Scope.WRITE:
            self.message = "This token is read-only: writes need a token with write scope."
            return False
        return user.role == Role.ADMIN


class ApiPagination(PageNumberPagination):
    """``page`` from 1 (a page past the end is a 404; an empty page or one that is not a
    whole number from 1 is a 400); ``page_size`` from 1, above 1000 is capped; a size that
    is not a whole number from 1 is a 400 (it used to fall back to the default silently).
    Either given twice is a 400, like a filter given twice."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int:
        raw = self._given(request, self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError(
                {self.page_size_query_param: [f"must be a whole number from 1, got {raw!r}"]}
            )
        return min(size, self.max_page_size)

    def get_page_number(self, request: Request, paginator) -> int:
        """DRF reads an empty ``page=`` as page 1 and any other non-number as a 404 "Invalid
        page": both are a 400 that says what was wrong, like ``page_size``."""
        raw = self._given(request, self.page_query_param)
        if raw is None:
            return 1
        if raw in self.last_page_strings:
            return paginator.num_pages
        try:
            number = int(raw)
        except ValueError:
            number = 0
        if number < 1:
            raise ValidationError(
                {self.page_query_param: [f"must be a whole number from 1, got {raw!r}"]}
            )
        return number

    @staticmethod
    def _given(request: Request, name: str) -> str | None:
        """The parameter's one value; given twice (``?page_size=5&page_size=500``, which DRF
        reads as the last) it is a 400 in the filters' words."""
        if len(request.query_params.getlist(name)) > 1:
            raise ValidationError(single_value_errors(request.query_params, {name: VALUE}))
        return request.query_params.get(name)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters


def _scoped_to_visible_accounts(queryset, user):
    """Rows of the accounts the user may see. An admin sees every account: no subquery."""
    accounts = Account.objects.visible_to(user)
    if not accounts.query.has_filters():
        return queryset
    return queryset.filter(account__in=accounts)


# Error replies, documented once and reused by every operation.
R401 = OpenApiResponse(serializers.DetailSerializer, description="no, bad or revoked token")
R403 = OpenApiResponse(
    serializers.DetailSerializer, description="not an Admin, or a read-only token"
)
R404 = OpenApiResponse(serializers.DetailSerializer, description="not found, or not visible to you")
R400_FILTER = OpenApiResponse(
    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    description="a filter or page value is not valid, or a parameter is given twice or is not "
    "one the list takes: the parameter and what is wrong",
)
R400_INTAKE = OpenApiResponse(
    serializers.IntakeErrorSerializer,
    description="rejected: every error as `row N, column C: reason`; nothing was written",
)
R413 = OpenApiResponse(
    serializers.IntakeErrorSerializer, description="too many rows or too large a body"
)
R415 = OpenApiResponse(serializers.DetailSerializer, description="the body is not JSON")
LIST_ERRORS = {400: R400_FILTER, 401: R401, 404: R404}
DETAIL_ERRORS = {401: R401, 404: R404}
WRITE_ERRORS = {400: R400_INTAKE, 401: R401, 403: R403, 413: R413, 415: R415}


# --- reads -----------------------------------------------------------------------------------


class _ListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated]
    pagination_class = ApiPagination


class _DetailApi(generics.RetrieveAPIView):
    permission_classes = [IsAuthenticated]


def _list_schema(kind: str, serializer, **extra):
    return extend_schema(
        summary=f"List {kind}",
        responses={200: serializer(many=True), **LIST_ERRORS},
        tags=[kind],
        **extra,
    )


def _detail_schema(kind: str, serializer, **extra):
    return extend_schema(
        summary=f"One of the {kind}",
        responses={200: serializer, **DETAIL_ERRORS},
        tags=[kind],
        **extra,
    )


def _accounts(user):
    # data_as_of: how current each account's data is, as subqueries (no query per row);
    # with_standing: health, ARR, renewal and priority, joined (no query per row either)
    return selectors.with_data_as_of(
        selectors.with_standing(Account.objects.visible_to(user).select_related("owner", "parent"))
    )


@_list_schema("accounts", serializers.AccountSerializer)
class AccountListApi(_ListApi):
    queryset = Account.objects.none()  # the model, for the schema; get_queryset scopes
    serializer_class = serializers.AccountSerializer
    filterset_class = filters.AccountFilter

    def get_queryset(self):
        return _accounts(self.request.user).order_by("name", "id")


@_detail_schema("accounts", serializers.AccountSerializer)
class AccountDetailApi(_DetailApi):
    queryset = Account.objects.none()
    serializer_class = serializers.AccountSerializer

    def get_queryset(self):
        return _accounts(self.request.user)


def _contracts(user):
    return _scoped_to_visible_accounts(Contract.objects.select_related("account"), user)


@_list_schema("contracts", serializers.ContractSerializer)
class ContractListApi(_ListApi):
    queryset = Contract.objects.none()
    serializer_class = serializers.ContractSerializer
    filterset_class = filters.ContractFilter

    def get_queryset(self):
        return _contracts(self.request.user).order_by("account_id", "start_date", "id")


@_detail_schema("contracts", serializers.ContractSerializer)
class ContractDetailApi(_DetailApi):
    queryset = Contract.objects.none()
    serializer_class = serializers.ContractSerializer

    def get_queryset(self):
        return _contracts(self.request.user)


def _stakeholders(user):
    return _scoped_to_visible_accounts(Stakeholder.objects.select_related("account"), user)


@_list_schema("stakeholders", serializers.StakeholderSerializer)
class StakeholderListApi(_ListApi):
    queryset = Stakeholder.objects.none()
    serializer_class = serializers.StakeholderSerializer
    filterset_class = filters.StakeholderFilter

    def get_queryset(self):
        return _stakeholders(self.request.user).order_by("account_id", "name", "id")


@_detail_schema("stakeholders", serializers.StakeholderSerializer)
class StakeholderDetailApi(_DetailApi):
    queryset = Stakeholder.objects.none()
    serializer_class = serializers.StakeholderSerializer

    def get_queryset(self):
        return _stakeholders(self.request.user)


def _tickets(user):
    return _scoped_to_visible_accounts(Ticket.objects.select_related("account"), user)


@_list_schema("tickets", serializers.TicketSerializer)
class TicketListApi(_ListApi):
    queryset = Ticket.objects.none()
    serializer_class = serializers.TicketSerializer
    filterset_class = filters.TicketFilter

    def get_queryset(self):
        return _tickets(self.request.user).order_by("-opened_at", "-id")


@_detail_schema("tickets", serializers.TicketSerializer)
class TicketDetailApi(_DetailApi):
    queryset = Ticket.objects.none()
    serializer_class = serializers.TicketSerializer

    def get_queryset(self):
        return _tickets(self.request.user)


def _invoices(user):
    return _scoped_to_visible_accounts(Invoice.objects.select_related("account"), user)


@_list_schema("invoices", serializers.InvoiceSerializer)
class InvoiceListApi(_ListApi):
    queryset = Invoice.objects.none()
    serializer_class = serializers.InvoiceSerializer
    filterset_class = filters.InvoiceFilter

    def get_queryset(self):
        return _invoices(self.request.user).order_by("-issued_on", "-id")


@_detail_schema("invoices", serializers.InvoiceSerializer)
class InvoiceDetailApi(_DetailApi):
    queryset = Invoice.objects.none()
    serializer_class = serializers.InvoiceSerializer

    def get_queryset(self):
        return _invoices(self.request.user)


def _activities(user):
    qs = Activity.objects.select_related("account", "author").prefetch_related("stakeholders")
    return _scoped_to_visible_accounts(qs, user)


@_list_schema("activities", serializers.ActivitySerializer)
class ActivityListApi(_ListApi):
    queryset = Activity.objects.none()
    serializer_class = serializers.ActivitySerializer
    filterset_class = filters.ActivityFilter

    def get_queryset(self):
        return _activities(self.request.user).order_by("-occurred_at", "-id")


@_detail_schema("activities", serializers.ActivitySerializer)
class ActivityDetailApi(_DetailApi):
    queryset = Activity.objects.none()
    serializer_class = serializers.ActivitySerializer

    def get_queryset(self):
        return _activities(self.request.user)


class _PerAccountListApi(_ListApi):
    """A list under ``accounts/<account_id>/``: 404 unless the account is visible."""

    def visible_account(self) -> Account:
        return get_object_or_404(
            Account.objects.visible_to(self.request.user), pk=self.kwargs["account_id"]
        )


@_list_schema("timeline", serializers.TimelineEntrySerializer)
class TimelineListApi(_PerAccountListApi):
    """The account's timeline, newest first. Unlike the account page, it includes facts
    dated ahead (a contract's end is recorded when the contract is imported): the API hands
    out the whole record, and ``until`` (an instant, e.g. now) leaves them out."""

    queryset = TimelineEntry.objects.none()
    serializer_class = serializers.TimelineEntrySerializer
    filterset_class = filters.TimelineFilter

    def get_queryset(self):
        account = self.visible_account()
        return TimelineEntry.objects.filter(account=account).order_by("-occurred_at", "-id")


@_list_schema("usage", serializers.UsageDailySerializer)
class UsageDailyListApi(_PerAccountListApi):
    """The account's daily usage rollup (UTC days), oldest first; ``from``/``to`` bound it."""

    queryset = UsageDaily.objects.none()
    serializer_class = serializers.UsageDailySerializer
    filterset_class = filters.UsageDailyFilter

    def get_queryset(self):
        account = self.visible_account()
        return UsageDaily.objects.filter(account=account).order_by("day")


R400_FIELDS = OpenApiResponse(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
        },
    },
    description="refused: each field with what is wrong with it (`detail` when the body is "
    "not JSON); nothing was written",
)
MILESTONE_WRITE_ERRORS = {401: R401, 403: R403, 404: R404}


def _visible_account(request: Request, account_id: int) -> Account:
    return get_object_or_404(Account.objects.visible_to(request.user), pk=account_id)


def _milestones(account: Account):
    return Milestone.objects.filter(account=account).select_related("recorded_by")


@extend_schema(tags=["milestones"])
class MilestoneListApi(_PerAccountListApi):
    """The milestones a CSM recorded for the account (for now: the day of first value,
    which time to first value counts when it is earlier than the first-value event)."""

    queryset = Milestone.objects.none()
    serializer_class = serializers.MilestoneSerializer
    permission_classes = [WritesNeedWriteScope]

    @extend_schema(
        summary="List an account's milestones",
        responses={200: serializers.MilestoneSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return _milestones(self.visible_account()).order_by("kind")

    @extend_schema(
        summary="Record or change a milestone",
        request=serializers.MilestoneInputSerializer,
        responses={
            200: serializers.MilestoneSerializer,
            201: serializers.MilestoneSerializer,
            400: R400_FIELDS,
            415: R415,
            **MILESTONE_WRITE_ERRORS,
        },
    )
    def post(self, request: Request, account_id: int) -> Response:
        """201 when recorded, 200 when an existing one changed. The same rules as the
        account page: a day in the future is refused (400 naming ``reached_on``)."""
        account = _visible_account(request, account_id)
        if not services.milestone_editable_by(request.user, account, seen=True):
            raise PermissionDenied("You may not record milestones of this account.")
        data = serializers.MilestoneInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        existed = Milestone.objects.filter(account=account, kind=d["kind"]).exists()
        milestone = services.milestone_record(
            account=account,
            kind=d["kind"],
            reached_on=d["reached_on"],
            note=d["note"],
            by=request.user,
            check_access=False,  # checked above
        )
        return Response(
            serializers.MilestoneSerializer(milestone).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


@extend_schema(tags=["milestones"])
class MilestoneDetailApi(APIView):
    permission_classes = [WritesNeedWriteScope]

    @extend_schema(
        summary="One of an account's milestones",
        responses={200: serializers.MilestoneSerializer, **DETAIL_ERRORS},
    )
    def get(self, request: Request, account_id: int, kind: str) -> Response:
        account = _visible_account(request, account_id)
        milestone = get_object_or_404(_milestones(account), kind=kind)
        return Response(serializers.MilestoneSerializer(milestone).data)

    @extend_schema(
        summary="Clear a milestone",
        responses={204: None, **MILESTONE_WRITE_ERRORS},
    )
    def delete(self, request: Request, account_id: int, kind: str) -> Response:
        """204 when cleared; 404 when none is recorded (or the account is not yours)."""
        account = _visible_account(request, account_id)
        if not services.milestone_editable_by(request.user, account, seen=True):
            raise PermissionDenied("You may not clear milestones of this account.")
        if kind not in Milestone.Kind.values:
            raise NotFound(f"No milestone kind {kind!r}.")
        if not services.milestone_clear(
            account=account, kind=kind, by=request.user, check_access=False
        ):
            raise NotFound("No such milestone is recorded.")
        return Response(status=status.HTTP_204_NO_CONTENT)


def _imports(user):
    """Admins see every import; anyone else the imports they ran."""
    qs = ImportRecord.objects.select_related("user")
    if user.role == Role.ADMIN:
        return qs
    return qs.filter(user=user)


@_list_schema("imports", serializers.ImportRecordSerializer)
class ImportRecordListApi(_ListApi):
    queryset = ImportRecord.objects.none()
    serializer_class = serializers.ImportRecordSerializer
    filterset_class = filters.ImportRecordFilter

    def get_queryset(self):
        return _imports(self.request.user).order_by("-created_at", "-id")


@_detail_schema("imports", serializers.ImportRecordSerializer)
class ImportRecordDetailApi(_DetailApi):
    queryset = ImportRecord.objects.none()
    serializer_class = serializers.ImportRecordSerializer
    lookup_field = "uuid"

    def get_queryset(self):
        return _imports(self.request.user)


# --- writes: request parsing -----------------------------------------------------------------


class BodyError(Exception):
    """The request cannot be used at all; ``status`` 400 or 413."""

    def __init__(self, message: str, *, column: str = "", row: int = 0, status_code: int = 400):
        super().__init__(message)
        self.error = RowError(SOURCE, row, column, message)
        self.status_code = status_code


def _errors_response(errors: list[RowError], *, status_code=400, import_uuid=None) -> Response:
    errors = errors[: settings.IMPORT_MAX_ERRORS]
    body: dict[str, Any] = {
        "errors": [e.as_dict() for e in errors],
        "messages": [str(e) for e in errors],
    }
    if import_uuid is not None:
        body["import_uuid"] = str(import_uuid)
    return Response(body, status=status_code)


def _json_body(request: Request) -> Any:
    """The parsed JSON body. Malformed JSON is a 400 in the intake error shape."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise BodyError(
            f"the body is {int(length):,} bytes; at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} "
            "are accepted: send smaller batches",
            status_code=413,
        )
    raw = request.body  # before DRF reads the stream; cached for its parser
    try:
        data = request.data
    except UnsupportedMediaType:
        raise
    except ParseError as exc:
        raise BodyError(f"the body is not valid JSON: {exc.detail}") from None
    except RecursionError:
        raise BodyError("the body is not valid JSON: nested too deeply") from None
    # JSON can only carry U+0000 escaped: a byte search keeps the common case free
    if b"\\u0000" in raw:
        _reject_nul(data)
    return data


def _reject_nul(data: Any) -> None:
    """PostgreSQL cannot store U+0000 in text or jsonb, and rejected values and unknown
    field names are echoed into the import record's errors: refuse them at the door, with
    the row and field."""
    rows = data.get("rows", data.get("events")) if isinstance(data, dict) else data
    errors = []
    if isinstance(rows, list):
        for n, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                continue
            for name, value in row.items():
                if "\x00" in name or (isinstance(value, str) and "\x00" in value):
                    column = name.replace("\x00", "\\x00")
                    errors.append(RowError(SOURCE, n, column, "contains a NUL character"))
    if errors:
        raise _RowsRejected(errors)


def _rows_from(data: Any, key: str) -> list[dict]:
    """``{key: [...]}`` or a bare list; each item must be an object. Values are left to
    intake, the one validator."""
    if isinstance(data, dict):
        if key not in data:
            raise BodyError(f'the body must be {{"{key}": [...]}} or a JSON list', column=key)
        rows = data[key]
    else:
        rows = data
    if not isinstance(rows, list):
        raise BodyError(f"{key} must be a list of objects", column=key)
    errors = [
        RowError(SOURCE, n, "", "must be a JSON object")
        for n, row in enumerate(rows, start=1)
        if not isinstance(row, dict)
    ]
    if errors:
        raise _RowsRejected(errors)
    return rows


class _RowsRejected(Exception):
    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "").strip().lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise BodyError(f"must be true or false, got {raw[:50]!r}", column=name)


def _import_reply(record: ImportRecord) -> Response:
    """The reply for an import run by ``services.import_record_run``."""
    errors = [RowError(**e) for e in (record.errors or [])]
    if record.status == ImportRecord.Status.REJECTED or errors:
        return _errors_response(errors, import_uuid=record.uuid)
    if record.status not in (ImportRecord.Status.SUCCEEDED, ImportRecord.Status.VALIDATED):
        # the import failed for a reason that is not the data (the record says why)
        return Response(
            {"detail": f"the import did not finish ({record.status}); see import {record.uuid}"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return Response(
        {
            "import_uuid": str(record.uuid),
            "status": record.status,
            "ok": True,
            "dry_run": record.dry_run,
            "written": record.status == ImportRecord.Status.SUCCEEDED,
            "rows": record.rows,
            "created": record.created,
            "updated": record.updated,
            "unchanged": record.unchanged,
            "rejected": record.rejected,
            "per_kind": record.per_kind or {},
            "errors": [],
            "messages": [],
        }
    )


def _run_import(
    request: Request, kind: str, rows: list[dict], *, dry_run=False, ignore_unknown=False
):
    record = ImportRecord.objects.create(
        origin=ImportRecord.Origin.API,
        user=request.user,
        kind=kind,
        filename=SOURCE,
        dry_run=dry_run,
        ignore_unknown=ignore_unknown,
    )
    try:
        source = intake.source_from_rows(kind, rows, name=SOURCE)
    except intake.IntakeError as exc:
        record.status = ImportRecord.Status.REJECTED
        record.errors = [RowError(SOURCE, 0, "", str(exc)).as_dict()]
        record.save(update_fields=["status", "errors", "updated_at"])
        return _import_reply(record)
    record = services.import_record_run(record=record, sources=[source])
    return _import_reply(record)


class _WriteApi(APIView):
    permission_classes = [CanWriteCustomerData]
    parser_classes = [JSONParser]

    def handle_exception(self, exc):
        if isinstance(exc, BodyError):
            return _errors_response([exc.error], status_code=exc.status_code)
        if isinstance(exc, _RowsRejected | tracking.TrackingRejected):
            return _errors_response(exc.errors)
        return super().handle_exception(exc)


# --- writes: bulk upserts ---------------------------------------------------------------------

_BULK_PARAMS = [
    OpenApiParameter("dry_run", bool, description="validate and count; write nothing"),
    OpenApiParameter(
        "ignore_unknown", bool, description="ignore unknown fields instead of rejecting"
    ),
]


# Request examples: shown on /api/docs/, and sent as-is by the schemathesis test.
_ROW_EXAMPLES = {
    "accounts": {"external_id": "ACME", "name": "Acme Inc", "segment": "Enterprise"},
    "contracts": {
        "external_id": "ACME-2024",
        "account_external_id": "ACME",
        "product": "Pro",
        "start_date": "2024-01-01",
        "end_date": "2024-12-31",
        "mrr": 1250.0,
        "quantity": 50,
        "auto_renew": True,
    },
    "stakeholders": {
        "external_id": "ACME-ann",
        "account_external_id": "ACME",
        "name": "Ann Lee",
        "email": "ann@acme.example",
        "role": "champion",
        "is_primary": True,
    },
    "tickets": {
        "external_id": "T-1001",
        "account_external_id": "ACME",
        "subject": "Export fails",
        "priority": "high",
        "status": "solved",
        "opened_at": "2024-03-01T09:30:00Z",
        "resolved_at": "2024-03-01T15:00:00Z",
        "csat": 5,
    },
    "invoices": {
        "external_id": "INV-2024-03",
        "account_external_id": "ACME",
        "issued_on": "2024-03-01",
        "due_on": "2024-03-31",
        "amount": 3750.0,
        "status": "paid",
        "paid_on": "2024-03-12",
    },
}
_EVENT_EXAMPLE = {
    "account_external_id": "ACME",
    "user_id": "u-42",
    "event": "report_created",
    "occurred_at": "2024-03-01T09:30:00Z",
    "value": 1,
}


def _example(value: dict) -> list[OpenApiExample]:
    return [OpenApiExample("example", value=value, request_only=True)]


def _bulk_schema(kind: str):
    return extend_schema(
        summary=f"Create or update {kind} (upsert on external_id)",
        description=(
            f'Body: `{{"rows": [...]}}` (or a bare JSON list) of {kind} rows, with the fields '
            "of the CSV columns (shared/docs/data-import.md). A missing field leaves it "
            'unchanged on update; null or "" empties it. Any bad row rejects the whole '
            "request (400, nothing written). Re-posting the same rows changes nothing."
        ),
        request=serializers.BULK_REQUESTS[kind],
        examples=_example({"rows": [_ROW_EXAMPLES[kind]]}),
        parameters=_BULK_PARAMS,
        responses={200: serializers.ImportResultSerializer, **WRITE_ERRORS},
        tags=[kind],
    )


class _BulkApi(_WriteApi):
    kind: str

    def post(self, request: Request) -> Response:
        dry_run = _flag(request, "dry_run")
        ignore_unknown = _flag(request, "ignore_unknown")
        rows = _rows_from(_json_body(request), "rows")
        return _run_import(request, self.kind, rows, dry_run=dry_run, ignore_unknown=ignore_unknown)


@_bulk_schema("accounts")
class AccountBulkApi(_BulkApi):
    kind = "accounts"


@_bulk_schema("contracts")
class ContractBulkApi(_BulkApi):
    kind = "contracts"


@_bulk_schema("stakeholders")
class StakeholderBulkApi(_BulkApi):
    kind = "stakeholders"


@_bulk_schema("tickets")
class TicketBulkApi(_BulkApi):
    kind = "tickets"


@_bulk_schema("invoices")
class InvoiceBulkApi(_BulkApi):
    kind = "invoices"


# --- writes: usage events ---------------------------------------------------------------------


@extend_schema(
    summary="Record a batch of usage events",
    description=(
        'Body: `{"events": [...]}` (or a bare JSON list), at most EVENT_BATCH_MAX events '
        "(10,000 by default; more is a 413). Each event: account_external_id, user_id, event, "
        "occurred_at (ISO 8601; no offset = UTC), value. Events are deduplicated on (account, "
        "user_id, event, occurred_at, value): `created` counts new events, `unchanged` the "
        "duplicates, so re-sending a batch never double-counts."
    ),
    request=serializers.EventBatchRequest,
    examples=_example({"events": [_EVENT_EXAMPLE]}),
    parameters=[_BULK_PARAMS[0]],
    responses={200: serializers.ImportResultSerializer, **WRITE_ERRORS},
    tags=["events"],
)
class EventBatchApi(_WriteApi):
    def post(self, request: Request) -> Response:
        dry_run = _flag(request, "dry_run")
        # No serializer per event: at 10,000 events a request it would cost more than the
        # import itself. The rows go to intake as parsed; intake validates every field.
        rows = _rows_from(_json_body(request), "events")
        limit = settings.EVENT_BATCH_MAX
        if len(rows) > limit:
            raise BodyError(
                f"{len(rows):,} events in one batch; at most {limit:,} (EVENT_BATCH_MAX) are "
                "accepted: split the batch",
                column="events",
                status_code=413,
            )
        return _run_import(request, "events", rows, dry_run=dry_run)


# --- writes: Segment-compatible tracking ------------------------------------------------------

_TRACK_RESPONSES = {200: serializers.TrackReplySerializer, **WRITE_ERRORS}


class _SegmentApi(_WriteApi):
    type_: str

    def post(self, request: Request) -> Response:
        call, errors = tracking.parse_call(
            _json_body(request), row=1, source=SOURCE, type_=self.type_
        )
        if errors:
            raise tracking.TrackingRejected(errors)
        return Response(tracking.tracking_apply([call], source=SOURCE).as_dict())


@extend_schema(
    summary="Segment track: one usage event",
    description=(
        "Segment's track call. The account is groupId or context.groupId, else the account "
        "the user was identified or grouped with (400 if none). occurred_at is timestamp, "
        "else sentAt, else receivedAt, else now; value is properties.value, else "
        "properties.revenue. Deduplicated like every event."
    ),
    request=serializers.TrackRequest,
    examples=_example(
        {
            "userId": "u-42",
            "event": "report_created",
            "timestamp": "2024-03-01T09:30:00Z",
            "properties": {"value": 1},
            "context": {"groupId": "ACME"},
        }
    ),
    responses=_TRACK_RESPONSES,
    tags=["tracking"],
)
class TrackApi(_SegmentApi):
    type_ = "track"


@extend_schema(
    summary="Segment identify: store a product user",
    description="Stores the user and merges its traits; with a groupId, links the user to "
    "that account (which must exist).",
    request=serializers.IdentifyRequest,
    examples=_example(
        {"userId": "u-42", "traits": {"email": "ann@acme.example"}, "groupId": "ACME"}
    ),
    responses=_TRACK_RESPONSES,
    tags=["tracking"],
)
class IdentifyApi(_SegmentApi):
    type_ = "identify"


@extend_schema(
    summary="Segment group: link a product user to an account",
    description="groupId is the account's external id. An unknown account is a 400 unless "
    "traits.name is given: then the account is created (external_id=groupId, "
    "name=traits.name). An existing account is not changed.",
    request=serializers.GroupRequest,
    examples=_example({"userId": "u-42", "groupId": "ACME", "traits": {"name": "Acme Inc"}}),
    responses=_TRACK_RESPONSES,
    tags=["tracking"],
)
class GroupApi(_SegmentApi):
    type_ = "group"


@extend_schema(
    summary="Segment batch: many track/identify/group calls",
    description="Calls apply in order (an identify earlier in the batch gives a later track "
    "its account). All or nothing: any bad call rejects the batch, with its position as the "
    "row. page, screen and alias calls are accepted and not stored.",
    request=serializers.SegmentBatchRequest,
    examples=_example(
        {
            "batch": [
                {"type": "identify", "userId": "u-42", "groupId": "ACME"},
                {
                    "type": "track",
                    "userId": "u-42",
                    "event": "login",
                    "timestamp": "2024-03-01T09:00:00Z",
                },
                {"type": "page", "userId": "u-42"},
            ]
        }
    ),
    responses=_TRACK_RESPONSES,
    tags=["tracking"],
)
class SegmentBatchApi(_WriteApi):
    def post(self, request: Request) -> Response:
        messages = _json_body(request)
        if isinstance(messages, dict):
            if "batch" not in messages:
                raise BodyError('the body must be {"batch": [...]}', column="batch")
            messages = messages["batch"]
        if not isinstance(messages, list):
            raise BodyError("batch must be a list of calls", column="batch")
        if len(messages) > settings.EVENT_BATCH_MAX:
            raise BodyError(
                f"{len(messages):,} calls in one batch; at most {settings.EVENT_BATCH_MAX:,}",
                column="batch",
                status_code=413,
            )
        calls, errors = [], []
        for n, msg in enumerate(messages, start=1):
            call, call_errors = tracking.parse_call(msg, row=n, source=SOURCE)
            errors += call_errors
            if call is not None:
                calls.append(call)
        if errors:
            raise tracking.TrackingRejected(errors[: settings.IMPORT_MAX_ERRORS])
        return Response(tracking.tracking_apply(calls, source=SOURCE).as_dict())
