"""Survey answers over HTTP: POST /s/<token>/ against gunicorn, then check the database.

    .venv/bin/python bench/survey_posts.py --invitations 10000 --connections 16 --workers 2

``--connections``: a closed loop of N connections has a mean latency of N / throughput
(Little's law), so 64 connections could never show a p99 under 50 ms at 1,000 POSTs/s.

Creates an account with ``--invitations`` stakeholders and one invitation each (an active
NPS campaign "bench survey posts"; a previous run's rows are deleted first), starts gunicorn
on 127.0.0.1 only (``--workers`` workers; gunicorn.conf.py's settings, as deployed, unless
``--worker-class``/``--threads`` override them; the deployed profile: the
PostgreSQL of ``DATABASE_URL``, Redis of ``REDIS_URL`` for the cache and Celery), fetches one
response page to get a CSRF cookie and form token (any masked token of the cookie's secret is
valid, so the pair serves every POST), then a load generator (``--client``: wrk or asyncio
with ``--connections`` keep-alive connections, as a reverse proxy that keeps its upstream
connections alive sends them; or ``proxy``, a connection per request as a proxy sends them
to sync workers) POSTs one answer per invitation as fast as the server takes them: a burst
of N submissions. It reports POSTs/s over the burst and latency
percentiles, then checks that the database holds exactly one current response, with the
score sent, per invitation and that every answer has its timeline fact.

The answers' listeners (playbooks, health) are told in batches by the beat task
``surveys.tasks.announce_answers`` in a worker; here an announcer process runs the same
service every 5 s during the burst (``--announce-every``), its CPU reported per POST like
the workers', and the check also wants every answer announced (nothing left to announce).

The per-IP rate limit is raised for the run (``SURVEY_RATE_PER_IP``): all requests come from
127.0.0.1. The per-token limit stays as configured (one POST per token here). Results are
appended to bench/out/survey_posts.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _setup import OUT, ROOT, django_setup

CAMPAIGN = "bench survey posts"
ACCOUNT = "BENCH-SURVEY"


def prepare(n: int, accounts: int = 1) -> list[tuple[str, int]]:
    """(token, score) per invitation, freshly created: ``n`` people spread over ``accounts``
    accounts (a campaign goes to many customers; one account puts every answer's rows on the
    same index pages)."""
    django_setup()
    from django.db import transaction

    from accounts.models import Account, Stakeholder, TimelineEntry
    from surveys.models import AnswerToAnnounce, Campaign, Invitation, Response, Survey
    from surveys.services import new_token

    with transaction.atomic():
        old = Campaign.objects.filter(name=CAMPAIGN)
        Response.objects.filter(campaign__in=old).delete()
        TimelineEntry.objects.filter(account__external_id__startswith=ACCOUNT).delete()
        AnswerToAnnounce.objects.filter(account_id__in=Account.objects.filter(
            external_id__startswith=ACCOUNT).values("id")).delete()  # fmt: skip
        Invitation.objects.filter(campaign__in=old).delete()
        surveys = list(old.values_list("survey_id", flat=True))
        old.delete()
        Survey.objects.filter(pk__in=surveys).delete()
        Stakeholder.objects.filter(account__external_id__startswith=ACCOUNT).delete()
        customers = [
            Account.objects.get_or_create(
                external_id=ACCOUNT if k == 0 else f"{ACCOUNT}/{k}",
                defaults={"name": f"Bench Survey Corp {k}"},
            )[0]
            for k in range(accounts)
        ]
        survey = Survey.objects.create(
            name=CAMPAIGN, kind="nps", question="How likely are you to recommend us?"
        )
        campaign = Campaign.objects.create(name=CAMPAIGN, survey=survey, status="active")
        people = Stakeholder.objects.bulk_create(
            [
                Stakeholder(
                    external_id=f"{ACCOUNT}-{i}",
                    account=customers[i % accounts],
                    name=f"Person {i}",
                    email=f"p{i}@bench.example",
                )
                for i in range(n)
            ],
            batch_size=2000,
        )
        now = datetime.now(UTC)
        invitations = Invitation.objects.bulk_create(
            [
                Invitation(
                    campaign=campaign,
                    stakeholder=p,
                    account_id=p.account_id,
                    email=p.email,
                    token=new_token(),
                    expires_at=now + timedelta(days=30),
                    sent_at=now,
                )
                for p in people
            ],
            batch_size=2000,
        )
    return [(inv.token, i % 11) for i, inv in enumerate(invitations)]


def verify(expected: dict[str, int]) -> dict:
    from django.db.models import Count

    from accounts.models import TimelineEntry
    from surveys.models import Campaign, Response

    campaign = Campaign.objects.get(name=CAMPAIGN)
    rows = Response.objects.filter(campaign=campaign)
    current = dict(rows.filter(is_current=True).values_list("invitation__token", "score"))
    per_invitation = rows.values("invitation").annotate(n=Count("id")).filter(n__gt=1).count()
    facts = TimelineEntry.objects.filter(
        account__external_id__startswith=ACCOUNT, kind="survey_answer"
    )
    from surveys.models import AnswerToAnnounce

    left = AnswerToAnnounce.objects.count()
    # a batch's responses share its created_at (surveys.answer_batch): answers per statement
    batches = rows.values("created_at").distinct().count()
    return {
        "responses": rows.count(),
        "answers_per_batch": round(rows.count() / batches, 2) if batches else None,
        "current": len(current),
        "invitations_with_more_than_one": per_invitation,
        "facts": facts.count(),
        "left_to_announce": left,
        "exact": current == expected
        and rows.count() == len(expected) == facts.count()
        and left == 0,
    }


def announce_loop(every: float) -> None:
    """The beat task's work, every ``every`` seconds, until SIGTERM; then one last run."""
    django_setup()
    from django.conf import settings
    from django.utils.module_loading import import_string

    from surveys.services import answers_announce

    # a deployed worker has imported its listeners long before: count from here, not the
    # process's start-up (Django, the listeners' modules)
    for path in settings.TIMELINE_FACT_HOOKS + settings.ACCOUNT_DATA_CHANGED_HOOKS:
        import_string(path)
    started = resource.getrusage(resource.RUSAGE_SELF)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    total = 0
    while not stopping.wait(every):
        total += answers_announce()
    total += answers_announce()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - started.ru_utime - started.ru_stime
    print(json.dumps({"announced": total, "cpu": cpu}), flush=True)


def wait_for(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server on {host}:{port} did not come up")


def csrf_pair(host: str, port: int, token: str) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://{host}:{port}/s/{token}/") as resp:  # noqa: S310
        cookie = resp.headers["Set-Cookie"].split(";", 1)[0]  # csrftoken=…
        form = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', resp.read())[1]
    return cookie, form.decode()


async def burst(host, port, work, connections, cookie, form) -> tuple[list, list, float]:
    latencies: list[float] = []
    failures: list[tuple[int, bytes]] = []
    queue: asyncio.Queue = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)

    async def connect():
        return await asyncio.open_connection(host, port)

    async def client() -> None:
        reader, writer = await connect()
        while True:
            try:
                token, score = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            body = f"score={score}&comment=bench&csrfmiddlewaretoken={form}".encode()
            request = (
                f"POST /s/{token}/ HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            t0 = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:  # the server closed the connection: reconnect, resend
                writer.close()
                reader, writer = await connect()
                queue.put_nowait((token, score))
                continue
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            payload = await reader.readexactly(length) if length else b""
            latencies.append(time.perf_counter() - t0)
            if status != 302:
                failures.append((status, payload[:200]))
            if close:
                writer.close()
                reader, writer = await connect()
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, failures, time.perf_counter() - began


# wrk (a C load generator, far cheaper per request than the asyncio client: on two cores the
# generator's CPU is taken from the server) with a script that POSTs each token once. Each
# wrk thread takes every n-th token; a connection whose thread has none left sends an empty
# request (nothing reaches the server) and waits; the thread stops when all its POSTs are
# answered and prints "done", and the script interrupts wrk once every thread has.
WRK_SCRIPT = r"""
local counter, threads = 0, {}
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end
function init(args)
    local nthreads = tonumber(args[2])
    cookie, form = args[3], args[4]
    tokens, scores = {}, {}
    local i = 0
    for line in io.lines(args[1]) do
        if i % nthreads == id then
            local t, s = line:match("(%S+) (%S+)")
            table.insert(tokens, t)
            table.insert(scores, s)
        end
        i = i + 1
    end
    nxt, answered, failed = 1, 0, 0
    -- wrk calls request() once on the first thread to check the script before any thread
    -- runs: that call must not use up a token
    verifying = (id == 0)
end
function request()
    if nxt > #tokens then return "" end
    local i = nxt
    if verifying then verifying = false else nxt = nxt + 1 end
    local body = "score=" .. scores[i] .. "&comment=bench&csrfmiddlewaretoken=" .. form
    return wrk.format("POST", "/s/" .. tokens[i] .. "/", {
        ["Cookie"] = cookie, ["Content-Type"] = "application/x-www-form-urlencoded",
    }, body)
end
function response(status, headers, body)
    answered = answered + 1
    if status ~= 302 then failed = failed + 1 end
    if answered == #tokens then
        io.write("done\n")
        io.flush()
        wrk.thread:stop()
    end
end
function done(summary, latency, requests)
    local failed_total = 0
    for _, thread in ipairs(threads) do failed_total = failed_total + thread:get("failed") end
    io.write(string.format(
        '{"wrk": true, "requests": %d, "failed": %d, "us": %d, "p50": %d, "p95": %d, '
        .. '"p99": %d, "max": %d}\n', summary.requests, failed_total, summary.duration,
        latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def burst_wrk(wrk, host, port, work, connections, threads, cookie, form) -> dict:
    threads = min(threads, connections)
    tokens = OUT / "survey_posts.tokens"
    tokens.write_text("".join(f"{token} {score}\n" for token, score in work))
    script = OUT / "survey_posts.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        wrk, "-t", str(threads), "-c", str(connections), "-d", "600s", "--timeout", "60s",
        "-s", str(script), f"http://{host}:{port}/", "--", str(tokens), str(threads), cookie,
        form,
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    finished = 0
    for line in proc.stdout:
        if line.strip() == "done":
            finished += 1
            if finished == threads:
                proc.send_signal(signal.SIGINT)  # wrk then prints its summary and exits
        elif line.startswith('{"wrk"'):
            result = json.loads(line)
    _, _, usage = os.wait4(proc.pid, 0)  # wrk's own CPU: it shares the two cores
    proc.returncode = 0
    result["cpu"] = usage.ru_utime + usage.ru_stime
    return result


# The proxy-like client: what a buffering reverse proxy (nginx's default proxy_pass) does in
# front of gunicorn's sync workers. It opens a connection only with a whole request in hand,
# sends it with "Connection: close", reads the answer to the server's close, and opens the
# next connection for the next request: no connection is ever idle, so a sync worker never
# waits on one. ``--connections`` threads (blocking sockets: each waits in recv without the
# GIL) in a process of its own, whose CPU the bench counts like wrk's.
def proxy_loop(tokens_file: str, connections: int, host: str, port: int, cookie: str,
               form: str) -> None:  # fmt: skip
    import collections

    work = collections.deque(
        line.split() for line in Path(tokens_file).read_text().splitlines() if line.strip()
    )
    latencies: list[float] = []
    failures: list[str] = []
    head = (
        f"Host: {host}:{port}\r\nCookie: {cookie}\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
    )

    def client() -> None:
        while True:
            try:
                token, score = work.popleft()
            except IndexError:
                return
            body = f"score={score}&comment=bench&csrfmiddlewaretoken={form}"
            request = (
                f"POST /s/{token}/ HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
            t0 = time.perf_counter()
            with socket.create_connection((host, port)) as sock:
                sock.sendall(request)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            latencies.append(time.perf_counter() - t0)
            answer = b"".join(chunks)
            if answer[9:12] != b"302":
                failures.append(answer[:200].decode("latin-1"))

    began = time.perf_counter()
    pool = [threading.Thread(target=client) for _ in range(connections)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - began
    latencies.sort()
    print(json.dumps({
        "requests": len(latencies), "failed": len(failures), "first_failure": failures[:1],
        "seconds": seconds, **{f"p{p}": pct(latencies, p) for p in (50, 95, 99)},
        "max": round(1000 * latencies[-1], 1) if latencies else None,
    }), flush=True)  # fmt: skip


def burst_proxy(host, port, work, connections, cookie, form) -> dict:
    tokens = OUT / "survey_posts.tokens"
    tokens.write_text("".join(f"{token} {score}\n" for token, score in work))
    command = [
        sys.executable, __file__, "--proxy-loop", str(tokens), "--connections",
        str(connections), "--port", str(port), "--cookie", cookie, "--form", form,
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    result = json.loads(out.strip().splitlines()[-1])
    result["cpu"] = usage.ru_utime + usage.ru_stime
    return result


def cpu_seconds(pids: list[int], field: int | None = None) -> float:
    """User + system CPU of these processes so far (Linux /proc); ``field`` 12: system only."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if field is None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        else:
            total += int(fields[field - 3])  # the field's number in proc(5)
    return total / os.sysconf("SC_CLK_TCK")


def _pids_named(name: str) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/comm") as fh:
                if fh.read().strip() == name:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def worker_pids(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as fh:
        return [int(pid) for pid in fh.read().split()]


class PostgresCpu(threading.Thread):
    """CPU of this database's PostgreSQL backends over the burst: samples /proc twice a
    second, because a backend may close mid-burst (CONN_MAX_AGE) and take its count along."""

    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.tag = f" {database} "  # in the backend's title: "postgres: 15/main: user db host"
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stopping = threading.Event()

    def sample(self, *, initial: bool = False) -> None:
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    title = fh.read().decode(errors="replace")
                if not title.startswith("postgres:") or self.tag not in title:
                    continue
                seconds = cpu_seconds([int(entry)])
            except OSError:  # gone meanwhile
                continue
            # open before the burst: counted from now; opened during it: from its start
            self.first.setdefault(int(entry), seconds if initial else 0.0)
            self.last[int(entry)] = seconds

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            self.sample()

    def start(self) -> None:
        self.sample(initial=True)
        super().start()

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        self.sample()
        return self.seconds()

    def seconds(self) -> float:
        """CPU seconds of the backends between the first sample and the last."""
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(1000 * values[min(len(values) - 1, int(len(values) * p / 100))], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invitations", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--accounts", type=int, default=100, help="customers the invited people belong to"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", help="default: gunicorn.conf.py's (gthread)")
    parser.add_argument(
        "--threads", type=int, help="threads per gthread worker (default: gunicorn.conf.py's)"
    )
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument(
        "--client", choices=("auto", "wrk", "asyncio", "proxy"), default="auto",
        help="load generator: wrk when installed (auto), else the asyncio client; proxy: "
        "one request per connection, as a buffering reverse proxy sends them (sync workers)",
    )  # fmt: skip
    parser.add_argument(
        "--access-log", action="store_true", help="gunicorn's access log (to a file) on"
    )
    parser.add_argument("--client-threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--announce-every", type=float, default=5.0,
        help="seconds between the announcer's runs (the beat task's schedule)",
    )  # fmt: skip
    parser.add_argument("--announce-loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--proxy-loop", help=argparse.SUPPRESS)
    parser.add_argument("--cookie", help=argparse.SUPPRESS)
    parser.add_argument("--form", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.announce_loop:
        return announce_loop(args.announce_every)
    host, port = "127.0.0.1", args.port
    if args.proxy_loop:
        return proxy_loop(args.proxy_loop, args.connections, host, port, args.cookie, args.form)

    # the deployed profile serves hashed static files: the page links the stylesheet
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=ROOT, check=True
    )
    work = prepare(args.invitations, args.accounts)
    with open("/proc/loadavg") as fh:
        load_before = " ".join(fh.read().split()[:3])
    expected = dict(work)
    OUT.mkdir(parents=True, exist_ok=True)
    server_log = open(OUT / "survey_posts.server.log", "wb")  # noqa: SIM115 - lives with the server
    env = {
        **os.environ,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "SURVEY_RATE_PER_IP": "100000000",  # every request comes from 127.0.0.1
    }
    # the rest from gunicorn.conf.py in ROOT (gunicorn reads it there): production's settings
    command = [
        os.path.join(os.path.dirname(sys.executable), "gunicorn"), "config.wsgi",
        "--bind", f"{host}:{port}", "--workers", str(args.workers),
    ]  # fmt: skip
    if args.worker_class:
        command += ["--worker-class", args.worker_class]
    if args.worker_class not in (None, "gthread"):
        command += ["--threads", "1"]  # sync with threads > 1 would be gthread
    elif args.threads:
        command += ["--threads", str(args.threads)]
    if args.access_log:
        command += ["--access-logfile", str(OUT / "survey_posts.access.log")]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(host, port, 30)
        # warm-up: one page per worker connection path; its GETs write nothing
        cookie, form = csrf_pair(host, port, work[0][0])
        for token, _ in work[1:20]:
            urllib.request.urlopen(f"http://{host}:{port}/s/{token}/").read()  # noqa: S310
        workers = worker_pids(server.pid)
        workers_cpu = cpu_seconds(workers)
        workers_system = cpu_seconds(workers, 15)  # stime: the kernel's share (sockets)
        redis_pids = _pids_named("redis-server")
        redis_cpu = cpu_seconds(redis_pids)
        announcer = subprocess.Popen(
            [sys.executable, __file__, "--announce-loop", "--announce-every",
             str(args.announce_every)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        from django.db import connection

        postgres = PostgresCpu(connection.settings_dict["NAME"])
        connection.close()  # not ours to count
        postgres.start()
        wrk = shutil.which("wrk") if args.client in ("auto", "wrk") else None
        if args.client == "wrk" and wrk is None:
            raise SystemExit("wrk is not installed (apt-get install wrk)")
        if args.client == "proxy":
            measured = burst_proxy(host, port, work, args.connections, cookie, form)
        elif wrk:
            measured = burst_wrk(
                wrk, host, port, work, args.connections, args.client_threads, cookie, form
            )
        else:
            latencies, failures, seconds = asyncio.run(
                burst(host, port, work, args.connections, cookie, form)
            )
        # CPU per POST: the gunicorn workers and this database's PostgreSQL backends during
        # the burst (not PostgreSQL's WAL writer and checkpointer, nor Redis)
        workers_cpu = cpu_seconds(workers) - workers_cpu
        workers_system = cpu_seconds(workers, 15) - workers_system
        redis_cpu = cpu_seconds(redis_pids) - redis_cpu
        # the announcer's last run takes what the burst left; its CPU counts in full
        announcer.send_signal(signal.SIGTERM)
        announced = json.loads(announcer.communicate(timeout=120)[0].strip().splitlines()[-1])
        postgres_cpu = postgres.stop()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        server_log.close()
    if args.client == "proxy":
        if measured["failed"]:
            print(
                f"{measured['failed']} failed, first: {measured['first_failure']}", file=sys.stderr
            )
        n, seconds = measured["requests"], measured["seconds"]
        posts = {"posts": n, "failed": measured["failed"], "seconds": round(seconds, 2),
                 "posts_per_s": round(n / seconds) if seconds else 0}  # fmt: skip
        posts.update({f"{k}_ms": measured[k] for k in ("p50", "p95", "p99", "max")})
        failures = [None] * measured["failed"]
    elif wrk:
        n, seconds = measured["requests"], measured["us"] / 1e6
        posts = {"posts": n, "failed": measured["failed"], "seconds": round(seconds, 2),
                 "posts_per_s": round(n / seconds) if seconds else 0}  # fmt: skip
        posts.update({f"{k}_ms": round(measured[k] / 1000, 1) for k in ("p50", "p95", "p99")})
        posts["max_ms"] = round(measured["max"] / 1000, 1)
        failures = [None] * measured["failed"]
    else:
        if failures:
            print(f"{len(failures)} failed requests, first: {failures[0]}", file=sys.stderr)
        latencies.sort()
        posts = {
            "posts": len(latencies),
            "failed": len(failures),
            "seconds": round(seconds, 2),
            "posts_per_s": round(len(latencies) / seconds) if seconds else 0,
            "p50_ms": pct(latencies, 50),
            "p95_ms": pct(latencies, 95),
            "p99_ms": pct(latencies, 99),
            "max_ms": round(1000 * latencies[-1], 1) if latencies else None,
        }
    check = verify(expected)
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "server": f"gunicorn {args.workers} {args.worker_class or 'gthread'} workers"
        + (
            f" x {args.threads or 'gunicorn.conf.py'} threads"
            if args.worker_class in (None, "gthread")
            else ""
        ),  # fmt: skip
        "client": "proxy-like (a connection per request)"
        if args.client == "proxy"
        else f"wrk -t{min(args.client_threads, args.connections)}"
        if wrk
        else "asyncio",
        "access_log": args.access_log,
        "connections": args.connections,
        "accounts": args.accounts,
        **posts,
        "cpu_ms_per_post": {
            "gunicorn_workers": round(1000 * workers_cpu / args.invitations, 2),
            "postgres_backends": round(1000 * postgres_cpu / args.invitations, 2),
            "redis_server": round(1000 * redis_cpu / args.invitations, 2),
            "client": round(1000 * measured["cpu"] / args.invitations, 2)
            if wrk or args.client == "proxy"
            else None,
            "announcer": round(1000 * announced["cpu"] / args.invitations, 2),
        },
        "gunicorn_workers_system_ms_per_post": round(1000 * workers_system / args.invitations, 2),
        "announced": announced["announced"],
        "load_average_after": load,
        "load_average_before": load_before,
        "database": check,
    }
    # what two cores could serve if nothing else ran: every process of the run counted
    # (not PostgreSQL's WAL writer and checkpointer, nor the kernel's own work)
    total = sum(value for value in result["cpu_ms_per_post"].values() if value)
    result["cpu_ms_per_post"]["total"] = round(total, 2)
    result["ceiling_posts_per_s"] = round(os.cpu_count() * 1000 / total) if total else None
    with open(OUT / "survey_posts.jsonl", "a") as fh:
        fh.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=2))
    if not check["exact"] or failures:
        raise SystemExit("the database does not hold exactly the expected responses")


if __name__ == "__main__":
    main()
