"""How long this disk takes to make a small write durable: the wait every commit has
(PostgreSQL flushes the WAL with ``fdatasync`` by default on Linux).

    python bench/fsync_probe.py --seconds 15 --dir /var/lib/postgresql

Writes 8 KiB and calls ``fdatasync`` in a loop for ``--seconds`` on a file in ``--dir`` (put
it on PostgreSQL's disk), then prints the latency percentiles, the longest wait and how many
waits passed 50 ms: one such wait holds every commit in flight, so a few of them in a burst
decide a survey benchmark's p99 (docs/benchmarks.md, seventh session). The file is removed."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def probe(seconds: float, directory: str) -> dict:
    block = b"x" * 8192
    waits = []
    handle, path = tempfile.mkstemp(prefix="fsync_probe.", dir=directory)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            os.pwrite(handle, block, (len(waits) % 128) * len(block))
            began = time.perf_counter()
            os.fdatasync(handle)
            waits.append(time.perf_counter() - began)
    finally:
        os.close(handle)
        os.unlink(path)
    waits.sort()

    def at(share: float) -> float:
        return round(1000 * waits[min(len(waits) - 1, int(len(waits) * share))], 2)

    return {
        "flushes": len(waits),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "p99_9_ms": at(0.999),
        "max_ms": round(1000 * waits[-1], 1),
        "over_50_ms": sum(wait > 0.05 for wait in waits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--dir", default=".", help="a directory on the disk to probe")
    args = parser.parse_args()
    print(json.dumps(probe(args.seconds, args.dir)))


if __name__ == "__main__":
    main()
