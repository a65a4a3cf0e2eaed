"""Schemathesis against the running Django app (in-process WSGI): for the intake endpoints and
the list endpoints, schema-conforming and schema-violating requests must never get a 5xx,
and every reply must match what /api/schema/ documents (status code, content type, body).

Bounded so the whole test stays well under a minute: a fixed number of examples per
operation and mode, derandomized (the same cases every run), no shrinking."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Activity, ApiToken, ImportRecord, TimelineEntry, UsageDaily
from tests.factories import (
    AccountFactory,
    ContractFactory,
    InvoiceFactory,
    StakeholderFactory,
    TicketFactory,
)

EXAMPLES = 25  # per operation and generation mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = {
    "POST": (
        "/api/v1/accounts/bulk",
        "/api/v1/contracts/bulk",
        "/api/v1/stakeholders/bulk",
        "/api/v1/tickets/bulk",
        "/api/v1/invoices/bulk",
        "/api/v1/events/batch",
        "/api/v1/track",
        "/api/v1/identify",
        "/api/v1/group",
        "/api/v1/batch",
    ),
    "GET": (
        "/api/v1/accounts/",
        "/api/v1/contracts/",
        "/api/v1/stakeholders/",
        "/api/v1/tickets/",
        "/api/v1/invoices/",
        "/api/v1/activities/",
        "/api/v1/imports/",
        "/api/v1/accounts/{account_id}/timeline/",
        "/api/v1/accounts/{account_id}/usage/",
    ),
}


def _seed(admin) -> int:
    """A little of every kind, so list replies carry real rows to validate."""
    account = AccountFactory(external_id="ACME", owner=admin, customer_since=dt.date(2024, 1, 1))
    AccountFactory(external_id="CHILD", parent=account)
    ContractFactory(account=account, end_date=dt.date(2024, 12, 31), auto_renew=True)
    person = StakeholderFactory(account=account)
    TicketFactory(account=account, csat=5, escalated=True)
    InvoiceFactory(account=account)
    activity = Activity.objects.create(account=account, author=admin, kind="call", subject="QBR")
    activity.stakeholders.add(person)
    TimelineEntry.objects.create(
        account=account,
        occurred_at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        kind="ticket_opened",
        key="t1",
        title="Ticket opened",
        data={"external_id": "T1"},
    )
    UsageDaily.objects.create(account=account, day=dt.date(2024, 3, 1), events=3, active_users=2)
    ImportRecord.objects.create(origin="cli", kind="accounts", user=admin, errors=[], per_kind={})
    return account.pk


@pytest.mark.django_db(transaction=True)  # the WSGI handler closes non-autocommit connections
def test_api_never_5xx_and_conforms_to_its_schema(admin_user):
    account_id = _seed(admin_user)
    _token, key = ApiToken.issue(user=admin_user, name="schemathesis")
    auth = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers=auth
    )

    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in OPERATIONS.get(operation.method.upper(), ()):
            continue
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            path_parameters = (
                {"account_id": account_id} if "{account_id}" in operation.path else None
            )
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def exercise(case):
                case.call_and_validate(headers=auth, checks=CHECKS)

            exercise()
        ran += 1
    assert ran == sum(len(paths) for paths in OPERATIONS.values())  # none renamed away
