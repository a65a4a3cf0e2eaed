"""Migration tests' helpers: migrate the test database to given nodes through Django's
migration executor, and put every app back to its newest state after each test (the
``to_the_latest`` fixture; a test module uses it with ``pytest.mark.usefixtures``).

Such tests need ``pytest.mark.django_db(transaction=True)``: the schema editor cannot run
inside the test's transaction on SQLite. No serialized_rollback: see "serialized_rollback"
in tests/conftest.py."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate_to(targets):
    """Apply or unapply migrations so that ``targets`` (``[(app, migration)]``) are the
    latest applied; returns the historical apps of that state."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def to_the_latest():
    """Going back to an older migration unapplies every later one, of other apps too: the
    whole schema is put back to its newest state afterwards, so that the tests after these
    find every column (a standing's stage table built on an older schema lacks the new
    ones)."""
    yield
    migrate_to(MigrationExecutor(connection).loader.graph.leaf_nodes())
