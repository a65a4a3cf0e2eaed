"""``/api/v1/playbooks/`` and ``/api/v1/ctas/``: list, filter, read and update, calling the
same services as the pages.

Who may do what: any signed-in user or token reads playbooks (never the webhook secret; the
webhook and Slack addresses, secrets too, only admins) and the CTAs of the accounts they may
see (a CTA outside them is a 404); creating or changing a playbook takes an Admin with a
write-scope token (or a session); changing a CTA (status, snooze, owner, steps, a comment)
takes a write-scope token of someone who sees it."""

from __future__ import annotations

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import (
    LIST_ERRORS,
    R401,
    R403,
    R404,
    R415,
    ApiPagination,
    CanWriteCustomerData,
)
from accounts.api_choices import ChoiceField, ModelSerializer
from accounts.api_dates import ApiDateField
from accounts.authentication import WritesNeedWriteScope
from accounts.models import Role, User

from . import rules, services
from .models import Cta, CtaStatus, CtaStep, CtaType, Playbook, Priority

# --- serializers ---------------------------------------------------------------------------


ADMINS_ONLY_ADDRESS = (
    "admins only (null for everyone else): the address is a secret, as whoever holds a "
    "Slack-compatible incoming webhook's address can post to its channel"
)


class PlaybookSerializer(ModelSerializer):
    """A playbook's configuration, readable by every signed-in user; the two addresses that
    are secrets (``ADMINS_ONLY_ADDRESS``) only by admins, who configure them. Pass the request
    in the context: without one they are null."""

    has_webhook_secret = serializers.SerializerMethodField()
    webhook_url = serializers.URLField(
        read_only=True, allow_blank=True, allow_null=True, help_text=ADMINS_ONLY_ADDRESS
    )
    slack_url = serializers.URLField(
        read_only=True, allow_blank=True, allow_null=True, help_text=ADMINS_ONLY_ADDRESS
    )

    class Meta:
        model = Playbook
        fields = [
            "id", "name", "description", "enabled", "version", "starter", "trigger",
            "trigger_params", "segments", "lifecycle_stages", "owners", "arr_min", "arr_max",
            "cta_title", "cta_type", "priority", "steps", "owner_rule", "owner_user",
            "success", "success_params", "success_days", "cooldown_days", "email_owner",
            "webhook_url", "has_webhook_secret", "slack_url", "created_at", "updated_at",
        ]  # fmt: skip

    def get_has_webhook_secret(self, obj: Playbook) -> bool:
        return bool(obj.webhook_secret)

    def to_representation(self, instance: Playbook) -> dict:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if getattr(getattr(request, "user", None), "role", None) != Role.ADMIN:
            data["webhook_url"] = data["slack_url"] = None
        return data


class PlaybookInputSerializer(serializers.Serializer):
    """Any field of the playbook configuration; checked by ``rules.validate_playbook``."""

    name = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    trigger = ChoiceField(choices=list(rules.TRIGGERS), required=False)
    trigger_params = serializers.JSONField(required=False)
    segments = serializers.JSONField(required=False)
    lifecycle_stages = serializers.JSONField(required=False)
    owners = serializers.JSONField(required=False)
    arr_min = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    arr_max = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    cta_title = serializers.CharField(required=False, allow_blank=True)
    cta_type = ChoiceField(choices=CtaType.choices, required=False)
    priority = ChoiceField(choices=Priority.choices, required=False)
    steps = serializers.JSONField(
        required=False,
        help_text='[{"title": str, "due_days": int, "survey_campaign": campaign id (optional: '
        "an active campaign started by a playbook step, sent when the CTA opens)}]",
    )
    owner_rule = serializers.CharField(required=False)
    owner_user = serializers.IntegerField(required=False, allow_null=True)
    success = ChoiceField(choices=list(rules.SUCCESSES), required=False)
    success_params = serializers.JSONField(required=False)
    success_days = serializers.JSONField(required=False)
    cooldown_days = serializers.JSONField(required=False)
    email_owner = serializers.BooleanField(required=False)
    webhook_url = serializers.URLField(required=False, allow_blank=True)
    webhook_secret = serializers.CharField(required=False, allow_blank=True, write_only=True)
    slack_url = serializers.URLField(required=False, allow_blank=True)


class CtaStepSerializer(ModelSerializer):
    class Meta:
        model = CtaStep
        fields = ["id", "position", "title", "due_on", "done_at"]


class CtaSerializer(ModelSerializer):
    steps = CtaStepSerializer(many=True, read_only=True)
    account_name = serializers.CharField(source="account.name", read_only=True)
    owner_email = serializers.EmailField(source="owner.email", read_only=True, allow_null=True)

    class Meta:
        model = Cta
        fields = [
            "id", "playbook", "playbook_version", "account", "account_name", "owner",
            "owner_email", "title", "cta_type", "priority", "status", "evidence",
            "evidence_data", "opened_at", "opened_on", "due_at", "snoozed_until", "closed_at",
            "close_note", "health_at_open", "success_deadline", "outcome", "outcome_at",
            "outcome_detail", "escalated_at", "escalated_to", "steps",
        ]  # fmt: skip


class CtaUpdateSerializer(serializers.Serializer):
    status = ChoiceField(
        choices=[CtaStatus.IN_PROGRESS, CtaStatus.DONE, CtaStatus.CANCELLED], required=False
    )
    note = serializers.CharField(required=False, allow_blank=True, help_text="with done/cancelled")
    skip_open_steps = serializers.BooleanField(
        required=False,
        default=True,
        help_text="with done: steps still open are skipped (default); false: closing as "
        "done with open steps is a 400 naming them",
    )
    snoozed_until = ApiDateField(required=False)
    owner = serializers.IntegerField(required=False, help_text="user id: reassign")
    steps_done = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="ids of steps to tick done"
    )
    comment = serializers.CharField(required=False, allow_blank=False)


class IdFilter(filters.NumberFilter):
    """A row id: a whole number the database can hold (a bad one is a 400, never a 500)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class CtaFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=CtaStatus.choices)
    owner = IdFilter(field_name="owner_id")
    account = IdFilter(field_name="account_id")
    playbook = IdFilter(field_name="playbook_id")
    type = filters.ChoiceFilter(field_name="cta_type", choices=CtaType.choices)
    priority = filters.ChoiceFilter(choices=Priority.choices)

    class Meta:
        model = Cta
        fields = ["status", "owner", "account", "playbook", "type", "priority"]


# --- permissions ---------------------------------------------------------------------------


R400 = OpenApiResponse(
    {"type": "object", "additionalProperties": {}},
    description="refused: each field with what is wrong with it (a list of messages, or "
    "per item for lists), or `detail` when the body is not JSON; nothing was written",
)


def _bad(exc: ValidationError) -> Response:
    return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)


# --- playbooks -----------------------------------------------------------------------------


class PlaybookListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated]
    pagination_class = ApiPagination
    serializer_class = PlaybookSerializer
    queryset = Playbook.objects.order_by("name", "pk")

    @extend_schema(
        summary="List playbooks",
        tags=["playbooks"],
        responses={200: PlaybookSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a playbook (Admin)",
        tags=["playbooks"],
        request=PlaybookInputSerializer,
        responses={201: PlaybookSerializer, 400: R400, 401: R401, 403: R403, 415: R415},
    )
    def post(self, request: Request) -> Response:
        if not CanWriteCustomerData().has_permission(request, self):
            raise PermissionDenied("Only an Admin may configure playbooks.")
        data = PlaybookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            playbook = services.playbook_create(config=data.validated_data, created_by=request.user)
        except ValidationError as exc:
            return _bad(exc)
        return Response(
            PlaybookSerializer(playbook, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class PlaybookDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="One playbook",
        tags=["playbooks"],
        responses={200: PlaybookSerializer, 401: R401, 404: R404},
    )
    def get(self, request: Request, pk: int) -> Response:
        playbook = get_object_or_404(Playbook, pk=pk)
        return Response(PlaybookSerializer(playbook, context={"request": request}).data)

    @extend_schema(
        summary="Change a playbook (Admin): a new version",
        tags=["playbooks"],
        request=PlaybookInputSerializer,
        responses={200: PlaybookSerializer, 400: R400, 401: R401, 403: R403, 404: R404, 415: R415},
    )
    def patch(self, request: Request, pk: int) -> Response:
        if not CanWriteCustomerData().has_permission(request, self):
            raise PermissionDenied("Only an Admin may configure playbooks.")
        playbook = get_object_or_404(Playbook, pk=pk)
        data = PlaybookInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            playbook = services.playbook_update(
                playbook=playbook, config=data.validated_data, updated_by=request.user
            )
        except ValidationError as exc:
            return _bad(exc)
        return Response(PlaybookSerializer(playbook, context={"request": request}).data)


# --- CTAs ----------------------------------------------------------------------------------


def _ctas(user: User):
    return (
        Cta.objects.visible_to(user)
        .select_related("account", "owner")
        .prefetch_related("steps")
        .order_by("due_at", "pk")
    )


@extend_schema(
    summary="List CTAs (of the accounts you may see)",
    tags=["ctas"],
    responses={200: CtaSerializer(many=True), **LIST_ERRORS},
)
class CtaListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated]
    pagination_class = ApiPagination
    serializer_class = CtaSerializer
    filterset_class = CtaFilter
    queryset = Cta.objects.none()

    def get_queryset(self):
        return _ctas(self.request.user)


class CtaDetailApi(APIView):
    permission_classes = [WritesNeedWriteScope]

    @extend_schema(
        summary="One CTA", tags=["ctas"], responses={200: CtaSerializer, 401: R401, 404: R404}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(CtaSerializer(get_object_or_404(_ctas(request.user), pk=pk)).data)

    @extend_schema(
        summary="Update a CTA: status, snooze, reassign, tick steps, comment",
        tags=["ctas"],
        request=CtaUpdateSerializer,
        responses={200: CtaSerializer, 400: R400, 401: R401, 403: R403, 404: R404, 415: R415},
    )
    def patch(self, request: Request, pk: int) -> Response:
        cta = get_object_or_404(_ctas(request.user), pk=pk)
        data = CtaUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        user = request.user
        try:
            with transaction.atomic():  # all of it or nothing
                if d.get("status") == CtaStatus.IN_PROGRESS:  # first: a pending CTA's
                    services.cta_start(cta=cta, user=user)  # steps need it started
                for step_id in d.get("steps_done", []):
                    step = CtaStep.objects.filter(cta=cta, pk=step_id).first()
                    if step is None:
                        raise ValidationError({"steps_done": [f"no step {step_id} on this CTA"]})
                    services.cta_step_complete(cta=cta, step=step, user=user)
                if "comment" in d:
                    services.cta_comment_add(cta=cta, body=d["comment"], user=user)
                if "owner" in d:
                    owner = User.objects.filter(pk=d["owner"]).first()
                    if owner is None:
                        raise ValidationError({"owner": [f"no user with id {d['owner']}"]})
                    services.cta_reassign(cta=cta, owner=owner, user=user)
                if "snoozed_until" in d:
                    services.cta_snooze(cta=cta, until=d["snoozed_until"], user=user)
                if d.get("status") in (CtaStatus.DONE, CtaStatus.CANCELLED):
                    services.cta_close(
                        cta=cta,
                        status=d["status"],
                        note=d.get("note", ""),
                        user=user,
                        skip_open_steps=d["skip_open_steps"],
                    )
        except ValidationError as exc:
            return _bad(exc)
        return Response(CtaSerializer(get_object_or_404(_ctas(user), pk=pk)).data)
