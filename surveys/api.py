"""``POST /api/v1/survey-responses/``: past answers from another tool, the rows of
``responses.csv`` as JSON, through the same intake as the import command (all-or-nothing; a
400 lists ``row N, column C: reason``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers

from accounts.api import _BULK_PARAMS, WRITE_ERRORS, _BulkApi
from accounts.api_choices import ChoiceField
from accounts.serializers import ImportResultSerializer


class ResponseRow(serializers.Serializer):
    stakeholder_email = serializers.EmailField(required=False)
    account_external_id = serializers.CharField(required=False)
    kind = ChoiceField(choices=["nps", "csat", "ces"])
    score = serializers.IntegerField()
    comment = serializers.CharField(required=False, allow_blank=True)
    answered_at = serializers.DateTimeField()


class ResponseBatchRequest(serializers.Serializer):
    rows = ResponseRow(many=True)


@extend_schema(
    summary="Import past survey answers (NPS, CSAT, CES)",
    description=(
        'Body: `{"rows": [...]}` (or a bare JSON list). Each row: stakeholder_email or '
        "account_external_id (at least one), kind, score (NPS 0–10, CSAT 1–5, CES 1–7), "
        "comment, answered_at. Any bad row rejects the request (400, nothing written); "
        "re-posting the same rows changes nothing."
    ),
    request=ResponseBatchRequest,
    examples=[
        OpenApiExample(
            "example",
            value={
                "rows": [
                    {
                        "stakeholder_email": "ann@acme.example",
                        "kind": "nps",
                        "score": 9,
                        "comment": "Great support",
                        "answered_at": "2024-03-01T09:30:00Z",
                    }
                ]
            },
            request_only=True,
        )
    ],
    parameters=_BULK_PARAMS,
    responses={200: ImportResultSerializer, **WRITE_ERRORS},
    tags=["surveys"],
)
class SurveyResponseBatchApi(_BulkApi):
    kind = "responses"
