"""Behaviour signals: values placed under limits, round numbers, bursts, and crowded trucks.

Trip features describe the truck a row travels on. A trip is one truck (its ``truck_id``, or the
declaration itself when the truck is unknown) at one crossing on one calendar day: the papers a
truck carries are handed in together, so the co-loaded items are known when the truck is
scored and are not a peek into the future.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from features import row_kernels
from risk.soft_rules import truck_at_crossing

TRIP_KEYS = ("trip_id",)


def trip_id(rows: pl.Expr | None = None) -> pl.Expr:
    """The trip a row travels on: truck (or declaration), crossing and day; with ``rows`` (a
    mask), the trips of those rows only."""

    def column(name: str) -> pl.Expr:
        return pl.col(name) if rows is None else pl.col(name).filter(rows)

    return pl.concat_str(
        [
            pl.coalesce(column("truck_id"), pl.lit("decl:") + column("declaration_id")),
            column("crossing"),
            column("declared_at").dt.date().cast(pl.String),
        ],
        separator="|",
    ).alias("trip_id")


TRIP_RUN = "_trip_run"


def with_trip_id(items: pl.LazyFrame) -> pl.LazyFrame:
    """``items`` with ``trip_id``, its text built once per run of consecutive rows of one trip
    (a truck's items are together in a file) and repeated over the run: a fifth of the string
    work of building it per row. A run ends wherever any part of the trip changes, so the
    result is ``trip_id()`` row by row whatever the order."""
    run = pl.col(TRIP_RUN)
    first = run != run.shift(1, fill_value=-1)
    return (
        items.with_columns(
            pl.struct(
                pl.col("truck_id"),
                pl.when(pl.col("truck_id").is_null()).then(pl.col("declaration_id")),
                pl.col("crossing"),
                pl.col("declared_at").dt.date(),
            )
            .rle_id()
            .alias(TRIP_RUN)
        )
        .with_columns(trip_id(first).gather(run).alias("trip_id"))
        .drop(TRIP_RUN)
    )


def gap_below_threshold(value: pl.Expr, thresholds: Sequence[float]) -> pl.Expr:
    """Relative distance (T - v) / T to the nearest threshold T above the value; null if none."""
    gaps = [pl.when(value < limit).then((limit - value) / limit) for limit in thresholds]
    return pl.min_horizontal(gaps) if gaps else pl.lit(None, dtype=pl.Float64)


def roundness(value: pl.Expr, max_zeros: int = 6) -> pl.Expr:
    """Trailing zeros of a whole amount (5000 -> 3); 0 for amounts with cents or zero."""
    whole = (value == value.round(0)) & (value > 0)
    zeros = pl.sum_horizontal((value % (10**k) == 0).cast(pl.Int8) for k in range(1, max_zeros + 1))
    return pl.when(whole).then(zeros).otherwise(0).cast(pl.Int8)


def threshold_signals(
    thresholds: Sequence[float], margin: float
) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
    """Factory: values of the item and of its declaration just under declared limits (splitting)."""

    def apply(items: pl.LazyFrame) -> pl.LazyFrame:
        # Each gap once, its flag from the column (an expression used twice is computed twice).
        return items.with_columns(
            gap_below_threshold(pl.col("customs_value_usd"), thresholds).alias(
                "value_gap_below_threshold"
            ),
            gap_below_threshold(pl.col("declaration_value_usd"), thresholds).alias(
                "declaration_value_gap_below_threshold"
            ),
        ).with_columns(
            (pl.col("value_gap_below_threshold") <= margin)
            .fill_null(False)
            .cast(pl.Int8)
            .alias("value_just_under_threshold"),
            (pl.col("declaration_value_gap_below_threshold") <= margin)
            .fill_null(False)
            .cast(pl.Int8)
            .alias("declaration_value_just_under_threshold"),
        )

    return apply


def declaration_and_trip_totals(
    items: pl.LazyFrame, declaration: str = "declaration_id"
) -> pl.LazyFrame:
    """Items and value per declaration; declarations, consignees, chapters, value per trip.

    ``declaration``: the column that tells declarations apart, ``declaration_id`` or any
    one-to-one code of it (a number groups faster than text)."""
    return items.pipe(with_trip_id).with_columns(
        pl.len().over(declaration).cast(pl.Int64).alias("declaration_items"),
        pl.col("customs_value_usd").sum().over(declaration).alias("declaration_value_usd"),
        pl.col(declaration).n_unique().over("trip_id").cast(pl.Int64).alias("trip_declarations"),
        pl.len().over("trip_id").cast(pl.Int64).alias("trip_items"),
        pl.col("importer_id").n_unique().over("trip_id").cast(pl.Int64).alias("trip_importers"),
        pl.col("hs_code")
        .str.slice(0, 2)
        .n_unique()
        .over("trip_id")
        .cast(pl.Int64)
        .alias("trip_chapters"),
        pl.col("customs_value_usd").sum().over("trip_id").alias("trip_value_usd"),
        pl.col("gross_mass_kg").sum().over("trip_id").alias("trip_gross_kg"),
        *row_signals(),
    )


def importer_burst_ratio() -> pl.Expr:
    """Declarations of the importer in the last day against its daily mean of the last 30."""
    return (
        pl.col("importer_declarations_1d") / ((pl.col("importer_declarations_30d") + 1) / 30.0)
    ).alias("importer_burst_ratio")


def weighbridge_gap(
    arrivals: pl.LazyFrame | None, tolerance: timedelta
) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
    """Factory: the truck's weighbridge reading at the crossing nearest the declaration (within
    ``tolerance``) and the gap of the trip's declared gross weight to it (scheme 8)."""

    def apply(items: pl.LazyFrame) -> pl.LazyFrame:
        if arrivals is None:
            return items.with_columns(
                pl.lit(None, dtype=pl.Float64).alias("weighbridge_kg"),
                pl.lit(None, dtype=pl.Float64).alias("trip_weighbridge_gap_ratio"),
            )
        # (truck, crossing) as one 64-bit hash: the as-of join groups and the join back match
        # on numbers instead of strings (a collision among a few hundred thousand pairs has a
        # probability of about 1e-9, as for the entity keys of ``features.history``).
        readings = (
            arrivals.select(_truck_at_crossing(), "arrived_at", "weighbridge_kg")
            .drop_nulls([TRUCK_AT_CROSSING, "weighbridge_kg"])
            .sort("arrived_at", multithreaded=False)
        )
        # One query per run of consecutive rows of one truck at one time (a declaration's
        # items, a truck's papers): the hash, the as-of join and the join back run on a
        # fifth of the rows, and each row takes its run's reading.
        run = pl.col(WEIGHBRIDGE_RUN)
        items = items.with_columns(
            pl.struct("truck_id", "crossing", "declared_at").rle_id().alias(WEIGHBRIDGE_RUN)
        )
        runs = items.filter(run != run.shift(1, fill_value=-1)).select(
            _truck_at_crossing(), "declared_at"
        )
        queries = (
            runs.drop_nulls(TRUCK_AT_CROSSING)
            .unique()
            .sort("declared_at", multithreaded=False)
            .join_asof(
                readings,
                left_on="declared_at",
                right_on="arrived_at",
                by=TRUCK_AT_CROSSING,
                strategy="nearest",
                tolerance=tolerance,
                check_sortedness=False,
            )
            .select(TRUCK_AT_CROSSING, "declared_at", "weighbridge_kg")
        )
        # Joined on the key columns alone, and back to the rows on the run number alone, then
        # put beside them: a join of the wide frame itself would move every column.
        matched = runs.join(
            queries,
            on=[TRUCK_AT_CROSSING, "declared_at"],
            how="left",
            nulls_equal=False,
            maintain_order="left",
        ).select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(WEIGHBRIDGE_RUN), "weighbridge_kg")
        per_row = items.select(WEIGHBRIDGE_RUN).join(
            matched, on=WEIGHBRIDGE_RUN, how="left", maintain_order="left"
        )
        return (
            pl.concat([items, per_row.select("weighbridge_kg")], how="horizontal")
            .with_columns(
                pl.when(pl.col("trip_gross_kg") > 0)
                .then(
                    (pl.col("weighbridge_kg") - pl.col("trip_gross_kg")) / pl.col("trip_gross_kg")
                )
                .alias("trip_weighbridge_gap_ratio")
            )
            .drop(WEIGHBRIDGE_RUN)
        )

    return apply


TRUCK_AT_CROSSING = "_truck_at_crossing"
WEIGHBRIDGE_RUN = "_weighbridge_run"


def _truck_at_crossing() -> pl.Expr:
    return truck_at_crossing().alias(TRUCK_AT_CROSSING)


# --- The same signals over a materialised batch, through native kernels ---------------------


@dataclass(frozen=True)
class RowTotals:
    """``row_totals``: ``columns`` (``trip_id`` and the totals of ``declaration_and_trip_totals``
    but ``trip_gross_kg``), the trips behind them and each trip's gross mass (for
    ``weighbridge_gaps``), and the codes of the crossings and of the HS chapters (for
    ``features.route.route_columns``)."""

    columns: pl.DataFrame
    trips: row_kernels.Trips
    trip_gross: np.ndarray
    crossing: row_kernels.Codes
    chapter: row_kernels.Codes

    def trip_gross_kg(self) -> pl.Series:
        """``trip_gross_kg`` of every row."""
        return pl.Series("trip_gross_kg", self.trip_gross[self.trips.codes])


# The types the native signals read (other frames take the expressions above).
NATIVE_TYPES = {
    "customs_value_usd": pl.Float64,
    "invoice_value": pl.Float64,
    "net_mass_kg": pl.Float64,
    "gross_mass_kg": pl.Float64,
    "importer_registered_on": pl.Date,
    "importer_declarations_1d": pl.Int64,
    "importer_declarations_30d": pl.Int64,
}


def native_ready(items: pl.DataFrame, *, entity_features: bool = True) -> bool:
    """Whether ``row_totals``, ``weighbridge_gaps`` and ``local_signals`` take these items: a
    naive ``declared_at`` and the types of ``NATIVE_TYPES`` (without ``entity_features``,
    those of the items' own columns: ``row_totals`` and ``weighbridge_gaps`` alone read
    items that do not carry their entity features yet)."""
    dtype = items.schema.get("declared_at")
    return (
        isinstance(dtype, pl.Datetime)
        and dtype.time_zone is None
        and all(
            items.schema.get(name) == type_
            for name, type_ in NATIVE_TYPES.items()
            if entity_features or not name.startswith("importer_declarations")
        )
    )


LOCAL_SIGNALS = (
    "value_gap_below_threshold",
    "value_just_under_threshold",
    "declaration_value_gap_below_threshold",
    "declaration_value_just_under_threshold",
    "invoice_value_roundness",
    "gross_net_ratio",
    "importer_age_days",
    "importer_burst_ratio",
)


def local_signals(
    items: pl.DataFrame, totals: RowTotals, thresholds: Sequence[float], margin: float
) -> pl.DataFrame:
    """The row-local signals of ``threshold_signals``, ``declaration_and_trip_totals``
    (roundness, gross/net ratio, importer age) and ``importer_burst_ratio``, over a
    materialised batch in one native pass (``features.row_kernels.local_signals``)."""
    declared = totals.columns.get_column("declaration_value_usd")
    if len(thresholds) > row_kernels.MAX_THRESHOLDS:  # more than the kernel compares with
        frame = items.with_columns(declared).lazy().pipe(threshold_signals(thresholds, margin))
        return (
            frame.with_columns(*row_signals(), importer_burst_ratio())
            .select(*LOCAL_SIGNALS)
            .collect()
        )
    return pl.DataFrame(row_kernels.local_signals(items, declared.to_numpy(), thresholds, margin))


def row_totals(items: pl.DataFrame, declaration: str = "declaration_id") -> RowTotals:
    """What ``declaration_and_trip_totals`` adds for the totals (and ``trip_id``), over a
    materialised batch: trips numbered by a hash table over exact codes of their parts, every
    total in one pass, the trip's text built once per trip. Sums run in row order, so a float
    total may differ from the window expression's in the last bit."""
    codes, declarations = _declaration_codes(items.get_column(declaration))
    truck = items.get_column("truck_id")
    crossing = row_kernels.dense_codes([items.get_column("crossing")])
    trips = row_kernels.trip_codes(
        row_kernels.dense_codes([truck], guess=truck.len() // 4),
        row_kernels.present(truck),
        codes,
        row_kernels.present(items.get_column("declaration_id")),
        crossing,
        items.get_column("declared_at"),
    )
    chapter = (
        items.get_column("hs_chapter")
        if "hs_chapter" in items.columns
        else items.get_column("hs_code").str.slice(0, 2)
    )
    chapters = row_kernels.dense_codes([chapter])
    totals = row_kernels.trip_totals(
        trips,
        codes,
        declarations,
        row_kernels.dense_codes([items.get_column("importer_id")]),
        chapters,
        items.get_column("customs_value_usd"),
        items.get_column("gross_mass_kg"),
    )
    return RowTotals(
        pl.DataFrame(
            [
                _trip_texts(items, trips),
                pl.Series("declaration_items", totals.declaration_items),
                pl.Series("declaration_value_usd", totals.declaration_value),
                pl.Series("trip_declarations", totals.trip_declarations),
                pl.Series("trip_items", totals.trip_items),
                pl.Series("trip_importers", totals.trip_importers),
                pl.Series("trip_chapters", totals.trip_chapters),
                pl.Series("trip_value_usd", totals.trip_value),
            ]
        ),
        trips,
        totals.trip_gross,
        crossing,
        chapters,
    )


# Days a batch may span for its trips' dates to be written once per day.
_DAY_TEXTS = 100_000


def _trip_texts(items: pl.DataFrame, trips: row_kernels.Trips) -> pl.Series:
    """``trip_id`` of every row: written for each trip's first row (the date once per day)
    and repeated over the trip's rows."""
    parts = ["truck_id", "crossing", "declared_at"]
    if items.get_column("truck_id").null_count():
        parts.append("declaration_id")
    first = items.select(parts)[pl.Series(trips.firsts)]
    truck = first.get_column("truck_id")
    if truck.null_count():
        truck = first.select(
            pl.coalesce(pl.col("truck_id"), pl.lit("decl:") + pl.col("declaration_id"))
        ).to_series()
    day = first.get_column("declared_at").dt.date()
    number = day.to_physical()  # days since 1970-01-01
    low, high = number.min(), number.max()
    if isinstance(low, int) and isinstance(high, int) and high - low < _DAY_TEXTS:
        texts = pl.Series(np.arange(low, high + 1, dtype=np.int32)).cast(pl.Date)
        dates = texts.cast(pl.String).gather(number - low)
    else:
        dates = day.cast(pl.String)
    pieces = pl.DataFrame([truck.alias("who"), first.get_column("crossing"), dates.alias("day")])
    text = pieces.select(pl.concat_str(["who", "crossing", "day"], separator="|")).to_series()
    return text.gather(pl.Series(trips.codes)).alias("trip_id")


def _declaration_codes(declaration: pl.Series) -> tuple[np.ndarray, int]:
    """Codes 0 .. count - 1 of the declarations: the column itself when it already is such a
    code (``features.history.DECLARATION``), else numbered."""
    if declaration.dtype.is_integer() and declaration.len() and not declaration.null_count():
        low, high = declaration.min(), declaration.max()
        if low >= 0 and high < declaration.len():  # type: ignore[operator]
            return np.ascontiguousarray(declaration.to_numpy(), dtype=np.int32), int(high) + 1  # type: ignore[arg-type]
    numbered = row_kernels.dense_codes([declaration])
    return numbered.codes[0], numbered.count


def row_signals() -> list[pl.Expr]:
    """The row-local columns of ``declaration_and_trip_totals`` (no window)."""
    return [
        roundness(pl.col("invoice_value")).alias("invoice_value_roundness"),
        pl.when(pl.col("net_mass_kg") > 0)
        .then(pl.col("gross_mass_kg") / pl.col("net_mass_kg"))
        .alias("gross_net_ratio"),
        (
            (pl.col("declared_at").dt.date() - pl.col("importer_registered_on"))
            .dt.total_days()
            .cast(pl.Float64)
        ).alias("importer_age_days"),
    ]


def weighbridge_gaps(
    items: pl.DataFrame,
    totals: RowTotals,
    arrivals: pl.LazyFrame | None,
    tolerance: timedelta,
) -> pl.Series:
    """``trip_weighbridge_gap_ratio`` of ``weighbridge_gap`` over a materialised batch: each
    row's (truck, crossing) hash looked up among the readings, the nearest found by binary
    search. The hash is ``truck_at_crossing``'s, as the join's: the same pairs match."""
    name = "trip_weighbridge_gap_ratio"
    if arrivals is None:
        return pl.Series(name, [None] * items.height, dtype=pl.Float64)
    readings = (
        arrivals.select(
            _truck_at_crossing().alias("key"),
            pl.col("arrived_at").alias("at"),
            "weighbridge_kg",
        )
        .drop_nulls(["key", "weighbridge_kg"])
        .sort("at", multithreaded=False)
        .collect()
    )
    at_dtype = items.schema["declared_at"]
    if readings.schema["at"] != at_dtype or readings.get_column("at").null_count():
        frame = items.select("truck_id", "crossing", "declared_at").with_columns(
            totals.trip_gross_kg()
        )
        return frame.lazy().pipe(weighbridge_gap(arrivals, tolerance)).collect().get_column(name)
    trips = totals.trips
    if _trip_keys_hold(items):
        # A trip is one truck at one crossing: its first row's key is every row's.
        keyed = items.select("truck_id", "crossing")[pl.Series(trips.firsts)]
        key_of_row = trips.codes
    else:
        keyed = items.select(
            pl.when(pl.col("declared_at").is_not_null()).then(pl.col("truck_id")).alias("truck_id"),
            "crossing",
        )
        key_of_row = np.arange(items.height, dtype=np.int32)
    keys = keyed.select(_truck_at_crossing()).to_series()
    assert isinstance(at_dtype, pl.Datetime)
    unit = at_dtype.time_unit
    per_unit = {"ns": 1000, "us": 1, "ms": 0.001}[unit]
    ratio = row_kernels.nearest_readings(
        readings,
        keys.fill_null(0).to_numpy(),
        row_kernels.present(keys),
        key_of_row,
        np.ascontiguousarray(items.get_column("declared_at").to_physical().to_numpy()),
        trips,
        totals.trip_gross,
        int(tolerance / timedelta(microseconds=1) * per_unit),
    )
    return ratio.alias(name)


def _trip_keys_hold(items: pl.DataFrame) -> bool:
    """Whether every row has a trip text (a crossing and a time): rows without one share a
    trip whatever their truck, so their trip does not name their truck at its crossing."""
    return not (
        items.get_column("crossing").null_count() or items.get_column("declared_at").null_count()
    )
