"""Entity history as additive state: counts and sums of past events, as of each row.

Every entity (an importer, a truck, an importer x HS chapter pair, ...) accumulates events:
declarations filed, and inspection outcomes recorded. A row sees only events strictly before
its ``declared_at``: items of one declaration never see each other, and an outcome is known
from its ``recorded_at`` on.

How (``batch_entity_features``): the rows are sorted once by time, then stably by each
entity's key, so that a scan counts the declarations of each key before each (key, time);
outcome events (only those that add something: inspections) are cumulated per key and read by
an as-of join; the windowed counters are as-of joins on a packed (key number, time) code. All
is computed once per distinct (key, time) and gathered back to the rows in their order. A
declaration counts once per key, so an entity is counted over one row per declaration when
its key never varies within one, else over runs of a declaration's items with one key.

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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import polars as pl

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


def first_of_group(key: str) -> pl.Expr:
    """True on the first row of each run of equal keys (rows sorted by key)."""
    return pl.col(key) != pl.col(key).shift(1)


def grouped_running(values: pl.Expr, starts: pl.Expr) -> pl.Expr:
    """Running sum restarting where ``starts`` is true, on rows sorted by group: a scan
    rather than a window, several times faster over millions of rows."""
    total = values.cum_sum()
    return total - pl.when(starts.fill_null(True)).then(total - values).forward_fill()


# --- Features of a batch over a profile (empty in history mode) -----------------------------
#
# Every row of a profile-mode batch is declared at or after the cut-off, and every event of the
# profile is dated before it. So a row's state is the profile's totals for its key plus the
# batch's own events strictly before its time: a hash join and running counts over the batch,
# not an as-of join over the profile. Only the window counters (declarations of the last
# 1/7/30 days) still look into the profile's recent events. Counts are exact integers; sums of
# duty are the same up to float rounding (history mode used to take them as differences of
# running sums over all keys, up to ~2e-8 USD off; now per key).

ROW = "_row"
DECLARATION = "_declaration"
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
# Entities computed at once by ``batch_entity_features`` (0: one after the other).
THREADS = 2
# Bits of a packed (key number, time) code of the window counters (``_window_counts``).
PACKED_BITS = 63
_ENGINE: Final = "in-memory"


# The key columns a batch is ordered with (``EVERYONE``'s is one constant: not carried).
ENTITY_KEYS = tuple(key_column(entity) for entity in ENTITIES)


@dataclass(frozen=True)
class BatchOrder:
    """A batch's rows in time order with each declaration's items together (``batch_order``).

    ``rows``: the row (``ROW``), ``declared_at``, an integer code of its declaration
    (``DECLARATION``, 0 to the number of declarations - 1) and the entity keys. Sorting it
    stably by an entity key gives rows in (key, time, declaration) order, which is what
    ``profile_entity_features`` counts over. ``declarations``: the first row of each
    declaration; ``declaration_of_row``: each row's code, in the batch's order;
    ``per_declaration``: the key columns that never vary within a declaration, whose entities
    are counted over ``declarations`` (a declaration counts once per key anyway)."""

    rows: pl.DataFrame
    declarations: pl.DataFrame
    declaration_of_row: pl.Series
    per_declaration: frozenset[str]


def batch_order(items: pl.DataFrame) -> BatchOrder:
    """``BatchOrder`` of a batch carrying the key columns (``with_entity_columns``)."""
    frame = items.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(ROW),
        "declared_at",
        "declaration_id",
        *ENTITY_KEYS,
    )
    ids = frame.get_column("declaration_id")
    runs = ids.rle_id()
    # Each declaration in one run of rows when the runs' ids are distinct (hashing one id per
    # run, not per item).
    firsts = ids.filter(runs != runs.shift(1, fill_value=-1))
    if firsts.n_unique() == firsts.len():
        # Each declaration's items are adjacent (as in any declaration file): a stable sort by
        # time keeps them adjacent, so the run number is an exact declaration code.
        codes = runs
        ordered = frame.with_columns(codes.alias(DECLARATION)).sort(
            "declared_at", maintain_order=True, multithreaded=False
        )
    else:
        codes = (ids.rank("dense") - 1).cast(pl.UInt32)
        ordered = frame.with_columns(codes.alias(DECLARATION)).sort(
            "declared_at", DECLARATION, multithreaded=False
        )
    ordered = ordered.drop("declaration_id")
    code = pl.col(DECLARATION)
    first = (code != code.shift(1)).fill_null(True)
    declarations = ordered.filter(first)
    constant: frozenset[str] = frozenset()
    if declarations.height == codes.n_unique():  # each declaration in one run (one time)
        varies = ordered.select(
            ((code == code.shift(1)) & pl.col(c).ne_missing(pl.col(c).shift(1))).any().alias(c)
            for c in ENTITY_KEYS
        ).row(0, named=True)
        constant = frozenset(c for c, v in varies.items() if not v)
    return BatchOrder(ordered, declarations, codes.rename(DECLARATION), constant)


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
    )
    order = order or batch_order(items)
    prior = profile_prior(order, events.get(EVERYONE.name, _NO_EVENTS), judged, config)

    def features(entity: Entity) -> pl.DataFrame:
        return profile_entity_features(
            order, entity, events.get(entity.name, _NO_EVENTS), judged, prior, config
        )

    if not THREADS:
        return [features(entity) for entity in ENTITIES]
    # Much of each entity's work is single-threaded scans and joins: two at a time keep both
    # cores busy (Polars releases the GIL while it computes).
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(features, ENTITIES))


def _outcome_events(judged: pl.DataFrame, entity: Entity) -> pl.LazyFrame:
    """Outcome events of one entity summed per (key, time) with their running totals per key
    (``_inspected``, ``_violations``, ``_duty``), sorted by (key, time)."""
    starts = first_of_group(KEY)
    return (
        judged.lazy()
        .select(
            pl.col(key_column(entity)).alias(KEY),
            pl.col("recorded_at").alias(TIME),
            "_inspected",
            "_violations",
            "_duty",
        )
        .drop_nulls(KEY)
        .group_by(KEY, TIME)
        .agg(pl.col("_inspected", "_violations", "_duty").sum())
        .sort(KEY, TIME, multithreaded=False)
        .with_columns(
            grouped_running(pl.col(c), starts) for c in ("_inspected", "_violations", "_duty")
        )
    )


def profile_prior(
    order: BatchOrder, known: pl.DataFrame, judged: pl.DataFrame, config: FeatureConfig
) -> pl.Expr | pl.DataFrame:
    """``global_prior`` for a profile-mode batch: a constant when no outcome has been recorded
    since the cut-off, else a frame of ``declared_at`` and ``_prior``. ``known`` is the
    profile's events of ``EVERYONE``."""
    strength = config.prior_strength
    inspected, violations = known.select(pl.col("_inspected", "_violations").sum()).row(0)
    if judged.height == 0:
        return pl.lit(
            (violations + strength * config.prior_violation_rate) / (inspected + strength)
        )
    queries = order.rows.lazy().select("declared_at").unique().sort("declared_at")
    events = _outcome_events(judged, EVERYONE).select(
        pl.col(TIME).alias("declared_at"), "_inspected", "_violations"
    )
    return (
        queries.join_asof(events, on="declared_at", strategy="backward", allow_exact_matches=False)
        .select(
            "declared_at",
            (
                (
                    pl.col("_violations").fill_null(0)
                    + violations
                    + strength * config.prior_violation_rate
                )
                / (pl.col("_inspected").fill_null(0) + inspected + strength)
            ).alias("_prior"),
        )  # fmt: skip
        .collect(engine=_ENGINE)
    )


def profile_entity_features(
    order: BatchOrder,
    entity: Entity,
    known: pl.DataFrame,
    judged: pl.DataFrame,
    prior: pl.Expr | pl.DataFrame,
    config: FeatureConfig,
) -> pl.DataFrame:
    """``entity_feature_names(entity)`` of every batch row, in the batch's row order.

    ``order`` is ``batch_order`` of the batch, ``known`` the profile's events of the entity,
    ``judged`` the outcome items recorded since the cut-off (``outcome_items``), ``prior`` what
    ``profile_prior`` returns."""
    t = pl.col("declared_at")
    new_key, new_group = pl.col("_new_key"), pl.col("_new_group")
    key = key_column(entity)
    source, numbers, source_of_row = _counted_rows(order, key)
    # Sorted by (key, time, declaration) (see batch_order), each row numbered with its
    # (key, time) group and with ``_c``, the running count of (key, time, declaration) runs:
    # a group's count at its first row less its key's gives the declarations of the key
    # before it, the next group's gives its own.
    first_key = (pl.col(KEY) != pl.col(KEY).shift(1)).fill_null(True)
    rows = (
        source.lazy()
        .select("_at", pl.col(key).alias(KEY), "declared_at", DECLARATION)
        .drop_nulls(KEY)
        .sort(KEY, maintain_order=True, multithreaded=False)
        .with_columns(
            first_key.alias("_new_key"), (first_key | (t != t.shift(1))).alias("_new_group")
        )
        .with_columns(
            (new_group | (pl.col(DECLARATION) != pl.col(DECLARATION).shift(1)))
            .fill_null(True)
            .cast(pl.Int64)
            .cum_sum()
            .alias("_c"),
            (new_group.cum_sum() - 1).cast(pl.UInt32).alias("_group"),
        )
        .collect(engine=_ENGINE)
    )
    runs = rows.get_column("_c")[-1] if rows.height else 0
    count = pl.col("_c")
    key_first = pl.when(new_key).then(t).forward_fill()
    # One row per (key, time) of the batch, sorted by both.
    groups = (
        rows.lazy()
        .filter(new_group)
        .select(
            KEY,
            "declared_at",
            (new_key.cum_sum() - 1).cast(pl.Int64).alias("_keyno"),
            (count - pl.when(new_key).then(count).forward_fill()).alias("_batch_n"),
            (count.shift(-1, fill_value=runs + 1) - count).alias("_here"),
            pl.when(t != key_first).then(key_first).alias("_batch_first"),
        )
        .collect(engine=_ENGINE)
    )
    totals = (
        known.lazy()
        .group_by(KEY)
        .agg(
            *(pl.col(c).sum().alias(f"_p{c}") for c in SUMS),
            pl.col("_first").min().alias("_pfirst"),
        )
    )
    frame = groups.lazy().join(totals, on=KEY, how="left", maintain_order="left")
    windows = WINDOWS_DAYS if entity.windows else ()
    if windows:
        frame = frame.with_columns(_window_counts(groups, known, windows))
    if judged.height:
        frame = frame.join_asof(
            _outcome_events(judged, entity).select(
                KEY, pl.col(TIME).alias("declared_at"), "_inspected", "_violations", "_duty"
            ),
            on="declared_at", by=KEY, strategy="backward", allow_exact_matches=False,
            check_sortedness=False,
        )  # fmt: skip
    else:
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.Int64).alias("_inspected"),
            pl.lit(None, dtype=pl.Int64).alias("_violations"),
            pl.lit(None, dtype=pl.Float64).alias("_duty"),
        )
    if isinstance(prior, pl.DataFrame):
        frame = frame.join(prior.lazy(), on="declared_at", how="left", maintain_order="left")
        prior_rate = pl.col("_prior")
    else:
        prior_rate = prior
    name = entity.name
    strength = config.prior_strength
    declared = pl.col("_p_n").fill_null(0) + pl.col("_batch_n")
    inspected = pl.col("_p_inspected").fill_null(0) + pl.col("_inspected").fill_null(0)
    violations = pl.col("_p_violations").fill_null(0) + pl.col("_violations").fill_null(0)
    duty = pl.col("_p_duty").fill_null(0.0) + pl.col("_duty").fill_null(0.0)
    first = pl.min_horizontal("_pfirst", "_batch_first")
    per_group = frame.select(
        declared.alias(f"{name}_declarations"),
        *(
            (declared - pl.col(f"_n{days}").fill_null(0)).alias(f"{name}_declarations_{days}d")
            for days in windows
        ),
        ((t - first).dt.total_microseconds() / DAY_US).alias(f"{name}_days_since_first_seen"),
        inspected.alias(f"{name}_inspections"),
        ((violations + strength * prior_rate) / (inspected + strength)).alias(
            f"{name}_violation_rate"
        ),
        duty.alias(f"{name}_duty_found_usd"),
    ).collect(engine=_ENGINE)
    # Each batch row takes its group's features; rows without a key take nulls.
    group_of_row = (
        pl.Series(ROW, [], dtype=pl.UInt32)
        .extend_constant(None, numbers)
        .scatter(rows.get_column("_at"), rows.get_column("_group"))
    )  # fmt: skip
    if source_of_row is not None:
        group_of_row = group_of_row.gather(source_of_row)
    return per_group[group_of_row]


# A run of rows of one declaration and key is counted once when it shortens the rows by more
# than this share (route, origin: one per declaration mostly; HS x origin: hardly any).
RUNS_WORTH = 0.8


def _counted_rows(order: BatchOrder, key: str) -> tuple[pl.DataFrame, int, pl.Series | None]:
    """The rows an entity is counted over (``declared_at``, ``DECLARATION`` and the key, in
    ``order.rows``' order, each with its number ``_at``), how many numbers there are, and
    each batch row's number (None: ``_at`` is the batch row itself). A declaration counts
    once per key whatever its items, so one row per declaration serves keys that never vary
    within one (``order.per_declaration``), and one per run of consecutive items of a
    declaration with the same key serves the others, when that shortens them enough."""
    if key in order.per_declaration:
        declarations = order.declarations
        return (
            declarations.with_columns(pl.col(DECLARATION).alias("_at")),
            declarations.height,
            order.declaration_of_row,
        )
    rows = order.rows
    code, value = pl.col(DECLARATION), pl.col(key)
    starts = rows.select(
        ((code != code.shift(1)) | value.ne_missing(value.shift(1))).fill_null(True)
    ).to_series()
    runs = starts.sum()
    if runs > RUNS_WORTH * rows.height:
        return rows.with_columns(pl.col(ROW).alias("_at")), rows.height, None
    run_of_row = (
        pl.Series(ROW, [], dtype=pl.UInt32)
        .extend_constant(None, rows.height)
        .scatter(rows.get_column(ROW), (starts.cum_sum() - 1).cast(pl.UInt32))
    )
    counted = rows.filter(starts).with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_at"))
    return counted, int(runs), run_of_row


def _window_counts(
    groups: pl.DataFrame, known: pl.DataFrame, windows: tuple[int, ...]
) -> list[pl.Series]:
    """For each (key, time) group of a profile-mode batch (sorted by both, numbered per key in
    ``_keyno``, with its declarations ``_here``): ``_n<days>``, the declarations of the key,
    profile and batch together, strictly before ``declared_at - days``, counted from the
    profile's first event of the key.

    Key number and time are packed into one integer, so that each window is one as-of join on
    a single sorted column rather than one per key; too wide a span falls back to the latter."""
    if groups.height == 0:
        return [pl.Series(f"_n{days}", [], dtype=pl.Int64) for days in windows]
    keys = groups.filter(pl.col("_keyno") != pl.col("_keyno").shift(1).fill_null(-1)).select(
        KEY, "_keyno"
    )
    past = (
        known.lazy()
        .select(KEY, TIME, "_n")
        .join(keys.lazy(), on=KEY, how="inner")
        .collect(engine=_ENGINE)
    )
    first: datetime = groups.get_column("declared_at").min()  # type: ignore[assignment]
    earliest = first - timedelta(days=max(windows))
    if past.height:
        earliest = min(earliest, past.get_column(TIME).min())  # type: ignore[type-var,assignment]
    latest: datetime = groups.get_column("declared_at").max()  # type: ignore[assignment]
    time_bits = int((latest - earliest) // ONE_MICROSECOND + 1).bit_length()
    if time_bits + max(keys.height, 1).bit_length() > PACKED_BITS:
        return _window_counts_by_key(groups, past, windows)
    base = pl.lit(earliest, dtype=pl.Datetime("us"))

    def code(time: pl.Expr) -> pl.Expr:
        return (pl.col("_keyno") * (1 << time_bits)) + (time - base).dt.total_microseconds()

    counted = (
        pl.concat(
            [
                past.lazy().select(code(pl.col(TIME)).alias("_code"), "_keyno", "_n"),
                groups.lazy().select(
                    code(pl.col("declared_at")).alias("_code"),
                    "_keyno",
                    pl.col("_here").alias("_n"),
                ),
            ]
        )  # fmt: skip
        .sort("_code", multithreaded=False)
        .with_columns(grouped_running(pl.col("_n"), first_of_group("_keyno")))
        .select("_code", pl.col("_keyno").alias("_found"), "_n")
    )
    queries = groups.lazy().select(
        "_keyno",
        *(
            code(pl.col("declared_at") - timedelta(days=days)).alias(f"_code{days}")
            for days in windows
        ),
    )
    for days in windows:
        queries = (
            queries.join_asof(
                counted.rename({"_code": f"_code{days}"}),
                on=f"_code{days}",
                strategy="backward",
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .with_columns(
                pl.when(pl.col("_found") == pl.col("_keyno")).then(pl.col("_n")).alias(f"_n{days}")
            )
            .drop("_found", "_n")
        )
    return queries.select(f"_n{days}" for days in windows).collect(engine=_ENGINE).get_columns()


def _window_counts_by_key(
    groups: pl.DataFrame, past: pl.DataFrame, windows: tuple[int, ...]
) -> list[pl.Series]:
    """``_window_counts`` by one as-of join per key (any span of time)."""
    counted = (
        pl.concat(
            [
                past.lazy().select(KEY, TIME, "_n"),
                groups.lazy().select(
                    KEY, pl.col("declared_at").alias(TIME), pl.col("_here").alias("_n")
                ),
            ]
        )  # fmt: skip
        .sort(KEY, TIME)
        .with_columns(grouped_running(pl.col("_n"), first_of_group(KEY)))
    )
    frame = groups.lazy().select(KEY, "declared_at")
    for days in windows:
        start = f"_from_{days}d"
        frame = frame.with_columns((pl.col("declared_at") - timedelta(days=days)).alias(start))
        frame = frame.join_asof(
            counted.select(KEY, pl.col(TIME).alias(start), pl.col("_n").alias(f"_n{days}")),
            on=start, by=KEY, strategy="backward", allow_exact_matches=False,
            check_sortedness=False,
        )  # fmt: skip
    return frame.select(f"_n{days}" for days in windows).collect(engine=_ENGINE).get_columns()
