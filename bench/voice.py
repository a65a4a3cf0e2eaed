"""Voice of the customer: sentiment of 100,000 texts and themes over 50,000, in-process.

    .venv/bin/python bench/voice.py                  # both, each in its own process
    .venv/bin/python bench/voice.py sentiment --texts 100000
    .venv/bin/python bench/voice.py themes --texts 50000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs_bench_voice \
        .venv/bin/python bench/voice.py service --texts 100000   # through the database

Texts are synthetic and deterministic (``random.Random(seed)``): 40 complaint and praise
topics with several phrasings each, mixed with filler sentences, 2 % with HTML, 1 % very
long (truncated), 1 % German or French, 1 % empty: the shapes the product sees. Each phase
runs in a fresh process so its peak memory (``ru_maxrss``) is its own. ``sentiment`` and
``themes`` need no database: they measure the scoring and clustering code
(``voice.sentiment``, ``voice.themes``). ``service`` writes the texts as tickets of one
account in the configured database, then times ``services.text_sentiments_refresh`` (read,
score, bulk upsert) and ``services.themes_compute`` over them, and deletes the account."""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time

from _setup import ROOT, django_setup

SUBJECTS = (
    "export", "csv export", "report export", "invoice", "billing", "sso login", "password reset",
    "salesforce sync", "hubspot integration", "webhook delivery", "api rate limit", "mobile app",
    "dashboard", "search", "permissions", "custom fields", "notifications", "audit log",
    "file upload", "data import",
)  # fmt: skip
PROBLEMS = (
    "is very slow", "keeps failing", "times out", "is broken again", "shows the wrong numbers",
    "is confusing", "stopped working after the update", "crashes on start",
)  # fmt: skip
PRAISE = (
    "works great", "is a big hit with the team", "saves us hours", "is fast and reliable",
    "is exactly what we needed",
)  # fmt: skip
FILLER = (
    "Please advise.", "Thanks for the quick reply.", "We need this fixed before the renewal.",
    "Our admins asked again today.", "Following up on last week's call.", "", "",
)  # fmt: skip
FOREIGN = (
    "Der Export ist sehr langsam und nicht gut",
    "Le produit est lent et les exports ne marchent pas",
)


def texts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = rng.random()
        if x < 0.01:
            out.append("")
            continue
        if x < 0.02:
            out.append(rng.choice(FOREIGN))
            continue
        subject = rng.choice(SUBJECTS)
        verb = rng.choice(PRAISE if rng.random() < 0.3 else PROBLEMS)
        text = f"The {subject} {verb}. {rng.choice(FILLER)} #{i}"
        if x < 0.04:
            text = f"<p>{text}</p><br><b>Sent from my phone</b>"
        elif x < 0.05:
            text = (text + " ") * 150  # ~7,000 characters: truncated to 2,000
        out.append(text)
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_sentiment(n: int) -> dict:
    from voice import sentiment

    data = texts(n)
    sentiment.score("warm up: the lexicon is read once per process")
    began, cpu = time.perf_counter(), cpu_seconds()
    scored = [sentiment.score(t) for t in data]
    seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    return {
        "phase": "sentiment",
        "texts": n,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "texts_per_second": round(n / seconds),
        "not_scored": sum(s.score is None for s in scored),
        "truncated": sum(s.truncated for s in scored),
        "peak_rss_mb": round(rss_mb()),
    }


def run_themes(n: int) -> dict:
    from voice import sentiment, themes

    data = [sentiment.clean(t).text for t in texts(n, seed=2)]  # what the service clusters
    before = rss_mb()
    began, cpu = time.perf_counter(), cpu_seconds()
    found = themes.find_themes(data)
    seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    return {
        "phase": "themes",
        "texts": n,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),  # all threads (k-means uses both cores)
        "themes": len(found),
        "in_themes": sum(len(t.members) for t in found),
        "largest": [t.label for t in found[:5]],
        "peak_rss_mb": round(rss_mb()),
        "rss_before_mb": round(before),
    }


def run_service(n: int) -> dict:
    import datetime as dt

    from accounts.models import Account, Ticket
    from voice import services

    Account.objects.filter(external_id="BENCH-VOICE").delete()
    account = Account.objects.create(external_id="BENCH-VOICE", name="Voice benchmark")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    Ticket.objects.bulk_create(
        (
            Ticket(
                external_id=f"BENCH-VOICE-{i}",
                account=account,
                subject=text[:500],
                opened_at=start + dt.timedelta(minutes=5 * i),
            )
            for i, text in enumerate(texts(n))
        ),
        batch_size=5000,
    )
    try:
        began, cpu = time.perf_counter(), cpu_seconds()
        counts = services.text_sentiments_refresh(account_ids=[account.pk])
        seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
        as_of = (start + dt.timedelta(minutes=5 * n)).date()
        run = services.theme_run_start(as_of=as_of)
        t0 = time.perf_counter()
        services.themes_compute(run=run)
        themes_seconds = time.perf_counter() - t0
        return {
            "phase": "service",
            "texts": n,
            "sentiment_seconds": round(seconds, 2),
            "sentiment_cpu_seconds": round(cpu, 2),
            "scored": counts["scored"],
            "themes_texts": run.texts,
            "themes": run.themes,
            "themes_seconds": round(themes_seconds, 2),
            "peak_rss_mb": round(rss_mb()),
        }
    finally:
        account.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", nargs="?", choices=("sentiment", "themes", "service"))
    parser.add_argument("--texts", type=int)
    args = parser.parse_args()
    if args.phase is None:  # both, each in a fresh process
        for phase, n in (("sentiment", 100_000), ("themes", 50_000)):
            subprocess.run(
                [sys.executable, __file__, phase, "--texts", str(n)], check=True, cwd=ROOT
            )
        return
    django_setup()
    n = args.texts or (100_000 if args.phase == "sentiment" else 50_000)
    run = {"sentiment": run_sentiment, "themes": run_themes, "service": run_service}
    result = run[args.phase](n)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
