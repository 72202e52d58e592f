"""Exact SHAP (``experiments.shap``): LightGBM's ``pred_contrib`` numbers, by another route.

Small models trained here on seeded random data cover what the kernel must get right:
missing values of each missing type, categorical splits (unseen, negative and missing
categories), repeated splits on one feature along a path, deep paths, single-leaf trees and a
best iteration short of the last.
"""

from __future__ import annotations

import re
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from experiments import shap
from experiments.shap import ShapForest, forest_for
from risk.settings import get_settings

TOLERANCE = 1e-9


def _data(seed: int, n: int = 3_000, width: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a categorical column 0 (codes 0..11), zeros, missing values, and a target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, width))
    x[:, 0] = rng.integers(0, 12, size=n)
    x[rng.random(x.shape) < 0.08] = 0.0
    x[rng.random(x.shape) < 0.08] = np.nan
    signal = (np.nan_to_num(x[:, 0]) % 4 == 1) ^ (np.nan_to_num(x[:, 1]) > 0.2)
    y = (signal ^ (rng.random(n) < 0.15)).astype(float)
    return x, y


def _odd_rows(x: np.ndarray) -> np.ndarray:
    """Rows a model never saw: unseen and negative categories, all missing, exact zeros,
    huge and infinite values, a category past the bitset, values next to zero."""
    odd = x[:60].copy()
    odd[:10, 0] = 42.0
    odd[10:20, 0] = -3.0
    odd[20:30] = np.nan
    odd[30:40] = 0.0
    odd[40:50, 1:] = 1e30
    odd[50:55, 0] = 1_000.0
    odd[55:60, 1:] = np.inf
    odd[55:58, 0] = -np.inf
    tiny = x[:20].copy()  # LightGBM reads |x| <= 1e-35 as zero
    tiny[:, 1:] = np.where(np.arange(20)[:, None] % 2 == 0, 1e-40, -1e-36)
    return np.vstack([x[:400], odd, tiny])


def _train(params: dict[str, Any], seed: int = 3, rounds: int = 12) -> tuple[lgb.Booster, Any]:
    x, y = _data(seed)
    base = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": seed}
    data = lgb.Dataset(x, y, categorical_feature=[0])
    return lgb.train({**base, **params}, data, num_boost_round=rounds), x


MODELS = {
    "missing as NaN": {"num_leaves": 15},
    "zero as missing": {"num_leaves": 15, "zero_as_missing": True},
    "no missing handling": {"num_leaves": 15, "use_missing": False},
    "deep, repeated features": {"num_leaves": 63, "min_data_in_leaf": 3, "max_bin": 63},
    "shallow stumps": {"num_leaves": 2},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_contributions_equal_lightgbms_pred_contrib(name: str) -> None:
    booster, x = _train(MODELS[name])
    rows = _odd_rows(x)
    forest = ShapForest.from_booster(booster)
    assert forest is not None
    expected = np.asarray(booster.predict(rows, pred_contrib=True))
    for threads in (1, 2):
        got = forest.contributions(rows, threads)
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= TOLERANCE
    # float32 rows, as the scorer passes them, give LightGBM's numbers for the same rows
    narrow = rows.astype(np.float32)
    expected32 = np.asarray(booster.predict(narrow, pred_contrib=True))
    assert np.max(np.abs(forest.contributions(narrow, 2) - expected32)) <= TOLERANCE


def test_repeated_features_and_deep_paths_are_exercised() -> None:
    booster, _ = _train(MODELS["deep, repeated features"])
    forest = ShapForest.from_booster(booster)
    assert forest is not None
    roots = set(forest.tree_start[:-1].tolist())
    repeats = [i for i, p in enumerate(forest.prev) if i not in roots and p != 0]
    assert repeats, "no path splits twice on one feature: the test would miss that case"
    assert forest.points >= 3  # paths through 5+ distinct features


def test_each_rows_path_reaches_lightgbms_leaf() -> None:
    """The decisions (missing types, categorical bitsets) send every row to the leaf
    LightGBM's own prediction reaches, tree by tree."""
    for params in MODELS.values():
        booster, x = _train(params)
        rows = _odd_rows(x)
        forest = ShapForest.from_booster(booster)
        assert forest is not None
        left = forest.decisions(rows).astype(bool)
        leaves = np.asarray(booster.predict(rows, pred_leaf=True)).reshape(len(rows), -1)
        children: dict[int, dict[int, int]] = {}
        roots = set(forest.tree_start[:-1].tolist())
        starts = forest.tree_start[
            np.searchsorted(forest.tree_start, np.arange(len(forest.parent)), "right") - 1
        ]
        for node, up in enumerate(forest.parent.tolist()):
            if node not in roots:
                children.setdefault(int(starts[node]) + up, {})[int(forest.side[node])] = node
        for tree in range(len(forest.tree_start) - 1):
            for row in range(0, len(rows), 7):
                node = int(forest.tree_start[tree])
                while not forest.leaf[node]:
                    split = int(forest.decision[children[node][1]])
                    node = children[node][int(left[row, split])]
                expected = booster.get_leaf_output(tree, int(leaves[row, tree]))
                assert forest.value[node] == expected


def test_best_iteration_and_single_leaf_trees() -> None:
    x, y = _data(8)
    train = lgb.Dataset(x[:2000], y[:2000], categorical_feature=[0])
    valid = lgb.Dataset(x[2000:], y[2000:], reference=train)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "num_leaves": 31}
    booster = lgb.train(
        params,
        train,
        num_boost_round=200,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(5, verbose=False)],
        keep_training_booster=True,  # keeps the trees after the best iteration
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    rows = _odd_rows(x)
    forest = ShapForest.from_booster(booster)
    assert forest is not None
    assert len(forest.tree_start) - 1 == booster.best_iteration
    expected = np.asarray(booster.predict(rows, pred_contrib=True))
    assert np.max(np.abs(forest.contributions(rows, 1) - expected)) <= TOLERANCE

    constant = lgb.train(
        {"objective": "regression", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5000},
        lgb.Dataset(x, y),
        num_boost_round=3,
    )
    forest = ShapForest.from_booster(constant)
    assert forest is not None and np.all(np.diff(forest.tree_start) == 1)
    expected = np.asarray(constant.predict(rows, pred_contrib=True))
    assert np.max(np.abs(forest.contributions(rows, 1) - expected)) <= TOLERANCE


def test_contributions_add_up_to_the_raw_score() -> None:
    booster, x = _train(MODELS["missing as NaN"], seed=21, rounds=30)
    rows = _odd_rows(x)
    forest = ShapForest.from_booster(booster)
    assert forest is not None
    total = forest.contributions(rows, 2).sum(axis=1)
    assert np.max(np.abs(total - booster.predict(rows, raw_score=True))) <= TOLERANCE


def test_models_outside_the_kernel_and_the_switch_fall_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, y = _data(4)
    multiclass = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
        lgb.Dataset(x, (np.nan_to_num(x[:, 1]) > 0).astype(int) + (y > 0)),
        num_boost_round=2,
    )
    assert ShapForest.from_booster(multiclass) is None
    assert forest_for(multiclass) is None

    booster, _ = _train(MODELS["missing as NaN"])
    assert forest_for(booster) is forest_for(booster) is not None  # built once per booster
    monkeypatch.setenv(shap.ENV_SWITCH, "false")
    get_settings.cache_clear()
    assert forest_for(booster) is None


def test_rows_of_the_wrong_width_are_refused() -> None:
    booster, x = _train(MODELS["missing as NaN"])
    forest = ShapForest.from_booster(booster)
    assert forest is not None
    with pytest.raises(ValueError, match="features"):
        forest.contributions(x[:5, :-1], 1)


def test_empty_and_single_rows() -> None:
    booster, x = _train(MODELS["missing as NaN"])
    forest = ShapForest.from_booster(booster)
    assert forest is not None
    assert forest.contributions(x[:0], 2).shape == (0, x.shape[1] + 1)
    expected = np.asarray(booster.predict(x[:1], pred_contrib=True))
    assert np.max(np.abs(forest.contributions(x[:1], 2) - expected)) <= TOLERANCE


def test_values_next_to_zero_are_zero_as_lightgbm_reads_them() -> None:
    """LightGBM drops |x| <= 1e-35 from a row (so it reads 0): at a threshold of exactly 0,
    5e-36 goes left like 0 does."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    params = {"objective": "binary", "num_leaves": 2, "verbose": -1, "use_missing": False}
    stump = lgb.train(params, lgb.Dataset(x, (x[:, 0] > 0.1).astype(float)), num_boost_round=1)
    text = re.sub(r"threshold=\S+", "threshold=0", stump.model_to_string(), count=1)
    booster = lgb.Booster(model_str=text)
    rows = np.array([[5e-36, 0.0], [-5e-36, 0.0], [1e-30, 0.0], [0.0, 0.0]])
    assert np.asarray(booster.predict(rows, pred_leaf=True)).ravel().tolist() == [0, 0, 1, 0]
    forest = ShapForest.from_model_text(text)
    assert forest is not None
    assert forest.decisions(rows).ravel().tolist() == [1, 1, 0, 1]
    expected = np.asarray(booster.predict(rows, pred_contrib=True))
    assert np.max(np.abs(forest.contributions(rows, 1) - expected)) <= TOLERANCE
