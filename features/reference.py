"""Price and mass references per HS code x origin, learned from past declarations.

Customs keeps price references per HS code and origin; a declaration far below its reference is
the classic undervaluation trigger. The reference is robust (median and quantile position, not
mean) and falls back from the full HS code to 6 and 4 digits and the chapter, then to the
chapter from any origin, when the finer level has too few past rows.

Medians are not additive, so they cannot be carried forward like counters. The reference is
therefore a histogram of log values in fixed bins, counted per period: counts add up, a
period's reference is the sum of all earlier periods' counts, and the median and a value's
quantile position are read from the cumulative histogram with linear interpolation inside a bin
(``bin_width`` 0.02 in log units bounds the error by 2 %). A row in period P is compared with
the rows of periods before P only: a reference never contains the row itself nor its future.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

import polars as pl

METRICS = ("unit_value_kg", "unit_value_unit", "mass_per_unit")
# Level 0: full HS code x origin; 1: 6 digits x origin; 2: 4 digits x origin;
# 3: chapter x origin; 4: chapter from any origin.
LEVELS = (0, 1, 2, 3, 4)
_PREFIX = {0: 10, 1: 6, 2: 4, 3: 2, 4: 2}
CELL_SCHEMA = {
    "metric": pl.String,
    "level": pl.Int8,
    "ref_key": pl.String,
    "period": pl.Datetime("us"),
    "bin": pl.Int64,
    "count": pl.Int64,
}


def log_metrics() -> list[pl.Expr]:
    """Log unit value per kg and per unit, and log net mass per unit; null when undefined."""

    def safe_log(numerator: str, denominator: str) -> pl.Expr:
        valid = (pl.col(numerator) > 0) & (pl.col(denominator) > 0)
        return pl.when(valid).then((pl.col(numerator) / pl.col(denominator)).log())

    return [
        safe_log("customs_value_usd", "net_mass_kg").alias("unit_value_kg"),
        safe_log("customs_value_usd", "quantity").alias("unit_value_unit"),
        safe_log("net_mass_kg", "quantity").alias("mass_per_unit"),
    ]


def reference_key(level: int) -> pl.Expr:
    """The key of a row at one fallback level, prefixed by the level so levels never mix."""
    hs = pl.col("hs_code").str.slice(0, _PREFIX[level])
    parts = [pl.lit(str(level)), hs] + ([pl.col("origin_country")] if level < 4 else [])
    return pl.concat_str(parts, separator="|")


class UnitValueReference:
    """Histogram references of log unit value and mass per unit per HS x origin level.

    ``fit`` counts rows per (metric, level, key, period, bin); ``transform`` compares each row
    with the rows of earlier periods only. ``compact(period)`` keeps what a row of that one
    period needs, for an entity profile.
    """

    def __init__(self, *, period: str = "1mo", bin_width: float = 0.02, min_rows: int = 10) -> None:
        self.period = period
        self.bin_width = bin_width
        self.min_rows = min_rows

    def periods(self, declared_at: pl.Expr) -> pl.Expr:
        """The period a timestamp belongs to (its start)."""
        return declared_at.dt.truncate(self.period)

    def fit(self, items: pl.LazyFrame | pl.DataFrame) -> Self:
        """Count the histogram cells of ``items`` (canonical declaration items)."""
        rows = items.lazy().select(
            "hs_code",
            "origin_country",
            self.periods(pl.col("declared_at")).alias("period"),
            *log_metrics(),
        )
        long = rows.unpivot(
            index=["hs_code", "origin_country", "period"], variable_name="metric"
        ).drop_nulls("value")
        finest = long.group_by(
            "hs_code",
            "origin_country",
            "period",
            "metric",
            (pl.col("value") / self.bin_width).floor().cast(pl.Int64).alias("bin"),
        ).agg(pl.len().cast(pl.Int64).alias("count"))
        levels = [
            finest.group_by("metric", reference_key(level).alias("ref_key"), "period", "bin")
            .agg(pl.col("count").sum())
            .with_columns(pl.lit(level, dtype=pl.Int8).alias("level"))
            for level in LEVELS
        ]
        self.cells_ = pl.concat(levels).select(list(CELL_SCHEMA)).collect()
        self.valid_from_: datetime | None = None
        return self

    def compact(self, period_start: datetime) -> UnitValueReference:
        """A reference holding only the rows a declaration of the period ``period_start``
        compares with (all earlier periods summed); rows of later periods are refused."""
        compacted = UnitValueReference(
            period=self.period, bin_width=self.bin_width, min_rows=self.min_rows
        )
        compacted.cells_ = (
            self.cells_.lazy()
            .filter(pl.col("period") < period_start)
            .group_by("metric", "level", "ref_key", "bin")
            .agg(pl.col("count").sum())
            .with_columns(pl.lit(period_start, dtype=pl.Datetime("us")).alias("period"))
            .select(list(CELL_SCHEMA))
            .sort("metric", "level", "ref_key", "bin")
            .collect()
        )
        compacted.valid_from_ = period_start
        return compacted

    def transform(self, items: pl.LazyFrame) -> pl.LazyFrame:
        """Per row (keys ``declaration_id``, ``item_no``): for each metric its log ratio to
        the reference median, its quantile position in the reference, the level used and the
        number of reference rows. Rows without a reference at any level get nulls."""
        rows = items.select(
            "declaration_id",
            "item_no",
            "hs_code",
            "origin_country",
            self.periods(pl.col("declared_at")).alias("query_period"),
            *log_metrics(),
        )
        if self.valid_from_ is not None:
            rows = rows.with_columns(_refuse_other_periods(self.valid_from_))
        cells = self.cells_.lazy()
        if self.valid_from_ is not None:
            # A compacted reference is stamped with its own period and serves only it.
            cells = cells.with_columns(pl.col("period") - pl.duration(microseconds=1))
        queries = rows.select("hs_code", "origin_country", "query_period").unique()
        keyed = queries.with_columns(reference_key(level).alias(f"key{level}") for level in LEVELS)
        # Histogram of each (metric, level, key) summed over periods before the query period.
        wanted = pl.concat(
            keyed.select(
                pl.lit(level, dtype=pl.Int8).alias("level"),
                pl.col(f"key{level}").alias("ref_key"),
                "query_period",
            )
            for level in LEVELS
        ).unique()
        histogram = (
            cells.join(wanted, on=["level", "ref_key"], how="inner")
            .filter(pl.col("period") < pl.col("query_period"))
            .group_by("metric", "level", "ref_key", "query_period", "bin")
            .agg(pl.col("count").sum())
        )
        totals = (
            histogram.group_by("metric", "level", "ref_key", "query_period")
            .agg(pl.col("count").sum().alias("n"))
            .filter(pl.col("n") >= self.min_rows)
        )
        # Finest level with enough rows, per (metric, hs, origin, period).
        candidates = pl.concat(
            keyed.select(
                "hs_code",
                "origin_country",
                "query_period",
                pl.lit(level, dtype=pl.Int8).alias("level"),
                pl.col(f"key{level}").alias("ref_key"),
            )
            for level in LEVELS
        ).join(totals, on=["level", "ref_key", "query_period"], how="inner")
        chosen = (
            candidates.sort("level")
            .group_by("metric", "hs_code", "origin_country", "query_period")
            .agg(pl.col("level", "ref_key", "n").first())
        )
        cumulative = (
            histogram.join(
                chosen.select("metric", "level", "ref_key", "query_period", "n").unique(),
                on=["metric", "level", "ref_key", "query_period"],
                how="inner",
            )
            .sort("bin")
            .with_columns(
                pl.col("count")
                .cum_sum()
                .over("metric", "level", "ref_key", "query_period")
                .alias("cum")
            )
        )
        width = self.bin_width
        medians = (
            cumulative.filter(pl.col("cum") >= pl.col("n") / 2)
            .group_by("metric", "level", "ref_key", "query_period")
            .agg(pl.all().sort_by("bin").first())
            .select(
                "metric",
                "level",
                "ref_key",
                "query_period",
                (
                    width
                    * (
                        pl.col("bin")
                        + (pl.col("n") / 2 - (pl.col("cum") - pl.col("count"))) / pl.col("count")
                    )
                ).alias("median"),
            )
        )
        long = (
            rows.unpivot(
                on=list(METRICS),
                index=["declaration_id", "item_no", "hs_code", "origin_country", "query_period"],
                variable_name="metric",
            )
            .drop_nulls("value")
            .join(chosen, on=["metric", "hs_code", "origin_country", "query_period"], how="inner")
            .join(medians, on=["metric", "level", "ref_key", "query_period"], how="left")
            .with_columns((pl.col("value") / width).floor().cast(pl.Int64).alias("bin"))
            .sort("bin")
            .join_asof(
                cumulative.select(
                    "metric",
                    "level",
                    "ref_key",
                    "query_period",
                    "bin",
                    pl.col("bin").alias("found_bin"),
                    "cum",
                    "count",
                ).sort("bin"),
                on="bin",
                by=["metric", "level", "ref_key", "query_period"],
                strategy="backward",
                check_sortedness=False,
            )
        )
        in_bin = pl.when(pl.col("found_bin") == pl.col("bin")).then(pl.col("count")).otherwise(0)
        below = pl.col("cum").fill_null(0) - in_bin
        fraction = pl.col("value") / width - pl.col("bin")
        scored = long.select(
            "declaration_id",
            "item_no",
            "metric",
            (pl.col("value") - pl.col("median")).alias("log_ratio"),
            ((below + in_bin * fraction) / pl.col("n")).alias("position"),
            "level",
            "n",
        )
        return _widen(scored)


def _widen(scored: pl.LazyFrame) -> pl.LazyFrame:
    """One row per item, four columns per metric (``<metric>_log_ratio`` and so on)."""
    parts = [
        scored.filter(pl.col("metric") == metric).select(
            "declaration_id",
            "item_no",
            pl.col("log_ratio").alias(f"{metric}_log_ratio"),
            pl.col("position").alias(f"{metric}_position"),
            pl.col("level").cast(pl.Int32).alias(f"{metric}_reference_level"),
            pl.col("n").alias(f"{metric}_reference_rows"),
        )
        for metric in METRICS
    ]
    frame = parts[0]
    for part in parts[1:]:
        frame = frame.join(part, on=["declaration_id", "item_no"], how="full", coalesce=True)
    return frame


def _refuse_other_periods(valid_from: datetime) -> pl.Expr:
    def check(period: pl.Series) -> pl.Series:
        wrong = period.filter(period != valid_from)
        if len(wrong):
            raise ValueError(
                f"declared_at in period {wrong[0]}: the entity profile's price reference serves "
                f"only the period starting {valid_from}; materialise a profile for that period"
            )
        return period

    return pl.col("query_period").map_batches(check, return_dtype=pl.Datetime("us"))
