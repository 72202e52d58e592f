"""Exact SHAP: ``experiments.shap`` against LightGBM's ``pred_contrib=True`` on the same rows.

Either a saved model (``--model booster.txt``, e.g. a scorer folder's booster, with ``--rows``
float32 rows from ``--matrix file.npy`` as the model reads them: dense category indices) or,
by default, a model trained here on seeded synthetic rows shaped like the kcs preset's (deep
trees: ``--trees`` × ``--leaves``, a categorical column, missing values). Times both on one
thread and on ``--threads``, checks the largest difference (must be <= 1e-9), and prints
one JSON object as its last line.

    .venv/bin/python benchmarks/shap.py [--trees 200] [--leaves 255] [--rows 500] [--threads 2]
    .venv/bin/python benchmarks/shap.py --model data/bench-scoring/scorer/booster.txt \\
        --matrix rows.npy --rows 1335
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402

from experiments.shap import ShapForest  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(function: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    result = function()
    return result, time.perf_counter() - wall, _cpu() - cpu


def _synthetic(trees: int, leaves: int, rows: int) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(7)
    n, width = 30_000, 35
    x = rng.normal(size=(n, width))
    x[:, 0] = rng.integers(0, 40, size=n)
    x[rng.random(x.shape) < 0.05] = np.nan
    signal = np.nan_to_num(x[:, 1:8]).sum(axis=1) + (np.nan_to_num(x[:, 0]) % 5 == 2)
    y = (signal + rng.normal(scale=2.0, size=n) > 1.0).astype(float)
    params = {
        "objective": "binary",
        "num_leaves": leaves,
        "learning_rate": 0.05,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "num_threads": 2,
        "seed": 7,
    }
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=[0]), num_boost_round=trees)
    return booster, x[:rows].astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a LightGBM model file (default: trained here)")
    parser.add_argument("--matrix", type=Path, help="rows for --model (.npy, model's columns)")
    parser.add_argument("--rows", type=int, default=500, help="rows explained")
    parser.add_argument("--trees", type=int, default=200, help="synthetic model: trees")
    parser.add_argument("--leaves", type=int, default=255, help="synthetic model: leaves a tree")
    parser.add_argument("--threads", type=int, default=2, help="threads of the parallel runs")
    args = parser.parse_args()

    if args.model is not None:
        if args.matrix is None:
            parser.error("--model needs --matrix")
        booster = lgb.Booster(model_file=str(args.model))
        rows = np.load(args.matrix)[: args.rows]
    else:
        booster, rows = _synthetic(args.trees, args.leaves, args.rows)

    forest, layout_wall, layout_cpu = _timed(lambda: ShapForest.from_booster(booster))
    if forest is None:
        print(json.dumps({"error": "model outside experiments.shap"}))
        return 1
    _, compile_wall, _ = _timed(lambda: forest.contributions(rows[:1], 1))
    report: dict[str, Any] = {
        "rows": len(rows),
        "trees": booster.num_trees(),
        "nodes": len(forest.parent),
        "quadrature_points": forest.points,
        "layout_s": round(layout_wall, 3),
        "layout_cpu_s": round(layout_cpu, 3),
        "first_call_s": round(compile_wall, 3),
    }
    results = {}
    for threads in (1, args.threads):
        fast, wall, cpu = _timed(lambda t=threads: forest.contributions(rows, t))
        report[f"kernel_{threads}t_wall_s"] = round(wall, 3)
        report[f"kernel_{threads}t_cpu_s"] = round(cpu, 3)
        exact, wall, cpu = _timed(
            lambda t=threads: booster.predict(rows, pred_contrib=True, num_threads=t)
        )
        report[f"lightgbm_{threads}t_wall_s"] = round(wall, 3)
        report[f"lightgbm_{threads}t_cpu_s"] = round(cpu, 3)
        results[threads] = (fast, np.asarray(exact))
    difference = max(float(np.max(np.abs(a - b))) for a, b in results.values())
    report["max_abs_difference"] = difference
    report["cpu_ratio_lightgbm_to_kernel"] = round(
        report["lightgbm_1t_cpu_s"] / max(report["kernel_1t_cpu_s"], 1e-9), 2
    )
    report["ms_per_row_1t"] = {
        "kernel": round(report["kernel_1t_cpu_s"] / len(rows) * 1e3, 3),
        "lightgbm": round(report["lightgbm_1t_cpu_s"] / len(rows) * 1e3, 3),
    }
    report["equal_within_1e-9"] = difference <= 1e-9
    print(json.dumps(report), flush=True)
    return 0 if difference <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
