"""Price and mass references per HS code x origin, learned from past declarations.

Customs keeps price references per HS code and origin; a declaration far below its reference is
the classic undervaluation trigger. The reference is robust (median, and a value's quantile
position among past values) and falls back from the full HS code to 6 and 4 digits and the
chapter, then to the chapter from any origin, when the finer level has too few past rows.

Point in time: references are refit at each period start (monthly by default). A row declared in
period P is compared with the rows of all periods before P only, never with its own period, so
it never sees itself nor anything after it.

How, without refitting a quantile per period: per (metric, level, key) the reference rows and
the query rows are sorted together by value, and for every query period P a running count of
reference rows from before P is kept. A query row's running count is the number of past values
below it (its quantile position); the median is the value where the running count reaches
half. Everything is counting and sorting, so history mode and a profile (which stores the past
values themselves) give identical numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Self

import numpy as np
import polars as pl

from features.codes import country_code
from features.reference_kernel import bucket_tables, pair_codes, positions, warm

METRICS = ("unit_value_kg", "unit_value_unit", "mass_per_unit")
# Level 0: full HS code x origin; 1: 6 digits x origin; 2: 4 digits x origin;
# 3: chapter x origin; 4: chapter from any origin.
LEVELS = (0, 1, 2, 3, 4)
_PREFIX = {0: 10, 1: 6, 2: 4, 3: 2, 4: 2}
_ANY_ORIGIN = 676  # one past the largest two-letter country code
KEY = "ref_key"
# The reference is evaluated in stages, eagerly, like ``fit``: one plan holding every stage made
# Polars' optimizer repeat shared stages many times over. The in-memory engine sorts about three
# times faster than the streaming one here.
ENGINE: Final = "in-memory"
# A compacted reference answers from its look-up snapshot (``_snapshot``), whatever the batch;
# False sends it down the general sort-and-count path instead (tests compare the two).
SNAPSHOT = True
ROW_COLUMNS = ["hs_code", "origin_country", "period", *METRICS]


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
    """One integer per (metric, level, HS prefix, origin): sorting and grouping on it is many
    times faster than on strings, and it is exact (no hashing), so it never mixes two keys.

    Needs the columns ``metric`` (its index in ``METRICS``), ``hs_code`` and ``origin_country``.
    """
    prefix = pl.col("hs_code").str.slice(0, _PREFIX[level])
    digits = prefix.cast(pl.Int64, strict=False) * 11 + prefix.str.len_chars().cast(pl.Int64)
    origin = country_code("origin_country").cast(pl.Int64) if level < 4 else pl.lit(_ANY_ORIGIN)
    return ((digits * 677 + origin) * len(LEVELS) + level) * len(METRICS) + pl.col("metric")


def _long(frame: pl.LazyFrame, index: list[str]) -> pl.LazyFrame:
    """One row per (row, metric) with a value; ``metric`` as its index in ``METRICS``."""
    metric_index = {name: i for i, name in enumerate(METRICS)}
    return (
        frame.unpivot(list(METRICS), index=index, variable_name="metric")
        .drop_nulls("value")
        .with_columns(pl.col("metric").replace_strict(metric_index, return_dtype=pl.Int64))
    )


def _grouped_cum_sum(values: pl.Expr, first_of_group: pl.Expr) -> pl.Expr:
    """Running sum restarting at each group, on rows already sorted by group: a scan instead
    of a window, which is what makes a dozen of them affordable over millions of rows."""
    total = values.cum_sum()
    return total - pl.when(first_of_group).then(total - values).forward_fill()


class UnitValueReference:
    """Robust references of log unit value and mass per unit per HS x origin level.

    ``fit`` keeps the log values of the past rows with their period (``rows_``) and the periods
    it saw (``periods_``); ``transform`` compares each row with the rows of earlier periods.
    ``compact(period_start)`` keeps what rows of that one period need, for an entity profile;
    a compacted reference refuses rows of any other period.
    """

    def __init__(self, *, period: str = "1mo", min_rows: int = 10) -> None:
        self.period = period
        self.min_rows = min_rows

    def __getstate__(self) -> dict[str, Any]:
        # The look-up arrays are derived from the snapshot, rebuilt where they are used: a
        # reference sent to a Dask worker does not carry them.
        return {name: value for name, value in self.__dict__.items() if name != "_lookup_memo"}

    def periods(self, declared_at: pl.Expr) -> pl.Expr:
        """The period a timestamp belongs to (its start)."""
        return declared_at.dt.truncate(self.period)

    def fit(self, items: pl.LazyFrame | pl.DataFrame) -> Self:
        """Learn from canonical declaration items (one eager pass)."""
        self.rows_ = (
            items.lazy()
            .select(
                "hs_code",
                "origin_country",
                self.periods(pl.col("declared_at")).alias("period"),
                *log_metrics(),
            )
            .collect()
        )
        self.periods_: list[datetime] = self.rows_["period"].unique().sort().to_list()
        self.valid_from_: datetime | None = None
        return self

    def compact(self, period_start: datetime) -> UnitValueReference:
        """The part a declaration of the period starting ``period_start`` compares with."""
        compacted = UnitValueReference(period=self.period, min_rows=self.min_rows)
        compacted.rows_ = self.rows_.filter(pl.col("period") < period_start).sort(
            "hs_code", "origin_country", "period"
        )
        compacted.periods_ = [period_start]
        compacted.valid_from_ = period_start
        return compacted

    def transform(self, items: pl.LazyFrame) -> pl.LazyFrame:
        """Per row (keys ``declaration_id``, ``item_no``), for each metric: its log ratio to
        the reference median, its quantile position among the reference values, the level
        used and the number of reference rows. Without a reference at any level: nulls."""
        if self.valid_from_ is not None and SNAPSHOT and self.periods_:
            # One period for every row: checked on the first and last time alone (a period
            # start is monotone in time), row by row only to name a row of another period.
            self._check_period(items)
            return self._transform_snapshot(
                items.select(
                    "declaration_id", "item_no", "hs_code", "origin_country", *log_metrics()
                )
            )
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
        if not self.periods_:  # fitted on nothing: no row has a reference
            return pl.LazyFrame(schema=result_schema())
        if self.valid_from_ is not None and SNAPSHOT:
            return self._transform_snapshot(rows)
        frame = rows.collect(engine=ENGINE)
        queries = (
            _long(
                frame.lazy().with_row_index("_row"),
                ["_row", "hs_code", "origin_country", "query_period"],
            )
            .collect(engine=ENGINE)
            .lazy()
        )
        past = self._past_keyed()
        chosen = self._choose_levels(queries).collect(engine=ENGINE).lazy()
        # A key is needed up to the last period that chose it: coarse levels serve the first,
        # sparse months mostly, and their later rows would only weigh on the sort below.
        wanted = chosen.group_by(KEY).agg(pl.col("query_period").max().alias("_until"))
        reference_part = pl.concat(
            past.lazy()
            .select(pl.col(f"_key{level}").alias(KEY), "value", "period")
            .join(wanted, on=KEY, how="inner")
            .filter(pl.col("period") < pl.col("_until"))
            .drop("_until")
            for level in LEVELS
        )
        query_part = (
            queries.join(
                chosen, on=["metric", "hs_code", "origin_country", "query_period"], how="inner"
            )
            .select(
                KEY,
                "value",
                pl.col("query_period").alias("period"),
                "_row",
                "metric",
                "level",
                "n",
            )
            .with_row_index("_q")
            .collect(engine=ENGINE)
        )
        # Queries sort before past values equal to them: a position counts values strictly below.
        # Only numbers travel through the sort; a query's other columns are found by ``_q``.
        together = (
            pl.concat(
                [reference_part, query_part.lazy().select(KEY, "value", "period", "_q")],
                how="diagonal",
            )
            .with_columns(pl.col("_q").is_null().alias("is_past"))
            .sort(KEY, "value", "is_past")
        )
        first_of_group = pl.col(KEY) != pl.col(KEY).shift(1, fill_value=-1)
        periods = self.periods_
        counted = (
            together.with_columns(
                _grouped_cum_sum(
                    (pl.col("is_past") & (pl.col("period") < start)).cast(pl.Int32), first_of_group
                ).alias(f"_below{j}")
                for j, start in enumerate(periods)
            )
            .collect(engine=ENGINE)
            .lazy()
        )
        below = pl.coalesce(
            pl.when(pl.col("period") == start).then(pl.col(f"_below{j}"))
            for j, start in enumerate(periods)
        )
        scored = (
            counted.filter(~pl.col("is_past"))
            .select(
                "_q",
                KEY,
                "value",
                pl.col("period").alias("query_period"),
                below.alias("below"),
            )  # fmt: skip
            .join(_medians(counted, periods), on=[KEY, "query_period"], how="left")
            .select(
                "_q",
                (pl.col("value") - pl.col("median")).alias("log_ratio"),
                pl.col("below"),
            )
            .sort("_q")
            .collect(engine=ENGINE)
        )
        # Every query is in ``scored`` once: sorted by ``_q`` it lines up with ``query_part``.
        scored = pl.concat(
            [query_part.select("_row", "metric", "level", "n"), scored.drop("_q")],
            how="horizontal",
        ).with_columns((pl.col("below") / pl.col("n")).alias("position"))
        return _by_row(frame, scored)

    def _check_period(self, items: pl.LazyFrame) -> None:
        """Refuse rows outside the compacted reference's period (``_refuse_other_periods``)."""
        assert self.valid_from_ is not None
        bounds = (
            items.select(pl.concat([pl.col("declared_at").min(), pl.col("declared_at").max()]))
            .collect(engine=ENGINE)
            .to_series()
            .drop_nulls()
        )
        if (bounds.dt.truncate(self.period) != self.valid_from_).any():
            items.select(self.periods(pl.col("declared_at")).alias("query_period")).select(
                _refuse_other_periods(self.valid_from_)
            ).collect(engine=ENGINE)

    def _transform_snapshot(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """``transform`` of a compacted reference: its one period's reference is fixed, so
        the count and median of every key and the running count of every past value are
        prepared once (``_snapshot``, sorted by key, kept as arrays by ``_lookup``). The level
        is chosen once per distinct (HS code, origin) of the batch (``_choose``), and a row's
        quantile position is a search among the few past values of its key in its value's
        bucket, in native passes (``features.reference_kernel``). The numbers are those of the
        general path: the same counts, the same two middle values, the same division. The
        result keeps the rows' order, one row per row, nulls where a metric has no
        reference."""
        lookup = self._lookup()
        frame = rows.collect(engine=ENGINE)
        coded = pair_codes(frame.get_column("hs_code"), frame.get_column("origin_country"))
        codes, firsts = coded if coded is not None else _pair_codes(frame)
        pairs = frame.select("hs_code", "origin_country")[pl.Series(firsts)]
        columns: list[pl.Series] = [frame.get_column("declaration_id"), frame.get_column("item_no")]
        stats = positions(
            codes,
            [frame.get_column(metric) for metric in METRICS],
            self._choose(pairs, lookup),
            lookup["table"],
            lookup["value"],
            lookup["below"],
        )
        for metric, found in zip(METRICS, stats, strict=True):
            names = ("log_ratio", "position", "reference_level", "reference_rows")
            columns += [
                series.alias(f"{metric}_{name}") for series, name in zip(found, names, strict=True)
            ]
        return pl.DataFrame(columns).lazy()

    def _lookup(self) -> dict[str, np.ndarray]:
        """The snapshot as arrays (memoised with it). Per key, sorted: ``key``, ``rows`` and
        ``median``. Per distinct past value, in the snapshot's order (by key, then value):
        ``value`` and ``below``. Per key with past values there (``sliced``, sorted): its
        ``start`` among them and its ``bucket_tables`` (``buckets`` equal-width buckets of its
        values from ``low``, ``scale`` per unit, whose first values are at ``table[table_at +
        bucket]`` from ``start``): a row's value is searched for among its bucket's values
        alone, mostly none or one, instead of among all of its key's."""
        keys, ranks = self._snapshot()
        memo = getattr(self, "_lookup_memo", None)
        if memo is None or memo[0] is not self._snapshot_memo:
            keys, ranks = keys.rechunk(), ranks.rechunk()  # no copy when in one piece
            ranked = ranks.get_column(KEY).to_numpy()
            value = np.ascontiguousarray(ranks.get_column("value").to_numpy())
            start = np.flatnonzero(np.diff(ranked, prepend=ranked[:1] - 1))
            size = np.diff(np.append(start, len(ranked)))
            tables = bucket_tables(value, start, size)
            arrays = {
                "key": keys.get_column(KEY).to_numpy(),
                "rows": keys.get_column("n").to_numpy(),
                "median": keys.get_column("median").to_numpy(),
                "value": value,
                "below": ranks.get_column("_below").to_numpy(),
                "sliced": ranked[start],
                "start": start,
                **tables,
            }
            memo = (self._snapshot_memo, {k: np.ascontiguousarray(a) for k, a in arrays.items()})
            self._lookup_memo = memo
        return memo[1]

    def _choose(self, pairs: pl.DataFrame, lookup: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per distinct (HS code, origin) of ``pairs`` and metric (index pair * metrics +
        metric): the finest level with at least ``min_rows`` past rows in the snapshot (-1:
        none), its rows and median, and its key's slice of ``lookup``'s past values."""
        metrics = len(METRICS)
        size = pairs.height * metrics
        level = np.full(size, -1, dtype=np.int32)
        chosen = {
            "key": np.zeros(size, dtype=np.int64),
            "rows": np.zeros(size, dtype=np.int64),
            "median": np.zeros(size, dtype=np.float64),
        }
        # A key's metric is its last term: the keys of metric 0, plus the metric's index.
        bases = pairs.with_columns(pl.lit(0, dtype=pl.Int64).alias("metric")).select(
            reference_key(level).alias(str(level)) for level in LEVELS
        )
        known = lookup["key"]
        for candidate in reversed(LEVELS) if len(known) else ():  # finest last: it wins
            base = bases.get_column(str(candidate))
            has_key = np.repeat(base.is_not_null().to_numpy(), metrics)
            key = (base.fill_null(0).to_numpy()[:, None] + np.arange(metrics)).ravel()
            at = np.minimum(np.searchsorted(known, key), len(known) - 1)
            enough = has_key & (known[at] == key) & (lookup["rows"][at] >= self.min_rows)
            level[enough] = candidate
            chosen["key"][enough] = key[enough]
            chosen["rows"][enough] = lookup["rows"][at[enough]]
            chosen["median"][enough] = lookup["median"][at[enough]]
        none = level < 0
        sliced = np.searchsorted(lookup["sliced"], chosen["key"][~none])
        for name in ("start", "low", "scale", "buckets", "table_at"):
            column = np.zeros(size, dtype=lookup[name].dtype)
            column[~none] = lookup[name][sliced]
            chosen[name] = column
        return {**chosen, "level": level}

    def snapshot(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """A compacted reference's look-up tables (``_snapshot``), to save with a profile."""
        if self.valid_from_ is None:
            raise ValueError("only a compacted reference has a snapshot")
        return self._snapshot()

    def use_snapshot(self, keys: pl.DataFrame, ranks: pl.DataFrame) -> None:
        """Adopt look-up tables that ``snapshot`` gave for this very reference (a saved
        profile's), instead of preparing them again, and prepare the arrays scoring reads
        them through (``_lookup``) now, with the profile: about 0.06 s and 36 MB for 2.2
        million past values, paid at load rather than by the first batch."""
        # In one piece: the arrays are views of it (a saved table is read in many chunks).
        self._snapshot_memo = (keys.rechunk(), ranks.rechunk())
        self._lookup()
        warm(len(METRICS))  # the kernels too: compiled once per process, or read from the cache

    def _snapshot(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """For a compacted reference (memoised: a profile serves many batches), both sorted by
        key: per key at every level, its past rows ``n`` and their ``median``; and per key and
        distinct past value, ``_below``, the number of past values at or below it, so that an
        as-of join strictly below a query's value counts the past values under it."""
        if getattr(self, "_snapshot_memo", None) is None:
            past = (
                self._past_keyed()
                .lazy()
                .filter(pl.col("period") < self.valid_from_)
                .sort("value")
                .collect(engine=ENGINE)
            )
            first_of_group = pl.col(KEY) != pl.col(KEY).shift(1, fill_value=-1)
            last_of_group = pl.col(KEY) != pl.col(KEY).shift(-1, fill_value=-1)
            # Sorted by value once; a stable sort by key then leaves each key's values in order
            # (a key belongs to one level), far cheaper than sorting by (key, value).
            ordered = (
                pl.concat(
                    past.lazy().select(pl.col(f"_key{level}").alias(KEY), "value")
                    for level in LEVELS
                )
                .drop_nulls(KEY)
                .sort(KEY, maintain_order=True)
                .with_columns(
                    _grouped_cum_sum(pl.repeat(1, pl.len(), dtype=pl.Int64), first_of_group).alias(
                        "_rank"
                    )
                )
                .with_columns(
                    pl.when(last_of_group).then(pl.col("_rank")).backward_fill().alias("n")
                )
                .collect(engine=ENGINE)
            )
            rank, n = pl.col("_rank"), pl.col("n")
            keys = (
                ordered.lazy()
                .filter((rank == (n + 1) // 2) | (rank == (n + 2) // 2))
                .group_by(KEY, maintain_order=True)
                .agg(pl.col("n").first(), pl.col("value").mean().alias("median"))
                .collect(engine=ENGINE)
            )
            ranks = (
                ordered.lazy()
                # The last of equal values in a key carries the count of all of them. A key
                # with fewer than ``min_rows`` values is never chosen: its values are not kept.
                .filter(
                    (pl.col("value") != pl.col("value").shift(-1))
                    .or_(pl.col(KEY) != pl.col(KEY).shift(-1))
                    .fill_null(True)
                    & (pl.col("n") >= self.min_rows)
                )
                .collect(engine=ENGINE)
            )
            self._snapshot_memo = (
                keys,
                ranks.select(KEY, "value", pl.col("_rank").alias("_below")),
            )
        return self._snapshot_memo

    def _past_keyed(self) -> pl.DataFrame:
        """The past values in long form with their key at every level (memoised: a profile
        serves many batches)."""
        if getattr(self, "_past_memo", None) is None:
            self._past_memo = (
                _long(self.rows_.lazy(), ["hs_code", "origin_country", "period"])
                .select(
                    "metric",
                    "period",
                    "value",
                    *(reference_key(level).alias(f"_key{level}") for level in LEVELS),
                )
                .collect(engine=ENGINE)
            )
        return self._past_memo

    def _level_counts(self) -> pl.DataFrame:
        """Past rows per key, cumulated over periods (memoised)."""
        if getattr(self, "_counts_memo", None) is None:
            past = self._past_keyed().lazy()
            self._counts_memo = (
                pl.concat(
                    past.group_by(pl.col(f"_key{level}").alias(KEY), "period").agg(
                        pl.len().cast(pl.Int64).alias("n")
                    )
                    for level in LEVELS
                )
                .drop_nulls(KEY)
                .sort(KEY, "period")
                .with_columns(
                    _grouped_cum_sum(
                        pl.col("n"), pl.col(KEY) != pl.col(KEY).shift(1, fill_value=-1)
                    )
                )
                .select(KEY, pl.col("period").alias("query_period"), "n")
                .sort("query_period")
                .collect(engine=ENGINE)
            )
        return self._counts_memo

    def _choose_levels(self, queries: pl.LazyFrame) -> pl.LazyFrame:
        """Per (metric, HS code, origin, query period): the finest level with at least
        ``min_rows`` past rows, its key (``ref_key``) and its number of past rows ``n``."""
        counts = self._level_counts().lazy()
        asked = (
            queries.select("metric", "hs_code", "origin_country", "query_period")
            .unique()
            .with_columns(reference_key(level).alias(f"_key{level}") for level in LEVELS)
            .sort("query_period")
        )
        for level in LEVELS:
            asked = asked.join_asof(
                counts.rename({KEY: f"_key{level}", "n": f"_n{level}"}),
                on="query_period",
                by=f"_key{level}",
                strategy="backward",
                allow_exact_matches=False,
                check_sortedness=False,
            )
        enough = [pl.col(f"_n{level}") >= self.min_rows for level in LEVELS]

        def first_enough(column: str) -> pl.Expr:
            return pl.coalesce(
                pl.when(ok).then(pl.col(f"{column}{level}"))
                for level, ok in zip(LEVELS, enough, strict=True)
            )

        return asked.select(
            "metric",
            "hs_code",
            "origin_country",
            "query_period",
            pl.coalesce(
                pl.when(ok).then(pl.lit(level, dtype=pl.Int8))
                for level, ok in zip(LEVELS, enough, strict=True)
            ).alias("level"),
            first_enough("_key").alias(KEY),
            first_enough("_n").alias("n"),
        ).drop_nulls("level")


def _medians(counted: pl.LazyFrame, periods: list[datetime]) -> pl.LazyFrame:
    """Median of the past values of each key as of each period start: the mean of the values
    at ranks floor((n+1)/2) and ceil((n+1)/2) among the values from before that start."""
    last_of_group = pl.col(KEY) != pl.col(KEY).shift(-1, fill_value=-1)
    past = counted.filter(pl.col("is_past"))
    totals = past.with_columns(
        pl.when(last_of_group).then(pl.col(f"_below{j}")).backward_fill().alias(f"_n{j}")
        for j in range(len(periods))
    )
    middles = []
    for j, start in enumerate(periods):
        rank, n = pl.col(f"_below{j}"), pl.col(f"_n{j}")
        middle = (pl.col("period") < start) & ((rank == (n + 1) // 2) | (rank == (n + 2) // 2))
        middles.append(pl.when(middle).then(pl.col("value")).alias(f"_median{j}"))
    per_key = (
        totals.select(KEY, *middles)
        .filter(pl.any_horizontal(pl.col(f"_median{j}").is_not_null() for j in range(len(periods))))
        .group_by(KEY)
        .agg(pl.col(f"_median{j}").mean() for j in range(len(periods)))
    )
    return pl.concat(
        per_key.select(
            KEY,
            pl.lit(start, dtype=pl.Datetime("us")).alias("query_period"),
            pl.col(f"_median{j}").alias("median"),
        ).drop_nulls("median")
        for j, start in enumerate(periods)
    )


def _pair_codes(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``reference_kernel.pair_codes`` by a join, for strings it cannot read from their views:
    per row its pair's index in order of first appearance, and each pair's first row."""
    pair = ["hs_code", "origin_country"]
    rows = frame.select(pair).with_row_index("_first")
    firsts = rows.unique(subset=pair, keep="first", maintain_order=True).with_row_index("_code")
    codes = rows.join(
        firsts.drop("_first"), on=pair, how="left", nulls_equal=True, maintain_order="left"
    ).get_column("_code")
    return (
        codes.cast(pl.Int32).to_numpy().copy(),
        firsts.get_column("_first").cast(pl.Int64).to_numpy().copy(),
    )


def _by_row(frame: pl.DataFrame, scored: pl.DataFrame) -> pl.LazyFrame:
    """The result of ``transform`` in the rows' order from one row per (row, metric) that has
    a reference (``_row``, ``metric``, ``log_ratio``, ``position``, ``level``, ``n``)."""
    columns = [frame.get_column("declaration_id"), frame.get_column("item_no")]
    for index, metric in enumerate(METRICS):
        part = scored.filter(pl.col("metric") == index)
        rows = part.get_column("_row")
        for name, source, dtype in (
            ("log_ratio", "log_ratio", pl.Float64),
            ("position", "position", pl.Float64),
            ("reference_level", "level", pl.Int32),
            ("reference_rows", "n", pl.Int64),
        ):
            columns.append(
                pl.Series(f"{metric}_{name}", [], dtype=dtype)
                .extend_constant(None, frame.height)
                .scatter(rows, part.get_column(source).cast(dtype))
            )
    return pl.DataFrame(columns).lazy()


def result_schema() -> dict[str, pl.DataType]:
    """Columns and types of ``UnitValueReference.transform``'s result."""
    schema: dict[str, pl.DataType] = {"declaration_id": pl.String(), "item_no": pl.Int32()}
    for metric in METRICS:
        schema[f"{metric}_log_ratio"] = pl.Float64()
        schema[f"{metric}_position"] = pl.Float64()
        schema[f"{metric}_reference_level"] = pl.Int32()
        schema[f"{metric}_reference_rows"] = pl.Int64()
    return schema


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
