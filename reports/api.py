"""``/api/v1/targets/``: KPI targets. Reads for anyone with a role; writes (POST, PUT,
PATCH, DELETE) for managers and admins, with a session or a write-scope token. Bad values
are 400 with field errors (``{"value": ["NPS cannot be above 100, got 150"]}``); so is a
scope the writer or the target's owner cannot see (``reports.services.scope_errors``: a
manager their team or one of its owners' books, an admin any)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.api import R400_FILTER, R401, R404, R415, ApiPagination
from accounts.api_choices import ChoiceField, ModelSerializer
from accounts.models import ApiToken, Role, User
from accounts.serializers import DetailSerializer

from . import catalog, services
from .models import KpiTarget


class CanUseTargets(BasePermission):
    message = "Targets are read by any role and written by managers and admins."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated or user.role is None:
            return False
        if request.method in SAFE_METHODS:
            return True
        if isinstance(request.auth, ApiToken) and request.auth.scope != ApiToken.Scope.WRITE:
            self.message = "This token is read-only: writes need a token with write scope."
            return False
        return user.role in (Role.MANAGER, Role.ADMIN)

    def has_object_permission(self, request, view, obj) -> bool:
        """A target whose scope the writer cannot see (made by an admin, or before managers
        were held to their team) is read-only for them."""
        if request.method in SAFE_METHODS:
            return True
        why = services.scope_check(request.user)(obj.scope_kind, obj.scope_key)
        if why is not None:
            self.message = f"Only an admin can change a target of this scope: {why}."
            return False
        return True


class KpiTargetSerializer(ModelSerializer):
    kpi = ChoiceField(choices=list(catalog.KPIS))
    value = serializers.DecimalField(max_digits=16, decimal_places=2)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = KpiTarget
        fields = [
            "id",
            "kpi",
            "scope_kind",
            "scope_key",
            "direction",
            "value",
            "cadence",
            "max_change",
            "owner",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "scope_key": {
                "help_text": "empty for all accounts; a segment (in any case: stored as the "
                "accounts spell it); for an owner's book the owner's user id (stored), email or "
                "full name"
            }
        }

    def validate(self, attrs):
        merged = {}
        if self.instance is not None:
            merged = {
                f: getattr(self.instance, f)
                for f in (
                    "kpi",
                    "scope_kind",
                    "scope_key",
                    "direction",
                    "value",
                    "cadence",
                    "max_change",
                )
            }
        merged.update(attrs)
        errors = services.target_errors(merged)
        if errors:
            raise serializers.ValidationError(errors)
        kind = merged.get("scope_kind") or "all"
        key, _ = services.scope_key_resolve(kind, merged.get("scope_key") or "")
        if "scope_kind" in attrs or "scope_key" in attrs:
            # the stored spelling: a segment's ("smb" → "SMB"), an owner's user id (from an
            # id, as before, or an email or full name)
            attrs["scope_key"] = key
        # the writer and the owner (who gets the alerts) must be able to see the scope
        owner = attrs["owner"] if "owner" in attrs else getattr(self.instance, "owner", None)
        access = services.scope_errors(
            self.context["request"].user, kind, key, recipients=[owner] if owner else []
        )
        if access:
            where = "scope_kind" if kind == "all" else "scope_key"
            raise serializers.ValidationError(
                {
                    **({where: access["scope_key"]} if "scope_key" in access else {}),
                    **({"owner": access["recipients"]} if "recipients" in access else {}),
                }
            )
        return attrs


R400 = OpenApiResponse(
    {"type": "object", "additionalProperties": {}},
    description="refused: each field with what is wrong with it (a list of messages), or "
    "`detail` when the body is not JSON; nothing was written",
)
R403 = OpenApiResponse(
    DetailSerializer,
    description="not a manager or admin, a read-only token, or a target of a scope the "
    "manager cannot see (read-only for them)",
)
_WRITE = {400: R400, 401: R401, 403: R403, 415: R415}


@extend_schema_view(
    get=extend_schema(
        summary="List KPI targets",
        tags=["targets"],
        responses={
            200: KpiTargetSerializer(many=True),
            400: R400_FILTER,  # a parameter it does not take, a page or size given twice
            401: R401,
            403: R403,
            404: R404,
        },
    ),
    post=extend_schema(
        summary="Set a KPI target (manager, admin)",
        tags=["targets"],
        responses={201: KpiTargetSerializer, **_WRITE},
    ),
)
class TargetListApi(generics.ListCreateAPIView):
    permission_classes = [CanUseTargets]
    pagination_class = ApiPagination  # the other lists' page and page_size, and their 400s
    serializer_class = KpiTargetSerializer
    queryset = KpiTarget.objects.order_by("pk")

    def perform_create(self, serializer) -> None:
        serializer.save(updated_by=self.request.user)


@extend_schema_view(
    get=extend_schema(
        summary="One KPI target",
        tags=["targets"],
        responses={200: KpiTargetSerializer, 401: R401, 403: R403, 404: R404},
    ),
    put=extend_schema(
        summary="Replace a KPI target (manager, admin)",
        tags=["targets"],
        responses={200: KpiTargetSerializer, **_WRITE, 404: R404},
    ),
    patch=extend_schema(
        summary="Change a KPI target (manager, admin)",
        tags=["targets"],
        responses={200: KpiTargetSerializer, **_WRITE, 404: R404},
    ),
    delete=extend_schema(
        summary="Delete a KPI target (manager, admin)",
        tags=["targets"],
        responses={204: None, 401: R401, 403: R403, 404: R404},
    ),
)
class TargetDetailApi(generics.RetrieveUpdateDestroyAPIView):
    permission_classes = [CanUseTargets]
    serializer_class = KpiTargetSerializer
    queryset = KpiTarget.objects.all()

    def perform_update(self, serializer) -> None:
        # who changed it last, as the targets page keeps it: a save from a page opened
        # before is refused naming them (``services.target_save``), not the page's last editor
        serializer.save(updated_by=self.request.user)

    def perform_destroy(self, instance: KpiTarget) -> None:
        # recorded as the targets page's removals are (who, when, which)
        services.target_remove(target=instance, by=self.request.user)
