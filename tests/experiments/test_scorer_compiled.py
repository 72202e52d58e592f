"""The compiled predictor (``experiments.compiled``): LightGBM's numbers, cached, optional.

A tiny model (a few trees) keeps each compile well under a second.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from experiments import compiled
from experiments.compiled import CompilePolicy, FastBooster, cache_key, compile_booster


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Rows with a categorical column (dense indices 0..9), missing values, and a target."""
    rng = np.random.default_rng(5)
    n = 2_000
    x = rng.normal(size=(n, 5))
    x[:, 0] = rng.integers(0, 10, size=n)
    x[rng.random(x.shape) < 0.1] = np.nan
    y = ((np.nan_to_num(x[:, 0]) % 3 == 0) ^ (np.nan_to_num(x[:, 1]) > 0.3)).astype(float)
    return x, y


@pytest.fixture(scope="module")
def booster(data: tuple[np.ndarray, np.ndarray]) -> lgb.Booster:
    x, y = data
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(x, y, categorical_feature=[0]), num_boost_round=8)


@pytest.fixture(scope="module")
def regressor(data: tuple[np.ndarray, np.ndarray]) -> lgb.Booster:
    x, _ = data
    target = np.abs(np.nan_to_num(x[:, 2])) * 100 + 1
    params = {"objective": "gamma", "num_leaves": 5, "verbose": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(x, target, categorical_feature=[0]), num_boost_round=6)


def _unseen_rows(x: np.ndarray) -> np.ndarray:
    """The training rows plus rows with a category never seen and all-missing rows."""
    odd = x[:50].copy()
    odd[:25, 0] = 42.0
    odd[25:] = np.nan
    return np.ascontiguousarray(np.vstack([x, odd]))


@pytest.mark.parametrize("model", ["booster", "regressor"])
def test_compiled_predictions_equal_lightgbms(
    model: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fitted: lgb.Booster = request.getfixturevalue(model)
    rows = _unseen_rows(data[0])
    policy = CompilePolicy(cache_dir=tmp_path)
    native = compile_booster(fitted.model_to_string(), policy)
    assert native is not None and not native.from_cache
    expected = np.asarray(fitted.predict(rows))
    for threads in (1, 2):
        got = native.predict(rows, threads)
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= 1e-9


def test_float32_rows_are_widened_block_by_block_on_each_thread(
    booster: lgb.Booster,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compiled, "BLOCK_ROWS", 64)
    monkeypatch.setattr(compiled, "PARALLEL_MIN_ROWS", 100)
    native = compile_booster(booster.model_to_string(), CompilePolicy(cache_dir=tmp_path))
    assert native is not None
    rows = np.ascontiguousarray(_unseen_rows(data[0]), dtype=np.float32)
    expected = np.asarray(booster.predict(rows))
    for threads in (1, 2, 3):
        assert np.max(np.abs(native.predict(rows, threads) - expected)) <= 1e-9
    # A column-major matrix is read correctly too.
    assert np.max(np.abs(native.predict(np.asfortranarray(rows), 2) - expected)) <= 1e-9


def test_second_load_comes_from_the_cache(booster: lgb.Booster, tmp_path: Path) -> None:
    policy = CompilePolicy(cache_dir=tmp_path)
    text = booster.model_to_string()
    first = compile_booster(text, policy)
    objects = list(policy.object_dir.glob("*.o"))
    assert [p.name for p in objects] == [f"{cache_key(text)}.o"]
    second = compile_booster(text, policy, allow_compile=False)
    assert first is not None and second is not None and second.from_cache
    rows = np.ascontiguousarray(np.random.default_rng(1).normal(size=(30, 5)))
    assert np.array_equal(first.predict(rows), second.predict(rows))
    # Another model is another key: nothing cached for it, and nothing compiled unasked.
    other = booster.model_to_string(num_iteration=3)
    assert compile_booster(other, policy, allow_compile=False) is None


def test_a_damaged_cache_file_is_recompiled(booster: lgb.Booster, tmp_path: Path) -> None:
    policy = CompilePolicy(cache_dir=tmp_path)
    text = booster.model_to_string()
    path = policy.object_dir / f"{cache_key(text)}.o"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an object file")
    path.with_name(path.name + ".sha256").write_text("0" * 64)
    native = compile_booster(text, policy)
    assert native is not None and not native.from_cache
    assert path.read_bytes() != b"not an object file"


def test_small_batches_never_pay_the_compile(
    booster: lgb.Booster, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    policy = CompilePolicy(cache_dir=tmp_path, min_rows=500)
    fast = FastBooster(booster, policy)
    x = np.ascontiguousarray(data[0])
    small = fast.predict(x[:20])
    assert fast.compiled is None and not policy.object_dir.exists()
    assert np.array_equal(small, booster.predict(x[:20]))
    large = fast.predict(x)
    assert fast.compiled is not None
    assert np.max(np.abs(large - booster.predict(x))) <= 1e-9
    # Once compiled, a small batch goes through the compiled code too.
    assert np.max(np.abs(fast.predict(x[:20]) - small)) <= 1e-9
    # A fresh process (a new FastBooster) finds the cache even for a small batch.
    again = FastBooster(booster, policy)
    assert again.compiled_for(5) is not None


def test_disabled_means_lightgbm(
    booster: lgb.Booster, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    policy = CompilePolicy(enabled=False, cache_dir=tmp_path, min_rows=1)
    fast = FastBooster(booster, policy)
    x = np.ascontiguousarray(data[0])
    assert np.array_equal(fast.predict(x), booster.predict(x))
    assert fast.warm() is None and not tmp_path.joinpath(compiled.CACHE_SUBDIR).exists()


def test_a_failed_compile_falls_back_with_a_warning(
    booster: lgb.Booster,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("LLVM is not available")

    monkeypatch.setattr(compiled, "compile_booster", broken)
    fast = FastBooster(booster, CompilePolicy(cache_dir=tmp_path, min_rows=1))
    x = np.ascontiguousarray(data[0])
    with caplog.at_level(logging.WARNING, logger="experiments.compiled"):
        got = fast.predict(x)
    assert np.array_equal(got, booster.predict(x))
    assert "LLVM is not available" in caplog.text


def test_settings_choose_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from risk.settings import Settings

    monkeypatch.setenv("RISK_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RISK_COMPILED_MODEL", "false")
    policy = CompilePolicy.from_settings(Settings())  # type: ignore[call-arg]
    assert policy == CompilePolicy(enabled=False, cache_dir=tmp_path)
    monkeypatch.delenv("RISK_CACHE_DIR")
    monkeypatch.delenv("RISK_COMPILED_MODEL")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    default = CompilePolicy.from_settings(Settings())  # type: ignore[call-arg]
    assert default.enabled and default.cache_dir == tmp_path / "xdg" / "grey-import-risk"


def test_a_fast_booster_travels_to_another_process_without_its_code(
    booster: lgb.Booster, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import pickle

    fast = FastBooster(booster, CompilePolicy(cache_dir=tmp_path, min_rows=1))
    x = np.ascontiguousarray(data[0])
    expected = fast.predict(x)
    copy = pickle.loads(pickle.dumps(fast))
    assert copy.compiled is None
    assert np.array_equal(copy.predict(x), expected)
    assert copy.compiled is not None and copy.compiled.from_cache


def test_a_model_past_the_size_limit_is_compiled_only_when_forced(
    booster: lgb.Booster,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    leaves = compiled.total_leaves(booster.model_to_string())
    assert leaves == sum(t["num_leaves"] for t in booster.dump_model()["tree_info"])
    policy = CompilePolicy(cache_dir=tmp_path, min_rows=1, max_leaves=leaves - 1)
    fast = FastBooster(booster, policy)
    x = np.ascontiguousarray(data[0])
    with caplog.at_level(logging.WARNING, logger="experiments.compiled"):
        assert np.array_equal(fast.predict(x), booster.predict(x))
    assert fast.compiled is None and "leaves" in caplog.text
    assert fast.warm(force=True) is not None
    assert np.max(np.abs(fast.predict(x) - booster.predict(x))) <= 1e-9


def test_a_larger_model_is_compiled_without_inlining_under_its_own_key(
    booster: lgb.Booster, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    text = booster.model_to_string()
    policy = CompilePolicy(cache_dir=tmp_path, inline_max_leaves=1)
    native = compile_booster(text, policy)
    assert native is not None
    assert native.key == cache_key(text, inline=False) != cache_key(text, inline=True)
    rows = _unseen_rows(data[0])
    assert np.max(np.abs(native.predict(rows) - np.asarray(booster.predict(rows)))) <= 1e-9


def _compiled_pair(
    booster: lgb.Booster,
    regressor: lgb.Booster,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    block_rows: int,
    parallel_min_rows: int,
) -> list[Any]:
    """Both boosters compiled into ``cache``, predicting in blocks of ``block_rows`` rows and
    on threads from ``parallel_min_rows`` rows on (small, so that the tests' rows use both)."""
    monkeypatch.setattr(compiled, "BLOCK_ROWS", block_rows)
    monkeypatch.setattr(compiled, "PARALLEL_MIN_ROWS", parallel_min_rows)
    policy = CompilePolicy(cache_dir=cache)
    natives = [compile_booster(b.model_to_string(), policy) for b in (booster, regressor)]
    assert natives[0] is not None and natives[1] is not None
    return natives


def test_two_boosters_read_the_matrix_together(
    booster: lgb.Booster,
    regressor: lgb.Booster,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    natives = _compiled_pair(booster, regressor, tmp_path, monkeypatch, 100, 10)
    rows = np.asfortranarray(_unseen_rows(data[0]), dtype=np.float32)
    got = compiled.predict_together([natives[0], natives[1]], rows, 2)
    for out, fitted in zip(got, (booster, regressor), strict=True):
        assert np.max(np.abs(out - np.asarray(fitted.predict(rows)))) <= 1e-9


def test_columns_predict_exactly_as_their_float32_matrix(
    booster: lgb.Booster,
    regressor: lgb.Booster,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    natives = _compiled_pair(booster, regressor, tmp_path, monkeypatch, 64, 100)
    rows = _unseen_rows(data[0])
    missing = np.isnan(rows[:, 0])
    # Integer codes whose missing rows hold garbage, as a null's slot in an Arrow buffer does;
    # float64 values that float32 rounds; a column that is float32 already.
    codes = np.where(missing, 12345, np.nan_to_num(rows[:, 0])).astype(np.int64)
    columns = [
        compiled.Column(codes, missing),
        compiled.Column(rows[:, 1] * (1 + 1e-9)),
        compiled.Column(rows[:, 2].astype(np.float32)),
        compiled.Column(rows[:, 3]),
        compiled.Column(rows[:, 4]),
    ]
    matrix = np.column_stack([rows[:, 0], rows[:, 1] * (1 + 1e-9), *rows[:, 2:].T])
    expected = compiled.predict_together(
        [natives[0], natives[1]], np.ascontiguousarray(matrix, dtype=np.float32), 1
    )
    for threads in (1, 2, 3):
        got = compiled.predict_columns([natives[0], natives[1]], columns, threads)
        for out, want in zip(got, expected, strict=True):
            assert np.array_equal(out, want)
    assert [len(o) for o in compiled.predict_columns([natives[0]], [], 2)] == [0]


def test_codes_read_through_a_lookup_and_predictions_finished_as_they_come(
    booster: lgb.Booster,
    regressor: lgb.Booster,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    natives = _compiled_pair(booster, regressor, tmp_path, monkeypatch, 64, 100)
    rows = _unseen_rows(data[0])  # codes 0..9, 42 (never seen) and missing
    missing = np.isnan(rows[:, 0])
    # Codes shifted by 100 (so that -1 and 150 fall outside the table too), read back as
    # 0..9 through the table; 42 + 100 and the odd -1 read NaN.
    codes = np.where(missing, 0, np.nan_to_num(rows[:, 0]) + 100).astype(np.int32)
    codes[:3] = [-1, 150, 10**6]
    lookup = np.full(112, np.nan, dtype=np.float32)
    lookup[100:110] = np.arange(10)
    columns = [compiled.Column(codes, missing, lookup)] + [
        compiled.Column(rows[:, j]) for j in range(1, 5)
    ]
    first = np.where((codes >= 100) & (codes < 110) & ~missing, codes - 100.0, np.nan)
    matrix = np.ascontiguousarray(np.column_stack([first, rows[:, 1:]]), dtype=np.float32)
    expected = compiled.predict_together([natives[0], natives[1]], matrix, 1)
    got = compiled.predict_columns([natives[0], natives[1]], columns, 2, then=[np.negative])
    assert np.array_equal(got[0], -expected[0])
    assert np.array_equal(got[1], expected[1])


def test_the_gather_kernel_reads_every_value_type_as_numpy_casts_it() -> None:
    rng = np.random.default_rng(11)
    rows = 9_000
    big = rng.integers(-(2**62), 2**62, rows)
    columns = [
        compiled.Column(rng.normal(size=rows) * 1e6),
        compiled.Column(rng.normal(size=rows).astype(np.float32)),
        compiled.Column(big),
        compiled.Column(rng.integers(-(2**31), 2**31, rows).astype(np.int32)),
        compiled.Column(rng.integers(-300, 300, rows).astype(np.int16)),
        compiled.Column(rng.integers(-100, 100, rows).astype(np.int8), rng.random(rows) < 0.3),
        compiled.Column(big.astype(np.uint64)),
        compiled.Column(rng.integers(0, 2**32, rows).astype(np.uint32)),
        compiled.Column(rng.integers(0, 2**16, rows).astype(np.uint16)),
        compiled.Column(rng.random(rows) < 0.5),
        compiled.Column(rng.integers(-3, 40, rows).astype(np.int64), None, _table(30)),
        compiled.Column(
            rng.integers(-3, 40, rows).astype(np.int8), rng.random(rows) < 0.1, _table(5)
        ),
    ]
    expected = np.empty((rows, len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        if column.lookup is None:
            expected[:, j] = column.values
        else:
            codes = np.clip(column.values.astype(np.int64), -1, len(column.lookup) - 2)
            expected[:, j] = np.take(column.lookup, codes)
        if column.missing is not None:
            expected[column.missing, j] = np.nan
    layout = compiled._Layout(columns)
    out = np.full((4_096, len(columns)), -7.0)
    for first in (0, 4_096, 8_192):
        count = min(4_096, rows - first)
        layout.gather(first, count, out)
        np.testing.assert_array_equal(
            out[:count], expected[first : first + count].astype(np.float64)
        )


def _table(codes: int) -> np.ndarray:
    table = np.full(codes + 2, np.nan, dtype=np.float32)
    table[:codes:2] = np.arange(0, codes, 2)
    return table
