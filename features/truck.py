"""Truck-level features: what an officer at the barrier decides on is a truck, not an item.

A truck here is one trip (``trip_id`` of ``features.behaviour``: the truck, or the declaration
when the truck is unknown, at one crossing on one day); in a standing queue that is one row per
truck. Item features are summarised by their maximum and mean, and by their minimum where a low
value is the risk (a price far below its reference).
"""

from __future__ import annotations

import polars as pl

from features.pipeline import CATEGORICAL_FEATURES, FEATURE_COLUMNS

# Features where the risky direction is low: the truck's minimum is kept as well.
LOW_IS_RISKY = [
    "unit_value_kg_log_ratio",
    "unit_value_kg_position",
    "unit_value_unit_log_ratio",
    "unit_value_unit_position",
    "importer_age_days",
    "importer_days_since_first_seen",
]
# Already per trip on every item: carried once, not summarised.
TRIP_LEVEL = [
    "trip_declarations",
    "trip_items",
    "trip_importers",
    "trip_chapters",
    "trip_value_usd",
    "trip_weighbridge_gap_ratio",
]
SUMMARISED = [c for c in FEATURE_COLUMNS if c not in CATEGORICAL_FEATURES and c not in TRIP_LEVEL]

TRUCK_KEYS = ["trip_id", "truck_key", "truck_id", "crossing"]
TRUCK_FEATURE_COLUMNS = [
    *TRIP_LEVEL,
    *(f"{c}_max" for c in SUMMARISED),
    *(f"{c}_mean" for c in SUMMARISED),
    *(f"{c}_min" for c in LOW_IS_RISKY),
]


def truck_features(item_features: pl.LazyFrame) -> pl.LazyFrame:
    """One row per trip of ``build_features`` output: ``TRUCK_KEYS``, the first and last
    ``declared_at`` of the trip, and ``TRUCK_FEATURE_COLUMNS``. ``truck_key`` is
    coalesce(truck_id, declaration_id)."""
    return (
        item_features.with_columns(
            pl.coalesce(pl.col("truck_id"), pl.col("declaration_id")).alias("truck_key")
        )
        .group_by("trip_id")
        .agg(
            pl.col("truck_key", "truck_id", "crossing").first(),
            pl.col("declared_at").min().alias("first_declared_at"),
            pl.col("declared_at").max().alias("last_declared_at"),
            *(pl.col(c).first() for c in TRIP_LEVEL),
            *(pl.col(c).max().alias(f"{c}_max") for c in SUMMARISED),
            *(pl.col(c).mean().alias(f"{c}_mean") for c in SUMMARISED),
            *(pl.col(c).min().alias(f"{c}_min") for c in LOW_IS_RISKY),
        )
        .select(*TRUCK_KEYS, "first_declared_at", "last_declared_at", *TRUCK_FEATURE_COLUMNS)
    )
