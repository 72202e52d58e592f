"""Behaviour signals: values placed under limits, round numbers, bursts, and crowded trucks.

Trip features describe the truck a row travels on. A trip is one truck (its ``truck_id``, or the
declaration itself when the truck is unknown) at one crossing on one calendar day: the papers a
truck carries are handed in together, so the co-loaded items are known when the truck is
scored and are not a peek into the future.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import polars as pl

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
        roundness(pl.col("invoice_value")).alias("invoice_value_roundness"),
        pl.when(pl.col("net_mass_kg") > 0)
        .then(pl.col("gross_mass_kg") / pl.col("net_mass_kg"))
        .alias("gross_net_ratio"),
        (
            (pl.col("declared_at").dt.date() - pl.col("importer_registered_on"))
            .dt.total_days()
            .cast(pl.Float64)
        ).alias("importer_age_days"),
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
