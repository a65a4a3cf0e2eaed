from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.money import currency_sign


def runtime(request: HttpRequest) -> dict:
    """Whether background tasks run inline (embedded mode: no Celery worker, no Redis), so
    pages that start one say how long the answer may take instead of "in the background"."""
    # the charts' money ticks (static/js/app.js) take the currency's sign from <body>
    return {
        "tasks_inline": bool(settings.CELERY_TASK_ALWAYS_EAGER),
        "currency_sign": currency_sign(),
    }
