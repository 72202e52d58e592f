"""One training run: fit, calibrate, evaluate, bundle the scorer, log and register in MLflow.

``train(job, params)`` is what ``risk train`` calls; ``fit_and_evaluate`` is the part
``risk tune`` repeats per trial on one prepared ``TrainingSet``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from experiments.calibration import Calibrator
from experiments.categories import CategoryIndex
from experiments.config import LightGBMParams, TrainJob
from experiments.dataset import KEYS, SourceData, load_source_data
from experiments.evaluation import period_metrics
from experiments.model import (
    duty_labels_available,
    fit_classifier,
    fit_duty_regressor,
)
from experiments.scorer import DUTY_AT_STAKE, Scorer
from experiments.training_set import TrainingSet, build_training_set
from risk.errors import RiskError

if TYPE_CHECKING:
    import lightgbm as lgb

    from risk.settings import Settings


@dataclass
class Fitted:
    """A fitted classifier, its calibration and duty model, with what evaluation found."""

    booster: lgb.Booster
    calibrator: Calibrator
    categories: CategoryIndex
    duty_booster: lgb.Booster | None
    duty_rule: str
    best_iteration: int
    scored: pl.DataFrame  # validation and test rows with raw score and calibrated risk
    metrics: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)


def _duty_rule(job: TrainJob, labels: int) -> str:
    if job.duty_model == "regressor" and labels == 0:
        raise RiskError("--duty-model regressor: no training violation has an extra duty")
    if job.duty_model == "regressor" or (
        job.duty_model == "auto" and labels >= job.duty_min_labels
    ):
        return "regressor"
    return "stake"


def fit_and_evaluate(ts: TrainingSet, params: LightGBMParams, job: TrainJob) -> Fitted:
    """Fit on the training period (early stopping on validation), calibrate on validation,
    and compute every metric of the validation and test periods."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    train = ts.matrix("train", weighted=job.ipw)
    categories = CategoryIndex.fit(train.x, ts.feature_names, ts.categorical)
    train = dataclasses.replace(train, x=categories.transform(train.x))
    valid = ts.matrix("valid", weighted=job.ipw)
    valid = dataclasses.replace(valid, x=categories.transform(valid.x))
    booster, summary = fit_classifier(
        train,
        valid,
        params,
        feature_names=ts.feature_names,
        categorical=ts.categorical,
        monotone_decreasing=job.monotone_decreasing,
    )
    timings["fit_s"] = time.perf_counter() - started

    started = time.perf_counter()
    raw_valid = np.asarray(booster.predict(valid.x, num_threads=params.num_threads))
    calibrator = Calibrator(job.calibration).fit(raw_valid, valid.y, sample_weight=valid.weight)
    duty_rule = _duty_rule(job, duty_labels_available(train))
    duty_booster = (
        fit_duty_regressor(
            train,
            feature_names=ts.feature_names,
            categorical=ts.categorical,
            rounds=job.duty_rounds,
            num_threads=params.num_threads,
            seed=params.seed,
        )
        if duty_rule == "regressor"
        else None
    )
    timings["calibrate_s"] = time.perf_counter() - started

    started = time.perf_counter()
    held_out = ts.labelled.filter(pl.col("split") != "train")
    matrix = categories.transform(
        held_out.select(pl.col(ts.feature_names).cast(pl.Float32)).to_numpy()
    )
    raw = np.asarray(booster.predict(matrix, num_threads=params.num_threads))
    risk = calibrator.predict(raw)
    if duty_booster is not None:
        duty_if = np.clip(duty_booster.predict(matrix, num_threads=params.num_threads), 0, None)
    else:
        stake = held_out[DUTY_AT_STAKE].fill_null(0.0).to_numpy()
        duty_if = stake * job.evasion_share
    scored = held_out.select(
        *KEYS, "declared_at", "crossing", "hs_chapter", "selection", "label", "duty_usd", "split"
    ).with_columns(
        raw_score=pl.Series(raw),
        risk=pl.Series(risk),
        expected_duty_usd=pl.Series(risk * np.asarray(duty_if, dtype=np.float64)),
    )
    metrics: dict[str, float] = {"best_iteration": float(summary["best_iteration"])}
    for period in ("valid", "test"):
        metrics.update(period_metrics(scored, period, with_duty=ts.with_duty))
    timings["evaluate_s"] = time.perf_counter() - started
    return Fitted(
        booster=booster,
        calibrator=calibrator,
        categories=categories,
        duty_booster=duty_booster,
        duty_rule=duty_rule,
        best_iteration=int(summary["best_iteration"]),
        scored=scored,
        metrics=metrics,
        timings=timings,
    )


def profile_cutoff(declarations: pl.DataFrame) -> dt.datetime:
    """Entity profiles are cut just after the last declaration of the training data, so
    that a queue declared from then on can be scored against them."""
    last = declarations["declared_at"].max()
    if not isinstance(last, dt.datetime):
        raise RiskError("no declarations to build entity profiles from")
    return last + dt.timedelta(microseconds=1)


def build_scorer(
    ts: TrainingSet, fitted: Fitted, job: TrainJob, *, model_name: str, run_id: str
) -> Scorer:
    """The scorer to bundle: models, feature config and profiles at the end of the data."""
    from features.profiles import materialize_profiles

    data = ts.data
    cutoff = profile_cutoff(data.declarations)
    profiles = materialize_profiles(
        data.declarations.lazy(), data.outcomes.lazy(), cutoff, config=ts.feature_config
    )
    return Scorer(
        booster=fitted.booster,
        calibrator=fitted.calibrator,
        categories=fitted.categories,
        feature_config=ts.feature_config,
        feature_names=ts.feature_names,
        categorical_features=ts.categorical,
        profiles=profiles,
        duty_booster=fitted.duty_booster,
        evasion_share=job.evasion_share,
        source_profile=data.profile,
        model_name=model_name,
        run_id=run_id,
        metadata={
            "profile_cutoff": cutoff.isoformat(),
            "eval_split": ts.periods.eval_split,
            "duty_rule": fitted.duty_rule,
            "calibration": job.calibration,
            "ipw": job.ipw,
        },
    )


@dataclass(frozen=True)
class TrainResult:
    """What a run produced, for the command's summary."""

    run_id: str
    experiment_id: str
    model_name: str
    model_version: str | None
    eval_split: str
    metrics: dict[str, float]
    fingerprint: dict[str, Any]
    timings: dict[str, float]


def with_absolute_inputs(job: TrainJob, settings: Settings) -> TrainJob:
    """The job with absolute input paths (and the default data folder spelled out), so that
    ``risk promote`` can read the same inputs again from the logged job."""
    if job.sources:
        return job.model_copy(update={"sources": tuple(p.resolve() for p in job.sources)})
    folder = job.data_dir or settings.data_dir / "traffic" / "history"
    return job.model_copy(update={"data_dir": folder.resolve()})


def prepare(job: TrainJob, settings: Settings) -> TrainingSet:
    """Read the job's inputs and build its training set."""
    started = time.perf_counter()
    data: SourceData = load_source_data(job, settings.data_dir / "traffic" / "history")
    read_s = time.perf_counter() - started
    ts = build_training_set(job, data)
    ts.timings = {"read_s": read_s, **ts.timings}
    return ts


def train(
    job: TrainJob,
    params: LightGBMParams,
    *,
    settings: Settings | None = None,
    training_set: TrainingSet | None = None,
) -> TrainResult:
    """Train, evaluate, log everything to MLflow and register the model (``job.register_model``)."""
    from experiments.registry import registered_model_name
    from experiments.tracking import log_training_run
    from risk.settings import get_settings

    settings = settings or get_settings()
    job = with_absolute_inputs(job, settings)
    ts = training_set or prepare(job, settings)
    fitted = fit_and_evaluate(ts, params, job)
    model_name = job.model_name or registered_model_name(settings.registered_model, ts.data.profile)
    return log_training_run(ts, fitted, job, params, settings=settings, model_name=model_name)
