"""Benchmark: train on 1M generated history items (features, fit, calibration, profiles, MLflow).

Run: ``.venv/bin/python benchmarks/train.py [--items N] [--rounds N] [--no-mlflow]``. The
traffic is generated in memory first (not timed); then every stage of ``risk train`` is timed:
reading is skipped, features in history mode over all items, labels and split, LightGBM with
early stopping, calibration and duty model, evaluation, entity profiles, and logging the run
and the pyfunc model to a temporary SQLite MLflow store. Stage times go to stderr; the LAST
line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder would come first on sys.path and benchmarks/features.py would
# hide the features package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
# Sleeping OpenMP waits: spinning threads slow LightGBM down badly on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000, help="history items")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--rounds", type=int, default=2000, help="most boosting rounds")
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads")
    parser.add_argument("--no-mlflow", action="store_true", help="skip logging to MLflow")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    from experiments.config import LightGBMParams, TrainJob
    from experiments.dataset import SourceData
    from experiments.train import build_scorer, fit_and_evaluate
    from experiments.training_set import build_training_set
    from pipelines.generate import TrafficConfig, generate_traffic

    mark = time.perf_counter()
    traffic = generate_traffic(TrafficConfig(history_items=args.items, seed=args.seed))
    print(
        f"generated {traffic.declarations.height:,} items in "
        f"{time.perf_counter() - mark:.1f} s (not timed)",
        file=sys.stderr,
    )
    data = SourceData(
        declarations=traffic.declarations,
        outcomes=traffic.outcomes,
        arrivals=traffic.arrivals,
        profile="canonical",
        files=(),
        quarantined=0,
    )
    job = TrainJob(data_dir=Path("in-memory"))
    params = LightGBMParams(num_boost_round=args.rounds, num_threads=args.threads)
    stages: dict[str, float] = {}

    start = time.perf_counter()
    ts = build_training_set(job, data)
    stages.update(ts.timings)
    fitted = fit_and_evaluate(ts, params, job)
    stages.update(fitted.timings)
    mark = time.perf_counter()
    scorer = build_scorer(ts, fitted, job, model_name="benchmark", run_id="benchmark")
    stages["profiles_s"] = time.perf_counter() - mark
    train_seconds = time.perf_counter() - start

    if not args.no_mlflow:
        import mlflow

        from experiments.tracking import input_example, log_model

        with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as folder:
            uri = f"sqlite:///{Path(folder) / 'mlflow.db'}"
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            mark = time.perf_counter()
            with mlflow.start_run():
                mlflow.log_metrics(fitted.metrics)
                example = input_example(data.declarations, scorer.metadata["profile_cutoff"])
                log_model(scorer, example, model_name="benchmark")
            stages["mlflow_s"] = time.perf_counter() - mark

    for name, seconds in stages.items():
        print(f"{name:>12} {seconds:8.2f}", file=sys.stderr)
    labelled = ts.labelled.height
    print(
        json.dumps(
            {
                "items": data.declarations.height,
                "labelled_items": labelled,
                "features": len(ts.feature_names),
                "best_iteration": fitted.best_iteration,
                "train_seconds": round(train_seconds, 2),
                "features_plus_fit_seconds": round(stages["features_s"] + stages["fit_s"], 2),
                "stages_seconds": {k.removesuffix("_s"): round(v, 2) for k, v in stages.items()},
                "test_precision_at_5pct": round(fitted.metrics.get("test_precision_at_5pct", 0), 4),
                "test_random_precision_at_5pct": round(
                    fitted.metrics.get("test_random_precision_at_5pct", 0), 4
                ),
                "peak_rss_mib": round(_peak_rss_mib()),
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
