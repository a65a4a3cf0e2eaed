"""Celery tasks of the metrics app. Thin: parse arguments, call the pipeline."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError

from . import pipeline


@shared_task(
    ignore_result=True,
    acks_late=True,  # every step rebuilds its day, so running twice is harmless
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=3,
)
def run_nightly_pipeline(as_of: str | None = None) -> dict:
    """Nightly at 02:15 UTC (config/celery.py): the pipeline for yesterday, or ``as_of``
    (``YYYY-MM-DD``) when given."""
    return pipeline.run_nightly(dt.date.fromisoformat(as_of) if as_of else None)
