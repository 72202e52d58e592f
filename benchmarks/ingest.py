"""Benchmark: read and validate 1M generated canonical items through ``read_declarations``.

Run: ``.venv/bin/python benchmarks/ingest.py [--items N] [--format parquet|csv|ndjson ...]``.
The items come from ``pipelines.generate`` (seed 7) and are written once per format to a
temporary folder; only the read + validate + soft-flag step is timed (wall and CPU seconds:
on a shared machine the CPU figure is the steadier one). The LAST line of stdout is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from pipelines.generate import TrafficConfig, generate_traffic
from pipelines.ingest import read_declarations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000, help="history items to generate")
    parser.add_argument(
        "--format", nargs="+", default=["parquet"], choices=["parquet", "csv", "ndjson"]
    )
    args = parser.parse_args()

    items = generate_traffic(TrafficConfig(history_items=args.items, seed=7)).declarations
    figures: dict[str, object] = {"items": items.height}
    with tempfile.TemporaryDirectory() as folder:
        for fmt in args.format:
            path = Path(folder) / f"declarations.{fmt}"
            getattr(items, f"write_{fmt}")(path)
            wall, cpu = time.perf_counter(), time.process_time()
            result = read_declarations(path, "canonical")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"{fmt}: {result.rows_in:,} in, {result.rows_valid:,} valid, "
                f"{result.rows_quarantined:,} quarantined in {wall:.2f} s",
                file=sys.stderr,
            )
            figures[fmt] = {
                "seconds": round(wall, 2),
                "cpu_seconds": round(cpu, 2),
                "rows_per_s": round(result.rows_in / wall),
                "quarantined": result.rows_quarantined,
            }
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
