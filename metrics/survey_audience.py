"""The health-band filter of survey campaign audiences (``settings.SURVEY_BAND_FILTER``):
surveys sits below metrics and cannot read health snapshots itself."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from accounts.models import Account

from .models import HealthSnapshot


def accounts_in_bands(accounts: QuerySet[Account], bands: list[str]) -> QuerySet[Account]:
    """``accounts`` whose latest health snapshot is in one of ``bands``; accounts without a
    snapshot match none."""
    latest = (
        HealthSnapshot.objects.filter(account=OuterRef("pk")).order_by("-day").values("band")[:1]
    )
    return accounts.annotate(_survey_band=Subquery(latest)).filter(_survey_band__in=bands)
