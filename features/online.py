"""Features of a few trucks at a time from entity profiles, without a Polars plan per request.

``build_features(..., profiles=...)`` builds one plan of some 1,700 expressions per batch: right
for a queue of thousands of trucks, but for the one truck of an API call the plan costs far more
than the work. ``OnlineFeatures`` reads a profile once into sorted NumPy arrays and answers the
history-bound features of a small batch by binary search:

- entity history: per entity, the profile's events sorted by (key, time) with their running
  totals; the state strictly before a time is the last event before it, plus the batch's own
  earlier declarations (the batch carries no outcomes: scoring passes none);
- price reference: per (metric, level, HS prefix, origin) key, its past values sorted; the
  median is read at the middle ranks and a value's position is the count strictly below it.

The row-local features (route, goods, codes, declaration and trip totals, value thresholds)
are a few arithmetic operations per row, done in Python (``features.online_rows``); entity
keys are the pipeline's own hashes, and the weighbridge gap is the pipeline's own as-of join
over the small frame when arrivals are given. The result equals ``build_features``' in
profile mode with empty outcomes, as ``compute_features`` calls it for scoring (same columns,
types and values; ``tests/features/test_online.py`` holds them equal). A batch this path
cannot mirror exactly raises ``UnsupportedBatchError``; callers then fall back to
``build_features``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from features import behaviour, history
from features.codes import hash_code_expr
from features.config import WINDOWS_DAYS, FeatureConfig
from features.history import (
    DAY_US,
    ENTITIES,
    EVERYONE,
    KEY,
    TIME,
    Entity,
    entity_feature_names,
    key_column,
)
from features.online_rows import INPUT_COLUMNS, row_signals
from features.pipeline import (
    CATEGORICAL_FEATURES,
    ENTITY_FEATURES,
    FEATURE_COLUMNS,
    KEYS,
    PASSTHROUGH,
    ROUTE_FEATURES,
    extra_categorical_name,
)
from features.reference import LEVELS, METRICS, reference_key

if TYPE_CHECKING:
    from features.profiles import EntityProfiles

_NO_TIME = np.iinfo(np.int64).max  # ``_first`` missing (outcome events)
_REF_KEY = "_ref_key"
_ROW = "_online_row"
# What ``features.history.with_entity_columns`` builds the entity keys from.
_KEY_SOURCE_COLUMNS = (
    "importer_id",
    "declarant_id",
    "consignor_id",
    "carrier_id",
    "truck_id",
    "crossing",
    "hs_code",
    "origin_country",
)


class UnsupportedBatchError(ValueError):
    """The batch holds a case the online path does not mirror exactly: use build_features."""


def _micros(moment: datetime) -> int:
    return int(pl.Series([moment], dtype=pl.Datetime("us")).to_physical()[0])


@dataclass(frozen=True)
class _EntityEvents:
    """One entity's profile events sorted by (key, time), with running totals per key."""

    keys: np.ndarray  # uint64
    times: np.ndarray  # int64 microseconds
    n: np.ndarray
    inspected: np.ndarray
    violations: np.ndarray
    duty: np.ndarray
    first: np.ndarray  # running minimum of ``_first``, _NO_TIME where none yet

    @classmethod
    def from_frame(cls, events: pl.DataFrame) -> _EntityEvents:
        ordered = events.select(
            pl.col(KEY).cast(pl.UInt64),
            pl.col(TIME).cast(pl.Datetime("us")).to_physical(),
            pl.col("_n", "_inspected", "_violations").cast(pl.Int64),
            pl.col("_duty").cast(pl.Float64),
            pl.col("_first").cast(pl.Datetime("us")).to_physical().fill_null(_NO_TIME),
        ).sort(KEY, TIME)
        # Running totals per key (a Polars window keeps the sorted order).
        running = ordered.select(
            pl.col("_n", "_inspected", "_violations", "_duty").cum_sum().over(KEY),
            pl.col("_first").cum_min().over(KEY),
        )
        return cls(
            keys=ordered.get_column(KEY).to_numpy(),
            times=ordered.get_column(TIME).to_numpy(),
            n=running.get_column("_n").to_numpy(),
            inspected=running.get_column("_inspected").to_numpy(),
            violations=running.get_column("_violations").to_numpy(),
            duty=running.get_column("_duty").to_numpy(),
            first=running.get_column("_first").to_numpy(),
        )

    def slices(self, keys: list[int]) -> list[tuple[int, int]]:
        """Where each key's events lie: ``(start, end)``, empty when it has none."""
        wanted = np.array(keys, dtype=np.uint64)
        starts = np.searchsorted(self.keys, wanted, side="left").tolist()
        ends = np.searchsorted(self.keys, wanted, side="right").tolist()
        return list(zip(starts, ends, strict=True))

    def last_before(self, where: tuple[int, int], moments: list[int]) -> list[int]:
        """Index of the last event in ``where`` strictly before each of ``moments``; -1 when
        none."""
        lo, hi = where
        if lo == hi:
            return [-1] * len(moments)
        before = np.searchsorted(self.times[lo:hi], moments, side="left").tolist()
        return [lo + b - 1 if b else -1 for b in before]


@dataclass(frozen=True)
class _ReferenceTable:
    """Past values of every reference key, sorted by (key, value); per key its slice, count
    and median (the mean of the values at ranks floor((n+1)/2) and ceil((n+1)/2))."""

    keys: np.ndarray  # distinct keys, sorted
    starts: np.ndarray
    counts: np.ndarray
    medians: np.ndarray
    values: np.ndarray

    @classmethod
    def from_rows(cls, rows: pl.DataFrame, before: datetime | None) -> _ReferenceTable:
        past = rows.lazy()
        if before is not None:
            past = past.filter(pl.col("period") < before)
        long = (
            past.unpivot(list(METRICS), index=["hs_code", "origin_country"], variable_name="metric")
            .drop_nulls("value")
            .with_columns(
                pl.col("metric").replace_strict(
                    {name: i for i, name in enumerate(METRICS)}, return_dtype=pl.Int64
                )
            )
        )
        ordered = (
            pl.concat(
                long.select(reference_key(level).alias(_REF_KEY), "value") for level in LEVELS
            )
            .drop_nulls(_REF_KEY)
            .sort(_REF_KEY, "value")
            .collect(engine="in-memory")
        )
        all_keys = ordered.get_column(_REF_KEY).to_numpy()
        values = ordered.get_column("value").cast(pl.Float64).to_numpy()
        if len(all_keys):
            starts = np.flatnonzero(np.r_[True, all_keys[1:] != all_keys[:-1]])
        else:
            starts = np.zeros(0, dtype=np.int64)
        counts = np.diff(np.r_[starts, len(all_keys)])
        low = values[starts + (counts + 1) // 2 - 1] if len(starts) else values
        high = values[starts + (counts + 2) // 2 - 1] if len(starts) else values
        return cls(
            keys=all_keys[starts],
            starts=starts,
            counts=counts.astype(np.int64),
            medians=(low + high) / 2.0,
            values=values,
        )

    def find(self, key: int) -> int:
        """Position of ``key`` among the distinct keys; -1 when it has no past values."""
        at = int(np.searchsorted(self.keys, key))
        return at if at < len(self.keys) and self.keys[at] == key else -1

    def below(self, at: int, value: float) -> int:
        """Past values of the key at ``at`` strictly below ``value``."""
        start = int(self.starts[at])
        end = start + int(self.counts[at])
        return int(np.searchsorted(self.values[start:end], value, side="left"))


# Per (HS code, origin): per metric (``METRICS`` order) the key at every level (``LEVELS``).
_PairKeys = tuple[tuple[int | None, ...], ...]
# Pairs never seen in the reference that are remembered once keyed (a bound on memory).
_MAX_PAIRS = 1_000_000


def _pair_keys(pairs: pl.DataFrame) -> dict[tuple[str, str], _PairKeys]:
    """``reference_key`` of every (metric, level) of each distinct (HS code, origin)."""
    distinct = pairs.select("hs_code", "origin_country").unique()
    keyed = (
        pl.concat(
            distinct.lazy().with_columns(pl.lit(m, dtype=pl.Int64).alias("metric"))
            for m in range(len(METRICS))
        )
        .select(
            "hs_code",
            "origin_country",
            "metric",
            *(reference_key(level).alias(f"_key{level}") for level in LEVELS),
        )
        .collect(engine="in-memory")
    )
    found: dict[tuple[str, str], list[tuple[int | None, ...]]] = {}
    for hs_code, origin, _metric, *keys in keyed.sort("metric").iter_rows():
        found.setdefault((hs_code, origin), []).append(tuple(keys))
    return {pair: tuple(per_metric) for pair, per_metric in found.items()}


@dataclass(frozen=True)
class _State:
    """Running totals of one entity strictly before a time (``_first`` None: never seen)."""

    n: int = 0
    inspected: int = 0
    violations: int = 0
    duty: float = 0.0
    first: int | None = None


class OnlineFeatures:
    """``build_features`` in profile mode for small batches (see the module docstring).

    Made once per profile (``from_profiles``, a pass over the profile), then ``features``
    answers each batch in plain Python and NumPy.
    """

    def __init__(
        self,
        *,
        cutoff: datetime,
        config: FeatureConfig,
        events: dict[str, _EntityEvents],
        reference: _ReferenceTable,
        reference_rows: pl.DataFrame,
        reference_period: str,
        reference_from: datetime | None,
        reference_until: datetime | None,
        min_rows: int,
    ) -> None:
        self.cutoff = cutoff
        self.config = config
        self._cutoff_us = _micros(cutoff)
        self._events = events
        self._reference = reference
        self._reference_from = reference_from
        self._min_rows = min_rows
        self._until_us = None if reference_until is None else _micros(reference_until)
        self._pair_keys = _pair_keys(reference_rows)
        self._period_us: tuple[int, int] | None = None
        if reference_from is not None:
            end = pl.select(
                pl.lit(reference_from, dtype=pl.Datetime("us")).dt.offset_by(reference_period)
            ).item()
            self._period_us = (_micros(reference_from), _micros(end))

    @classmethod
    def from_profiles(
        cls,
        profiles: EntityProfiles,
        config: FeatureConfig | None = None,
        *,
        reference_until: datetime | None = None,
    ) -> OnlineFeatures:
        """Read ``profiles`` into look-up arrays.

        ``reference_until``: rows declared after it are compared with the price reference as
        of it (what ``pipelines.score_features.LatestReference`` does at scoring time); by
        default rows outside the profile's reference period are refused, as
        ``build_features`` refuses them.
        """
        config = config or profiles.config
        profiles.check_config(config)
        reference = profiles.reference
        if reference.valid_from_ is None:
            raise ValueError("the entity profile's price reference is not compacted to a period")
        return cls(
            cutoff=profiles.cutoff,
            config=config,
            events={
                entity.name: _EntityEvents.from_frame(profiles.events[entity.name])
                for entity in (*ENTITIES, EVERYONE)
            },
            reference=_ReferenceTable.from_rows(reference.rows_, reference.valid_from_),
            reference_rows=reference.rows_,
            reference_period=reference.period,
            reference_from=reference.valid_from_,
            reference_until=reference_until,
            min_rows=reference.min_rows,
        )

    def features(
        self, declarations: pl.DataFrame, arrivals: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """What ``build_features(declarations, <no outcomes>, profiles=..., config=...,
        arrivals=...)`` returns, in the rows' order of ``declarations``.

        Raises ``ValueError`` where ``build_features`` does (rows before the cut-off, rows
        outside the reference period) and ``UnsupportedBatchError`` for a batch whose result
        the online path cannot reproduce exactly (a declaration filed at several times).
        """
        rows = {name: declarations.get_column(name).to_list() for name in INPUT_COLUMNS}
        declared = declarations.get_column("declared_at").to_physical().to_list()
        if any(moment < self._cutoff_us for moment in declared):
            early = sum(1 for moment in declared if moment < self._cutoff_us)
            raise ValueError(
                f"{early} declaration item(s) have declared_at before the entity profile's "
                f"cut-off {self.cutoff}; score them in history mode or with an earlier profile"
            )
        filed: dict[str, int] = {}
        for declaration_id, moment in zip(rows["declaration_id"], declared, strict=True):
            if filed.setdefault(declaration_id, moment) != moment:
                raise UnsupportedBatchError(
                    f"declaration {declaration_id} has items filed at different times"
                )
        self._check_reference_period(declared)
        computed = row_signals(rows, self.config)
        keys = self._keys(declarations)
        priors: dict[int, float] = {}
        for entity in ENTITIES:
            computed.update(self._entity_features(entity, rows, keys, declared, priors))
        computed.update(self._reference_features(self._reference_keys(rows), computed))
        computed["importer_burst_ratio"] = [
            None if a is None or b is None else a / ((b + 1) / 30.0)
            for a, b in zip(
                computed["importer_declarations_1d"],
                computed["importer_declarations_30d"],
                strict=True,
            )
        ]
        computed["trip_weighbridge_gap_ratio"] = self._weighbridge_gap(
            declarations, computed["trip_gross_kg"], arrivals
        )
        data: dict[str, list[object]] = {name: rows[name] for name in (*KEYS, *PASSTHROUGH[:3])}
        data["trip_id"] = computed["trip_id"]
        schema = {name: declarations.schema[name] for name in (*KEYS, *PASSTHROUGH[:3])}
        schema["trip_id"] = pl.String()
        for name in FEATURE_COLUMNS:
            data[name] = computed[name]
            schema[name] = feature_dtype(name)
        # Row records build a small frame several times faster than a list per column.
        frame = pl.from_dicts(
            [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)],
            schema=schema,
        )
        extras = self.config.extra_categoricals
        if extras:
            frame = frame.with_columns(
                declarations.select(
                    hash_code_expr(column).alias(extra_categorical_name(column))
                    for column in extras
                )
            )
        return frame

    def _keys(self, declarations: pl.DataFrame) -> dict[str, list[int | None]]:
        """Entity keys of every row: the pipeline's own hashes of the entity columns."""
        frame = (
            history.with_entity_columns(declarations.lazy().select(_KEY_SOURCE_COLUMNS))
            .select(history.keyed_columns())
            .collect(engine="in-memory")
        )
        return {name: frame.get_column(name).to_list() for name in frame.columns}

    def _reference_keys(self, rows: dict[str, list[Any]]) -> list[_PairKeys]:
        """The reference key of every (metric, level) of each row's (HS code, origin).

        Pairs with past rows were keyed when the profile was read; a new pair is keyed here
        with ``reference_key`` (a Polars pass) and remembered, up to a bound."""
        pairs = list(zip(rows["hs_code"], rows["origin_country"], strict=True))
        missing = sorted({pair for pair in pairs if pair not in self._pair_keys}, key=str)
        if missing:
            hs_codes, origins = zip(*missing, strict=True)
            found = _pair_keys(
                pl.DataFrame(
                    {"hs_code": list(hs_codes), "origin_country": list(origins)},
                    schema={"hs_code": pl.String, "origin_country": pl.String},
                )
            )
            if len(self._pair_keys) < _MAX_PAIRS:
                self._pair_keys.update(found)
            return [self._pair_keys.get(pair) or found[pair] for pair in pairs]
        return [self._pair_keys[pair] for pair in pairs]

    def _weighbridge_gap(
        self,
        declarations: pl.DataFrame,
        trip_gross_kg: list[float],
        arrivals: pl.DataFrame | None,
    ) -> list[float | None]:
        """``features.behaviour.weighbridge_gap`` itself: readings need an as-of join."""
        if arrivals is None:
            return [None] * declarations.height
        tolerance = timedelta(hours=self.config.arrival_tolerance_hours)
        frame = (
            declarations.lazy()
            .select("truck_id", "crossing", "declared_at")
            .with_columns(pl.Series("trip_gross_kg", trip_gross_kg, dtype=pl.Float64))
            .with_row_index(_ROW)
            .pipe(behaviour.weighbridge_gap(arrivals.lazy(), tolerance))
            .sort(_ROW)
            .collect(engine="in-memory")
        )
        return frame.get_column("trip_weighbridge_gap_ratio").to_list()

    # --- entity history ---------------------------------------------------------------------
    def _state(self, events: _EntityEvents, at: int, moment: int, batch: list[int]) -> _State:
        """Totals of the profile's events up to index ``at`` (its last one before ``moment``;
        -1: none) and of the batch's declarations strictly before ``moment`` (``batch``: the
        filing times of the batch's distinct declarations, sorted)."""
        own = 0
        while own < len(batch) and batch[own] < moment:
            own += 1
        if at < 0:
            return _State(n=own, first=batch[0] if own else None)
        first = int(events.first[at])
        first_seen = None if first == _NO_TIME else first
        if own and (first_seen is None or batch[0] < first_seen):
            first_seen = batch[0]
        return _State(
            n=int(events.n[at]) + own,
            inspected=int(events.inspected[at]),
            violations=int(events.violations[at]),
            duty=float(events.duty[at]),
            first=first_seen,
        )

    def _entity_features(
        self,
        entity: Entity,
        rows: dict[str, list[Any]],
        keys: dict[str, list[int | None]],
        declared: list[int],
        priors: dict[int, float],
    ) -> dict[str, list[Any]]:
        """One entity's features per row: the profile's state and the batch's own earlier
        declarations (each counted once, at its filing time) strictly before the row."""
        events = self._events[entity.name]
        entity_keys = keys[key_column(entity)]
        filed: dict[int, set[tuple[str, int]]] = {}
        for key, declaration_id, moment in zip(
            entity_keys, rows["declaration_id"], declared, strict=True
        ):
            if key is not None:
                filed.setdefault(key, set()).add((declaration_id, moment))
        batch = {key: sorted(t for _, t in pairs) for key, pairs in filed.items()}
        strength = self.config.prior_strength
        windows = WINDOWS_DAYS if entity.windows else ()
        names = entity_feature_names(entity)
        columns: dict[str, list[Any]] = {name: [] for name in names}
        declarations, *counts = names[: 1 + len(windows)]
        since, inspections, rate, duty = names[1 + len(windows) :]
        known = [key for key in entity_keys if key is not None]
        where = dict(zip(known, events.slices(known), strict=True)) if known else {}
        for key, moment in zip(entity_keys, declared, strict=True):
            if key is None:  # no such entity: the pipeline's join leaves every column null
                for values in columns.values():
                    values.append(None)
                continue
            # The row's own time, then the start of each window.
            moments = [moment, *(moment - days * DAY_US for days in windows)]
            at, *window_at = events.last_before(where[key], moments)
            state = self._state(events, at, moment, batch[key])
            columns[declarations].append(state.n)
            for start, start_at, name in zip(moments[1:], window_at, counts, strict=True):
                columns[name].append(state.n - self._state(events, start_at, start, batch[key]).n)
            columns[since].append(None if state.first is None else (moment - state.first) / DAY_US)
            columns[inspections].append(state.inspected)
            if moment not in priors:
                priors[moment] = self._prior(moment)
            columns[rate].append(
                (state.violations + strength * priors[moment]) / (state.inspected + strength)
            )
            columns[duty].append(state.duty)
        return columns

    def _prior(self, moment: int) -> float:
        """The global violation rate strictly before ``moment``, shrunk towards the config's."""
        events = self._events[EVERYONE.name]
        (at,) = events.last_before(events.slices([0])[0], [moment])
        state = self._state(events, at, moment, [])
        config = self.config
        strength = config.prior_strength
        return (state.violations + strength * config.prior_violation_rate) / (
            state.inspected + strength
        )

    # --- price reference -------------------------------------------------------------------
    def _check_reference_period(self, declared: list[int]) -> None:
        """Refuse rows outside the reference's period, as a compacted reference does (rows
        after ``reference_until`` are looked up as of it, like ``LatestReference``)."""
        if self._period_us is None:
            return
        start, end = self._period_us
        for moment in declared:
            if self._until_us is not None:
                moment = min(moment, self._until_us)
            if not start <= moment < end:
                raise ValueError(
                    f"a row is declared outside the period starting {self._reference_from}, "
                    "the only one the entity profile's price reference serves; materialise a "
                    "profile for that period"
                )

    def _reference_features(
        self, pair_keys: list[_PairKeys], computed: dict[str, list[Any]]
    ) -> dict[str, list[Any]]:
        """Per metric: log ratio to the median and position among the past values of the
        finest level with at least ``min_rows`` of them, that level and its row count."""
        table = self._reference
        out: dict[str, list[Any]] = {}
        for m, metric in enumerate(METRICS):
            ratio: list[float | None] = []
            position: list[float | None] = []
            level_used: list[int | None] = []
            counts: list[int | None] = []
            for value, keys in zip(computed[metric], pair_keys, strict=True):
                chosen = None
                if value is not None:
                    for level, key in zip(LEVELS, keys[m], strict=True):
                        at = -1 if key is None else table.find(key)
                        if at >= 0 and table.counts[at] >= self._min_rows:
                            chosen = (level, at)
                            break
                if chosen is None:
                    ratio.append(None)
                    position.append(None)
                    level_used.append(None)
                    counts.append(None)
                    continue
                level, at = chosen
                n = int(table.counts[at])
                ratio.append(value - float(table.medians[at]))
                position.append(table.below(at, value) / n)
                level_used.append(level)
                counts.append(n)
            out[f"{metric}_log_ratio"] = ratio
            out[f"{metric}_position"] = position
            out[f"{metric}_reference_level"] = level_used
            out[f"{metric}_reference_rows"] = counts
        return out


_INT8 = {
    *ROUTE_FEATURES,
    "value_just_under_threshold",
    "declaration_value_just_under_threshold",
    "invoice_value_roundness",
}
_INT32 = {*CATEGORICAL_FEATURES, *(f"{metric}_reference_level" for metric in METRICS)}
_INT64 = {
    "declaration_items",
    "trip_declarations",
    "trip_items",
    "trip_importers",
    "trip_chapters",
    *(f"{metric}_reference_rows" for metric in METRICS),
}


def feature_dtype(name: str) -> pl.DataType:
    """The type ``build_features`` gives a column of ``FEATURE_COLUMNS``."""
    if name in _INT8:
        return pl.Int8()
    if name in _INT32:
        return pl.Int32()
    if name in _INT64:
        return pl.Int64()
    if name.endswith(("_days_since_first_seen", "_violation_rate", "_duty_found_usd")):
        return pl.Float64()
    if name in ENTITY_FEATURES:  # declarations, windows, inspections: counts
        return pl.Int64()
    return pl.Float64()
