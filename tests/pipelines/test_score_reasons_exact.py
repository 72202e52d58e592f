"""Reasons through ``experiments.shap`` are the reasons LightGBM's ``pred_contrib`` gives.

The whole batch is scored twice, once with the kernel and once with ``RISK_EXACT_SHAP=false``
(LightGBM), with one and with several explained items per truck (declarations and trucks then
combine items' contributions): every frame, texts and features of reasons included, is equal.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from score_support import world

from experiments import shap
from pipelines.score import compute_features, score_batch
from pipelines.score_features import feature_matrix
from risk.lanes import CapacityConfig, LaneCapacity
from risk.settings import get_settings

# Ample capacity: most trucks red or yellow, so most get reasons.
CAPACITY = CapacityConfig(
    seed=3,
    default=LaneCapacity(physical_per_hour=4.0, document_per_hour=12.0, horizon_hours=8.0),
)


@pytest.mark.parametrize("per_truck", [1, 3])
def test_batch_reasons_equal_with_lightgbms_shap(
    per_truck: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world()
    assert shap.forest_for(w.scorer.booster) is not None  # the kernel path is the one tested

    def scored() -> dict[str, pl.DataFrame]:
        batch = score_batch(
            w.queue,
            w.scorer,
            capacity=CAPACITY,
            arrivals=w.arrivals,
            max_items_explained=per_truck,
            lang="ru",
        )
        return {"items": batch.items, "declarations": batch.declarations, "trucks": batch.trucks}

    fast = scored()
    monkeypatch.setenv(shap.ENV_SWITCH, "false")
    get_settings.cache_clear()
    assert shap.forest_for(w.scorer.booster) is None
    reference = scored()
    for name, frame in fast.items():
        assert frame.equals(reference[name]), name
    explained = fast["items"].filter(pl.col("reasons_en").list.len() > 0)
    assert explained.height > 50
    if per_truck > 1:
        several = explained.group_by("truck_key", "crossing").len().filter(pl.col("len") > 1)
        assert several.height > 0  # trucks whose reasons combine several items


def test_scorer_contributions_equal_lightgbms() -> None:
    w = world()
    features = compute_features(w.queue, w.scorer, arrivals=w.arrivals)
    matrix = feature_matrix(features, w.scorer.feature_names)
    got = w.scorer.contributions(matrix)
    dense = w.scorer.categories.transform(matrix)
    expected = np.asarray(w.scorer.booster.predict(dense, pred_contrib=True))[:, :-1]
    assert got.shape == expected.shape and got.shape[0] > 100
    assert np.max(np.abs(got - expected)) <= 1e-9
    # a single row (the console's one truck) runs on one thread, same numbers
    assert np.max(np.abs(w.scorer.contributions(matrix[:1]) - expected[:1])) <= 1e-9
