"""The KPI report (``kpis.kpi_report``: the API, the CLI, the dashboard) reads the usage
totals and the ticket figures on a second connection while its own reads the contracts,
renewals and invoices, when it runs outside any transaction on PostgreSQL: the report is
the one read on one connection (inside a transaction, or on SQLite)."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading

import pytest
from django.db import connection, transaction

from metrics import kpis
from metrics.kpis import adoption, support
from tests.metrics.test_health_fast_path import D, _random_book


def _where_read(monkeypatch) -> list[tuple[str, str]]:
    """(read, thread name) of each usage-totals and ticket-figures read."""
    seen: list[tuple[str, str]] = []
    for module, name in ((adoption, "usage_totals"), (support, "ticket_figures")):
        real = getattr(module, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            seen.append((_name, threading.current_thread().name))
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return seen


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second PostgreSQL connection")
@pytest.mark.django_db(transaction=True)
def test_the_report_read_on_two_connections_is_the_report_read_on_one(settings, monkeypatch):
    settings.KEY_FEATURES = ["export", "share"]
    _random_book(random.Random(17), 30)
    seen = _where_read(monkeypatch)
    start, end = D - dt.timedelta(days=365), D + dt.timedelta(days=1)

    aside = kpis.kpi_report(start=start, end=end)  # outside a transaction: two connections
    assert [r for r, _ in seen] == ["usage_totals", "ticket_figures"]
    assert all(t.startswith("kpi-report") for _, t in seen)
    assert aside["support"]["ticket_volume"]["value"] > 0  # the book has tickets in the year

    seen.clear()
    with transaction.atomic():  # inside one: this connection, this thread
        inline = kpis.kpi_report(start=start, end=end)
    assert seen == [("usage_totals", "MainThread"), ("ticket_figures", "MainThread")]
    assert json.dumps(aside, sort_keys=True) == json.dumps(inline, sort_keys=True)

    segment = kpis.kpi_report(start=start, end=end, segment="SMB")  # a scope, aside too
    with transaction.atomic():
        assert kpis.kpi_report(start=start, end=end, segment="SMB") == segment


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second PostgreSQL connection")
@pytest.mark.django_db(transaction=True)
def test_an_error_on_the_second_connection_is_the_reports_error(monkeypatch):
    _random_book(random.Random(18), 5)

    def broken(*args, **kwargs):
        raise RuntimeError("tickets unreadable")

    monkeypatch.setattr(support, "ticket_figures", broken)
    with pytest.raises(RuntimeError, match="tickets unreadable"):
        kpis.kpi_report(start=D - dt.timedelta(days=30), end=D + dt.timedelta(days=1))
