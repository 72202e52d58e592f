"""Entity history as additive state: counts and sums of past events, joined as of each row.

Every entity (an importer, a truck, an importer x HS chapter pair, ...) accumulates events:
declarations filed, and inspection outcomes recorded. Events are summed per (key, time),
cumulated per key, and joined to each row with a backward as-of join that excludes exact
matches, so a row sees only events strictly before its ``declared_at``: items of one
declaration never see each other, and an outcome is known from its ``recorded_at`` on.

Entity profiles (``features.profiles``) are the same event tables with everything older than a
boundary collapsed into one synthetic event per key. The code below never knows which of the
two it was given, which is why history mode and profile mode agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from features.config import WINDOWS_DAYS, FeatureConfig

KEY = "_key"
TIME = "_t"
ONE_MICROSECOND = timedelta(microseconds=1)
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Entity:
    """A party or pair whose past behaviour is remembered; ``columns`` build its key."""

    name: str
    columns: tuple[str, ...]
    windows: bool = True


ENTITIES: tuple[Entity, ...] = (
    Entity("importer", ("importer_id",)),
    Entity("declarant", ("declarant_id",)),
    Entity("consignor", ("consignor_id",)),
    Entity("carrier", ("carrier_id",)),
    Entity("truck", ("truck_id",)),
    Entity("importer_chapter", ("importer_id", "hs_chapter")),
    Entity("route", ("origin_country", "crossing")),
    Entity("origin", ("origin_country",), windows=False),
    Entity("hs_origin", ("hs6", "origin_country"), windows=False),
)
# Every row shares this entity: its outcome history is the global violation rate, the prior.
EVERYONE = Entity("everyone", (), windows=False)

DECLARATION_STATE = ("_n", "_first")
OUTCOME_STATE = ("_inspected", "_violations", "_duty")


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


def entity_key(entity: Entity) -> pl.Expr:
    """The entity's key as one string; null when any part is missing (no such entity)."""
    if not entity.columns:
        return pl.lit("*", dtype=pl.String).alias(KEY)
    parts = [pl.col(column).cast(pl.String) for column in entity.columns]
    return pl.concat_str(parts, separator="\x1f").alias(KEY)


def with_entity_columns(items: pl.LazyFrame) -> pl.LazyFrame:
    """Add the derived columns entity keys are built from (HS chapter and 6-digit heading)."""
    return items.with_columns(
        pl.col("hs_code").str.slice(0, 2).alias("hs_chapter"),
        pl.col("hs_code").str.slice(0, 6).alias("hs6"),
    )


def declaration_events(items: pl.LazyFrame, entity: Entity) -> pl.LazyFrame:
    """One event per (key, declaration): ``_n`` declarations at ``_t``, first seen ``_first``."""
    return (
        items.select(entity_key(entity), "declaration_id", pl.col("declared_at").alias(TIME))
        .drop_nulls(KEY)
        .group_by(KEY, "declaration_id")
        .agg(pl.col(TIME).min())
        .group_by(KEY, TIME)
        .agg(pl.len().cast(pl.Int64).alias("_n"))
        .with_columns(pl.col(TIME).alias("_first"))
    )


def outcome_items(
    outcomes: pl.LazyFrame, items: pl.LazyFrame, config: FeatureConfig
) -> pl.LazyFrame:
    """Outcome rows joined to the items they judge, with the entity columns of those items.

    An outcome with ``item_no`` null judges every item of its declaration. An outcome recorded
    before its declaration was filed is impossible in a correct feed and is dropped: without
    this guard such a row's own result could reach its own features. Outcomes recorded later
    than ``outcome_horizon_days`` after the declaration are dropped too, in both modes, so that
    a profile need only remember that many days of declarations.
    """
    judged = outcomes.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_oid"),
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
    columns = sorted({c for e in ENTITIES for c in e.columns})
    item_side = items.select("declaration_id", "item_no", "declared_at", *columns)
    per_item = judged.filter(pl.col("item_no").is_not_null()).join(
        item_side, on=["declaration_id", "item_no"], how="inner"
    )
    per_declaration = (
        judged.filter(pl.col("item_no").is_null())
        .drop("item_no")
        .join(item_side, on="declaration_id", how="inner")
    )
    horizon = timedelta(days=config.outcome_horizon_days)
    return pl.concat([per_item, per_declaration.select(per_item.collect_schema().names())]).filter(
        (pl.col("recorded_at") >= pl.col("declared_at"))
        & (pl.col("recorded_at") < pl.col("declared_at") + horizon)
    )


def outcome_events(judged_items: pl.LazyFrame, entity: Entity) -> pl.LazyFrame:
    """One event per (key, recorded_at): inspections, violations and duty found.

    An outcome judging several items of one entity (a whole declaration) counts once for it.
    """
    return (
        judged_items.select(
            "_oid", entity_key(entity), pl.col("recorded_at").alias(TIME), *OUTCOME_STATE
        )
        .drop_nulls(KEY)
        .unique(["_oid", KEY], keep="any")
        .group_by(KEY, TIME)
        .agg(pl.col(c).sum() for c in OUTCOME_STATE)
    )


def compact_events(events: pl.LazyFrame, boundary: datetime) -> pl.LazyFrame:
    """Collapse events before ``boundary`` into one synthetic event per key just before it.

    Sums add up and ``_first`` keeps its minimum, so any as-of query at or after the boundary
    gives the same answer over the compacted table as over the full one.
    """
    names = events.collect_schema().names()
    head = (
        events.filter(pl.col(TIME) < boundary)
        .group_by(KEY)
        .agg(
            *(
                pl.col(c).min() if c == "_first" else pl.col(c).sum()
                for c in names
                if c not in (KEY, TIME)
            )
        )
        .with_columns(pl.lit(boundary - ONE_MICROSECOND, dtype=pl.Datetime("us")).alias(TIME))
    )
    tail = events.filter(pl.col(TIME) >= boundary)
    return pl.concat([head.select(names), tail.select(names)])


def cumulate(events: pl.LazyFrame) -> pl.LazyFrame:
    """Running totals per key in time order, sorted by time for the as-of join."""
    names = [c for c in events.collect_schema().names() if c not in (KEY, TIME)]
    # Events of one (key, time) may arrive split (a profile's tail plus new data): merge them
    # first so that the running total at a time is unique.
    merged = events.group_by(KEY, TIME).agg(
        pl.col(c).min() if c == "_first" else pl.col(c).sum() for c in names
    )
    return (
        merged.sort(KEY, TIME)
        .with_columns(
            (pl.col(c).cum_min() if c == "_first" else pl.col(c).cum_sum()).over(KEY) for c in names
        )
        .sort(TIME)
    )


def _state_before(
    queries: pl.LazyFrame, state: pl.LazyFrame, at: str, columns: tuple[str, ...]
) -> pl.LazyFrame:
    """For each query, the running totals of events strictly before the time in ``at``."""
    return queries.sort(at).join_asof(
        state.select(KEY, pl.col(TIME).alias(at), *columns),
        on=at,
        by=KEY,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )


def entity_history(
    items: pl.LazyFrame,
    entity: Entity,
    declaration_state: pl.LazyFrame,
    outcome_state: pl.LazyFrame,
    prior: pl.LazyFrame,
    config: FeatureConfig,
) -> pl.LazyFrame:
    """Features of one entity as of each distinct (key, declared_at) among ``items``.

    ``declaration_state``/``outcome_state`` are cumulated event tables (``cumulate``);
    ``prior`` has the global violation rate as of each ``declared_at``. Returns ``_key``,
    ``declared_at`` and the columns of ``entity_feature_names(entity)``.
    """
    queries = (
        items.select(entity_key(entity), pl.col("declared_at"))
        .drop_nulls(KEY)
        .unique()
        .with_columns(
            *(
                (pl.col("declared_at") - timedelta(days=days)).alias(f"_from_{days}d")
                for days in (WINDOWS_DAYS if entity.windows else ())
            )
        )
    )
    frame = _state_before(queries, declaration_state, "declared_at", DECLARATION_STATE)
    name = entity.name
    counts = [pl.col("_n").fill_null(0).alias(f"{name}_declarations")]
    for days in WINDOWS_DAYS if entity.windows else ():
        frame = _state_before(
            frame,
            declaration_state.select(KEY, TIME, pl.col("_n").alias(f"_n{days}")),
            f"_from_{days}d",
            (f"_n{days}",),
        )
        counts.append(
            (pl.col("_n").fill_null(0) - pl.col(f"_n{days}").fill_null(0)).alias(
                f"{name}_declarations_{days}d"
            )
        )
    frame = _state_before(frame, outcome_state, "declared_at", OUTCOME_STATE)
    frame = frame.join(prior, on="declared_at", how="left")
    strength = config.prior_strength
    inspected = pl.col("_inspected").fill_null(0)
    return frame.select(
        KEY,
        "declared_at",
        *counts[:1],
        *counts[1:],
        ((pl.col("declared_at") - pl.col("_first")).dt.total_microseconds() / DAY_US).alias(
            f"{name}_days_since_first_seen"
        ),
        inspected.alias(f"{name}_inspections"),
        (
            (pl.col("_violations").fill_null(0) + strength * pl.col("_prior"))
            / (inspected + strength)
        ).alias(f"{name}_violation_rate"),
        pl.col("_duty").fill_null(0.0).alias(f"{name}_duty_found_usd"),
    )


def global_prior(
    items: pl.LazyFrame, everyone_state: pl.LazyFrame, config: FeatureConfig
) -> pl.LazyFrame:
    """The global violation rate as of each ``declared_at``, shrunk towards the configured one.

    Entity rates shrink towards this, so a new importer starts at what is normal today.
    """
    queries = items.select(entity_key(EVERYONE), "declared_at").unique()
    strength = config.prior_strength
    return _state_before(queries, everyone_state, "declared_at", OUTCOME_STATE).select(
        "declared_at",
        (
            (pl.col("_violations").fill_null(0) + strength * config.prior_violation_rate)
            / (pl.col("_inspected").fill_null(0) + strength)
        ).alias("_prior"),
    )
