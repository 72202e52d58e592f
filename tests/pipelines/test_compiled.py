"""Batch scoring through the compiled model (``experiments.compiled``) gives LightGBM's numbers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from score_support import world

from experiments.compiled import CompilePolicy
from pipelines.score_features import compute_features, predict_features


def test_batch_scoring_through_the_compiled_scorer_equals_lightgbm(tmp_path: Path) -> None:
    w = world()
    features = compute_features(w.queue, w.scorer, arrivals=w.arrivals)
    plain = dataclasses.replace(w.scorer, compile_policy=CompilePolicy(enabled=False))
    fast = dataclasses.replace(
        w.scorer, compile_policy=CompilePolicy(cache_dir=tmp_path, min_rows=1)
    )
    risk, duty = predict_features(plain, features)
    risk_c, duty_c = predict_features(fast, features)
    assert fast.fast_booster(fast.booster).compiled is not None
    assert fast.duty_booster is not None
    assert fast.fast_booster(fast.duty_booster).compiled is not None
    assert np.max(np.abs(risk_c - risk)) <= 1e-9
    assert np.max(np.abs(duty_c - duty) / np.maximum(1.0, np.abs(duty))) <= 1e-9
    # The scorer's own predict paths agree as well.
    matrix = fast.feature_matrix(features)
    assert np.max(np.abs(fast.predict_risk(matrix) - risk)) <= 1e-9
