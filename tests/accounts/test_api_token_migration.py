"""Migration 0009: API tokens gain who made and who revoked them (and where). Tokens that
exist keep every value and get nulls and blanks (nobody recorded who made them); going back
drops the new columns and keeps the tokens. Run through the migration executor on the test
database, which is put back to every app's newest migrations afterwards."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("accounts", "0008_milestone")]
AFTER = [("accounts", "0009_api_token_made_and_revoked_by")]
NEW = {"created_by", "created_via", "revoked_by", "revoked_via"}
REVOKED = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)

# the schema editor cannot run inside the test's transaction on SQLite
pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _back_to_the_latest():
    """Going back to 0008 unapplies 0009 (and whatever comes to depend on it later): put
    every app back at its leaf migrations for the tests after these."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_tokens_get_nulls_and_come_back_without_the_columns():
    apps = _migrate(BEFORE)
    User = apps.get_model("accounts", "User")
    ApiToken = apps.get_model("accounts", "ApiToken")
    assert not NEW & {f.name for f in ApiToken._meta.get_fields()}
    owner = User.objects.create(email="owner@example.com", password="!")
    ApiToken.objects.create(user=owner, name="Live", prefix="cs_live", key_hash="a" * 64)
    ApiToken.objects.create(
        user=owner, name="Old", prefix="cs_old", key_hash="b" * 64, revoked_at=REVOKED
    )

    apps = _migrate(AFTER)
    ApiToken = apps.get_model("accounts", "ApiToken")
    rows = ApiToken.objects.order_by("name").values_list(
        "name", "revoked_at", "created_by", "created_via", "revoked_by", "revoked_via"
    )
    assert list(rows) == [("Live", None, None, "", None, ""), ("Old", REVOKED, None, "", None, "")]
    # the new columns take values now
    ApiToken.objects.filter(name="Old").update(revoked_by=owner.pk, revoked_via="page")

    apps = _migrate(BEFORE)
    ApiToken = apps.get_model("accounts", "ApiToken")
    assert not NEW & {f.name for f in ApiToken._meta.get_fields()}
    rows = ApiToken.objects.order_by("name").values_list("name", "key_hash", "revoked_at")
    assert list(rows) == [("Live", "a" * 64, None), ("Old", "b" * 64, REVOKED)]
