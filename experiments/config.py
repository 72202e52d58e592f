"""Typed hyperparameters and job settings of training, each logged to MLflow as params.

``LightGBMParams`` are what ``risk tune`` searches; ``TrainJob`` is everything else a run
depends on (inputs, periods, weighting, calibration, duty model, feature config). Both are
frozen pydantic models, so a run's settings are one value that can be logged and compared.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from experiments.calibration import CalibrationMethod
from features.config import FeatureConfig

CANONICAL_PROFILE = "canonical"


class LightGBMParams(BaseModel):
    """Hyperparameters of the violation classifier (LightGBM, binary objective).

    Class imbalance: ``scale_pos_weight`` stays 1 by default. Re-weighting the rare class moves
    the raw scores away from probabilities without changing a tree ensemble's ranking much,
    and ranking is what precision@n% measures; the calibration fitted on the validation period
    turns the scores into probabilities instead. It is searchable for those who want it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(
        default=0.05, gt=0, le=1, description="Shrinkage per boosting round."
    )
    num_leaves: int = Field(default=31, ge=2, le=4096, description="Leaves per tree.")
    min_data_in_leaf: int = Field(default=20, ge=1, description="Fewest rows in a leaf.")
    feature_fraction: float = Field(
        default=0.8, gt=0, le=1, description="Features sampled per tree."
    )
    bagging_fraction: float = Field(default=1.0, gt=0, le=1, description="Rows sampled per tree.")
    bagging_freq: int = Field(
        default=0, ge=0, description="Resample rows every k trees (0 = never)."
    )
    lambda_l1: float = Field(default=0.0, ge=0, description="L1 regularisation of leaf values.")
    lambda_l2: float = Field(default=0.0, ge=0, description="L2 regularisation of leaf values.")
    min_gain_to_split: float = Field(default=0.0, ge=0, description="Smallest gain worth a split.")
    max_bin: int = Field(default=255, ge=4, le=1023, description="Histogram bins per feature.")
    cat_smooth: float = Field(default=10.0, ge=0, description="Smoothing of categorical splits.")
    scale_pos_weight: float = Field(
        default=1.0, gt=0, description="Weight of violations (see above)."
    )
    num_boost_round: int = Field(default=2000, ge=1, description="Most boosting rounds.")
    early_stopping_rounds: int = Field(
        default=100,
        ge=1,
        description="Stop when validation log-loss has not improved for this many.",
    )
    num_threads: int = Field(default=2, ge=0, description="LightGBM threads (0 = all cores).")
    seed: int = Field(default=7, ge=0, description="Seed of row/feature sampling.")

    def booster_params(self) -> dict[str, Any]:
        """The parameters LightGBM's ``train`` takes (rounds and early stopping apart)."""
        params = self.model_dump(exclude={"num_boost_round", "early_stopping_rounds"})
        return {
            "objective": "binary",
            "metric": ["binary_logloss", "average_precision"],
            "first_metric_only": True,
            "verbosity": -1,
            "deterministic": True,
            "force_col_wise": True,
            **params,
        }


class SplitConfig(BaseModel):
    """Train / validation / test periods by ``declared_at``.

    Explicit dates win. Otherwise the last ``test_fraction`` of the labelled time span is the
    test period and the ``valid_fraction`` before it the validation period (boundaries rounded
    down to midnight). With two input files of a source profile, the first file trains and the
    second validates, and there is no test period (metrics are then on the validation file,
    which also drove early stopping and calibration: the run says so in its ``eval_split``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    valid_from: dt.datetime | None = Field(default=None, description="First instant of validation.")
    test_from: dt.datetime | None = Field(
        default=None, description="First instant of the test period."
    )
    valid_fraction: float = Field(
        default=0.15, gt=0, lt=1, description="Validation share of the span."
    )
    test_fraction: float = Field(
        default=0.15, ge=0, lt=1, description="Test share of the span (0 = no test period)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> SplitConfig:
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError("validation and test fractions leave too little to train on")
        if self.valid_from and self.test_from and self.test_from <= self.valid_from:
            raise ValueError("the test period must start after the validation period")
        return self


DutyModel = Literal["auto", "regressor", "stake"]


class TrainJob(BaseModel):
    """Everything a training run depends on besides the LightGBM hyperparameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str = Field(
        default=CANONICAL_PROFILE,
        description="Source profile of the inputs; 'canonical' = our files.",
    )
    sources: tuple[Path, ...] = Field(
        default=(), description="Source files read through the profile (train [, validation])."
    )
    data_dir: Path | None = Field(
        default=None,
        description="Folder with canonical declarations/outcomes[/arrivals].parquet; "
        "default <data dir>/traffic/history.",
    )
    split: SplitConfig = Field(default_factory=SplitConfig)
    ipw: bool = Field(
        default=False,
        description="Weight inspected rows by 1 / P(inspected | stratum) when training.",
    )
    ipw_strata: tuple[str, ...] = Field(
        default=("crossing", "hs_chapter", "origin_country"),
        description="Columns whose combinations estimate the inspection propensity.",
    )
    ipw_prior_strength: float = Field(
        default=20.0, gt=0, description="Pseudo-items pulling a stratum's rate to the overall rate."
    )
    ipw_max_weight: float = Field(default=50.0, ge=1, description="Cap on one row's weight.")
    calibration: CalibrationMethod = Field(
        default="isotonic", description="How scores are calibrated."
    )
    duty_model: DutyModel = Field(
        default="auto",
        description="'regressor': LightGBM (gamma) on the extra duty of violations; 'stake': "
        "duty at stake x evasion_share; 'auto': the regressor when enough duty labels exist.",
    )
    duty_min_labels: int = Field(
        default=200,
        ge=10,
        description="Violations with a duty needed before 'auto' uses a regressor.",
    )
    evasion_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Share of the duty at stake evaded when a duty is unknown.",
    )
    duty_rounds: int = Field(
        default=300, ge=1, description="Boosting rounds of the duty regressor."
    )
    capacity: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Inspection capacity share that promotion compares at.",
    )
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    exclude_features: tuple[str, ...] = Field(
        default=(),
        description="Shell-style patterns of features the model leaves out, e.g. "
        "'*_declarations' (cumulative counts grow with time and shift between periods).",
    )
    monotone_decreasing: tuple[str, ...] = Field(
        default=(
            "unit_value_kg_log_ratio",
            "unit_value_kg_position",
            "unit_value_unit_log_ratio",
            "unit_value_unit_position",
        ),
        description="Features whose lower values may never lower the risk (LightGBM monotone "
        "constraints): a price further below the HS x origin reference is more suspicious.",
    )
    auto_extra_categoricals: bool = Field(
        default=True,
        description="With no extra categoricals named, use every low-cardinality src_* "
        "column a source profile kept (the KCS codes: process, import type, tax type...).",
    )
    register_model: bool = Field(
        default=True, description="Register the model in the MLflow registry."
    )
    model_name: str | None = Field(
        default=None, description="Registered model name; default from settings and the profile."
    )
    run_name: str | None = Field(default=None, description="MLflow run name.")

    @model_validator(mode="after")
    def _inputs(self) -> TrainJob:
        if self.sources and self.data_dir is not None:
            raise ValueError("give either source files or a data folder, not both")
        if self.profile != CANONICAL_PROFILE and not self.sources:
            raise ValueError(f"profile {self.profile!r} needs source files to read")
        if len(self.sources) > 2:
            raise ValueError("give one file (split by time) or two (train, validation)")
        return self


def flat_params(prefix: str, model: BaseModel) -> dict[str, str]:
    """A model as ``{prefix.field[.sub]: text}``, the form MLflow params take."""
    out: dict[str, str] = {}

    def walk(key: str, value: Any) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(f"{key}.{name}", getattr(value, name))
        elif isinstance(value, dict):
            for name, item in value.items():
                walk(f"{key}.{name}", item)
        elif isinstance(value, tuple | list):
            out[key] = ",".join(str(v) for v in value)
        elif isinstance(value, dt.datetime):
            out[key] = value.isoformat()
        else:
            out[key] = str(value)

    walk(prefix, model)
    return out
