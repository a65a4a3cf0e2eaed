from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import Role, User
from accounts.roles import ensure_roles


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse ``django_db(serialized_rollback=True)``: in this suite it fails in some orders.

    That option loads a snapshot of the database taken right after ``migrate`` at the start
    of the test that asks for it, row by row with their old primary keys. Every other
    transactional test ends with a flush, and the flush runs the post_migrate handlers
    again: content types, permissions and the role groups (``accounts.roles.ensure_roles``)
    are created anew under new keys. A snapshot load after such a test inserts group 1
    "Admin" next to group 4 "Admin" and stops on auth_group's unique name. The snapshot
    does not put anything back for the tests after it either: its own closing flush skips
    post_migrate and leaves the tables empty. A test that needs rows makes them; a test
    that migrates backwards puts the schema back to every app's leaf migrations."""
    asking = [
        item.nodeid
        for item in items
        if (marker := item.get_closest_marker("django_db"))
        and marker.kwargs.get("serialized_rollback")
    ]
    if asking:
        raise pytest.UsageError(
            "serialized_rollback=True fails after another transactional test (see "
            "tests/conftest.py, pytest_collection_modifyitems): " + ", ".join(asking)
        )


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Debounce keys and progress live in the cache: no test sees another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _answer_batches_end():
    """The survey answers' batch thread (surveys.answer_batch) has a database connection of
    its own: it ends with each test, before the test database is flushed or dropped."""
    yield
    from surveys.answer_batch import answers

    answers.stop()


@pytest.fixture
def celery_eager():
    """Tasks run in this process (as in embedded mode), also when REDIS_URL is set."""
    from config.celery import app as celery_app

    before = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = before


@pytest.fixture(autouse=True)
def _plain_http(settings):
    """The deployed profile redirects to HTTPS; the test client speaks plain HTTP."""
    settings.SECURE_SSL_REDIRECT = False
    settings.ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
    # imports tell the health recompute which accounts changed; tests that are about that
    # turn it on (otherwise every import in the suite would send tasks to Redis)
    settings.ACCOUNT_DATA_CHANGED_HOOKS = []
    settings.TIMELINE_FACT_HOOKS = []  # likewise for the playbooks' event triggers
    settings.PIPELINE_FINAL_HOOKS = []  # the playbook step: tests about playbooks turn it on
    # PBKDF2 costs ~0.3 s a user; tests create many users
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # the production profile serves hashed files after collectstatic; tests have none
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _user(email: str, role: Role | None, **extra) -> User:
    ensure_roles()
    user = User.objects.create_user(email=email, password="pw-for-tests-1", **extra)
    if role is not None:
        user.groups.add(Group.objects.get(name=role.value))
    return user


@pytest.fixture
def admin_user(db) -> User:
    return _user("admin@example.com", Role.ADMIN, first_name="Ada", is_staff=True)


@pytest.fixture
def manager(db) -> User:
    return _user("manager@example.com", Role.MANAGER, first_name="Max")


@pytest.fixture
def csm(db, manager) -> User:
    return _user("csm@example.com", Role.CSM, first_name="Cleo", manager=manager)


@pytest.fixture
def outsider(db) -> User:
    """Signed in, but holds no role: sees nothing."""
    return _user("outsider@example.com", None)


@pytest.fixture
def lock_held_elsewhere(db, tmp_path, monkeypatch):
    """The pipeline lock held by another process, as a run (or a rescore) there holds it:
    on PostgreSQL by another session (an advisory lock); on SQLite by a process of its own
    holding the OS lock of the lock file (``pipeline.lock_file``, pointed into tmp_path:
    the test database is in memory, which has none)."""
    from django.db import DEFAULT_DB_ALIAS, connection, connections

    from metrics import pipeline
    from tests.waiting import hold_lock_file

    if connection.vendor != "postgresql":
        if pipeline.fcntl is None:
            pytest.skip("no OS file lock here (Windows): the lock covers this process only")
        path = tmp_path / "book.sqlite3.pipeline-lock"
        monkeypatch.setattr(pipeline, "lock_file", lambda: path)
        holder = hold_lock_file(path)
        yield
        holder.kill()  # the process ends: the lock goes
        holder.communicate()
        return
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", pipeline.RUN_LOCK)
    yield
    other.close()  # the session ends: the lock goes
