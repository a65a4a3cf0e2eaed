"""System checks of the reports app's settings (registered by ``ReportsConfig.ready``).

``REPORTS_ALERT_WEBHOOK_URL`` and ``REPORTS_ALERT_SLACK_URL`` come from the environment, not
from a form, so nothing validates them when they are set: a typo or an internal address
would only show when a KPI first crosses its target, as a failed outbox row. Here they get
the save-time rules of a playbook's webhook (``outbox.destinations.url_problem``: http(s),
no ``localhost`` or internal IP address unless ``OUTBOX_ALLOW_PRIVATE``), so ``manage.py
check`` (and ``check --deploy``, ``migrate``, ``runserver``) stops on a bad one and says
which setting and what is wrong. No DNS lookup: a check must not wait on the network, and
each send resolves and checks the host again anyway."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error

from outbox.destinations import url_problem

ALERT_URLS = (
    ("REPORTS_ALERT_WEBHOOK_URL", "reports.E001", "signed JSON alert webhooks"),
    ("REPORTS_ALERT_SLACK_URL", "reports.E002", "Slack alerts"),
)


def alert_destinations_check(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for name, check_id, what in ALERT_URLS:
        url = getattr(settings, name, "") or ""
        if not url:
            continue  # unset: no such alerts
        problem = url_problem(url)
        if problem is None:
            continue
        errors.append(
            Error(
                f"{name} cannot be used: {problem}.",
                hint=(
                    f"Set {name} to a public http(s) address, or leave it empty to send no "
                    f"{what}; KPI alerts to it would fail at send time."
                ),
                id=check_id,
            )
        )
    return errors
