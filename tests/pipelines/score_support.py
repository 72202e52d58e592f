"""A small trained model and traffic for the batch-scoring tests (shared by test_score*.py).

The scorer is the project's own (``experiments.scorer.Scorer``) in miniature: a LightGBM
classifier and duty regressor trained on history-mode features of the project's generator
(fixed seed), isotonic calibration, entity profiles at the queue's cut-off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

import polars as pl

from experiments.scorer import Scorer


@dataclass(frozen=True)
class World:
    scorer: Scorer
    queue: pl.DataFrame  # DeclarationItem rows of the standing queue
    arrivals: pl.DataFrame
    truth: pl.DataFrame
    traffic: Any  # pipelines.generate.Traffic, for writing the layout of `risk generate`


@cache
def world() -> World:
    """Generated traffic (queue within one month), a trained booster, profiles at cut-off."""
    import lightgbm as lgb

    from experiments.calibration import Calibrator
    from experiments.categories import CategoryIndex
    from features.config import FeatureConfig
    from features.pipeline import build_features, categorical_features, feature_columns
    from features.profiles import materialize_profiles
    from pipelines.generate import TrafficConfig, generate_traffic

    traffic = generate_traffic(
        TrafficConfig(
            seed=11,
            as_of=dt.date(2026, 10, 20),
            history_days=60,
            history_items=20_000,
            queue_trucks=400,
        )
    )
    config = FeatureConfig()
    names = feature_columns(config)
    categorical = categorical_features(config)
    history = build_features(
        traffic.declarations.lazy(), traffic.outcomes.lazy(), config=config
    ).collect()
    labels = (
        traffic.outcomes.filter(pl.col("inspected"))
        .select(
            "declaration_id",
            "item_no",
            (pl.col("result") != "clean").alias("y"),
            pl.col("extra_duty_usd").fill_null(0.0).alias("duty"),
        )
        .join(history, on=["declaration_id", "item_no"])
    )
    matrix = labels.select(pl.col(names).cast(pl.Float32)).to_numpy()
    categories = CategoryIndex.fit(matrix, names, categorical)
    dense = categories.transform(matrix)
    y = labels.get_column("y").to_numpy()
    common = {"verbose": -1, "num_threads": 1, "seed": 1, "deterministic": True}
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, **common},
        lgb.Dataset(dense, y, feature_name=names, categorical_feature=categorical),
        num_boost_round=40,
    )
    wrong = labels.get_column("duty").to_numpy() > 0
    duty_booster = lgb.train(
        {"objective": "regression", "num_leaves": 7, **common},
        lgb.Dataset(dense[wrong], labels.get_column("duty").to_numpy()[wrong]),
        num_boost_round=10,
    )
    calibrator = Calibrator("isotonic").fit(booster.predict(dense), y)
    queue = traffic.queue_declarations
    cutoff = queue.get_column("declared_at").min()
    profiles = materialize_profiles(
        traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff, config=config
    )
    scorer = Scorer(
        booster=booster,
        calibrator=calibrator,
        categories=categories,
        feature_config=config,
        feature_names=names,
        categorical_features=categorical,
        profiles=profiles,
        duty_booster=duty_booster,
        model_name="grey-import-risk",
        model_version="7",
        run_id="run-test-0001",
        num_threads=1,
    )
    return World(
        scorer=scorer,
        queue=queue,
        arrivals=traffic.queue_arrivals,
        truth=traffic.queue_truth,
        traffic=traffic,
    )
