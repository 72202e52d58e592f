"""Fitting the two models: the violation classifier and the duty regressor.

The classifier is LightGBM (binary) with early stopping on the validation period's log-loss.
The duty regressor predicts the extra duty of an item *should it hold a violation*, trained on
training-period violations with a recorded extra duty, with a gamma objective (positive,
right-skewed amounts; the log link predicts the mean rather than the median). Expected duty
at risk is then calibrated probability × predicted duty.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from experiments.config import LightGBMParams

if TYPE_CHECKING:
    import lightgbm as lgb


@dataclass(frozen=True)
class Matrix:
    """A feature matrix with its labels, duty and optional row weights."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.float64]
    duty: npt.NDArray[np.float64]
    weight: npt.NDArray[np.float64] | None = None

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])


class _LightGBMLog:
    """LightGBM's log without one warning: hashed categorical codes are sparse on purpose
    (stable across runs, see ``features.codes``), so "Consider renumbering" is noise."""

    def info(self, message: str) -> None:
        if "contains sparse values" not in message:
            sys.stderr.write(message)

    def warning(self, message: str) -> None:
        sys.stderr.write(message + "\n")


def quiet_lightgbm() -> None:
    """Route LightGBM's log through ``_LightGBMLog`` (idempotent)."""
    import lightgbm as lgb

    lgb.register_logger(_LightGBMLog())


def _dataset(
    m: Matrix, names: list[str], categorical: list[str], reference: lgb.Dataset | None = None
) -> lgb.Dataset:
    import lightgbm as lgb

    return lgb.Dataset(
        m.x,
        label=m.y,
        weight=m.weight,
        feature_name=names,
        categorical_feature=categorical,
        reference=reference,
        free_raw_data=True,
        params={"verbosity": -1},
    )


def fit_classifier(
    train: Matrix,
    valid: Matrix,
    params: LightGBMParams,
    *,
    feature_names: list[str],
    categorical: list[str],
    monotone_decreasing: tuple[str, ...] = (),
) -> tuple[lgb.Booster, dict[str, Any]]:
    """Train with early stopping on ``valid``; return the booster cut at its best iteration
    and a summary (best iteration, validation curve). Features named in
    ``monotone_decreasing`` get a decreasing monotone constraint."""
    import lightgbm as lgb

    quiet_lightgbm()
    booster_params = params.booster_params()
    decreasing = set(monotone_decreasing) - set(categorical)
    if decreasing & set(feature_names):
        booster_params["monotone_constraints"] = [
            -1 if name in decreasing else 0 for name in feature_names
        ]
        booster_params["monotone_constraints_method"] = "intermediate"
    train_set = _dataset(train, feature_names, categorical)
    valid_set = _dataset(valid, feature_names, categorical, reference=train_set)
    curve: dict[str, Any] = {}
    booster = lgb.train(
        booster_params,
        train_set,
        num_boost_round=params.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False),
            lgb.record_evaluation(curve),
        ],
    )
    best = booster.best_iteration or booster.current_iteration()
    # Keep only the trees up to the best iteration, so every later predict uses exactly them.
    cut = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return cut, {"best_iteration": best, "valid_curve": curve.get("valid", {})}


def fit_duty_regressor(
    train: Matrix,
    *,
    feature_names: list[str],
    categorical: list[str],
    rounds: int,
    num_threads: int,
    seed: int,
) -> lgb.Booster:
    """LightGBM (gamma) on the extra duty of training violations that have one."""
    import lightgbm as lgb

    mask = (train.y == 1) & (train.duty > 0)
    subset = Matrix(x=train.x[mask], y=train.duty[mask], duty=train.duty[mask])
    params = {
        "objective": "gamma",
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.8,
        "verbosity": -1,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": num_threads,
        "seed": seed,
    }
    return lgb.train(params, _dataset(subset, feature_names, categorical), num_boost_round=rounds)


def duty_labels_available(train: Matrix) -> int:
    """How many training violations carry an extra duty (what the regressor learns from)."""
    return int(((train.y == 1) & (train.duty > 0)).sum())
