"""A small trained model and traffic for the batch-scoring tests (shared by test_score*.py).

The scorer is the real thing in miniature: LightGBM trained on history-mode features of the
project's generator (fixed seed), entity profiles at the queue's cut-off. It implements the
``pipelines.score.Scorer`` protocol the way ``experiments.registry`` does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from features.config import FeatureConfig
from features.profiles import EntityProfiles


@dataclass
class TreeScorer:
    booster: Any
    feature_names: list[str]
    feature_config: FeatureConfig
    profiles: EntityProfiles | None
    model_version: str = "7"
    run_id: str = "run-test-0001"

    def predict_risk(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, num_threads=1)

    def expected_duty(self, features: pl.DataFrame, risk: np.ndarray) -> np.ndarray:
        stake = features.get_column("duty_at_stake_usd").fill_null(0.0).to_numpy()
        return risk * stake

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, pred_contrib=True, num_threads=1)[:, :-1]


@dataclass(frozen=True)
class World:
    scorer: TreeScorer
    queue: pl.DataFrame  # DeclarationItem rows of the standing queue
    arrivals: pl.DataFrame
    truth: pl.DataFrame
    traffic: Any  # pipelines.generate.Traffic, for writing the layout of `risk generate`


@cache
def world() -> World:
    """Generated traffic (queue within one month), a trained booster, profiles at cut-off."""
    import lightgbm as lgb

    from features.pipeline import build_features, feature_columns
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
    history = build_features(
        traffic.declarations.lazy(), traffic.outcomes.lazy(), config=config
    ).collect()
    labels = (
        traffic.outcomes.filter(pl.col("inspected"))
        .select("declaration_id", "item_no", (pl.col("result") != "clean").alias("y"))
        .join(history, on=["declaration_id", "item_no"])
    )
    matrix = labels.select(pl.col(names).cast(pl.Float32)).to_numpy()
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1, "seed": 1},
        lgb.Dataset(matrix, labels.get_column("y").to_numpy(), feature_name=names),
        num_boost_round=40,
    )
    queue = traffic.queue_declarations
    cutoff = queue.get_column("declared_at").min()
    profiles = materialize_profiles(
        traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff, config=config
    )
    return World(
        scorer=TreeScorer(booster, names, config, profiles),
        queue=queue,
        arrivals=traffic.queue_arrivals,
        truth=traffic.queue_truth,
        traffic=traffic,
    )
