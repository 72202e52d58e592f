"""The feature pipeline: canonical declaration items in, one row of features per item out.

History mode (``profiles=None``) computes every feature as of each declaration's own time over
the whole history given, for training. Profile mode joins new declarations to entity profiles
materialised up to a cut-off (``features.profiles``), for scoring. Both run the same code over
event tables that differ only in how much of the past is collapsed, so they give the same
numbers for the same declaration.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

import polars as pl

from features import behaviour, history, route
from features.codes import hash_code_expr
from features.config import FeatureConfig
from features.history import ENTITIES, entity_feature_names
from features.reference import ENGINE, METRICS, UnitValueReference

if TYPE_CHECKING:
    from features.profiles import EntityProfiles

KEYS = ["declaration_id", "item_no"]
# Handy downstream (truck aggregation, lanes, slices), never features themselves.
PASSTHROUGH = ["truck_id", "crossing", "declared_at", "trip_id"]

VALUE_FEATURES = [
    f"{metric}_{stat}"
    for metric in METRICS
    for stat in ("log_ratio", "position", "reference_level", "reference_rows")
]
WEIGHT_FEATURES = ["gross_net_ratio", "trip_weighbridge_gap_ratio"]
ENTITY_FEATURES = [name for entity in ENTITIES for name in entity_feature_names(entity)]
ROUTE_FEATURES = [
    "origin_differs_from_dispatch",
    "cn_origin_kz_dispatch",
    "is_transit",
    "is_eaeu_internal",
    "dispatch_from_eaeu_member",
]
BEHAVIOUR_FEATURES = [
    "importer_age_days",
    "importer_burst_ratio",
    "value_gap_below_threshold",
    "value_just_under_threshold",
    "declaration_value_gap_below_threshold",
    "declaration_value_just_under_threshold",
    "invoice_value_roundness",
    "declaration_items",
    "declaration_value_usd",
    "trip_declarations",
    "trip_items",
    "trip_importers",
    "trip_chapters",
    "trip_value_usd",
]
GOODS_FEATURES = ["customs_value_log", "duty_rate_pct", "duty_at_stake_usd"]
CATEGORICAL_FEATURES = [
    "origin_country_code",
    "dispatch_country_code",
    "destination_country_code",
    "procedure_code",
    "hs_chapter_code",
    "crossing_code",
]
FEATURE_COLUMNS = [
    *VALUE_FEATURES,
    *WEIGHT_FEATURES,
    *ENTITY_FEATURES,
    *ROUTE_FEATURES,
    *BEHAVIOUR_FEATURES,
    *GOODS_FEATURES,
    *CATEGORICAL_FEATURES,
]


def extra_categorical_name(column: str) -> str:
    """The feature name of an extra source column coded as a categorical."""
    return f"{column}_code"


def feature_columns(config: FeatureConfig | None = None) -> list[str]:
    """``FEATURE_COLUMNS`` plus the extra categoricals the config adds, in output order."""
    extras = (config or FeatureConfig()).extra_categoricals
    return [*FEATURE_COLUMNS, *(extra_categorical_name(c) for c in extras)]


def categorical_features(config: FeatureConfig | None = None) -> list[str]:
    """``CATEGORICAL_FEATURES`` plus the extra categoricals the config adds."""
    extras = (config or FeatureConfig()).extra_categoricals
    return [*CATEGORICAL_FEATURES, *(extra_categorical_name(c) for c in extras)]


def goods_signals() -> list[pl.Expr]:
    """Size of the consignment and of the duty at stake (what revenue@n% ranks by)."""
    return [
        pl.col("customs_value_usd").log1p().alias("customs_value_log"),
        pl.col("duty_rate_pct"),
        (pl.col("customs_value_usd") * pl.col("duty_rate_pct").fill_null(0.0) / 100.0).alias(
            "duty_at_stake_usd"
        ),
    ]


def build_features(
    declarations: pl.LazyFrame,
    outcomes: pl.LazyFrame,
    *,
    profiles: EntityProfiles | None = None,
    config: FeatureConfig | None = None,
    arrivals: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Features of every item of ``declarations`` as of its own ``declared_at``.

    ``declarations``/``outcomes``/``arrivals`` follow ``risk.schemas.DeclarationItem``,
    ``InspectionOutcome`` and ``TruckArrival``. Without ``profiles`` the past is the frames
    themselves (history mode). With ``profiles`` the past is the profile and ``declarations``
    must all be declared at or after its cut-off and in its reference period (profile mode);
    only outcomes recorded at or after the cut-off are taken from ``outcomes``.

    Entity history and the price reference are computed here, eagerly with the in-memory
    engine (``features.history.batch_entity_features``, ``UnitValueReference.transform``),
    and come back in the rows' order. In history mode the row-level signals stay lazy; in
    profile mode the whole result is computed here and handed back as a LazyFrame over it:
    the streaming engine's start-up per plan node costs more than the work on a few trucks.
    Rows keep the order of ``declarations``. Returns ``declaration_id``, ``item_no``,
    ``truck_id``, ``crossing``, ``declared_at``, ``trip_id`` and ``feature_columns(config)``.
    """
    config = config or FeatureConfig()
    if profiles is not None:
        return _profile_mode(declarations, outcomes, profiles, config, arrivals)
    items = history.with_entity_columns(declarations).collect(engine=ENGINE)
    reference = UnitValueReference(
        period=config.reference_period, min_rows=config.reference_min_rows
    ).fit(items)
    # The reference first: its sort is the peak of memory, best reached with little else held.
    values = reference.transform(items.lazy()).collect(engine=ENGINE)
    del reference
    judged = history.outcome_items(outcomes, items.lazy(), config).collect(engine=ENGINE)
    order = history.batch_order(items)
    entity_features = history.batch_entity_features(items, judged, None, config, order)
    return _item_signals(_beside(items, order, entity_features, values), config, arrivals)


def _profile_mode(
    declarations: pl.LazyFrame,
    outcomes: pl.LazyFrame,
    profiles: EntityProfiles,
    config: FeatureConfig,
    arrivals: pl.LazyFrame | None,
) -> pl.LazyFrame:
    """``build_features`` from entity profiles, computed eagerly with the in-memory engine.

    Entity features are counted per (key, time) over the batch alone and added to the
    profile's totals (``features.history.profile_entity_features``); they and the price
    reference come back in the batch's row order and are put beside it, not joined."""
    profiles.check_config(config)
    items = (
        history.with_entity_columns(declarations)
        .with_columns(profiles.refuse_before_cutoff("declared_at"))
        .collect(engine=ENGINE)
    )
    new_outcomes = outcomes.filter(pl.col("recorded_at") >= profiles.cutoff).collect(engine=ENGINE)
    known_items = pl.concat(
        [profiles.pending_items.lazy(), items.lazy().select(profiles.pending_items.columns)]
    )
    judged = history.outcome_items(new_outcomes.lazy(), known_items, config).collect(engine=ENGINE)
    # The price reference, the entity history and the trips' passes over the rows are
    # independent: computed side by side, each one's single-threaded stretches leave the
    # others a core (the kernels and Polars release the GIL).
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = pool.submit(
            lambda: profiles.reference.transform(items.lazy()).collect(engine=ENGINE)
        )
        order = history.batch_order(items)
        passes = None
        if behaviour.native_ready(items, entity_features=False):
            coded = items.with_columns(order.declaration_of_row.alias(history.DECLARATION))
            passes = pool.submit(_row_passes, coded, config, arrivals)
        entity_features = history.batch_entity_features(
            items, judged, profiles.events, config, order
        )
        frame = _beside(items, order, entity_features, reference.result())
        return (
            _item_signals(frame, config, arrivals, passes.result() if passes is not None else None)
            .collect(engine=ENGINE)
            .lazy()
        )


def _beside(
    items: pl.DataFrame,
    order: history.BatchOrder,
    entity_features: list[pl.DataFrame],
    reference: pl.DataFrame,
) -> pl.LazyFrame:
    """Items with their declaration's code (``history.DECLARATION``), their entity features
    (in their row order) and price-reference features (put beside them when in their order
    too, else joined on the keys)."""
    frame = pl.concat(
        [items, order.declaration_of_row.to_frame(history.DECLARATION), *entity_features],
        how="horizontal",
    )
    if reference.select(KEYS).equals(items.select(KEYS)):
        return pl.concat([frame, reference.drop(KEYS)], how="horizontal").lazy()
    return frame.lazy().join(reference.lazy(), on=KEYS, how="left", maintain_order="left")


def _item_signals(
    frame: pl.LazyFrame,
    config: FeatureConfig,
    arrivals: pl.LazyFrame | None,
    passes: RowPasses | None = None,
) -> pl.LazyFrame:
    """The row-level signals of items that carry their entity and reference features, and
    the output columns of ``build_features``.

    The items are materialised here: trips, their totals, the weighbridge readings and the
    country codes are counted by native kernels over the batch (``features.row_kernels``;
    ``passes``: ``_row_passes`` already made of these rows); the elementwise signals stay
    expressions."""
    items = frame.collect(engine=ENGINE)
    if not behaviour.native_ready(items):
        return _item_signals_by_expressions(items.lazy(), config, arrivals)
    totals, routes, gap = passes if passes is not None else _row_passes(items, config, arrivals)
    local = behaviour.local_signals(
        items, totals, config.value_thresholds_usd, config.just_under_margin
    )
    signals = pl.concat([items, totals.columns, routes, gap.to_frame(), local], how="horizontal")
    return (
        signals.lazy()
        .with_columns(
            *goods_signals(),
            *(
                hash_code_expr(column).alias(extra_categorical_name(column))
                for column in config.extra_categoricals
            ),
        )
        .select(*KEYS, *PASSTHROUGH, *feature_columns(config))
    )


RowPasses = tuple[behaviour.RowTotals, pl.DataFrame, pl.Series]


def _row_passes(
    items: pl.DataFrame, config: FeatureConfig, arrivals: pl.LazyFrame | None
) -> RowPasses:
    """The passes of ``_item_signals`` that read the items alone (with their declaration
    code, ``history.DECLARATION``): trip and declaration totals, route columns and country
    codes, the weighbridge gap. The kernels release the GIL: two passes run at a time."""
    tolerance = timedelta(hours=config.arrival_tolerance_hours)
    with ThreadPoolExecutor(max_workers=1) as pool:
        countries = pool.submit(route.country_columns, items)
        totals = behaviour.row_totals(items, history.DECLARATION)
        gap = pool.submit(behaviour.weighbridge_gaps, items, totals, arrivals, tolerance)
        routes = route.route_columns(items, totals.crossing, totals.chapter, countries.result())
        return totals, routes, gap.result()


def _item_signals_by_expressions(
    frame: pl.LazyFrame, config: FeatureConfig, arrivals: pl.LazyFrame | None
) -> pl.LazyFrame:
    """``_item_signals`` as Polars expressions alone (items whose ``declared_at`` carries a
    time zone, which the kernels do not take)."""
    frame = (
        frame.pipe(behaviour.declaration_and_trip_totals, history.DECLARATION)
        .pipe(behaviour.threshold_signals(config.value_thresholds_usd, config.just_under_margin))
        .pipe(behaviour.weighbridge_gap(arrivals, timedelta(hours=config.arrival_tolerance_hours)))
        .with_columns(
            *route.route_signals(),
            *goods_signals(),
            behaviour.importer_burst_ratio(),
            *(
                hash_code_expr(column).alias(extra_categorical_name(column))
                for column in config.extra_categoricals
            ),
        )
    )
    return frame.select(*KEYS, *PASSTHROUGH, *feature_columns(config))
