"""Fixtures of the experiments tests: tiny generated traffic (fixed seed) and a model on it.

Everything is small on purpose (a few thousand items, tens of boosting rounds, two threads):
these tests check behaviour and plumbing, not accuracy.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from training_support import FAST, Trained

from experiments.config import TrainJob
from experiments.train import build_scorer, fit_and_evaluate, prepare
from pipelines.generate import Traffic, TrafficConfig, generate_traffic, write_traffic
from risk.settings import Settings

# Before LightGBM loads: sleeping OpenMP waits keep a shared 2-core machine usable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def traffic() -> Traffic:
    return generate_traffic(
        TrafficConfig(
            seed=11,
            as_of=dt.date(2026, 10, 20),  # the queue stays in the history's last month
            history_days=60,
            history_items=8000,
            queue_trucks=60,
        )
    )


@pytest.fixture(scope="session")
def traffic_dir(traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("traffic")
    write_traffic(traffic, out)
    return out


@pytest.fixture(scope="session")
def trained(traffic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A model fitted on the tiny traffic without MLflow (for behaviour tests)."""
    job = TrainJob(data_dir=traffic_dir / "history")
    settings = Settings.model_validate({"data_dir": tmp_path_factory.mktemp("data")})
    ts = prepare(job, settings)
    fitted = fit_and_evaluate(ts, FAST, job)
    scorer = build_scorer(ts, fitted, job, model_name="test-model", run_id="run-0")
    return Trained(job=job, training_set=ts, fitted=fitted, scorer=scorer)
