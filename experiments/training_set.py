"""From canonical frames to feature matrices: features, labels, periods, weights.

Features are built in history mode over *all* the declarations and outcomes given (every
feature as of its row's own time, so nothing from a row's future or its own outcome reaches
it); only inspected items are labelled and used to fit and evaluate.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from experiments.config import TrainJob
from experiments.dataset import (
    KEYS,
    Periods,
    SourceData,
    assign_split,
    fingerprint,
    item_labels,
    resolve_periods,
)
from experiments.model import Matrix
from experiments.weights import inverse_propensity_weights, stratum_columns
from features.config import FeatureConfig
from risk.errors import RiskError

# Source-profile text columns with at most this many values become categorical features.
MAX_EXTRA_CATEGORIES = 1000


def resolve_feature_config(job: TrainJob, declarations: pl.DataFrame) -> FeatureConfig:
    """The job's feature config; with ``auto_extra_categoricals`` and none named, every
    low-cardinality ``src_*`` text column the source profile kept becomes a feature."""
    config = job.features
    if config.extra_categoricals or not job.auto_extra_categoricals:
        return config
    extras = tuple(
        name
        for name, dtype in declarations.schema.items()
        if name.startswith("src_")
        and dtype == pl.String
        and declarations[name].n_unique() <= MAX_EXTRA_CATEGORIES
    )
    return config.model_copy(update={"extra_categoricals": extras})


@dataclass
class TrainingSet:
    """Every labelled item with its period, weight and features, ready to fit."""

    data: SourceData
    feature_config: FeatureConfig
    feature_names: list[str]
    categorical: list[str]
    labelled: pl.DataFrame
    periods: Periods
    fingerprint: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def rows(self, split: str) -> pl.DataFrame:
        return self.labelled.filter(pl.col("split") == split)

    def matrix(self, split: str, *, weighted: bool = False) -> Matrix:
        part = self.rows(split)
        return Matrix(
            x=part.select(pl.col(self.feature_names).cast(pl.Float32)).to_numpy(),
            y=part["label"].cast(pl.Float64).to_numpy(),
            duty=part["duty_usd"].to_numpy().astype(np.float64),
            weight=part["weight"].to_numpy() if weighted else None,
        )

    @property
    def with_duty(self) -> bool:
        """Whether the source records extra duty (revenue metrics make sense)."""
        return bool(self.labelled.filter(pl.col("duty_usd") > 0).height)


def build_training_set(job: TrainJob, data: SourceData) -> TrainingSet:
    """Features for every item, labels for the inspected, the split and IPW weights."""
    from features.pipeline import build_features, categorical_features, feature_columns

    timings: dict[str, float] = {}
    started = time.perf_counter()
    config = resolve_feature_config(job, data.declarations)
    features = build_features(
        data.declarations.lazy(),
        data.outcomes.lazy(),
        config=config,
        arrivals=None if data.arrivals is None else data.arrivals.lazy(),
    ).collect()
    timings["features_s"] = time.perf_counter() - started

    started = time.perf_counter()
    strata = list(job.ipw_strata)
    context = [pl.col("hs_code").str.slice(0, 2).alias("hs_chapter")]
    context += [c for c in stratum_columns(strata) if c.meta.output_name() != "hs_chapter"]
    items = data.declarations.select(*KEYS, *context).join(
        item_labels(data.declarations, data.outcomes), on=KEYS, how="left", maintain_order="left"
    )
    if job.ipw:
        weight = inverse_propensity_weights(
            items, strata, prior_strength=job.ipw_prior_strength, max_weight=job.ipw_max_weight
        )
    else:
        weight = pl.Series("weight", np.ones(items.height))
    labelled = (
        items.with_columns(weight)
        .filter(pl.col("label").is_not_null())
        .select(*KEYS, "hs_chapter", "selection", "label", "duty_usd", "weight")
        .join(features, on=KEYS, how="inner")
        .sort("declared_at", *KEYS)
    )
    periods = resolve_periods(
        labelled["declared_at"], job.split, by_file=data.second_file_keys is not None
    )
    labelled = assign_split(labelled, periods, data.second_file_keys)
    timings["labels_s"] = time.perf_counter() - started
    names = [
        name
        for name in feature_columns(config)
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in job.exclude_features)
    ]
    if not names:
        raise RiskError("--exclude-features leaves no feature to learn from")
    return TrainingSet(
        data=data,
        feature_config=config,
        feature_names=names,
        categorical=[c for c in categorical_features(config) if c in names],
        labelled=labelled,
        periods=periods,
        fingerprint=fingerprint(data, labelled, periods),
        timings=timings,
    )
