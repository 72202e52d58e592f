"""Benchmark: generate 1M history items (plus today's default queue) and write them.

Run: ``.venv/bin/python benchmarks/generate.py [--items N] [--no-write]``. Stage timings go to
stderr; the LAST line of stdout is one JSON object. Target (issue 2): 1M items in under 30 s
on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time

from pipelines.generate import TrafficConfig, generate_traffic, write_traffic


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000, help="history items")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--no-write", action="store_true", help="skip writing Parquet")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    config = TrafficConfig(history_items=args.items, seed=args.seed)
    start = time.perf_counter()
    traffic = generate_traffic(config)
    generate_seconds = time.perf_counter() - start
    items = traffic.declarations.height + traffic.queue_declarations.height
    print(f"generated {items:,} items in {generate_seconds:.2f} s", file=sys.stderr)

    write_seconds = 0.0
    if not args.no_write:
        with tempfile.TemporaryDirectory() as folder:
            mark = time.perf_counter()
            paths = write_traffic(traffic, folder)
            write_seconds = time.perf_counter() - mark
            size = sum(p.stat().st_size for p in paths.values()) / 2**20
        print(
            f"wrote {len(paths)} files ({size:.0f} MiB) in {write_seconds:.2f} s", file=sys.stderr
        )

    seconds = generate_seconds + write_seconds
    print(
        json.dumps(
            {
                "items": items,
                "history_items": traffic.declarations.height,
                "queue_items": traffic.queue_declarations.height,
                "seconds": round(seconds, 2),
                "generate_seconds": round(generate_seconds, 2),
                "write_seconds": round(write_seconds, 2),
                "items_per_second": round(items / seconds),
                "peak_rss_mib": round(_peak_rss_mib()),
                "cpus": len(os.sched_getaffinity(0)),
            }
        )
    )


if __name__ == "__main__":
    main()
