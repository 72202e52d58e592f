"""The weighbridge rule over the queue's truck runs gives the as-of join's flags."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_series_equal
from test_ingest_fast_paths import START, general_flags, weighings

from risk import soft_rules
from risk.runs import run_starts

ARGS = (soft_rules.WEIGHBRIDGE_TOLERANCE, soft_rules.VISIT_WINDOW)


def _queue(seed: int, trucks: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Items truck by truck (every item on a truck) and one reading per truck at most."""
    items, arrivals = weighings(seed, trucks, weighed_twice=False)
    items = items.filter(pl.col("truck_id").is_not_null())
    arrivals = arrivals.unique(["crossing", "truck_id"], keep="first", maintain_order=True)
    return items, arrivals


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), trucks=st.integers(1, 30), order=st.sampled_from("qs"))
def test_truck_runs_give_the_as_of_flags(seed: int, trucks: int, order: str) -> None:
    items, arrivals = _queue(seed, trucks)
    runs = run_starts(items, soft_rules.TRUCK_KEYS)
    assert runs is not None
    if order == "q":  # one arrival per truck in the queue's order (some without a weight)
        heads = items.select(soft_rules.TRUCK_KEYS)[runs[:-1]]
        arrivals = heads.join(
            arrivals, on=list(soft_rules.TRUCK_KEYS), how="left", maintain_order="left"
        ).with_columns(pl.col("arrived_at").fill_null(START))
    else:  # arrivals in another order than the queue's: matched by the hash join
        arrivals = arrivals.sample(fraction=1.0, shuffle=True, seed=seed % 1000)
    by_runs = soft_rules._flags_by_truck_runs(items, _readings(arrivals), runs, *ARGS)
    assert by_runs is not None
    assert_series_equal(by_runs, general_flags(items, arrivals), check_names=False)
    assert_series_equal(
        soft_rules._flags_one_weighing_per_truck(items, arrivals, *ARGS),  # type: ignore[arg-type]
        general_flags(items, arrivals),
    )


def _readings(arrivals: pl.DataFrame) -> pl.DataFrame:
    """The readings as ``_flags_one_weighing_per_truck`` hands them on."""
    return arrivals.select(
        soft_rules.truck_at_crossing().alias("key"),
        *soft_rules.TRUCK_KEYS,
        "arrived_at",
        "weighbridge_kg",
    )


def test_readings_in_queue_order_are_matched_by_position(monkeypatch: pytest.MonkeyPatch) -> None:
    items, _ = _queue(5, 40)
    runs = run_starts(items, soft_rules.TRUCK_KEYS)
    assert runs is not None
    heads = items.select(soft_rules.TRUCK_KEYS)[runs[:-1]]
    # Every truck weighed once, in the queue's order: the position decides, no hash join.
    readings = heads.with_columns(
        arrived_at=items["declared_at"].gather(runs[:-1]),
        weighbridge_kg=items.group_by(soft_rules.TRUCK_KEYS, maintain_order=True)
        .agg(pl.col("gross_mass_kg").sum())
        .get_column("gross_mass_kg")
        * np.resize([1.0, 3.0], heads.height),
    )

    def no_join() -> pl.Expr:
        raise AssertionError("joined by hash")

    selected = _readings(readings)
    monkeypatch.setattr(soft_rules, "truck_at_crossing", no_join)
    flags = soft_rules._flags_by_truck_runs(items, selected, runs, *ARGS)
    monkeypatch.undo()
    assert flags is not None
    assert_series_equal(flags, general_flags(items, readings), check_names=False)
    assert flags.any() and not flags.all()


def test_masses_are_summed_as_polars_sums_them() -> None:
    # 1e16 + 1 + 1: a plain sum loses the ones, a compensated one keeps them.
    items = pl.DataFrame(
        {
            "crossing": ["A"] * 4,
            "truck_id": ["T1", "T1", "T1", "T2"],
            "declared_at": pl.Series([0, 0, 0, 0]).cast(pl.Datetime("us")),
            "gross_mass_kg": [1e16, 1.0, 1.0, -0.0],
        }
    )
    arrivals = pl.DataFrame(
        {
            "crossing": ["A", "A"],
            "truck_id": ["T1", "T2"],
            "arrived_at": pl.Series([5, 5]).cast(pl.Datetime("us")),
            "weighbridge_kg": [1e16 + 2.0, 0.0],
        }
    )
    flags = soft_rules._flags_one_weighing_per_truck(items, arrivals, 0.0, "1d")
    assert flags is not None
    assert_series_equal(flags, general_flags(items, arrivals).alias(flags.name))


def _in_queue_order(seed: int, trucks: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Items truck by truck and one arrival per truck of the queue, in its order."""
    items, arrivals = _queue(seed, trucks)
    runs = run_starts(items, soft_rules.TRUCK_KEYS)
    assert runs is not None
    heads = items.select(soft_rules.TRUCK_KEYS)[runs[:-1]]
    arrivals = heads.join(
        arrivals, on=list(soft_rules.TRUCK_KEYS), how="left", maintain_order="left"
    ).with_columns(pl.col("arrived_at").fill_null(START))
    return items, arrivals


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_readings_in_queue_order_are_never_hashed(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    items, arrivals = _in_queue_order(seed, 25)
    expected = general_flags(items, arrivals)

    def no_hash() -> pl.Expr:
        raise AssertionError("hashed")

    monkeypatch.setattr(soft_rules, "truck_at_crossing", no_hash)
    flags = soft_rules._flags_one_weighing_per_truck(items, arrivals, *ARGS)
    assert flags is not None
    assert_series_equal(flags, expected, check_names=False)


def test_a_truck_weighed_twice_out_of_queue_order_takes_the_general_path() -> None:
    items, arrivals = _in_queue_order(4, 12)
    arrivals = arrivals.with_columns(weighbridge_kg=pl.lit(500.0))
    twice = pl.concat([arrivals, arrivals.head(1)]).reverse()  # the first truck weighed twice
    runs = run_starts(items, soft_rules.TRUCK_KEYS)
    assert runs is not None
    assert soft_rules._flags_by_truck_runs(items, twice, runs, *ARGS) is None
    assert soft_rules._flags_one_weighing_per_truck(items, twice, *ARGS) is None
    # Weighed twice with one reading of no weight: one usable reading, the runs decide.
    unweighed = twice.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(None)
        .otherwise(pl.col("weighbridge_kg"))
        .alias("weighbridge_kg")
    )
    flags = soft_rules._flags_one_weighing_per_truck(items, unweighed, *ARGS)
    assert flags is not None
    assert_series_equal(flags, general_flags(items, unweighed), check_names=False)


def test_a_missing_arrival_time_matters_only_on_a_usable_reading() -> None:
    items, arrivals = _in_queue_order(6, 12)
    first = pl.int_range(pl.len()) == 0
    no_time = pl.when(first).then(None).otherwise(pl.col("arrived_at")).alias("arrived_at")
    weighed = arrivals.with_columns(no_time, weighbridge_kg=pl.lit(500.0))
    assert soft_rules._flags_one_weighing_per_truck(items, weighed, *ARGS) is None
    unweighed = weighed.with_columns(
        pl.when(first).then(None).otherwise(pl.col("weighbridge_kg")).alias("weighbridge_kg")
    )
    flags = soft_rules._flags_one_weighing_per_truck(items, unweighed, *ARGS)
    assert flags is not None
    assert_series_equal(flags, general_flags(items, unweighed), check_names=False)
    assert flags.null_count() < flags.len()
