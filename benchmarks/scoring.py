"""Batch scoring of 1M items end to end, against LightGBM's bare predict on the same matrix.

Stages timed: read (parse the canonical Parquet file through ingest), validate (the schema's
hard rules and soft flags, inside ingest), features from entity profiles, predict (calibrated
risk and expected duty), lanes (truck aggregation and capacity), reasons (SHAP for red and
yellow trucks; what assemble needs no reasons for runs beside them, as in ``score_batch``),
assemble, write (Parquet, atomically). Then LightGBM's bare ``predict`` on the
precomputed feature matrix, and a 7,000-truck queue rescored with reasons.

Prediction goes through the boosters compiled to native code (``experiments.compiled``,
lleaves), loaded from the compile cache before the clock starts (the steady state: a model is
compiled once per machine). The JSON reports the ratio of the whole to LightGBM's bare predict
(the target, at most 1.5) and to the compiled model's bare predict on the same matrix, and the
compile time of both boosters cold (into an empty cache) and from the cache.

Set-up, not timed: synthetic traffic (history + a queue of about ``--items`` items) and a model
trained on the history with the project's training code, both cached in ``--workdir``.

    .venv/bin/python benchmarks/scoring.py [--items 1000000] [--workdir DIR] [--threads 2]
        [--no-compiled]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Run as a script, this folder comes first on sys.path, and benchmarks/features.py would hide
# the features package: the repository root goes first instead.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
# As `risk` does for every command (risk.process): OpenMP threads sleep while they wait, and
# Polars' allocator keeps freed memory for reuse a while.
from risk.process import tune_process  # noqa: E402

tune_process()

ITEMS_PER_TRUCK = 4.66  # the generator's mean load


def _traffic(workdir: Path, items: int) -> Path:
    from pipelines.generate import TrafficConfig, generate_traffic, write_traffic

    config = TrafficConfig(
        seed=7,
        # A queue inside one calendar month: the price reference of one period serves it all.
        as_of=dt.date(2026, 10, 20),
        history_items=200_000,
        queue_trucks=max(10, round(items / ITEMS_PER_TRUCK)),
    )
    folder = workdir / f"traffic-{items}"
    manifest = folder / "manifest.json"
    if manifest.is_file():
        written = json.loads(manifest.read_text(encoding="utf-8")).get("config")
        if written == json.loads(config.model_dump_json()):
            return folder
    print(f"generating traffic with a queue of {config.queue_trucks:,} trucks ...", flush=True)
    write_traffic(generate_traffic(config), folder)
    return folder


def _scorer(workdir: Path, traffic: Path, threads: int):  # type: ignore[no-untyped-def]
    """The project's model, trained on the history (cached as a scorer folder)."""
    from experiments.scorer import Scorer

    folder = workdir / "scorer"
    if not (folder / "scorer.json").is_file():
        from experiments.config import LightGBMParams, TrainJob
        from experiments.train import build_scorer, fit_and_evaluate, prepare
        from risk.settings import get_settings

        print("training the model on the history ...", flush=True)
        job = TrainJob(data_dir=traffic / "history", register_model=False)
        params = LightGBMParams(num_threads=threads)
        ts = prepare(job, get_settings())
        fitted = fit_and_evaluate(ts, params, job)
        scorer = build_scorer(ts, fitted, job, model_name="benchmark", run_id="benchmark")
        scorer.save(folder)
    return Scorer.load(folder, model_version="benchmark/1", num_threads=threads)


def _compile_times(scorer, *, enabled: bool) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
    """Compile both boosters into an empty cache (cold), then load them as scoring will."""
    import tempfile

    from experiments.compiled import CompilePolicy, compile_booster

    if not enabled:
        scorer.compile_policy = CompilePolicy(enabled=False)
        return {"cold": None, "cached": None}
    boosters = [b for b in (scorer.booster, scorer.duty_booster) if b is not None]
    with tempfile.TemporaryDirectory(prefix="risk-compile-") as folder:
        cold = CompilePolicy(cache_dir=Path(folder))
        start = time.perf_counter()
        for booster in boosters:
            compile_booster(booster.model_to_string(), cold)
        cold_s = time.perf_counter() - start
    scorer.compile_policy = CompilePolicy.from_settings()
    scorer.warm_compiled()  # the machine's own cache: compiled once, loaded afterwards
    start = time.perf_counter()
    for booster in boosters:
        compile_booster(booster.model_to_string(), scorer.compile_policy, allow_compile=False)
    cached_s = time.perf_counter() - start
    print(f"compiled both boosters in {cold_s:.2f} s cold, {cached_s:.3f} s from the cache")
    return {"cold": round(cold_s, 3), "cached": round(cached_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("data") / "bench-scoring")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queue-trucks", type=int, default=7_000)
    parser.add_argument(
        "--no-compiled", action="store_true", help="Predict with LightGBM, not the compiled model."
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import numpy as np
    import polars as pl

    from pipelines.ingest import read_source
    from pipelines.score import (
        aggregate_trucks,
        assemble,
        compute_features,
        explain,
        feature_matrix,
        prepare_assembly,
        random_shares,
        score_batch,
        score_items,
    )
    from pipelines.score_job import output_paths, write_outputs
    from risk.lanes import assign_lanes, load_capacity
    from risk.rules import load_rules

    traffic = _traffic(args.workdir, args.items)
    scorer = _scorer(args.workdir, traffic, args.threads)
    compile_s = _compile_times(scorer, enabled=not args.no_compiled)
    capacity = load_capacity()
    rules = load_rules()
    source = traffic / "queue" / "declarations.parquet"
    arrivals = pl.read_parquet(traffic / "queue" / "arrivals.parquet")

    stages: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[stage] = round(now - clock, 3)
        print(f"{stage:<10}{now - clock:8.2f} s", flush=True)
        clock = now

    read = read_source([source], "canonical", arrivals=arrivals)
    lap("read+validate")
    declarations = read.declarations
    features = compute_features(declarations, scorer, arrivals=arrivals)
    lap("features")
    scored = score_items(declarations, scorer, rules=rules, features=features)
    lap("predict")
    trucks = assign_lanes(aggregate_trucks(scored.items), capacity, draw_key="draw_key")
    lap("lanes")
    shares = random_shares(capacity, trucks.get_column("crossing").unique().to_list())
    # As score_batch does: what assemble needs no reasons for runs beside them.
    with ThreadPoolExecutor(max_workers=1) as pool:
        prepared = pool.submit(prepare_assembly, scored, trucks)
        reasons = explain(scored, trucks, scorer, random_share=shares)
        lap("reasons")
        result = assemble(scored, trucks, reasons, prepared.result())
    lap("assemble")
    out = args.workdir / "out" / "scores.parquet"
    write_outputs(
        {
            "items": result.items,
            "declarations": result.declarations,
            "trucks": result.trucks,
            "quarantine": read.quarantine,
        },
        output_paths(out, "parquet"),
        "parquet",
    )
    lap("write")
    whole = sum(stages.values())

    matrix = feature_matrix(features, scorer.feature_names)
    # The matrix exactly as the booster reads it (categorical codes as the dense indices it
    # was trained on), row-major as LightGBM copies it anyway: its fastest case, built before
    # the clock starts.
    categories = getattr(scorer, "categories", None)
    dense = categories.transform(matrix) if categories is not None else matrix
    dense = np.ascontiguousarray(dense, dtype=np.float32)
    start = time.perf_counter()
    scorer.booster.predict(dense, num_threads=args.threads)
    bare = time.perf_counter() - start
    print(f"{'bare':<10}{bare:8.2f} s  (LightGBM predict on the precomputed matrix)")
    compiled = scorer.fast_booster(scorer.booster).compiled
    bare_compiled = None
    if compiled is not None:
        start = time.perf_counter()
        compiled.predict(dense, args.threads)
        bare_compiled = time.perf_counter() - start
        print(f"{'compiled':<10}{bare_compiled:8.2f} s  (compiled predict, same matrix)")
    del dense, matrix

    first = (
        declarations.group_by("truck_id", maintain_order=True)
        .agg(pl.col("declared_at").min())
        .sort("declared_at", "truck_id")
        .head(args.queue_trucks)
        .get_column("truck_id")
        .implode()
    )
    queue = declarations.filter(pl.col("truck_id").is_in(first))
    start = time.perf_counter()
    rescored = score_batch(queue, scorer, rules=rules, capacity=capacity, arrivals=arrivals)
    rescore = time.perf_counter() - start
    print(f"queue of {args.queue_trucks:,} trucks rescored with reasons in {rescore:.2f} s")

    flagged = result.trucks.filter(pl.col("lane").is_in(["red", "yellow"]))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    report = {
        "benchmark": "scoring",
        "items": declarations.height,
        "rows_in": read.rows_in,
        "quarantined": read.rows_quarantined,
        "trucks": result.trucks.height,
        "red_yellow_trucks": flagged.height,
        "explained_items": int((result.items["reason_features"].list.len() > 0).sum()),
        "trees": scorer.booster.num_trees(),
        "features": len(scorer.feature_names),
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "stages_s": stages,
        "whole_s": round(whole, 3),
        "bare_predict_s": round(bare, 3),
        "ratio_whole_to_bare_predict": round(whole / bare, 3),
        "compiled": compiled is not None,
        "bare_compiled_predict_s": None if bare_compiled is None else round(bare_compiled, 3),
        "ratio_whole_to_bare_compiled_predict": (
            None if bare_compiled is None else round(whole / bare_compiled, 3)
        ),
        "compile_s": compile_s,
        "queue_trucks": rescored.trucks.height,
        "queue_items": queue.height,
        "queue_rescore_with_reasons_s": round(rescore, 3),
        "queue_timings_s": {k: round(v, 3) for k, v in rescored.timings.items()},
        "peak_rss_gib": round(peak_gib, 2),
        "mean_risk": round(float(np.mean(result.items["risk"].to_numpy())), 5),
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    sys.exit(main())
