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
