"""The native row-level signals (``features.row_kernels``) give what the expressions give.

``behaviour.row_totals``, ``behaviour.weighbridge_gaps`` and ``route.route_columns`` against
``declaration_and_trip_totals``, ``weighbridge_gap`` and ``route_signals`` on random batches:
shuffled rows, trucks missing, trips split over runs far apart, several days, odd countries,
ties among weighbridge readings, and a hash function that collides on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from feature_traffic import Traffic

from features import behaviour, history, route, row_kernels
from features.config import FeatureConfig
from features.pipeline import _item_signals, _item_signals_by_expressions
from risk.schemas import PROCEDURES

TOTALS = [
    "declaration_items",
    "trip_declarations",
    "trip_items",
    "trip_importers",
    "trip_chapters",
]
SUMS = ["declaration_value_usd", "trip_value_usd", "trip_gross_kg"]
START = datetime(2026, 3, 1)


def _batch(seed: int, n: int = 4000) -> pl.DataFrame:
    """Random items of few trucks, crossings and days, a tenth without a truck, in a shuffled
    order (so one trip's items lie in runs far apart)."""
    rng = np.random.default_rng(seed)
    declarations = rng.integers(0, n // 3, n)
    trucks = np.array([f"TRK-{t:03d}" for t in rng.integers(0, 40, n // 3)], dtype=object)
    trucks[rng.random(n // 3) < 0.1] = None
    crossings = np.array(["KZRU-A", "KZRU-B", "KZRU-C"])[rng.integers(0, 3, n // 3)]
    minutes = rng.integers(0, 6 * 24 * 60, n // 3)
    countries = np.array(["CN", "KZ", "RU", "BY", "TR", "DE", "cn", "XXX", None], dtype=object)
    gross = rng.gamma(2.0, 500.0, n).round(1)
    frame = pl.DataFrame(
        {
            "declaration_id": [f"D{d:05d}" for d in declarations],
            "item_no": np.arange(n, dtype=np.int32),
            "truck_id": pl.Series(trucks[declarations].tolist(), dtype=pl.String),
            "crossing": crossings[declarations],
            "declared_at": [START + timedelta(minutes=int(m)) for m in minutes[declarations]],
            "importer_id": [f"IMP-{i}" for i in rng.integers(0, 30, n)],
            "hs_code": [f"{c:02d}01100000" for c in rng.integers(1, 20, n)],
            "customs_value_usd": rng.gamma(1.5, 900.0, n),
            "invoice_value": rng.integers(0, 3, n) * 10.0 ** rng.integers(0, 7, n),
            "net_mass_kg": rng.gamma(2.0, 400.0, n).round(1),
            "importer_registered_on": [START.date()] * n,
            "gross_mass_kg": pl.Series(gross).scatter(np.flatnonzero(rng.random(n) < 0.05), None),
            "origin_country": _pick(countries, rng, n),
            "dispatch_country": _pick(countries, rng, n),
            "destination_country": _pick(countries, rng, n),
            "procedure": pl.Series(np.array(PROCEDURES)[rng.integers(0, 3, n)]).cast(
                pl.Enum(PROCEDURES)
            ),
        }
    )
    frame = frame.with_columns(
        pl.col("hs_code").str.slice(0, 2).alias("hs_chapter"),
        (pl.col("declaration_id").rank("dense") - 1).cast(pl.UInt32).alias(history.DECLARATION),
    )
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


def _pick(values: np.ndarray, rng: np.random.Generator, n: int) -> pl.Series:
    return pl.Series(values[rng.integers(0, len(values), n)].tolist(), dtype=pl.String)


def _expected_totals(frame: pl.DataFrame, declaration: str) -> pl.DataFrame:
    return (
        frame.lazy()
        .pipe(behaviour.declaration_and_trip_totals, declaration)
        .select("trip_id", *TOTALS, *SUMS)
        .collect()
    )


def _assert_totals(totals: behaviour.RowTotals, expected: pl.DataFrame) -> None:
    got = totals.columns.with_columns(totals.trip_gross_kg())
    assert got.select("trip_id", *TOTALS).equals(expected.select("trip_id", *TOTALS))
    for name in SUMS:  # the same terms, perhaps added in another order
        assert got.schema[name] == pl.Float64
        np.testing.assert_allclose(got[name].to_numpy(), expected[name].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("declaration", ["declaration_id", history.DECLARATION])
def test_row_totals_equal_the_window_expressions(seed: int, declaration: str) -> None:
    frame = _batch(seed)
    totals = behaviour.row_totals(frame, declaration)
    _assert_totals(totals, _expected_totals(frame, declaration))
    # Trips are numbered in order of first appearance and their first rows are theirs.
    codes, firsts = totals.trips.codes, totals.trips.firsts
    assert (codes[firsts] == np.arange(firsts.size)).all()
    assert (np.maximum.accumulate(codes) <= np.arange(codes.size)).all()


def test_rows_without_a_trip_text_share_one_trip_as_a_null_key_does() -> None:
    frame = _batch(4, n=600)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 17 == 0).then(None).otherwise(pl.col("crossing"))
        .alias("crossing")
    )  # fmt: skip
    _assert_totals(
        behaviour.row_totals(frame, "declaration_id"), _expected_totals(frame, "declaration_id")
    )


def test_a_hash_collision_falls_back_to_exact_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _batch(5, n=800)
    expected = _expected_totals(frame, "declaration_id")
    expected_route = frame.select(route.route_signals())
    # Every value hashes alike: the checks against each code's first row must catch it.
    monkeypatch.setattr(
        row_kernels, "_hashes", lambda series: np.zeros(series.len(), dtype=np.uint64)
    )
    _assert_totals(behaviour.row_totals(frame, "declaration_id"), expected)
    assert route.route_columns(frame).equals(expected_route)


def test_dense_codes_are_exact_and_in_order_of_first_appearance() -> None:
    rng = np.random.default_rng(9)
    values = pl.Series("v", rng.integers(0, 5000, 50_000).astype(str)).scatter([3, 70], None)
    other = pl.Series("w", rng.integers(4000, 6000, 50_000).astype(str))
    codes = row_kernels.dense_codes([values, other], guess=8)  # grows its table on the way
    both = pl.concat([values, other.rename("v")])
    assert codes.values.equals(both.unique(maintain_order=True), check_names=False)
    assert codes.values.gather(np.concatenate(codes.codes)).equals(both, check_names=False)


@pytest.mark.parametrize("seed", [1, 2])
def test_route_columns_equal_the_expressions(seed: int) -> None:
    frame = _batch(seed)
    assert route.route_columns(frame).equals(frame.select(route.route_signals()))
    other = frame.with_columns(pl.col("procedure").cast(pl.String), pl.lit(None).alias("x"))
    assert route.route_columns(other.drop("hs_chapter")).equals(other.select(route.route_signals()))


def _arrivals(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Readings of the batch's trucks near their declarations, some at the very same time
    (ties), some missing, some at the other crossings."""
    rng = np.random.default_rng(seed)
    trips = frame.filter(pl.col("truck_id").is_not_null()).select("truck_id", "crossing",
                                                                   "declared_at")  # fmt: skip
    picked = trips.sample(n=min(trips.height, 900), seed=seed, with_replacement=True)
    shift = rng.integers(-60, 60, picked.height) * 60  # minutes, on a grid: ties
    weights = pl.Series(rng.gamma(2.0, 2000.0, picked.height)).scatter(
        np.flatnonzero(rng.random(picked.height) < 0.1), None
    )
    crossings = np.where(rng.random(picked.height) < 0.2, "KZRU-C", picked["crossing"])
    return pl.DataFrame(
        {
            "crossing": crossings,
            "truck_id": picked["truck_id"],
            "arrived_at": picked["declared_at"].dt.truncate("1h")
            + pl.Series(shift * 1_000_000).cast(pl.Duration("us")),
            "weighbridge_kg": weights,
        }
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("hours", [1.0, 48.0])
@pytest.mark.parametrize("lost_crossings", [False, True])
def test_weighbridge_gaps_equal_the_as_of_join(
    seed: int, hours: float, lost_crossings: bool
) -> None:
    frame = _batch(seed)
    arrivals = _arrivals(frame, seed)
    if lost_crossings:  # rows without a trip text: each row looked up on its own
        frame = frame.with_columns(frame["crossing"].clone().scatter(range(0, 4000, 13), None))
    totals = behaviour.row_totals(frame, history.DECLARATION)
    tolerance = timedelta(hours=hours)
    got = behaviour.weighbridge_gaps(frame, totals, arrivals.lazy(), tolerance)
    expected = (
        frame.with_columns(totals.trip_gross_kg())
        .lazy()
        .pipe(behaviour.weighbridge_gap(arrivals.lazy(), tolerance))
        .collect()
        .get_column("trip_weighbridge_gap_ratio")
    )
    assert got.equals(expected)
    assert 0 < got.null_count() < got.len()
    none = behaviour.weighbridge_gaps(frame, totals, None, tolerance)
    assert none.null_count() == frame.height and none.dtype == pl.Float64


def _close(got: pl.DataFrame, expected: pl.DataFrame, sums: set[str]) -> None:
    assert got.schema == expected.schema
    for name in got.columns:
        if name in sums:
            a, b = got[name], expected[name]
            assert a.is_null().equals(b.is_null())
            np.testing.assert_allclose(
                a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy(), rtol=1e-9
            )
        else:
            assert got[name].equals(expected[name]), name


def test_item_signals_equal_the_expressions_on_generated_traffic(
    make_traffic: Callable[..., Traffic],
) -> None:
    traffic = make_traffic(400, seed=11, days=5.0)
    items = history.with_entity_columns(traffic.declarations.lazy()).collect()
    order = history.batch_order(items)
    config = FeatureConfig()
    judged = history.outcome_items(traffic.outcomes.lazy(), items.lazy(), config).collect()
    entity = history.batch_entity_features(items, judged, None, config, order)
    frame = pl.concat(
        [items, order.declaration_of_row.to_frame(history.DECLARATION), *entity],
        how="horizontal",
    ).with_columns(
        pl.lit(None, dtype=pl.Float64).alias(name)
        for name in [
            f"{m}_{s}"
            for m in ("unit_value_kg", "unit_value_unit", "mass_per_unit")
            for s in ("log_ratio", "position")
        ]
    )
    frame = frame.with_columns(
        pl.lit(None, dtype=pl.Int32).alias(f"{m}_reference_level")
        for m in ("unit_value_kg", "unit_value_unit", "mass_per_unit")
    ).with_columns(
        pl.lit(None, dtype=pl.Int64).alias(f"{m}_reference_rows")
        for m in ("unit_value_kg", "unit_value_unit", "mass_per_unit")
    )
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    arrivals = traffic.arrivals.lazy()
    got = _item_signals(shuffled.lazy(), config, arrivals).collect()
    expected = _item_signals_by_expressions(shuffled.lazy(), config, arrivals).collect()
    sums = {
        "declaration_value_usd",
        "trip_value_usd",
        "trip_weighbridge_gap_ratio",
        "declaration_value_gap_below_threshold",
    }
    _close(got, expected, sums)
    assert got["trip_weighbridge_gap_ratio"].null_count() < got.height


@pytest.mark.parametrize(
    "thresholds", [(216.4, 1000.0, 10000.0), (), (5.0,), tuple(100.0 * 2**k for k in range(9))]
)
def test_local_signals_equal_the_expressions(thresholds: tuple[float, ...]) -> None:
    frame = _batch(6, n=3000)
    rng = np.random.default_rng(6)
    odd = [0.0, 7.5, 1e19, 2.0**63, 1e300, float("inf"), float("nan"), 120000.0, 3e6, 999.99]
    frame = frame.with_columns(
        pl.Series(np.where(rng.random(3000) < 0.3, rng.choice(odd, 3000), frame["invoice_value"]))
        .scatter([5, 6], None)
        .alias("invoice_value"),
        frame["net_mass_kg"].clone().scatter([1, 2, 3], [0.0, None, -1.0]),
        frame["importer_registered_on"].clone().scatter([4, 8], None),
        pl.Series("importer_declarations_1d", rng.integers(0, 9, 3000)).scatter([9], None),
        pl.Series("importer_declarations_30d", rng.integers(0, 90, 3000)).scatter([10], None),
        frame["customs_value_usd"].clone().scatter([11, 12], [216.39, 1000.0]),
    )
    totals = behaviour.row_totals(frame, history.DECLARATION)
    got = behaviour.local_signals(frame, totals, thresholds, 0.05)
    expected = (
        frame.with_columns(totals.columns.get_column("declaration_value_usd"))
        .lazy()
        .pipe(behaviour.threshold_signals(thresholds, 0.05))
        .with_columns(*behaviour.row_signals(), behaviour.importer_burst_ratio())
        .select(behaviour.LOCAL_SIGNALS)
        .collect()
    )
    assert got.equals(expected)


@pytest.mark.parametrize("rows", [0, 1, 2])
def test_tiny_batches_give_what_the_expressions_give(rows: int) -> None:
    frame = _batch(7, n=60).head(rows)
    _assert_totals(
        behaviour.row_totals(frame, "declaration_id"), _expected_totals(frame, "declaration_id")
    )
    assert route.route_columns(frame).equals(frame.select(route.route_signals()))
    arrivals = _arrivals(_batch(7, n=60), 7)
    totals = behaviour.row_totals(frame, history.DECLARATION)
    tolerance = timedelta(hours=48)
    expected = (
        frame.with_columns(totals.trip_gross_kg())
        .lazy()
        .pipe(behaviour.weighbridge_gap(arrivals.lazy(), tolerance))
        .collect()
        .get_column("trip_weighbridge_gap_ratio")
    )
    assert behaviour.weighbridge_gaps(frame, totals, arrivals.lazy(), tolerance).equals(expected)


@pytest.mark.parametrize("width", [2, 12, 13, 30])
def test_dense_codes_of_sliced_columns_short_and_long_strings(width: int) -> None:
    rng = np.random.default_rng(width)
    words = [f"{w:0{width}d}"[-width:] for w in rng.integers(0, 300, 20_000)]
    column = pl.Series("v", words).scatter([0, 11, 500], None).slice(7, 15_000)  # an offset
    codes = row_kernels.dense_codes([column, column.reverse()])
    both = pl.concat([column, column.reverse()])
    assert codes.values.equals(both.unique(maintain_order=True), check_names=False)
    assert codes.values.gather(np.concatenate(codes.codes)).equals(both, check_names=False)
