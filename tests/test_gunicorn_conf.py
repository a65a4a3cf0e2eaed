"""gunicorn.conf.py: the web server's settings, read by gunicorn itself from the repository's
root (the Dockerfile's ``CMD ["gunicorn"]``, docker-compose.yml's ``web``, bench/survey_posts.py).

Threaded workers keep the reverse proxy's connections alive; the access log is off. Checked
through gunicorn's own reading of the file (``--print-config``) and a real server on
127.0.0.1 answering two requests on one connection.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("WEB_CONCURRENCY", None)
    env.pop("GUNICORN_THREADS", None)
    env.pop("GUNICORN_CMD_ARGS", None)
    env.update(extra)
    return env


def _printed_config(**extra: str) -> dict[str, str]:
    out = subprocess.run(
        [GUNICORN, "--print-config"], cwd=ROOT, env=_env(**extra), capture_output=True,
        text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in out.splitlines())
        if value
    }


def test_the_config_file_gives_threaded_workers_with_keep_alive_and_no_access_log():
    config = _printed_config(WEB_CONCURRENCY="3")
    assert config["wsgi_app"] == "config.wsgi:application"
    assert config["bind"] == "['0.0.0.0:8000']"
    assert config["worker_class"] == "gthread"
    assert config["workers"] == "3"
    assert config["threads"] == "8"
    assert int(config["keepalive"]) > 60  # outlives nginx's idle upstream connections
    assert config["accesslog"] == "None"
    assert config["timeout"] == "120"
    assert config["forwarded_allow_ips"] == "['*']"


def test_threads_and_workers_come_from_the_environment():
    config = _printed_config(WEB_CONCURRENCY="1", GUNICORN_THREADS="4")
    assert (config["workers"], config["threads"]) == ("1", "4")


def test_the_image_and_compose_run_gunicorn_on_this_file():
    """No flags that would override the file (worker class, access log, bind)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn"]' in dockerfile
    assert "WEB_CONCURRENCY=2" in dockerfile
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = " ".join(compose["services"]["web"]["command"])
    assert command.endswith("exec gunicorn")
    assert "gunicorn.conf.py" not in (ROOT / ".dockerignore").read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_response(sock: socket.socket, pending: bytes) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response (headers + Content-Length body) and what came after it."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        rest += chunk
    return head, rest[length:]


def test_a_connection_serves_several_requests_and_nothing_is_logged_per_request(tmp_path):
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [GUNICORN, "--bind", f"127.0.0.1:{port}"], cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
            env=_env(WEB_CONCURRENCY="1", GUNICORN_THREADS="2"),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        with sock:
            request = f"GET /no-such-page/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
            pending = b""
            for _ in range(2):  # the second request on the same connection
                sock.sendall(request)
                head, pending = _read_response(sock, pending)
                assert head.startswith(b"HTTP/1.1 404"), head
                assert b"connection: close" not in head.lower()
    finally:
        server.terminate()
        server.wait(timeout=30)
    # gunicorn's access log line would be '127.0.0.1 - - [...] "GET /no-such-page/ HTTP/1.1" 404'
    # (Django's own warning for a 404 names the path without the method)
    assert '"GET /no-such-page/' not in log.read_text()


def test_a_worker_freezes_what_it_loaded_once_the_application_is_up():
    """``post_worker_init`` imports the URLconf (every view) and hands what the worker holds
    to ``gc.freeze``, so the collector's full passes no longer walk Django and the apps. Run
    in a process of its own: freezing this one would outlive the test."""
    script = (
        "import gc, runpy, sys, django; django.setup(); "
        "hooks = runpy.run_path('gunicorn.conf.py'); "
        "before = ('config.urls' in sys.modules, gc.get_freeze_count()); "
        "hooks['post_worker_init'](None); "
        "print(*before, 'config.urls' in sys.modules, gc.get_freeze_count())"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=60, env=_env(DJANGO_SETTINGS_MODULE="config.settings"),
    ).stdout.split()  # fmt: skip
    loaded_before, frozen_before, loaded_after, frozen_after = out
    assert (loaded_before, frozen_before, loaded_after) == ("False", "0", "True")
    assert int(frozen_after) > 50_000  # Django and the apps: 120,000 here
