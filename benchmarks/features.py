"""Benchmark of the feature pipeline: 1M items over a year of history, in both modes.

History mode computes every feature of every item as of its own time (training). Profile mode
materialises entity profiles at a cut-off two weeks before the end, saves and loads them, and
scores the declarations after it (scoring). Each mode runs in a fresh process so that its peak
memory (max RSS) is its own. Traffic comes from the project's generator (``pipelines.generate``,
a year of history); ``--source numpy`` draws a harsher variant instead (thousands of random
10-digit HS codes, so the price references fall back a lot). Profile mode also times one 5-item
truck scored the way the console scores it (``truck_first_call_s``, ``truck_median_ms``; a
saved profile carries its price-reference snapshot, which saving prepares). The LAST line
printed is one JSON object.

    .venv/bin/python benchmarks/features.py [--items 1000000] [--seed 1] [--source generator]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

# This file is named like the package it measures: make `import features` find the package.
_ROOT = str(Path(__file__).resolve().parents[1])
sys.path[:] = [_ROOT, *(p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent)]

START = datetime(2024, 1, 1)
ORIGINS = np.array(["CN", "KZ", "TR", "UZ", "DE", "KR", "JP", "IT", "PL", "IN", "VN", "US",
                    "BY", "KG", "AE", "TW", "RU", "GE", "AZ", "MN"])  # fmt: skip
CROSSINGS = np.array(["KZRU-ZHS", "KZRU-KRS", "KZRU-MSH", "KZRU-ORL", "KZRU-PTR", "KZRU-SYR"])
PROCEDURES = np.array(["import", "transit", "eaeu_internal"])
# Polars 2.1 streaming sorts are about 3x slower than in-memory ones on this workload.
ENGINE: Final = "in-memory"


def generate(n_items: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A year of the project's synthetic traffic."""
    from pipelines.generate import TrafficConfig, generate_traffic

    traffic = generate_traffic(
        TrafficConfig(seed=seed, history_days=365, history_items=n_items, queue_trucks=10)
    )
    return traffic.declarations, traffic.outcomes, traffic.arrivals


def cutoff_of(declarations: pl.DataFrame) -> datetime:
    """Midnight two weeks before the last declaration, inside its month when possible (a
    profile serves one reference period)."""
    last = declarations["declared_at"].max()
    assert isinstance(last, datetime)
    two_weeks = datetime.combine((last - timedelta(days=14)).date(), datetime.min.time())
    return max(two_weeks, datetime(last.year, last.month, 1))


def synthesise(n_items: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Declarations, outcomes and arrivals of ``n_items`` items over 366 days."""
    rng = np.random.default_rng(seed)
    n_decl = n_items // 3
    items_per = rng.integers(1, 6, n_decl)  # mean 3
    items_per = np.concatenate([items_per, [max(n_items - int(items_per.sum()), 0)]])
    n_decl = len(items_per)
    decl = np.repeat(np.arange(n_decl), items_per)[:n_items]
    n = len(decl)
    starts = np.concatenate([[0], np.cumsum(items_per)[:-1]])
    item_no = (np.arange(n) - starts[decl] + 1).astype(np.int32)
    seconds = np.sort(rng.integers(0, 366 * 86_400, n_decl))
    declared_at = np.datetime64(START, "us") + (seconds * 1_000_000).astype("timedelta64[us]")
    trucks = rng.integers(0, 15_000, n_decl)

    def pool(size: int, prefix: str, per_item: bool = False) -> pl.Series:
        picks = rng.integers(0, size, n if per_item else n_decl)
        series = pl.Series(picks).cast(pl.String)
        return (prefix + series) if per_item else (prefix + series).gather(decl)

    hs_pool = np.array(
        [f"{rng.integers(1, 97):02d}{rng.integers(0, 10**8):08d}" for _ in range(400)]
    )
    hs_idx = rng.zipf(1.3, n) % len(hs_pool)
    origin = ORIGINS[rng.integers(0, len(ORIGINS), n)]
    net = np.round(rng.lognormal(5.0, 1.2, n), 1)
    price = np.exp(hs_idx % 7) * rng.lognormal(0.0, 0.4, n)
    value = np.round(net * price, 2)
    declarations = pl.DataFrame(
        {
            "declaration_id": pl.Series(decl).cast(pl.String),
            "item_no": item_no,
            "declared_at": pl.Series(declared_at[decl]),
            "crossing": CROSSINGS[rng.integers(0, len(CROSSINGS), n_decl)][decl],
            "truck_id": ("T" + pl.Series(trucks).cast(pl.String)).gather(decl),
            "vehicle_plate": None,
            "carrier_id": pool(1_000, "C"),
            "importer_id": pool(20_000, "I"),
            "importer_registered_on": pl.Series(
                np.datetime64(START.date(), "D") - rng.integers(-200, 3000, n_decl)[decl]
            ),
            "declarant_id": pool(500, "B"),
            "consignor_id": pool(10_000, "S"),
            "hs_code": hs_pool[hs_idx],
            "goods_description": None,
            "origin_country": origin,
            "dispatch_country": np.where(rng.random(n) < 0.7, origin, "KZ"),
            "destination_country": "RU",
            "procedure": PROCEDURES[rng.integers(0, 3, n)],
            "net_mass_kg": net,
            "gross_mass_kg": np.round(net * rng.uniform(1.0, 1.2, n), 1),
            "quantity": np.round(net / 3.0 + 1.0),
            "quantity_unit": "pcs",
            "invoice_value": value,
            "currency": "USD",
            "customs_value_usd": value,
            "duty_rate_pct": rng.choice([0.0, 5.0, 10.0, 15.0], n),
        }
    ).with_columns(pl.col("procedure").cast(pl.Enum(list(PROCEDURES))))
    inspected = rng.random(n) < 0.1
    found = inspected & (rng.random(n) < 0.3)
    # An inspection result is recorded for the whole declaration at once.
    lag_us = (rng.integers(3_600, 5 * 86_400, n_decl) * 1_000_000)[decl]
    outcomes = pl.DataFrame(
        {
            "declaration_id": declarations["declaration_id"],
            "item_no": item_no,
            "truck_id": declarations["truck_id"],
            "crossing": declarations["crossing"],
            "lane": np.where(inspected, "red", "green"),
            "inspected": inspected,
            "selection": np.where(inspected, "targeted", "none"),
            "result": pl.Series(np.where(found, "undervaluation", "clean")).zip_with(
                pl.Series(inspected), pl.Series([None] * n, dtype=pl.String)
            ),
            "extra_duty_usd": np.where(found, np.round(value * 0.1, 2), np.nan),
            "officer_id": None,
            "recorded_at": pl.Series(declared_at[decl] + lag_us.astype("timedelta64[us]")),
        }
    ).with_columns(pl.col("extra_duty_usd").fill_nan(None))
    arrivals = (
        declarations.group_by("truck_id", "crossing", pl.col("declared_at").dt.date().alias("d"))
        .agg(pl.col("declared_at").min(), pl.col("gross_mass_kg").sum())
        .select(
            "crossing",
            "truck_id",
            (pl.col("declared_at") + timedelta(hours=1)).alias("arrived_at"),
            (pl.col("gross_mass_kg") * 1.02).alias("weighbridge_kg"),
        )
    )
    return declarations, outcomes, arrivals


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _run_mode(
    mode: str,
    folder: str,
    cutoff: datetime,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    try:
        queue.put(_measure(mode, folder, cutoff))
    except BaseException as error:
        queue.put({"mode": mode, "error": repr(error)})
        raise


def _measure(mode: str, folder: str, cutoff: datetime) -> dict[str, Any]:
    from features.pipeline import build_features
    from features.profiles import EntityProfiles, materialize_profiles

    data = Path(folder)
    declarations = pl.scan_parquet(data / "declarations.parquet")
    outcomes = pl.scan_parquet(data / "outcomes.parquet")
    arrivals = pl.scan_parquet(data / "arrivals.parquet")
    stages: dict[str, float] = {}
    started = time.perf_counter()
    if mode == "history":
        plan = build_features(declarations, outcomes, arrivals=arrivals)
        stages["plan_and_reference_fit"] = time.perf_counter() - started
        features = plan.collect(engine=ENGINE)
    else:
        profiles = materialize_profiles(declarations, outcomes, cutoff)
        stages["materialize_profiles"] = time.perf_counter() - started
        mark = time.perf_counter()
        profiles.save(data / "profile")
        stages["save_profile"] = time.perf_counter() - mark
        mark = time.perf_counter()
        # Scoring reads a saved profile: its price-reference snapshot comes with it.
        profiles = EntityProfiles.load(data / "profile")
        stages["load_profile"] = time.perf_counter() - mark
        mark = time.perf_counter()
        new = declarations.filter(pl.col("declared_at") >= cutoff)
        features = build_features(new, outcomes, profiles=profiles, arrivals=arrivals).collect(
            engine=ENGINE
        )
        stages["score_new_items"] = time.perf_counter() - mark
    total = time.perf_counter() - started
    stages["collect" if mode == "history" else "total"] = total
    cpu_seconds = _cpu_seconds()
    truck = _one_truck(mode, declarations, outcomes, arrivals, cutoff, locals().get("profiles"))
    return {
        "mode": mode,
        "seconds": round(total, 3),
        "stages": {k: round(v, 3) for k, v in stages.items()},
        "rows": features.height,
        "columns": features.width,
        "peak_rss_gib": round(_peak_rss_bytes() / 2**30, 3),
        # CPU seconds of the process: on a shared machine wall time also counts others' load.
        "cpu_seconds": round(cpu_seconds, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        **truck,
    }


def _one_truck(
    mode: str,
    declarations: pl.LazyFrame,
    outcomes: pl.LazyFrame,
    arrivals: pl.LazyFrame,
    cutoff: datetime,
    profiles: Any,
) -> dict[str, Any]:
    """Profile mode only: one truck of 5 new items scored the way the console scores it
    (``collect()`` with the default engine, no new outcomes), first call and median of 21.
    Not counted in the mode's ``cpu_seconds``."""
    from features.pipeline import build_features

    if mode != "profile":
        return {}
    new = declarations.filter(pl.col("declared_at") >= cutoff).collect()
    trucks = new.drop_nulls("truck_id").group_by("truck_id").len().filter(pl.col("len") >= 5)
    small = new.filter(pl.col("truck_id") == trucks.sort("truck_id")["truck_id"][0])
    small = small.sort("declared_at", "item_no").head(5).lazy()
    no_outcomes = outcomes.head(0).collect().lazy()
    readings = arrivals.collect().lazy()
    walls = []
    for _ in range(22):
        mark = time.perf_counter()
        build_features(small, no_outcomes, profiles=profiles, arrivals=readings).collect()
        walls.append(time.perf_counter() - mark)
    return {
        "truck_first_call_s": round(walls[0], 3),
        "truck_median_ms": round(sorted(walls[1:])[10] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="Items of history.")
    parser.add_argument("--seed", type=int, default=1, help="Random seed of the traffic.")
    parser.add_argument(
        "--source",
        choices=("generator", "numpy"),
        default="generator",
        help="pipelines.generate traffic, or the harsher numpy draw.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        mark = time.perf_counter()
        draw = generate if args.source == "generator" else synthesise
        declarations, outcomes, arrivals = draw(args.items, args.seed)
        cutoff = cutoff_of(declarations)
        declarations.write_parquet(f"{folder}/declarations.parquet")
        outcomes.write_parquet(f"{folder}/outcomes.parquet")
        arrivals.write_parquet(f"{folder}/arrivals.parquet")
        print(f"drew {declarations.height:,} items in {time.perf_counter() - mark:.1f} s",
              file=sys.stderr)  # fmt: skip
        del declarations, outcomes, arrivals
        context = multiprocessing.get_context("spawn")
        results: dict[str, Any] = {
            "items": args.items,
            "source": args.source,
            "cutoff": cutoff.isoformat(),
            "cpus": len(_cpus()),
        }
        for mode in ("history", "profile"):
            queue: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
            process = context.Process(target=_run_mode, args=(mode, folder, cutoff, queue))
            process.start()
            result = queue.get()
            process.join()
            print(f"{mode}: {result}", file=sys.stderr)
            results[mode] = result
    print(json.dumps(results))


def _cpus() -> set[int]:
    return os.sched_getaffinity(0)


if __name__ == "__main__":
    main()
