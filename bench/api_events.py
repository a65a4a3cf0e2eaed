"""Throughput of the event batch API: POST /api/v1/events/batch against a real server.

    .venv/bin/python bench/api_events.py bench/data/events_1m.csv --events 500000 \
        --batch 10000 --clients 2 --workers 2

Starts gunicorn on 127.0.0.1 only (``--workers`` sync workers, same settings as the
deployed profile) unless ``--url`` names a server already running on this machine; issues
a write token for an Admin (``bench-admin@bench.example``, created if missing); reads the
first ``--events`` rows of the CSV and pre-encodes them as JSON bodies of ``--batch`` events,
so the client spends its time sending, not encoding; then ``--clients`` threads POST them
over keep-alive connections. Events/s = events accepted / wall time of the sending phase.
Bounded: it stops after the given events or ``--max-seconds``, and stops the server it
started. Results are appended to bench/out/api_events.jsonl.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from _setup import OUT, ROOT, django_setup

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def issue_token() -> str:
    django_setup()
    from django.contrib.auth.models import Group

    from accounts.models import ApiToken, Role, User
    from accounts.roles import ensure_roles

    ensure_roles()
    user, _ = User.objects.get_or_create(email="bench-admin@bench.example")
    user.groups.add(Group.objects.get(name=Role.ADMIN.value))
    _token, key = ApiToken.issue(user=user, name="bench api_events")
    return key


def read_bodies(path: str, events: int, batch: int) -> list[bytes]:
    bodies, rows = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh)):
            if n >= events:
                break
            row["value"] = float(row["value"]) if row["value"] else None
            rows.append(row)
            if len(rows) == batch:
                bodies.append(json.dumps({"events": rows}).encode())
                rows = []
    if rows:
        bodies.append(json.dumps({"events": rows}).encode())
    return bodies


def wait_for(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server on {host}:{port} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="events CSV, e.g. bench/data/events_1m.csv")
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--url", help="use this running server (loopback only)")
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()

    url = urlsplit(args.url or f"http://127.0.0.1:{args.port}")
    if url.hostname not in LOOPBACK:
        raise SystemExit("benchmarks only target a server on this machine (127.0.0.1)")
    host, port = url.hostname, url.port or 80

    key = issue_token()
    bodies = read_bodies(args.csv, args.events, args.batch)
    total = sum(min(args.batch, args.events - i * args.batch) for i in range(len(bodies)))

    server = None
    OUT.mkdir(parents=True, exist_ok=True)
    server_log = open(OUT / "api_events.server.log", "wb")  # noqa: SIM115 - lives with the server
    if not args.url:
        with socket.socket() as probe:  # someone else's server would answer in our place
            if probe.connect_ex((host, port)) == 0:
                raise SystemExit(f"port {port} is already in use: pass another --port")
        env = {
            **os.environ,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
        }
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "config.wsgi",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--timeout", "300", "--access-logfile", "-"],
            cwd=ROOT, env=env, stdout=server_log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(host, port, 30)
        work: queue.Queue[bytes] = queue.Queue()
        for body in bodies:
            work.put(body)
        accepted, latencies, failures = [], [], []
        lock = threading.Lock()
        deadline = time.monotonic() + args.max_seconds

        def client() -> None:
            conn = http.client.HTTPConnection(host, port, timeout=300)
            headers = {
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Host": f"{host}:{port}",
            }
            while time.monotonic() < deadline:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                t0 = time.monotonic()
                conn.request("POST", "/api/v1/events/batch", body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                with lock:
                    latencies.append(time.monotonic() - t0)
                    if resp.status == 200:
                        data = json.loads(payload)
                        accepted.append(data["rows"])
                    else:
                        failures.append((resp.status, payload[:300]))

        began = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - began
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        server_log.close()
    if failures:
        print(f"{len(failures)} failed requests, first: {failures[0]}", file=sys.stderr)
    latencies.sort()
    done = sum(accepted)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "server": args.url or f"gunicorn, {args.workers} sync workers, 127.0.0.1",
        "clients": args.clients,
        "batch": args.batch,
        "events_sent": total,
        "events_accepted": done,
        "requests": len(latencies),
        "failed": len(failures),
        "seconds": round(seconds, 1),
        "events_per_s": round(done / seconds) if seconds else 0,
        "p50_ms": round(1000 * latencies[len(latencies) // 2]) if latencies else None,
        "p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)]) if latencies else None,
    }
    with open(OUT / "api_events.jsonl", "a") as fh:
        fh.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
