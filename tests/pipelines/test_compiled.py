"""Batch scoring through the compiled model (``experiments.compiled``) gives LightGBM's numbers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from score_support import world

from experiments.compiled import Column, CompilePolicy
from pipelines.score_features import (
    compute_features,
    dense_matrix,
    feature_columns,
    predict_features,
)


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


def test_feature_columns_are_the_dense_matrix_and_predict_the_same_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiments import compiled

    monkeypatch.setattr(compiled, "BLOCK_ROWS", 256)
    monkeypatch.setattr(compiled, "PARALLEL_MIN_ROWS", 1_000)
    w = world()
    features = compute_features(w.queue, w.scorer, arrivals=w.arrivals)
    # Nulls in integer and float columns, and a categorical code never seen in training.
    features = features.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col(name)).alias(name)
        for name in ("importer_declarations", "importer_violation_rate", "origin_country_code")
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 11 == 0)
        .then(999_999)
        .otherwise(pl.col("hs_chapter_code"))
        .alias("hs_chapter_code")
    )
    columns = feature_columns(w.scorer, features)
    dense = dense_matrix(w.scorer, features)
    assert columns is not None and dense is not None
    assert any(c.lookup is not None for c in columns)
    stacked = np.column_stack([_as_read(c) for c in columns])
    assert np.array_equal(stacked, dense, equal_nan=True)
    assert np.array_equal(
        dense, w.scorer.categories.transform(w.scorer.feature_matrix(features)), equal_nan=True
    )
    fast = dataclasses.replace(
        w.scorer, compile_policy=CompilePolicy(cache_dir=tmp_path, min_rows=1)
    )
    fast.warm_compiled()
    natives = [fast.fast_booster(b).compiled for b in (fast.booster, fast.duty_booster)]
    assert natives[0] is not None and natives[1] is not None
    expected = compiled.predict_together([natives[0], natives[1]], dense, 1)
    got = compiled.predict_columns([natives[0], natives[1]], columns, 2)
    for out, want in zip(got, expected, strict=True):
        assert np.array_equal(out, want)


def test_codes_beyond_a_lookup_table_are_searched() -> None:
    from pipelines.score_features import _dense_codes

    known = np.array([-5.0, 2.0, 3.5, 4e9])
    values = np.array([2.0, 3.5, 4e9, 7.0, -5.0, 3.5])
    missing = np.array([False, False, False, False, False, True])
    got = _dense_codes(values, missing, known)
    assert np.array_equal(
        got, np.array([1, 2, 3, np.nan, 0, np.nan], dtype=np.float32), equal_nan=True
    )
    small = _dense_codes(np.array([0, 4, 9, -1, 4], dtype=np.int32), None, np.array([0.0, 4.0]))
    assert np.array_equal(
        small, np.array([0, 1, np.nan, np.nan, 1], dtype=np.float32), equal_nan=True
    )


def _as_read(column: Column) -> np.ndarray:
    """What the boosters read of a column: float32, codes through the table, NaN if missing."""
    values = column.values
    if column.lookup is not None:
        values = column.lookup[np.clip(values, -1, len(column.lookup) - 2)]
    read = values.astype(np.float32)
    if column.missing is not None:
        read[column.missing] = np.nan
    return read
