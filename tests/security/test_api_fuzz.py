"""Schemathesis over every operation of /api/schema/, in-process (WSGI): schema-conforming and
schema-violating requests never get a 5xx, every reply matches what the schema documents
(status code, content type, headers, body), a request the schema forbids is refused (4xx),
and an operation that requires a token refuses a request without one. Then a read-scope
token gets 403 from every write operation, and every method the schema does not document
gets 405.

The database holds one object of each kind (the ``world`` fixture), and the generated path
parameters alternate between those real rows and made-up ids, so the detail, update and
delete operations run on real data and not only on 404s.

Bounded: a fixed number of examples per operation and mode, derandomized (the same cases
every run), no shrinking. One test per operation, so a failure names it. This is also the
bounded run over the intake endpoints (bulk upserts, event batch, track/identify/group/batch)
and the playbook endpoints that their own modules once carried."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiToken, TimelineEntry, UsageDaily

EXAMPLES = 20  # per operation and generation mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]
# The Segment-compatible calls take what Segment's own API takes (ids as numbers, fields
# it does not know): a client written for Segment must not get a 400 for that, so a
# request outside their documented shape may be accepted.
LENIENT = {"/api/v1/track", "/api/v1/identify", "/api/v1/group", "/api/v1/batch"}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, from the same generator that serves /api/schema/
    (no database needed at collection time)."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return sorted((m.upper(), p) for p, ops in paths.items() for m in ops)


OPERATIONS = _operations()
WRITE_OPERATIONS = [(m, p) for m, p in OPERATIONS if m in WRITES]

# path prefix -> the ``world`` object whose id fills ``{id}`` (or ``{uuid}``)
OBJECTS = {
    "/api/v1/accounts/{id}/": "account",
    "/api/v1/contracts/": "contract",
    "/api/v1/stakeholders/": "stakeholder",
    "/api/v1/tickets/": "ticket",
    "/api/v1/invoices/": "invoice",
    "/api/v1/activities/": "activity",
    "/api/v1/imports/": "import_record",
    "/api/v1/playbooks/": "playbook",
    "/api/v1/ctas/": "cta",
    "/api/v1/targets/": "kpi_target",
}


def _real_path_parameters(path: str, objects: dict) -> dict | None:
    """The path parameters naming the seeded rows, or None when the path has none."""
    if "{account_id}" in path:
        return {"account_id": objects["account"].pk}
    for prefix, key in OBJECTS.items():
        if path.startswith(prefix.removesuffix("{id}/")) and "{id}" in path:
            return {"id": objects[key].pk}
        if path.startswith(prefix) and "{uuid}" in path:
            return {"uuid": str(objects[key].uuid)}
    assert "{" not in path, f"no seeded object for the path parameters of {path}"
    return None


def _seed(world) -> dict:
    objects, _users = world
    account = objects["account"]
    TimelineEntry.objects.create(
        account=account,
        occurred_at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        kind="ticket_opened",
        key="t1",
        title="Ticket opened",
        data={"external_id": "T-1"},
    )
    UsageDaily.objects.create(account=account, day=dt.date(2024, 3, 1), events=3, active_users=2)
    return objects


@pytest.fixture
def in_test_transaction():
    """The WSGI handler closes the connection at the end of each request, which a test
    transaction does not survive; like Django's test client, keep it open during the test
    (so each test rolls back instead of truncating every table)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _schema_for(user, scope) -> tuple[dict, object]:
    """A token of ``scope`` for ``user``, and the schema as /api/schema/ serves it."""
    _token, key = ApiToken.issue(user=user, name=f"schemathesis-{scope}", scope=scope)
    auth = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers=auth
    )
    return auth, schema


def _run(strategy, test) -> None:
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
        test(case)

    exercise()


def _strategy(operation, mode, real: dict | None):
    """Cases with the seeded rows' ids half the time (when the path has parameters)."""
    generated = operation.as_strategy(generation_mode=mode)
    if real is None:
        return generated
    return st.one_of(operation.as_strategy(generation_mode=mode, path_parameters=real), generated)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.django_db
def test_operation_never_5xx_and_conforms_to_its_schema(
    in_test_transaction, world, admin_user, method, path
):
    objects = _seed(world)
    auth, schema = _schema_for(admin_user, ApiToken.Scope.WRITE)
    operation = schema[path][method.lower()]
    real = _real_path_parameters(path, objects)
    excluded = [negative_data_rejection] if path in LENIENT else []
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        _run(
            _strategy(operation, mode, real),
            lambda case: case.call_and_validate(
                headers=auth, checks=CHECKS, excluded_checks=excluded
            ),
        )


@pytest.mark.parametrize(
    ("method", "path"), WRITE_OPERATIONS, ids=[f"{m} {p}" for m, p in WRITE_OPERATIONS]
)
@pytest.mark.django_db
def test_a_read_token_gets_403_from_every_write(
    in_test_transaction, world, admin_user, method, path
):
    """Even an Admin's token cannot write with read scope, whatever the body, and nothing of
    the seeded row changes."""
    objects = _seed(world)
    auth, schema = _schema_for(admin_user, ApiToken.Scope.READ)
    operation = schema[path][method.lower()]
    real = _real_path_parameters(path, objects) or {}
    strategy = operation.as_strategy(
        generation_mode=schemathesis.GenerationMode.POSITIVE, path_parameters=real or None
    )

    def refused(case):
        response = case.call(headers=auth)
        assert response.status_code == 403, (case.method, case.formatted_path, response.text)

    _run(strategy, refused)


def test_every_operation_is_covered():
    """The list is the schema itself; this pins that it is not empty or cut short (the
    reads, the intake, the playbooks, the CTAs, the targets and the KPI reports)."""
    assert len(OPERATIONS) >= 43
    assert {p.split("/")[3] for _m, p in OPERATIONS} >= {
        "accounts", "contracts", "stakeholders", "tickets", "invoices", "activities", "imports",
        "events", "track", "identify", "group", "batch", "playbooks", "ctas", "targets", "kpis",
        "survey-responses",
    }  # fmt: skip
    assert len(WRITE_OPERATIONS) >= 17


@pytest.mark.django_db
def test_undocumented_methods_get_405(admin_user):
    """Every method the schema does not list for a path is 405, not a 200 that would do
    something undocumented."""
    _token, key = ApiToken.issue(user=admin_user, name="methods", scope=ApiToken.Scope.WRITE)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    documented: dict[str, set[str]] = {}
    for method, path in OPERATIONS:
        documented.setdefault(path, set()).add(method)
    for path, methods in documented.items():
        url = path.replace("{account_id}", "1").replace("{id}", "1")
        url = url.replace("{uuid}", "00000000-0000-0000-0000-000000000000")
        for method in sorted(set(HTTP_METHODS) - methods):
            response = client.generic(method, url, content_type="application/json")
            assert response.status_code == 405, (method, url, response.status_code)
