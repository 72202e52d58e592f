"""Runs of equal keys and their native totals agree with Polars' group-by, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from risk.runs import run_starts, run_totals

SPECIAL = [math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 1.7e308, 1e-300, 1e16, -1e16, 1.0]


def _groups(seed: int, n: int, n_keys: int) -> np.ndarray:
    """Group numbers in runs (sorted), sizes from one upwards."""
    return np.sort(np.random.default_rng(seed).integers(0, n_keys, n))


def _texts(numbers: np.ndarray, long: bool) -> pl.Series:
    # Long texts (over 12 bytes) live in Arrow data buffers, short ones inside the views.
    prefix = "declaration-000000/" if long else "T"
    return pl.Series([f"{prefix}{g}" for g in numbers.tolist()], dtype=pl.String)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_run_sums_equal_polars_group_sums_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 30_000
    groups = _groups(seed, n, 6_000)
    special = np.array(SPECIAL)[rng.integers(0, len(SPECIAL), n)]
    normal = rng.normal(size=n) * 10.0 ** rng.integers(-5, 300, n)
    values = np.where(rng.random(n) < 0.25, special, normal)
    frame = pl.DataFrame(
        {
            "g": _texts(groups, long=seed % 2 == 0),
            "v": values,
            "risk": rng.choice([0.0, 0.25, 0.5, 1.0, -0.0], n),
            "when": rng.integers(-(10**12), 10**12, n),
        }
    )
    expected = frame.group_by("g", maintain_order=True).agg(
        pl.col("v").sum(),
        pl.col("risk").max(),
        pl.col("risk").arg_max().alias("top"),
        pl.col("when").min(),
    )
    starts = run_starts(frame, ["g"])
    assert starts is not None
    totals = run_totals(
        starts,
        risk=frame["risk"],
        log_terms=frame["v"],
        duty=frame["v"],
        when=frame["when"],
    )
    assert totals is not None
    for got in (totals.log_sum, totals.duty_sum):
        want = expected["v"].to_numpy()
        assert np.array_equal(got, want, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(want))
    assert np.array_equal(totals.max_risk, expected["risk"].to_numpy())
    assert np.array_equal(totals.top_row - starts[:-1], expected["top"].to_numpy())
    assert np.array_equal(totals.earliest, expected["when"].to_numpy())


@pytest.mark.parametrize("long", [False, True])
def test_parts_and_least_text_per_run(long: bool) -> None:
    rng = np.random.default_rng(9)
    n = 20_000
    trucks = _groups(4, n, 3_000)
    # Declarations: runs inside each truck, in no particular order of their ids.
    labels = rng.integers(0, 10**6, n)
    change = np.r_[True, (np.diff(trucks) != 0) | (rng.random(n - 1) < 0.4)]
    declaration = labels[np.maximum.accumulate(np.where(change, np.arange(n), 0))]
    frame = pl.DataFrame(
        {"t": _texts(trucks, long=not long), "d": _texts(declaration, long=long)}
    ).with_columns(risk=pl.lit(0.5), v=pl.lit(1.0), when=pl.lit(0, dtype=pl.Int64))
    starts = run_starts(frame, ["t"])
    parts = run_starts(frame, ["t", "d"])
    assert starts is not None and parts is not None
    totals = run_totals(
        starts,
        risk=frame["risk"],
        log_terms=frame["v"],
        duty=frame["v"],
        when=frame["when"],
        parts=parts[:-1],
        texts=frame["d"],
    )
    assert totals is not None and totals.least_part_row is not None
    expected = frame.group_by("t", maintain_order=True).agg(
        pl.col("d").n_unique(), pl.col("d").min().alias("least")
    )
    assert totals.n_parts is not None
    assert totals.n_parts.tolist() == expected["d"].to_list()
    assert frame["d"].gather(totals.least_part_row).to_list() == expected["least"].to_list()


def test_run_starts_finds_runs_and_refuses_keys_that_come_back() -> None:
    frame = pl.DataFrame(
        {
            "a": ["x", "x", "y", "y", "y", "z"],
            "b": ["long text number one", "long text number one", "q", "r", "r", "q"],
        }
    )
    assert run_starts(frame, ["a"]).tolist() == [0, 2, 5, 6]  # type: ignore[union-attr]
    assert run_starts(frame, ["a", "b"]).tolist() == [0, 2, 3, 5, 6]  # type: ignore[union-attr]
    assert run_starts(frame, ["b"]) is None  # 'q' comes back after 'r'
    assert run_starts(frame.head(0), ["a"]).tolist() == [0]  # type: ignore[union-attr]
    # Nulls and other types go the Polars way: nulls equal each other.
    other = pl.DataFrame({"a": [None, None, "x", None], "n": [1, 1, 1, 2]})
    assert run_starts(other, ["a", "n"]).tolist() == [0, 2, 3, 4]  # type: ignore[union-attr]
    assert run_starts(other, ["a"]) is None


def test_nulls_and_nan_risks_are_left_to_the_group_by() -> None:
    frame = pl.DataFrame({"risk": [0.1, float("nan")], "v": [1.0, None], "when": [1, 2]})
    starts = np.array([0, 1, 2])
    common = {"log_terms": frame["risk"], "duty": frame["risk"], "when": frame["when"]}
    assert run_totals(starts, risk=frame["risk"], **common) is None
    assert (
        run_totals(starts, risk=frame["v"].fill_null(0.0), **{**common, "duty": frame["v"]}) is None
    )


def test_least_text_compares_bytes_then_length() -> None:
    rng = np.random.default_rng(12)
    letters = ["a", "b", "z", "é", "\u00ff", "1", "Ё"]
    n = 6_000
    texts = ["".join(rng.choice(letters, int(rng.integers(0, 21)))) for _ in range(n)]
    groups = _groups(13, n, 900)
    frame = pl.DataFrame({"g": _texts(groups, long=False), "d": texts}).with_columns(
        risk=pl.lit(0.5), v=pl.lit(1.0), when=pl.lit(0, dtype=pl.Int64)
    )
    starts = run_starts(frame, ["g"])
    assert starts is not None
    totals = run_totals(
        starts,
        risk=frame["risk"],
        log_terms=frame["v"],
        duty=frame["v"],
        when=frame["when"],
        parts=np.arange(n),  # every row a part of its own
        texts=frame["d"],
    )
    assert totals is not None and totals.least_part_row is not None
    expected = frame.group_by("g", maintain_order=True).agg(pl.col("d").min())
    assert frame["d"].gather(totals.least_part_row).to_list() == expected["d"].to_list()
