"""Run modes of config/settings.py, each checked in a fresh interpreter with a controlled
environment (settings are read once per process, so a subprocess is the honest test).

Embedded (nothing set): SQLite, eager Celery, DEBUG on. ``DATABASE_URL`` switches to the
deployed profile (secret required, DEBUG off, clean ``check --deploy``); ``REDIS_URL`` switches
Celery and the cache to Redis. Also: ``.env.example`` documents every variable settings reads,
and docker-compose.yml keeps the services and health checks the README describes.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from config.settings import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = ROOT / "config" / "settings.py"
SECRET = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
PG_URL = "postgres://cs:pw@db.internal:5432/cs"  # never connected to: settings only parse it


def _settings_vars() -> set[str]:
    """Names of the environment variables config/settings.py reads (os.environ / env_*)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text())):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = ast.unparse(func)
            if called in ("os.environ.get", "env_bool", "env_int", "env_list", "os.getenv"):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
        if (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names


SETTINGS_VARS = _settings_vars()
# variables gunicorn.conf.py reads (WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_BIND)
GUNICORN_VARS = set(
    re.findall(r'os\.environ\.get\("(\w+)"', (ROOT / "gunicorn.conf.py").read_text())
)

PROBE = """
import json, django
from django.conf import settings
django.setup()
from config.celery import app
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "debug": settings.DEBUG,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "celery_eager": app.conf.task_always_eager,
    "broker": settings.CELERY_BROKER_URL,
    "celery_broker": app.conf.broker_url,
    "cache": settings.CACHES["default"]["BACKEND"],
    "secret_is_dev": settings.SECRET_KEY == settings.DEV_SECRET,
    "ssl_redirect": getattr(settings, "SECURE_SSL_REDIRECT", False),
    "staticfiles": settings.STORAGES["staticfiles"]["BACKEND"],
}))
"""


def _run_env() -> dict[str, str]:
    """The caller's environment without anything settings or gunicorn read: none of the
    caller's DATABASE_URL, REDIS_URL or DJANGO_* leak in (CI sets them for the suite)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in SETTINGS_VARS | GUNICORN_VARS
        and not k.startswith(("DJANGO_", "CELERY_", "PYTEST_"))
    }


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run python with only PATH/HOME-like basics plus ``env`` (``_run_env``)."""
    base = _run_env()
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    base.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def _probe(**env: str) -> dict:
    proc = _run(["-c", PROBE], **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- run modes ------------------------------------------------------------------------------


def test_nothing_set_runs_embedded_sqlite_eager_debug(tmp_path):
    conf = _probe()
    assert conf["engine"] == "django.db.backends.sqlite3"
    assert conf["db_name"] == str(ROOT / "db.sqlite3")
    assert conf["debug"] is True
    assert conf["eager"] is True and conf["celery_eager"] is True
    assert conf["broker"] == conf["celery_broker"] == "memory://localhost/"  # nothing leaves
    assert conf["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert conf["secret_is_dev"] is True
    assert conf["ssl_redirect"] is False


EAGER_SEND = """
import django
django.setup()
from config.celery import app
from outbox.services import task_enqueue

@app.task
def double(x):
    return 2 * x

print(task_enqueue(double, args=[21]), double.apply_async((21,)).get())
"""


def test_embedded_mode_runs_a_task_inline_without_a_broker_warning():
    proc = _run(["-c", EAGER_SEND], LOG_LEVEL="DEBUG")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "True 42"
    assert "succeeded" in proc.stderr  # the task ran here, and its log reached stderr
    assert "kombu" not in proc.stderr, proc.stderr


EAGER_LOGS = """
import json, logging, django
django.setup()
from config.celery import app

@app.task
def noisy():
    logging.getLogger("playbooks.tasks").info("progress of the task")
    logging.getLogger("playbooks.tasks").warning("a warning of the task")
    return 42

print(noisy.apply_async().get())
print(json.dumps({
    name: logging.getLevelName(logging.getLogger(name).getEffectiveLevel())
    for name in ("celery.app.trace", "playbooks.tasks", "metrics.tasks", "accounts.services")
}))
"""


def test_eager_task_logs_keep_to_warnings_in_embedded_mode():
    """Eager tasks run inside the command that queued them (recompute, seed_demo): Celery's
    "Task … succeeded" and the tasks' info lines stay out of its output; warnings show."""
    proc = _run(["-c", EAGER_LOGS])
    assert proc.returncode == 0, proc.stderr
    result, levels = proc.stdout.strip().splitlines()[-2:]
    assert result == "42"
    assert json.loads(levels) == {
        "celery.app.trace": "WARNING",
        "playbooks.tasks": "WARNING",
        "metrics.tasks": "WARNING",
        "accounts.services": "INFO",  # the rest of the app as before
    }
    assert "succeeded" not in proc.stderr and "progress of the task" not in proc.stderr
    assert "a warning of the task" in proc.stderr


def test_a_worker_or_an_explicit_log_level_keeps_the_task_info_logs():
    for env in ({"REDIS_URL": "redis://cache.internal:6379/3"}, {"LOG_LEVEL": "INFO"}):
        levels = _run(["-c", EAGER_LOGS.replace("noisy.apply_async().get()", "42")], **env)
        assert levels.returncode == 0, levels.stderr
        assert set(json.loads(levels.stdout.strip().splitlines()[-1]).values()) == {"INFO"}


def test_sqlite_path_moves_the_embedded_database(tmp_path):
    conf = _probe(SQLITE_PATH=str(tmp_path / "other.sqlite3"))
    assert conf["db_name"] == str(tmp_path / "other.sqlite3")


def test_database_url_without_secret_is_improperly_configured():
    proc = _run(["-c", PROBE], DATABASE_URL=PG_URL)
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr
    assert "DJANGO_SECRET_KEY must be set when DATABASE_URL is set" in proc.stderr


def test_manage_py_refuses_to_start_without_secret_in_deployed_mode():
    proc = _run(["manage.py", "check"], DATABASE_URL=PG_URL)
    assert proc.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in proc.stderr
    assert "secrets.token_urlsafe(50)" in proc.stderr  # how to make one


def _env_example_value(name: str) -> str:
    return next(
        line.split("=", 1)[1]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.startswith(f"{name}=")
    )


def test_the_env_example_placeholder_secret_is_refused_like_a_missing_one():
    placeholder = _env_example_value("DJANGO_SECRET_KEY")
    assert placeholder == "change-me-to-a-long-random-string"  # settings.PLACEHOLDER_SECRET
    for args in (["-c", PROBE], ["manage.py", "check"]):
        proc = _run(args, DATABASE_URL=PG_URL, DJANGO_SECRET_KEY=placeholder)
        assert proc.returncode != 0
        assert "ImproperlyConfigured" in proc.stderr
        assert "DJANGO_SECRET_KEY is still the placeholder of .env.example" in proc.stderr
        assert 'python3 -c "import secrets; print(secrets.token_urlsafe(50))"' in proc.stderr
    # embedded mode (no DATABASE_URL) signs nothing that matters: it still runs
    assert _probe(DJANGO_SECRET_KEY=placeholder)["debug"] is True


def test_database_url_with_secret_is_deployed_postgres_debug_off():
    conf = _probe(DATABASE_URL=PG_URL, DJANGO_SECRET_KEY=SECRET)
    assert conf["engine"] == "django.db.backends.postgresql"
    assert conf["db_name"] == "cs"
    assert conf["debug"] is False
    assert conf["secret_is_dev"] is False
    assert conf["ssl_redirect"] is True
    assert conf["staticfiles"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    # no REDIS_URL: tasks still run inline
    assert conf["eager"] is True


def test_deployed_profile_passes_check_deploy():
    proc = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DATABASE_URL=PG_URL,
        DJANGO_SECRET_KEY=SECRET,
        DJANGO_ALLOWED_HOSTS="cs.example.com,localhost",
        SITE_URL="https://cs.example.com",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def _check(*extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(
        ["manage.py", "check", *extra],
        **{"DATABASE_URL": PG_URL, "DJANGO_SECRET_KEY": SECRET, **env},
    )


@pytest.mark.parametrize("site_url", [None, "http://localhost:8000", "http://127.0.0.1:8000/"])
def test_a_public_deployment_without_its_site_url_fails_the_checks(site_url):
    """Survey invitations linked to 127.0.0.1:8000: now `check` (and migrate, runserver)
    stop with an error naming SITE_URL, with and without --deploy."""
    env = {"DJANGO_ALLOWED_HOSTS": "cs.example.com,localhost"}
    if site_url:
        env["SITE_URL"] = site_url
    for extra in ((), ("--deploy",)):
        proc = _check(*extra, **env)
        assert proc.returncode != 0
        out = proc.stdout + proc.stderr
        assert "config.E002" in out and "cs.example.com" in out, out
        assert ("SITE_URL is not set" in out) is (site_url is None)
        assert (
            "HINT: Set SITE_URL to the address users and customers open, e.g. https://cs.example.com"
            in out
        )


def test_site_url_check_passes_a_public_address_and_a_local_only_site():
    assert (
        _check(DJANGO_ALLOWED_HOSTS="cs.example.com", SITE_URL="https://cs.example.com/").returncode
        == 0
    )
    # a site that answers only on this machine: its default SITE_URL is right
    proc = _check(DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1,testserver")  # CI's hosts
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # any host at all ("*") is a public one
    assert "config.E002" in _check(DJANGO_ALLOWED_HOSTS="*").stderr
    # embedded mode: make run's own address, no check
    assert _run(["manage.py", "check"], DJANGO_ALLOWED_HOSTS="cs.example.com").returncode == 0


def test_site_url_without_a_scheme_fails_the_checks():
    proc = _check(DJANGO_ALLOWED_HOSTS="cs.example.com", SITE_URL="cs.example.com")
    assert proc.returncode != 0
    assert "config.E001" in proc.stderr and "'cs.example.com'" in proc.stderr


COOKIES = """
import json
from django.conf import settings
print(json.dumps([settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE]))
"""


@pytest.mark.parametrize(
    ("env", "secure"),
    [
        ({}, True),  # production default
        ({"DJANGO_SECURE_SSL_REDIRECT": "false"}, False),  # plain HTTP: sign in from the LAN
        ({"DJANGO_SECURE_SSL_REDIRECT": "false", "DJANGO_SECURE_COOKIES": "true"}, True),
        ({"DJANGO_SECURE_COOKIES": "false"}, False),
    ],
)
def test_secure_cookies_follow_the_ssl_redirect_unless_set(env, secure):
    proc = _run(["-c", COOKIES], DATABASE_URL=PG_URL, DJANGO_SECRET_KEY=SECRET, **env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [secure, secure]


def test_check_deploy_flags_a_short_secret():
    """The deploy check is not vacuous: a weak secret makes it fail."""
    proc = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DATABASE_URL=PG_URL,
        DJANGO_SECRET_KEY="short",
        DJANGO_ALLOWED_HOSTS="cs.example.com",
    )
    assert proc.returncode != 0
    assert "security.W009" in proc.stderr + proc.stdout


def test_redis_url_switches_cache_and_broker_and_turns_eager_off():
    url = "redis://cache.internal:6379/3"
    conf = _probe(REDIS_URL=url)
    assert conf["cache"] == "django_redis.cache.RedisCache"
    assert conf["broker"] == url and conf["celery_broker"] == url
    assert conf["eager"] is False and conf["celery_eager"] is False


def test_debug_can_be_forced_on_in_deployed_mode_only_explicitly():
    conf = _probe(DATABASE_URL=PG_URL, DJANGO_SECRET_KEY=SECRET, DJANGO_DEBUG="true")
    assert conf["debug"] is True


def test_env_bool_yes_stops_startup_with_the_variable_named():
    proc = _run(["-c", PROBE], DJANGO_DEBUG="yes")
    assert proc.returncode != 0
    assert "DJANGO_DEBUG must be true/false/1/0, got 'yes'" in proc.stderr


# --- the helpers, in process ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False), ("", None)],
)
def test_env_bool_accepts_only_true_false_1_0(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", default=None) is expected  # "" means: use the default


@pytest.mark.parametrize("raw", ["yes", "no", "on", "off", "2", "truthy"])
def test_env_bool_rejects_anything_else(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match=r"X_FLAG must be true/false/1/0"):
        env_bool("X_FLAG", default=False)


def test_env_int_and_env_list(monkeypatch):
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", " a.example.com, ,b.example.com ")
    assert env_int("X_INT", 1) == 42
    assert env_list("X_LIST", []) == ["a.example.com", "b.example.com"]
    monkeypatch.setenv("X_INT", "forty")
    with pytest.raises(ImproperlyConfigured, match=r"X_INT must be an integer, got 'forty'"):
        env_int("X_INT", 1)


# --- deployment files -----------------------------------------------------------------------


def test_env_example_documents_every_variable_settings_reads():
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"} <= SETTINGS_VARS  # parser works
    text = (ROOT / ".env.example").read_text()
    documented = set()
    for line in text.splitlines():
        stripped = line.lstrip("# ").removeprefix("e.g. ").strip()
        if "=" in stripped and stripped.split("=", 1)[0].isupper():
            documented.add(stripped.split("=", 1)[0])
    missing = SETTINGS_VARS - documented
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_compose_has_the_services_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "web", "worker", "worker-recompute", "beat"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("postgres", "redis", "web", "worker", "worker-recompute"):
        assert "healthcheck" in services[name], name
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    assert "ping" in str(services["redis"]["healthcheck"]["test"])
    assert "/healthz" in str(services["web"]["healthcheck"]["test"])
    for name in ("worker", "worker-recompute"):
        assert "inspect ping" in str(services[name]["healthcheck"]["test"]), name
        assert services[name]["stop_grace_period"] in ("120s", "300s"), name  # warm shutdown
    # the recompute has a worker no import holds up; every queue has a worker
    queues = {
        name: services[name]["command"][services[name]["command"].index("-Q") + 1].split(",")
        for name in ("worker", "worker-recompute")
    }
    assert "recompute" not in queues["worker"]
    assert "recompute" in queues["worker-recompute"] and "ingest" not in queues["worker-recompute"]
    # nor the night's health chunks: the worker of the night's long steps takes them
    from metrics.pipeline import NIGHT_HEALTH_QUEUE

    assert NIGHT_HEALTH_QUEUE in queues["worker"]
    assert NIGHT_HEALTH_QUEUE not in queues["worker-recompute"]
    from config.celery import QUEUES

    assert sorted(queues["worker"] + queues["worker-recompute"]) == sorted(QUEUES)
    assert "migrate" in str(services["web"]["command"])
    assert "DatabaseScheduler" in str(services["beat"]["command"])
    for name in ("web", "worker", "worker-recompute", "beat"):
        assert services[name]["env_file"] == ".env", name
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name


def test_docs_data_import_lists_the_columns_the_intake_accepts():
    """docs/data-import.md is the user's reference: same columns, same required flags."""
    from accounts.intake.columns import COLUMNS

    documented: dict[str, dict[str, bool]] = {}
    kind = None
    for line in (ROOT / "docs" / "data-import.md").read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            kind = title.split(".csv")[0] if ".csv" in title else None
            if kind is not None:
                documented[kind] = {}
        elif kind is not None and line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            documented[kind][cells[0].strip("`")] = cells[1] == "yes"
    expected = {k: {c.name: c.required for c in cols} for k, cols in COLUMNS.items()}
    assert documented == expected


DEFAULTS_PROBE = """
import importlib, json, os, runpy, sys, types

shown, canaries, examples = json.load(sys.stdin)


def settings_now():
    import config.settings as s

    importlib.reload(s)
    return {k: repr(getattr(s, k)) for k in dir(s) if k.isupper()}


def gunicorn_now():
    conf = runpy.run_path("gunicorn.conf.py")
    return {
        k: repr(v)
        for k, v in conf.items()
        if not k.startswith("_") and not callable(v) and not isinstance(v, types.ModuleType)
    }


base = {"settings": settings_now(), "gunicorn": gunicorn_now()}
changed = {}
for name, value in shown + canaries:
    before = os.environ.get(name)  # the image's ENV (MEDIA_ROOT) stays for the others
    os.environ[name] = value
    now = {"settings": settings_now(), "gunicorn": gunicorn_now()}
    if before is None:
        del os.environ[name]
    else:
        os.environ[name] = before
    changed[name + "=" + value] = sorted(
        f"{kind}.{key}" for kind in now for key in set(now[kind]) | set(base[kind])
        if now[kind].get(key) != base[kind].get(key)
    )
os.environ.update(dict(examples))
settings_now()  # every example is accepted
print(json.dumps(changed))
"""


def _env_example_lines() -> tuple[dict[str, str], dict[str, str]]:
    """The commented "# NAME=default" lines and the "# e.g. NAME=example" lines."""
    shown, examples = {}, {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line):
            shown[match[1]] = match[2]
        elif match := re.fullmatch(r"# e\.g\. ([A-Z][A-Z0-9_]*)=(.*)", line):
            examples[match[1]] = match[2]
    return shown, examples


def test_env_example_commented_lines_show_the_real_defaults():
    """Setting a variable to the value its commented line shows changes nothing in
    config/settings.py nor gunicorn.conf.py (in the image's deployed profile: DATABASE_URL set,
    the Dockerfile's ENV); compose-only variables match docker-compose.yml's ${NAME:-default}."""
    shown, examples = _env_example_lines()
    assert shown["USAGE_EVENTS_RETENTION_MONTHS"] == "0"
    assert "KEY_FEATURES" not in shown and "FIRST_VALUE_EVENT" not in shown  # unset: n/a
    assert {"KEY_FEATURES", "FIRST_VALUE_EVENT", "DATABASE_URL"} <= set(examples)

    compose = dict(re.findall(r"\$\{(\w+):-([^}]*)\}", (ROOT / "docker-compose.yml").read_text()))
    unknown = set(shown) - SETTINGS_VARS - GUNICORN_VARS - set(compose)
    assert not unknown, f"commented lines of variables nobody reads: {sorted(unknown)}"
    for name in set(shown) & set(compose) - SETTINGS_VARS - GUNICORN_VARS:
        assert shown[name] == compose[name], name

    dockerfile = (ROOT / "Dockerfile").read_text()
    image_env = dict(re.findall(r"^(?:ENV)?\s+([A-Z_]+)=(\S+?)\s*\\?$", dockerfile, re.M))
    assert image_env["WEB_CONCURRENCY"] == "2"  # the parser found the ENV block
    read = {n: v for n, v in shown.items() if n in SETTINGS_VARS | GUNICORN_VARS}
    canaries = [("USAGE_EVENTS_RETENTION_MONTHS", "13"), ("GUNICORN_THREADS", "9")]
    proc = subprocess.run(
        [sys.executable, "-c", DEFAULTS_PROBE],
        input=json.dumps([list(read.items()), canaries, list(examples.items())]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **_run_env(),
            **image_env,
            "DATABASE_URL": PG_URL,
            "DJANGO_SECRET_KEY": SECRET,
        },
    )
    assert proc.returncode == 0, proc.stderr
    changed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert changed.pop("USAGE_EVENTS_RETENTION_MONTHS=13")  # the comparison sees a change
    assert changed.pop("GUNICORN_THREADS=9")
    wrong = {line: keys for line, keys in changed.items() if keys}
    assert not wrong, f".env.example's commented value is not the default: {wrong}"
