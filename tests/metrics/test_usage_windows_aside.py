"""The stored usage windows' refresh reads the direct figures on a second connection while
its own counts and writes the feature users (``config.db.beside_or_now``), when it runs outside any
transaction on PostgreSQL: the windows it stores equal the direct read, as in a refresh run
inside a transaction (one connection)."""

from __future__ import annotations

import random

import pytest
from django.db import connection, transaction

from accounts.models import Account
from metrics.kpis import adoption
from metrics.models import UsageWindow, UsageWindowFeature
from tests.metrics.test_kpi_fast_path import END, _same, _usage_book


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second PostgreSQL connection")
@pytest.mark.django_db(transaction=True)
def test_the_direct_read_beside_the_feature_insert_stores_the_same_windows(settings, monkeypatch):
    settings.KEY_FEATURES = ["login", "report"]
    accounts = _usage_book(random.Random(11), n=15)
    asides = []
    real = adoption.beside_or_now

    def spy(read, aside, **kwargs):
        asides.append(aside)
        return real(read, aside, **kwargs)

    monkeypatch.setattr(adoption, "beside_or_now", spy)
    counts = adoption.usage_windows_refresh(end=END)  # outside a transaction: aside
    assert asides == [True]
    assert counts["accounts"] == len(accounts) == UsageWindow.objects.count()
    assert UsageWindowFeature.objects.exists()
    everyone = Account.objects.all()
    aside = _same(everyone)
    stored = sorted(UsageWindow.objects.values_list())

    UsageWindow.objects.all().delete()
    UsageWindowFeature.objects.all().delete()
    with transaction.atomic():  # inside one: on this connection
        adoption.usage_windows_refresh(end=END)
    assert asides == [True, False]
    assert sorted(UsageWindow.objects.values_list()) == stored
    inline = _same(everyone)
    assert inline.per_account == aside.per_account and inline.features == aside.features
