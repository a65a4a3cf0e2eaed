"""The database connection dies in the middle of an event batch (what a PostgreSQL restart
does to every open connection): the batch is all-or-nothing, the API answers a retryable
503 with Retry-After, not a 500 page, and re-sending the batch afterwards stores it once.

The backend serving the request is terminated from a second connection
(``pg_terminate_backend``) right after the batch's events were written (inside its
transaction) and before the next statement (the rollups), so it dies half-way."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.db import close_old_connections, connection

from accounts.models import Account, ApiToken, UsageDaily, UsageEvent

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="kills a PostgreSQL backend"),
    pytest.mark.django_db(transaction=True),
]


def _admin_dsn() -> str:
    s = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=s.get("HOST") or "127.0.0.1",
        port=s.get("PORT") or 5432,
        user=s.get("USER") or "postgres",
        password=s.get("PASSWORD") or None,
        dbname=s["NAME"],
    )


class KillMidBatch:
    """An execute wrapper: once a statement has written usage events, terminate this
    connection's backend from outside before the next statement, which then runs into the
    dead connection."""

    def __init__(self):
        self.events_written = False
        self.killed = False

    def __call__(self, execute, sql, params, many, context):
        if self.events_written and not self.killed:
            pid = context["connection"].connection.info.backend_pid
            with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            self.killed = True
        result = execute(sql, params, many, context)
        text = str(sql).lstrip().upper()
        if "ACCOUNTS_USAGEEVENT" in text and text.startswith(("INSERT", "WITH")):
            self.events_written = True
        return result


def test_a_dead_connection_mid_batch_is_a_503_and_writes_nothing(client, admin_user, settings):
    settings.EVENT_BATCH_MAX = 10_000
    Account.objects.create(external_id="A-1", name="Acme")
    _token, key = ApiToken.issue(user=admin_user, name="fault", scope=ApiToken.Scope.WRITE)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    events = [
        {
            "account_external_id": "A-1",
            "user_id": f"u{i % 7}",
            "event": "report_created",
            "occurred_at": (start + dt.timedelta(minutes=i)).isoformat(),
        }
        for i in range(6000)
    ]
    killer = KillMidBatch()
    with connection.execute_wrapper(killer):
        response = client.post(
            "/api/v1/events/batch",
            {"events": events},
            content_type="application/json",
            **auth,
        )
    assert killer.killed, "the batch never wrote events twice: the fault was not injected"
    assert response.status_code == 503, response.content[:500]
    assert response.headers["Retry-After"] == "5"
    assert "temporarily unavailable" in response.json()["detail"]

    # all-or-nothing: not one event or rollup of the batch was kept
    assert UsageEvent.objects.count() == 0
    assert UsageDaily.objects.count() == 0

    # the client retries the same batch: stored once, whole
    response = client.post(
        "/api/v1/events/batch", {"events": events}, content_type="application/json", **auth
    )
    assert response.status_code == 200, response.content[:500]
    assert response.json()["created"] == 6000
    assert UsageEvent.objects.count() == 6000


def test_a_page_whose_database_connection_died_answers_503(rf):
    from django.db import InterfaceError, OperationalError
    from django.http import HttpResponse

    from accounts.middleware import DatabaseUnavailable

    middleware = DatabaseUnavailable(lambda request: HttpResponse("ok"))
    request = rf.get("/accounts/1/")
    for error in (OperationalError("terminating connection"), InterfaceError("closed")):
        response = middleware.process_exception(request, error)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert b"Back in a moment" in response.content
    assert middleware.process_exception(request, ValueError("a bug")) is None  # still a 500


def test_after_the_database_restarts_the_next_request_reconnects(client, csm):
    """The connection a worker process holds dies with the restart; Django's health check
    (CONN_HEALTH_CHECKS) replaces it at the start of the next request."""
    client.force_login(csm)
    assert client.get("/").status_code == 200
    pid = connection.connection.info.backend_pid
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # what the WSGI handler does when a request starts (the test client skips it)
    close_old_connections()
    assert client.get("/").status_code == 200
    assert connection.connection.info.backend_pid != pid
