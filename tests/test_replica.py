"""Read-only dashboard and KPI queries can go to a replica (config/db.py)."""

from __future__ import annotations

import os

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from config.db import REPLICA, ReplicaRouter, replica_reads

router = ReplicaRouter()


def test_reads_go_to_the_replica_only_inside_replica_reads(settings):
    settings.DATABASES = {**settings.DATABASES, REPLICA: dict(settings.DATABASES["default"])}
    assert router.db_for_read(Account) is None  # Django's default
    with replica_reads() as alias:
        assert alias == REPLICA
        assert router.db_for_read(Account) == REPLICA
        assert router.db_for_write(Account) == "default"  # writes never
    assert router.db_for_read(Account) is None
    assert router.allow_migrate(REPLICA, "accounts") is False
    assert router.allow_migrate("default", "accounts") is True


def test_without_a_replica_everything_reads_the_primary(settings):
    settings.DATABASES = {"default": settings.DATABASES["default"]}
    with replica_reads() as alias:
        assert alias == "default"
        assert router.db_for_read(Account) is None


@pytest.mark.skipif(
    not os.environ.get("DATABASE_REPLICA_URL"), reason="needs DATABASE_REPLICA_URL (CI sets it)"
)
@pytest.mark.django_db(transaction=True, databases=["default", REPLICA])
def test_a_kpi_read_runs_on_the_replica_connection():
    Account.objects.create(external_id="A-1", name="Acme")
    with CaptureQueriesContext(connections[REPLICA]) as on_replica, replica_reads():
        assert list(Account.objects.values_list("name", flat=True)) == ["Acme"]
    assert len(on_replica.captured_queries) == 1
