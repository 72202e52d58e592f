"""Hyperparameter search: random sampling, each trial a nested MLflow run, the best kept.

The training set is built once; trial 0 is the base parameters, the others are drawn from
``SEARCH_SPACE`` with a seeded generator. Trials are ranked by a validation metric (never a
test metric: the test period stays an honest estimate of the chosen model). The parent run
holds the best trial's model, evaluation and registration, exactly as ``risk train`` would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.config import LightGBMParams, TrainJob, flat_params
from experiments.train import Fitted, TrainResult, fit_and_evaluate, prepare, with_absolute_inputs
from risk.errors import RiskError

if TYPE_CHECKING:
    from risk.settings import Settings

Sampler = Callable[[np.random.Generator], Any]


def _log_uniform(low: float, high: float) -> Sampler:
    return lambda rng: float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _uniform(low: float, high: float) -> Sampler:
    return lambda rng: float(rng.uniform(low, high))


def _integer(low: int, high: int) -> Sampler:
    return lambda rng: int(rng.integers(low, high + 1))


SEARCH_SPACE: dict[str, Sampler] = {
    "learning_rate": _log_uniform(0.02, 0.2),
    "num_leaves": _integer(15, 255),
    "min_data_in_leaf": _integer(5, 200),
    "feature_fraction": _uniform(0.4, 1.0),
    "bagging_fraction": _uniform(0.6, 1.0),
    "lambda_l2": _log_uniform(1e-3, 10.0),
    "cat_smooth": _uniform(1.0, 50.0),
}


def sample_params(rng: np.random.Generator, base: LightGBMParams) -> LightGBMParams:
    """One draw of the search space on top of ``base`` (rows are bagged every tree)."""
    drawn = {name: sample(rng) for name, sample in SEARCH_SPACE.items()}
    return base.model_copy(update={**drawn, "bagging_freq": 1})


@dataclass(frozen=True)
class TuneResult:
    """The best trial's run (the parent) and every trial's objective."""

    best: TrainResult
    best_trial: int
    objective: str
    scores: list[float]


def tune(
    job: TrainJob,
    base: LightGBMParams,
    *,
    trials: int,
    objective: str = "valid_pr_auc",
    seed: int = 7,
    settings: Settings | None = None,
    on_trial: Callable[[int, float, LightGBMParams], None] | None = None,
) -> TuneResult:
    """Run ``trials`` trials as nested runs; log and register the best in the parent run."""
    import mlflow

    from experiments.registry import registered_model_name
    from experiments.tracking import log_into_active_run, use_experiment
    from risk.settings import get_settings

    if not objective.startswith("valid_"):
        raise RiskError(f"--objective {objective!r}: rank trials by a validation metric")
    settings = settings or get_settings()
    job = with_absolute_inputs(job, settings)
    ts = prepare(job, settings)
    rng = np.random.default_rng(seed)
    experiment = use_experiment(settings)
    model_name = job.model_name or registered_model_name(settings.registered_model, ts.data.profile)
    best: tuple[float, int, LightGBMParams, Fitted] | None = None
    scores: list[float] = []
    with mlflow.start_run(run_name=job.run_name or "tune") as parent:
        mlflow.set_tag("tune.objective", objective)
        for trial in range(trials):
            params = base if trial == 0 else sample_params(rng, base)
            with mlflow.start_run(run_name=f"trial-{trial}", nested=True):
                fitted = fit_and_evaluate(ts, params, job)
                mlflow.log_params(flat_params("lgb", params))
                mlflow.log_metrics(fitted.metrics)
            if objective not in fitted.metrics:
                known = ", ".join(sorted(k for k in fitted.metrics if k.startswith("valid_")))
                raise RiskError(f"--objective {objective!r} is not a metric; known: {known}")
            score = fitted.metrics[objective]
            scores.append(score)
            if on_trial is not None:
                on_trial(trial, score, params)
            if best is None or score > best[0]:
                best = (score, trial, params, fitted)
        assert best is not None
        _, best_trial, best_params, best_fitted = best
        mlflow.set_tag("tune.best_trial", str(best_trial))
        mlflow.log_metric("tune_trials", float(trials))
        result = log_into_active_run(
            ts,
            best_fitted,
            job,
            best_params,
            model_name=model_name,
            run_id=parent.info.run_id,
            experiment_id=experiment.experiment_id,
        )
    return TuneResult(best=result, best_trial=best_trial, objective=objective, scores=scores)
