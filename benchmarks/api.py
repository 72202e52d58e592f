"""Latency of ``POST /api/v1/trucks/score``: one truck scored on the spot, over loopback.

The console runs as ``risk console`` in a subprocess (uvicorn, one worker) over a SQLite store
holding a scored standing queue; an httpx client with a kept-alive connection sends one truck's
declaration items (or ``--trucks`` different trucks in turn) ``--requests`` times after
``--warmup`` requests (the first loads the model) and times each round trip. Prints
p50/p95/p99 and the server's own stage timings (``Server-Timing``); the last line is one JSON
object.

Set-up, not timed: synthetic traffic, a small model trained on its history into an MLflow store
in ``--workdir`` and promoted to champion (both cached there), the queue scored and published.

    .venv/bin/python benchmarks/api.py [--requests 1000] [--warmup 50] [--trucks 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Run as a script, this folder would come first on sys.path and benchmarks/features.py would
# shadow the features package: the repository root goes first instead.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

TARGET_P99_MS = 50.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _champion(workdir: Path) -> tuple[Path, str]:
    """Traffic and a promoted model in ``workdir`` (made once, then reused)."""
    from pipelines.generate import TrafficConfig, generate_traffic, write_traffic
    from risk.settings import Settings

    traffic = workdir / "traffic"
    settings = Settings(data_dir=workdir, mlflow_tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    marker = workdir / "champion.txt"
    if marker.is_file():
        return traffic, marker.read_text(encoding="utf-8").strip()
    from experiments.config import LightGBMParams, TrainJob
    from experiments.promotion import promote
    from experiments.train import train

    print("generating traffic and training a small champion ...", flush=True)
    config = TrafficConfig(
        seed=7, as_of=dt.date(2026, 10, 20), history_items=40_000, queue_trucks=400
    )
    write_traffic(generate_traffic(config), traffic)
    settings.configure_mlflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own warnings while logging the model
        result = train(
            TrainJob(data_dir=traffic / "history"),
            LightGBMParams(num_boost_round=200, early_stopping_rounds=30),
            settings=settings,
        )
        promote(result.model_name)
    version = f"{result.model_name}/{result.model_version}"
    marker.write_text(version, encoding="utf-8")
    return traffic, version


def _console_store(workdir: Path, traffic: Path) -> tuple[str, str]:
    """A fresh store with the queue scored and published; returns its URL and an API token."""
    import polars as pl

    from pipelines.score import score_batch
    from risk import store
    from risk.lanes import load_capacity
    from risk.settings import Settings
    from risk.store.files import import_history_files

    path = workdir / "console" / "risk.db"
    for stale in path.parent.glob("risk.db*"):
        stale.unlink()
    url = f"sqlite:///{path}"
    store.migrate(url)
    engine = store.make_engine(url)
    settings = Settings(data_dir=workdir, mlflow_tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    settings.configure_mlflow()
    from experiments.registry import champion_uri, load_scorer, registered_model_name

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scorer = load_scorer(
            champion_uri(registered_model_name(settings.registered_model, "canonical"))
        )
    queue = pl.read_parquet(traffic / "queue" / "declarations.parquet")
    arrivals = pl.read_parquet(traffic / "queue" / "arrivals.parquet")
    batch = score_batch(queue, scorer, capacity=load_capacity(), arrivals=arrivals)  # type: ignore[arg-type]
    trucks, declarations, items = store.published_frames(
        trucks=batch.trucks,
        declarations=batch.declarations,
        items=batch.items,
        declaration_items=queue,
        arrivals=arrivals,
    )
    with store.session_factory(engine).begin() as session:
        store.add_user(
            session=session, username="gate", password=secrets.token_urlsafe(16), role="officer"
        )
        token = store.add_token(session=session, username="gate", label="benchmark")
        store.publish_scores(
            session=session,
            trucks=trucks,
            declarations=declarations,
            items=items,
            run_id="benchmark",
            model_version=scorer.model_version,
            published_by="benchmark",
        )
        import_history_files(session=session, folder=traffic / "history")
    engine.dispose()
    return url, token


def _request_bodies(traffic: Path, items_per_truck: int, trucks: int) -> list[dict[str, Any]]:
    """Up to ``trucks`` trucks of the queue carrying ``items_per_truck`` items each, as the
    API's JSON (the first is the one a single-truck run sends)."""
    import polars as pl

    from risk.lanes import truck_key

    queue = pl.read_parquet(traffic / "queue" / "declarations.parquet").with_columns(truck_key())
    sizes = queue.group_by("truck_key").len().sort("truck_key")
    keys = sizes.filter(pl.col("len") == items_per_truck)["truck_key"].head(trucks).to_list()
    bodies = []
    for key in keys:
        rows = queue.filter(pl.col("truck_key") == key).drop("truck_key").to_dicts()
        bodies.append(
            {
                "items": [
                    {
                        k: v.isoformat() if isinstance(v, dt.date | dt.datetime) else v
                        for k, v in row.items()
                    }
                    for row in rows
                ]
            }
        )
    return bodies


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="Timed requests.")
    parser.add_argument("--warmup", type=int, default=50, help="Untimed requests first.")
    parser.add_argument("--items", type=int, default=5, help="Items on the scored truck.")
    parser.add_argument(
        "--trucks", type=int, default=1, help="Different trucks sent in turn (all of --items)."
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "risk-bench-api",
        help="Traffic, MLflow store and console store (reused between runs).",
    )
    args = parser.parse_args()
    import httpx

    args.workdir.mkdir(parents=True, exist_ok=True)
    # MLflow puts a SQLite store's artifacts under ./mlruns: keep them in the work folder.
    os.chdir(args.workdir)
    traffic, version = _champion(args.workdir)
    database_url, token = _console_store(args.workdir, traffic)
    bodies = _request_bodies(traffic, args.items, args.trucks)

    port = _free_port()
    env = os.environ | {
        "RISK_ENV": "production",
        "RISK_SECRET_KEY": secrets.token_urlsafe(48),
        "RISK_DATA_DIR": str(args.workdir / "console"),
        "RISK_DATABASE_URL": database_url,
        "MLFLOW_TRACKING_URI": f"sqlite:///{args.workdir}/mlflow.db",
        "PYTHONWARNINGS": "ignore",
    }
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "risk"),
            "console",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(
            base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/login").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    error = server.stderr.read().decode() if server.stderr else ""
                    raise SystemExit(f"the console did not start: {error}")
                time.sleep(0.2)
            for i in range(args.warmup):
                body = bodies[i % len(bodies)]
                client.post("/api/v1/trucks/score", json=body).raise_for_status()
            latencies: list[float] = []
            stages: dict[str, list[float]] = {}
            lanes: set[str] = set()
            for i in range(args.requests):
                body = bodies[i % len(bodies)]
                started = time.perf_counter()
                response = client.post("/api/v1/trucks/score", json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                lanes.add(response.json()["lane"])
                for part in response.headers.get("server-timing", "").split(","):
                    name, _, duration = part.strip().partition(";dur=")
                    if duration:
                        stages.setdefault(name, []).append(float(duration))
    finally:
        server.terminate()
        server.wait(timeout=30)

    p50, p95, p99 = (_percentile(latencies, q) for q in (0.50, 0.95, 0.99))
    mean = statistics.fmean(latencies)
    print(
        f"model {version}; {len(bodies)} truck(s) of {args.items} items in turn; "
        f"{args.requests} requests"
    )
    print(f"latency ms: p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  mean {mean:.1f}")
    for name, values in stages.items():
        median, tail = statistics.median(values), _percentile(values, 0.99)
        print(f"  server {name:<17} median {median:.1f} ms  p99 {tail:.1f} ms")
    print(f"target p99 < {TARGET_P99_MS:.0f} ms: {'met' if p99 < TARGET_P99_MS else 'NOT met'}")
    print(
        json.dumps(
            {
                "benchmark": "api_score_one_truck",
                "requests": args.requests,
                "items_per_truck": args.items,
                "trucks": len(bodies),
                "p50_ms": round(p50, 2),
                "p95_ms": round(p95, 2),
                "p99_ms": round(p99, 2),
                "mean_ms": round(statistics.fmean(latencies), 2),
                "max_ms": round(max(latencies), 2),
                "server_median_ms": {k: round(statistics.median(v), 2) for k, v in stages.items()},
                "server_p99_ms": {k: round(_percentile(v, 0.99), 2) for k, v in stages.items()},
                "target_p99_ms": TARGET_P99_MS,
                "target_met": p99 < TARGET_P99_MS,
                "model_version": version,
                "lanes_seen": sorted(lanes),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
