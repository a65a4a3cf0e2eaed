from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from metrics.models import HealthSnapshot
from metrics.services import health_model_ensure_default
from tests.factories import AccountFactory, ContractFactory


def utc_today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def components(usage: float | None, support: float | None = 100.0) -> list[dict]:
    """Two recorded components, shaped as the health service writes them."""
    return [
        {"key": "usage", "label": "Usage", "score": usage, "weight": 35.0, "reason": "usage"},
        {"key": "support", "label": "Support", "score": support, "weight": 15.0, "reason": "ok"},
    ]


def snapshot(account, day: dt.date, score: float | None, band: str, **extra) -> HealthSnapshot:
    """``model_version``: the version that scored it (default: the default model's active one)."""
    version = extra.pop("model_version", None)
    if version is None:
        version = health_model_ensure_default().versions.get(active=True)
    return HealthSnapshot.objects.create(
        account=account,
        day=day,
        model_version=version,
        score=score,
        band=band,
        computed_score=score,
        computed_band=band,
        components=extra.pop("components", components(score)),
        reasons=[f"usage {score}"],
        **extra,
    )


def customer(
    owner,
    *,
    name: str,
    mrr: str,
    ends_in: int | None,
    scores,
    segment="SMB",
    day: dt.date | None = None,
    **kw,
):
    """An account with one contract in force (ending ``ends_in`` days after the day of the
    data, ``day``, default yesterday, the day the pages count days from) and health
    snapshots ``scores`` = (day, day-7, day-30) as (score, band) or None."""
    today = utc_today()
    day = day or today - dt.timedelta(days=1)
    account = AccountFactory(owner=owner, name=name, segment=segment, **kw)
    ContractFactory(
        account=account,
        start_date=today - dt.timedelta(days=200),
        end_date=None if ends_in is None else day + dt.timedelta(days=ends_in),
        mrr=Decimal(mrr),
        quantity=20,
    )
    for offset, value in zip((0, 7, 30), scores, strict=False):
        if value is not None:
            snapshot(account, day - dt.timedelta(days=offset), value[0], value[1])
    return account


@pytest.fixture
def book(csm, manager):
    """Three accounts of the CSM and one of the manager, scored and with standings."""
    from metrics.standings import account_standings_refresh

    accounts = {
        # red, 58 now, 76 a week ago (-18), renews in 41 days, $7,000 MRR = $84k ARR
        "burning": customer(
            csm,
            name="Burning Co",
            mrr="7000",
            ends_in=41,
            scores=[(58, "red"), (76, "yellow"), (80, "green")],
        ),
        # yellow 65, 60 a week ago (+5), renews in 200 days, $1,000 MRR = $12k ARR
        "slipping": customer(
            csm,
            name="Slipping Ltd",
            mrr="1000",
            ends_in=200,
            scores=[(65, "yellow"), (60, "yellow")],
            segment="Enterprise",
        ),
        # green 90, no history, open-ended, $500 MRR = $6k ARR
        "calm": customer(csm, name="Calm Inc", mrr="500", ends_in=None, scores=[(90, "green")]),
        "managers": customer(
            manager, name="Manager Own", mrr="100", ends_in=10, scores=[(40, "red")]
        ),
    }
    account_standings_refresh()
    return accounts
