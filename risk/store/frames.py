"""The frames the store takes from scoring: trucks, their declarations, and the items.

``risk publish`` maps what ``risk score`` writes onto these; ``publish_scores`` validates them
whole (a batch with one bad row is refused, naming the row and the rule), because a queue
missing a truck would send that truck to the barrier unexamined.
"""

from __future__ import annotations

import dataframely as dy
import polars as pl

from risk.errors import RiskError
from risk.schemas import HS_CODE_PATTERN, LANES, PROCEDURES, SELECTIONS

DECIDED_BY = ("model", "rule", "random")
REASON_LANGUAGES = ("reasons_ru", "reasons_en")
_CYRILLIC = r"[\u0400-\u04ff]"
_NO_REASONS = pl.lit([], dtype=pl.List(pl.String))


def reasons_language(trucks: pl.DataFrame) -> str:
    """The language the scores' reasons were written in (``risk score --lang``): Russian
    when any reason is in Cyrillic, English when they are in Latin script, Russian (the
    console's default) when there are none to judge by."""
    if "reasons" not in trucks.columns:
        return "ru"
    texts = trucks.get_column("reasons").explode().drop_nulls()
    if texts.is_empty():
        return "ru"
    return "ru" if texts.str.contains(_CYRILLIC).any() else "en"


def with_reason_languages(frame: pl.DataFrame, lang: str) -> pl.DataFrame:
    """``frame`` with ``reasons_ru`` and ``reasons_en``: as they are where it has them (scores
    from ``risk score`` since both languages are written), else its ``reasons`` (written in
    ``lang``) in that language's column and the other empty."""
    if "reasons" not in frame.columns or all(name in frame.columns for name in REASON_LANGUAGES):
        return frame  # complete, or missing ``reasons`` (which validation names)
    reasons = pl.col("reasons").fill_null(_NO_REASONS)
    return frame.with_columns(
        (reasons if lang == "ru" else _NO_REASONS).alias("reasons_ru"),
        (_NO_REASONS if lang == "ru" else reasons).alias("reasons_en"),
    )


class PublishedTruck(dy.Schema):
    """One truck of a crossing's queue with its score and lane."""

    crossing = dy.String(primary_key=True, min_length=1)
    # The truck key of ``risk.lanes.truck_key``: the truck id, or ``decl:<id>`` without one.
    truck_id = dy.String(primary_key=True, min_length=1, max_length=96)
    vehicle_plate = dy.String(nullable=True)
    arrived_at = dy.Datetime(nullable=True, time_unit="us")
    n_items = dy.Int64(min=1)
    risk = dy.Float64(min=0.0, max=1.0)
    duty_at_risk_usd = dy.Float64(min=0.0)
    lane = dy.Enum(LANES)
    selection = dy.Enum(SELECTIONS)
    decided_by = dy.Enum(DECIDED_BY)
    reasons = dy.List(dy.String())
    reasons_ru = dy.List(dy.String())
    reasons_en = dy.List(dy.String())


class PublishedDeclaration(dy.Schema):
    """One declaration on a truck, with what the officer needs to know about its parties."""

    declaration_id = dy.String(primary_key=True, min_length=1, max_length=64)
    crossing = dy.String(min_length=1)
    truck_id = dy.String(min_length=1, max_length=96)
    declared_at = dy.Datetime(time_unit="us")
    importer_id = dy.String(min_length=1)
    importer_registered_on = dy.Date(nullable=True)
    declarant_id = dy.String(nullable=True)
    procedure = dy.Enum(PROCEDURES)
    risk = dy.Float64(min=0.0, max=1.0)
    duty_at_risk_usd = dy.Float64(min=0.0)
    reasons = dy.List(dy.String())
    reasons_ru = dy.List(dy.String())
    reasons_en = dy.List(dy.String())


class PublishedItem(dy.Schema):
    """One goods item as declared, with its own score."""

    declaration_id = dy.String(primary_key=True, min_length=1, max_length=64)
    item_no = dy.Int32(primary_key=True, min=1)
    hs_code = dy.String(regex=HS_CODE_PATTERN)
    goods_description = dy.String(nullable=True)
    origin_country = dy.String(min_length=2, max_length=2)
    dispatch_country = dy.String(nullable=True)
    net_mass_kg = dy.Float64(nullable=True, min=0.0)
    gross_mass_kg = dy.Float64(nullable=True, min=0.0)
    customs_value_usd = dy.Float64(min=0.0)
    duty_rate_pct = dy.Float64(nullable=True, min=0.0)
    risk = dy.Float64(min=0.0, max=1.0)
    duty_at_risk_usd = dy.Float64(min=0.0)
    reasons = dy.List(dy.String())
    reasons_ru = dy.List(dy.String())
    reasons_en = dy.List(dy.String())


def published_frames(
    *,
    trucks: pl.DataFrame,
    declarations: pl.DataFrame,
    items: pl.DataFrame,
    declaration_items: pl.DataFrame,
    arrivals: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The store's frames from what ``pipelines.score`` returns (``ScoredBatch``'s trucks,
    declarations and items) and the ``DeclarationItem`` rows that were scored.

    Scores carry keys and numbers; the officer also reads what was declared (HS code, goods,
    masses, parties), which comes from ``declaration_items``; the truck's arrival (and plate)
    from ``arrivals`` (``TruckArrival``) when given. Scores with only ``reasons`` (older
    files) keep them in the language their script shows (``reasons_language``).
    """
    lang = reasons_language(trucks)
    trucks, declarations, items = (
        with_reason_languages(frame, lang) for frame in (trucks, declarations, items)
    )
    scored_items = items.select(
        "declaration_id",
        pl.col("item_no").cast(pl.Int32),
        "risk",
        "duty_at_risk_usd",
        "reasons",
        *REASON_LANGUAGES,
    )
    declared = declaration_items.with_columns(pl.col("item_no").cast(pl.Int32))
    missing = scored_items.join(declared, on=["declaration_id", "item_no"], how="anti")
    if missing.height:
        first = missing.row(0, named=True)
        raise RiskError(
            f"items: {missing.height} scored item(s) not in the declarations given; first "
            f"{first['declaration_id']} item {first['item_no']}"
        )
    item_frame = scored_items.join(
        declared.select(
            "declaration_id",
            "item_no",
            *(c for c in PublishedItem.column_names() if c in _DECLARED_ITEM_COLUMNS),
        ),
        on=["declaration_id", "item_no"],
        how="left",
    ).select(PublishedItem.column_names())

    parties = (
        declared.sort("declaration_id", "item_no")
        .group_by("declaration_id", maintain_order=True)
        .agg(
            pl.col("importer_id", "importer_registered_on", "declarant_id").first(),
            pl.col("procedure", "vehicle_plate").first(),
        )
    )
    declaration_frame = (
        declarations.select(
            "declaration_id",
            "crossing",
            pl.col("truck_key").alias("truck_id"),
            "declared_at",
            "risk",
            "duty_at_risk_usd",
            "reasons",
            *REASON_LANGUAGES,
        )
        .join(parties.drop("vehicle_plate"), on="declaration_id", how="left")
        .select(PublishedDeclaration.column_names())
    )

    plates = (
        declarations.select("declaration_id", "truck_key", "crossing")
        .join(parties.select("declaration_id", "vehicle_plate"), on="declaration_id")
        .group_by("truck_key", "crossing")
        .agg(pl.col("vehicle_plate").drop_nulls().first())
    )
    truck_frame = trucks.join(plates, on=["truck_key", "crossing"], how="left").with_columns(
        arrived_at=pl.col("first_declared_at")
    )
    if arrivals is not None and arrivals.height:
        arrived = arrivals.group_by("crossing", "truck_id").agg(
            pl.col("arrived_at").max().alias("_arrived_at")
        )
        truck_frame = truck_frame.join(
            arrived,
            left_on=["crossing", "truck_key"],
            right_on=["crossing", "truck_id"],
            how="left",
        ).with_columns(arrived_at=pl.coalesce("_arrived_at", "arrived_at"))
    truck_frame = truck_frame.with_columns(pl.col("truck_key").alias("truck_id")).select(
        PublishedTruck.column_names()
    )
    return truck_frame, declaration_frame, item_frame


_DECLARED_ITEM_COLUMNS = (
    "hs_code",
    "goods_description",
    "origin_country",
    "dispatch_country",
    "net_mass_kg",
    "gross_mass_kg",
    "customs_value_usd",
    "duty_rate_pct",
)
