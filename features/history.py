"""Entity history as additive state: counts and sums of past events, as of each row.

Every entity (an importer, a truck, an importer x HS chapter pair, ...) accumulates events:
declarations filed, and inspection outcomes recorded. A row sees only events strictly before
its ``declared_at``: items of one declaration never see each other, and an outcome is known
from its ``recorded_at`` on.

How (``batch_entity_features``): the rows are put in time order once (``batch_order``); then
one native pass per entity (``features.entity_kernel``) gives each key a slot in a hash table
and walks the rows one time at a time, writing each row's features from its key's state as of
strictly before that time, then adding the time's own declarations (once per key and
declaration); outcomes are added from a cursor over their ``recorded_at``, the windowed
counters from cursors lagging 1/7/30 days behind over the declarations, in time order.

Entity profiles (``features.profiles``) are the event tables of the past up to a cut-off with
everything old collapsed into one synthetic event per key (``compact_events``). In profile
mode every event of the profile precedes every new row, so a row's state is the profile's
totals for its key plus the batch's own events before it; history mode is the same code with
an empty profile, which is why the two modes agree.

Keys are 64-bit hashes of the entity's columns (Polars' ``hash`` with its fixed seed): sorting,
grouping and joining on them is several times faster than on strings, and a collision among a
few million keys has a probability of about 1e-7. Polars does not promise the same hashes
across its versions, so a profile records the version it was made with (``features.profiles``).
"""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from features import entity_kernel
from features.config import WINDOWS_DAYS, FeatureConfig

KEY = "_key"
TIME = "_t"
ONE_MICROSECOND = timedelta(microseconds=1)
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Entity:
    """A party or pair whose past behaviour is remembered; ``columns`` build its key.

    ``windows``: whether its declarations are also counted over the last 1/7/30 days (the
    parties that split shipments or burst; the others carry their all-time counts only).
    """

    name: str
    columns: tuple[str, ...]
    windows: bool = True


ENTITIES: tuple[Entity, ...] = (
    Entity("importer", ("importer_id",)),
    Entity("declarant", ("declarant_id",), windows=False),
    Entity("consignor", ("consignor_id",)),
    Entity("carrier", ("carrier_id",), windows=False),
    Entity("truck", ("truck_id",)),
    Entity("importer_chapter", ("importer_id", "hs_chapter")),
    Entity("route", ("origin_country", "crossing"), windows=False),
    Entity("origin", ("origin_country",), windows=False),
    Entity("hs_origin", ("hs6", "origin_country"), windows=False),
)
# Every row shares this entity: its outcome history is the global violation rate, the prior.
EVERYONE = Entity("everyone", (), windows=False)

SUMS = ("_n", "_inspected", "_violations", "_duty")
STATE = (*SUMS, "_first")


def entity_feature_names(entity: Entity) -> list[str]:
    """Feature columns produced for one entity, in their stable order."""
    names = [f"{entity.name}_declarations"]
    if entity.windows:
        names += [f"{entity.name}_declarations_{days}d" for days in WINDOWS_DAYS]
    names += [
        f"{entity.name}_days_since_first_seen",
        f"{entity.name}_inspections",
        f"{entity.name}_violation_rate",
        f"{entity.name}_duty_found_usd",
    ]
    return names


def key_column(entity: Entity) -> str:
    """Name of the column holding an entity's key in the items frame."""
    return f"_key_{entity.name}"


def entity_key(entity: Entity) -> pl.Expr:
    """The entity's key (UInt64); null when any part is missing (no such entity)."""
    if not entity.columns:
        return pl.lit(0, dtype=pl.UInt64).alias(key_column(entity))
    present = pl.all_horizontal(pl.col(c).is_not_null() for c in entity.columns)
    hashed = pl.struct([pl.col(c).cast(pl.String) for c in entity.columns]).hash()
    return pl.when(present).then(hashed).alias(key_column(entity))


def with_entity_columns(items: pl.LazyFrame) -> pl.LazyFrame:
    """Add the derived columns entity keys are built from (HS chapter and 6-digit heading)
    and the key of every entity (``key_column``)."""
    return items.with_columns(
        pl.col("hs_code").str.slice(0, 2).alias("hs_chapter"),
        pl.col("hs_code").str.slice(0, 6).alias("hs6"),
    ).with_columns(entity_key(entity) for entity in (*ENTITIES, EVERYONE))


def keyed_columns() -> list[str]:
    """The key columns ``with_entity_columns`` adds."""
    return [key_column(entity) for entity in (*ENTITIES, EVERYONE)]


def outcome_items(
    outcomes: pl.LazyFrame, items: pl.LazyFrame, config: FeatureConfig
) -> pl.LazyFrame:
    """Outcome rows joined to the items they judge, with the entity keys of those items.

    ``items`` must carry the key columns (``with_entity_columns``). An outcome with ``item_no``
    null judges every item of its declaration; each judged item counts as one inspection, and
    the extra duty is shared equally among the items so that sums stay right. An outcome
    recorded before its declaration was filed is impossible in a correct feed and is dropped:
    without this guard such a row's own result could reach its own features. Outcomes recorded
    later than ``outcome_horizon_days`` after the declaration are dropped too, in both modes,
    so that a profile need only remember that many days of declarations.
    """
    judged = outcomes.select(
        "declaration_id",
        "item_no",
        "recorded_at",
        pl.col("inspected").fill_null(False).cast(pl.Int64).alias("_inspected"),
        (pl.col("inspected").fill_null(False) & (pl.col("result").cast(pl.String) != "clean"))
        .fill_null(False)
        .cast(pl.Int64)
        .alias("_violations"),
        pl.col("extra_duty_usd").fill_null(0.0).alias("_duty"),
    )
    item_side = items.select("declaration_id", "item_no", "declared_at", *keyed_columns())
    per_item = judged.filter(pl.col("item_no").is_not_null()).join(
        item_side, on=["declaration_id", "item_no"], how="inner"
    )
    per_declaration = (
        judged.filter(pl.col("item_no").is_null())
        .drop("item_no")
        .join(item_side, on="declaration_id", how="inner")
        .with_columns(
            pl.col("_duty") / pl.len().over("declaration_id", "recorded_at").cast(pl.Float64)
        )
    )
    horizon = timedelta(days=config.outcome_horizon_days)
    return pl.concat([per_item, per_declaration.select(per_item.collect_schema().names())]).filter(
        (pl.col("recorded_at") >= pl.col("declared_at"))
        & (pl.col("recorded_at") < pl.col("declared_at") + horizon)
    )


def entity_events(items: pl.LazyFrame, judged: pl.LazyFrame, entity: Entity) -> pl.LazyFrame:
    """Events of one entity summed per (key, time): declarations filed (``_n``, first seen
    ``_first``) and outcomes recorded (``_inspected``, ``_violations``, ``_duty``)."""
    key = key_column(entity)
    events = []
    if entity is not EVERYONE:
        events.append(
            items.select(pl.col(key).alias(KEY), "declaration_id", pl.col("declared_at"))
            .drop_nulls(KEY)
            .unique([KEY, "declaration_id"], keep="any")
            .group_by(KEY, pl.col("declared_at").alias(TIME))
            .agg(pl.len().cast(pl.Int64).alias("_n"))
            .with_columns(
                pl.col(TIME).alias("_first"),
                pl.lit(0, dtype=pl.Int64).alias("_inspected"),
                pl.lit(0, dtype=pl.Int64).alias("_violations"),
                pl.lit(0.0).alias("_duty"),
            )
        )
    events.append(
        judged.select(
            pl.col(key).alias(KEY),
            pl.col("recorded_at").alias(TIME),
            "_inspected",
            "_violations",
            "_duty",
        )  # fmt: skip
        .drop_nulls(KEY)
        .group_by(KEY, TIME)
        .agg(pl.col("_inspected", "_violations", "_duty").sum())
        .with_columns(
            pl.lit(0, dtype=pl.Int64).alias("_n"),
            pl.lit(None, dtype=pl.Datetime("us")).alias("_first"),
        )
    )
    return pl.concat([e.select(KEY, TIME, *STATE) for e in events])


def compact_events(events: pl.LazyFrame, boundary: datetime) -> pl.LazyFrame:
    """Collapse events before ``boundary`` into one synthetic event per key just before it.

    Sums add up and ``_first`` keeps its minimum, so any as-of query at or after the boundary
    gives the same answer over the compacted table as over the full one.
    """
    head = (
        events.filter(pl.col(TIME) < boundary)
        .group_by(KEY)
        .agg(*(pl.col(c).sum() for c in SUMS), pl.col("_first").min())
        .with_columns(pl.lit(boundary - ONE_MICROSECOND, dtype=pl.Datetime("us")).alias(TIME))
    )
    tail = events.filter(pl.col(TIME) >= boundary)
    return pl.concat([head.select(KEY, TIME, *STATE), tail.select(KEY, TIME, *STATE)])


# --- Features of a batch over a profile (empty in history mode) -----------------------------
#
# Every row of a profile-mode batch is declared at or after the cut-off, and every event of the
# profile is dated before it. So a row's state is the profile's totals for its key plus the
# batch's own events strictly before its time; only the window counters (declarations of the
# last 1/7/30 days) look into the profile's recent events, in time order. One native pass per
# entity (``features.entity_kernel``) walks the batch in time order and keeps that state per
# key. Counts are exact integers; sums of duty are added per key in time order (the profile's
# total, then the outcomes since), equal to running sums taken otherwise up to float rounding.

DECLARATION = "_declaration"
# Entities computed at once by ``batch_entity_features`` (0: one after the other).
THREADS = 2
_NO_EVENTS = pl.DataFrame(
    schema={
        KEY: pl.UInt64,
        TIME: pl.Datetime("us"),
        "_n": pl.Int64,
        "_inspected": pl.Int64,
        "_violations": pl.Int64,
        "_duty": pl.Float64,
        "_first": pl.Datetime("us"),
    }
)
_WINDOWS_US = tuple(days * DAY_US for days in WINDOWS_DAYS)
# Bits of a packed (time, declaration code) sort key (``batch_order`` of a batch whose
# declarations' items are not together).
PACKED_BITS = 63


@dataclass(frozen=True)
class BatchOrder:
    """A batch's rows in time order with each declaration's items together (``batch_order``).

    ``permutation``: the rows in (``declared_at``, declaration) order (uint32);
    ``declaration_of_row``: each row's declaration code
    (``DECLARATION``, UInt32, 0 to the number of declarations - 1), in the batch's order;
    ``times`` (microseconds) and ``codes`` (the declaration codes) in time order."""

    permutation: np.ndarray
    declaration_of_row: pl.Series
    times: np.ndarray
    codes: np.ndarray


def batch_order(items: pl.DataFrame) -> BatchOrder:
    """``BatchOrder`` of a batch (``declaration_id`` and ``declared_at``)."""
    ids = items.get_column("declaration_id")
    runs = ids.rle_id()
    # Each declaration in one run of rows when the runs' ids are distinct (hashing one id per
    # run, not per item); a collision of hashes only takes the slower path, exact anyway.
    firsts = ids.filter(runs != runs.shift(1, fill_value=-1)).hash()
    times = items.get_column("declared_at").rechunk().to_physical().to_numpy()
    if entity_kernel.KeySlots.of(firsts, expected=firsts.len()).count == firsts.len():
        # Each declaration's items are adjacent (as in any declaration file): a stable sort by
        # time keeps them adjacent, so the run number is an exact declaration code.
        codes = runs.rename(DECLARATION).rechunk()
        permutation, in_order = entity_kernel.sort_by_time(times)
    else:
        codes = (ids.rank("dense") - 1).cast(pl.UInt32).rename(DECLARATION).rechunk()
        by_time = _by_time_and_code(items.get_column("declared_at"), codes)
        permutation = items.select(by_time.cast(pl.UInt32)).to_series().rechunk().to_numpy()
        in_order = times[permutation]
    return BatchOrder(
        permutation=permutation,
        declaration_of_row=codes,
        times=in_order,
        codes=codes.to_numpy()[permutation],
    )


def _by_time_and_code(declared_at: pl.Series, codes: pl.Series) -> pl.Expr:
    """Rows sorted by time and declaration code: one packed integer when both fit in
    ``PACKED_BITS`` (twice as fast), else the two columns."""
    times = declared_at.to_physical()
    first, last = times.min(), times.max()
    assert isinstance(first, int) and isinstance(last, int)  # a batch is never empty here
    code_bits = max(codes.len(), 1).bit_length()
    if (last - first).bit_length() + code_bits <= PACKED_BITS:
        packed = (times - first) * (1 << code_bits) + codes.cast(pl.Int64)
        return pl.arg_sort_by(pl.lit(packed), multithreaded=False)
    return pl.arg_sort_by(pl.lit(declared_at), pl.lit(codes), multithreaded=False)


def batch_entity_features(
    items: pl.DataFrame,
    judged: pl.DataFrame,
    known: dict[str, pl.DataFrame] | None,
    config: FeatureConfig,
    order: BatchOrder | None = None,
) -> list[pl.DataFrame]:
    """The features of every entity (``ENTITIES``) for every row of ``items`` (carrying the
    key columns), one frame per entity in the rows' order.

    ``judged``: the outcome items (``outcome_items``) not already in ``known``. ``known``: a
    profile's event tables by entity name, or None for history mode, where the items and
    outcomes are the whole past. ``order``: ``batch_order(items)`` if the caller has it."""
    events = known or {}
    # Most outcomes are releases without inspection: events that add nothing to any sum.
    judged = judged.filter(
        (pl.col("_inspected") != 0) | (pl.col("_violations") != 0) | (pl.col("_duty") != 0)
    ).sort("recorded_at", multithreaded=False)
    order = order or batch_order(items)
    everyone = events.get(EVERYONE.name, _NO_EVENTS)
    inspected, violations = everyone.select(pl.col("_inspected", "_violations").sum()).row(0)
    outcomes = entity_kernel.Outcomes(
        times=judged.get_column("recorded_at").to_physical().rechunk().to_numpy(),
        inspected=judged.get_column("_inspected").cast(pl.Int64).rechunk().to_numpy(),
        violations=judged.get_column("_violations").cast(pl.Int64).rechunk().to_numpy(),
        duty=judged.get_column("_duty").cast(pl.Float64).rechunk().to_numpy(),
    )
    prior = entity_kernel.Prior(
        inspected=int(inspected),
        violations=int(violations),
        strength=config.prior_strength,
        pull=config.prior_strength * config.prior_violation_rate,
    )

    # Room for the windowed entities' declaration events, one per thread, reused.
    rooms: queue.SimpleQueue[entity_kernel.Scratch] = queue.SimpleQueue()
    for _ in range(max(THREADS, 1)):
        rooms.put(entity_kernel.Scratch.of(items.height))

    def features(entity: Entity) -> pl.DataFrame:
        scratch = rooms.get()
        try:
            known = events.get(entity.name, _NO_EVENTS)
            return profile_entity_features(
                items, order, entity, known, judged, outcomes, prior, scratch
            )
        finally:
            rooms.put(scratch)

    entity_kernel.compile_kernels()
    if not THREADS:
        return [features(entity) for entity in ENTITIES]
    # The native pass releases the GIL: two entities at a time keep both cores busy.
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(features, ENTITIES))


def profile_entity_features(
    items: pl.DataFrame,
    order: BatchOrder,
    entity: Entity,
    known: pl.DataFrame,
    judged: pl.DataFrame,
    outcomes: entity_kernel.Outcomes,
    prior: entity_kernel.Prior,
    scratch: entity_kernel.Scratch | None = None,
) -> pl.DataFrame:
    """``entity_feature_names(entity)`` of every batch row, in the batch's row order.

    ``order`` is ``batch_order`` of the batch, ``known`` the profile's events of the entity,
    ``judged`` the outcome items recorded since the cut-off (``outcome_items``), sorted by
    ``recorded_at``, and ``outcomes`` their times and sums; ``prior``: the profile's outcomes of
    ``EVERYONE`` and the pull towards the prior violation rate; ``scratch``: room for the
    kernel to reuse (``entity_kernel.Scratch``)."""
    # The profile's events hint at how many keys there are.
    keys = entity_kernel.KeySlots.of(items.get_column(key_column(entity)), known.height)
    windows = _WINDOWS_US if entity.windows else ()
    past = entity_kernel.Events(
        slots=keys.look_up(known.get_column(KEY)),
        times=known.get_column(TIME).to_physical().rechunk().to_numpy(),
        declarations=known.get_column("_n").cast(pl.Int64).rechunk().to_numpy(),
        inspected=known.get_column("_inspected").cast(pl.Int64).rechunk().to_numpy(),
        violations=known.get_column("_violations").cast(pl.Int64).rechunk().to_numpy(),
        duty=known.get_column("_duty").cast(pl.Float64).rechunk().to_numpy(),
        first=known.get_column("_first")
        .to_physical()
        .fill_null(entity_kernel.NO_TIME)
        .rechunk()
        .to_numpy(),
    )
    if windows:  # the window cursors read the profile's declarations in time order
        past = past.by_time()
    state = entity_kernel.entity_pass(
        order.permutation,
        order.times,
        order.codes,
        keys,
        past,
        keys.look_up(judged.get_column(key_column(entity))),
        outcomes,
        prior,
        windows,
        scratch,
    )
    present = keys.validity()
    columns = [
        _column(state.declarations, pa.int64(), present),
        *(_column(counts, pa.int64(), present) for counts in state.windows),
        _column(state.days_since_first, pa.float64(), state.seen_validity()),
        _column(state.inspections, pa.int64(), present),
        _column(state.violation_rate, pa.float64(), present),
        _column(state.duty, pa.float64(), present),
    ]
    table = pa.Table.from_arrays(columns, names=entity_feature_names(entity))
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _column(values: np.ndarray, dtype: pa.DataType, validity: pa.Buffer | None) -> pa.Array:
    """An Arrow array over ``values`` (no copy) with its nulls given by ``validity``."""
    return pa.Array.from_buffers(dtype, len(values), [validity, pa.py_buffer(values)])
