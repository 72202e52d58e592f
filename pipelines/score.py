"""Batch scoring: declarations in; item, declaration and truck scores, lanes and reasons out.

The core is pure: ``score_batch`` takes one Arrow or Polars batch, the scorer and the lane
settings, reads no file and keeps no state, so a cluster engine runs its phases per partition
unchanged (``pipelines.score_dask``). The phases:

1. ``score_items``: features (from entity profiles), calibrated risk and expected duty at risk
   per item, and the hard rules per item;
2. ``aggregate_trucks``: one row per truck and crossing (a batch is a standing queue or a
   day: a truck stands once in a crossing's queue, whatever days its papers were filed on;
   a declaration without a truck is its own truck). A truck's risk is 1 - prod(1 - p_i) over its
   items, the chance that *anything* on it is wrong if items were independent (they are not
   quite: one importer's items go wrong together, so this leans towards inspecting, which is
   the side customs errs on); its duty at risk is the sum over the items, because an
   inspection of the truck recovers the duty of every item found wrong;
3. ``risk.lanes.assign_lanes``: capacity per crossing, filled by duty at risk per minute;
4. ``explain``: SHAP contributions (``pred_contrib=True``, about a hundred predictions' worth
   each) only for the items of trucks that end red or yellow, turned into reasons through the
   feature catalogue; each truck explains its ``max_items_explained`` riskiest items (one by
   default), and its declarations and items have reasons where one of those items lies.

Features and prediction live in ``pipelines.score_features``, reasons in
``pipelines.score_reasons``; the file job around it all (read through ingest, quarantine,
atomic writes) is ``score_files`` in ``pipelines.score_job``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.score_features import (
    KEYS,
    ROW,
    TRUCK,
    ItemScores,
    LatestReference,
    Scorer,
    as_of_cutoff,
    as_polars,
    compute_features,
    feature_matrix,
    inverse_rows,
    predict_features,
    scoring_profiles,
    take_features,
)
from pipelines.score_reasons import (
    CATEGORICAL_SOURCE_COLUMNS,
    MAX_ITEMS_EXPLAINED,
    REASON_LANES,
    TOP_ITEM,
    explain,
    random_shares,
)
from risk.lanes import CapacityConfig, assign_lanes, truck_key
from risk.rules import (
    RULE_HELPERS,
    RuleSet,
    item_rule_columns,
    rule_translations,
    truck_rule_aggregations,
    truck_rule_columns,
)

if TYPE_CHECKING:
    from features.profiles import EntityProfiles

__all__ = [
    "KEYS",
    "MAX_ITEMS_EXPLAINED",
    "REASON_LANES",
    "ROW",
    "TRUCK",
    "ItemScores",
    "LatestReference",
    "ScoredBatch",
    "Scorer",
    "aggregate_trucks",
    "any_wrong",
    "as_of_cutoff",
    "as_polars",
    "assemble",
    "compute_features",
    "explain",
    "feature_matrix",
    "predict_features",
    "random_shares",
    "score_batch",
    "score_items",
    "scoring_profiles",
    "take_features",
]

_NO_REASONS = pl.lit([], dtype=pl.List(pl.String))


@dataclass(frozen=True)
class ScoredBatch:
    """Per item, per declaration and per truck: risk, duty at risk, lane, reasons, model."""

    items: pl.DataFrame
    declarations: pl.DataFrame
    trucks: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def score_items(
    batch: pa.Table | pl.DataFrame,
    scorer: Scorer,
    *,
    profiles: EntityProfiles | None = None,
    rules: RuleSet | None = None,
    arrivals: pl.DataFrame | None = None,
    features: pl.DataFrame | None = None,
    lang: str = "en",
) -> ItemScores:
    """Phase 1: risk and expected duty per item, and the hard rules that match it.

    ``features`` (from ``compute_features`` over a larger batch) skips the feature step.
    """
    declarations = as_polars(batch)
    if features is None:
        features = compute_features(declarations, scorer, profiles=profiles, arrivals=arrivals)
    risk_f, duty_f = predict_features(scorer, features)
    # Back from the feature pipeline's row order to the batch's.
    feature_rows = inverse_rows(features.get_column(ROW).to_numpy(), features.height)
    risk = np.clip(risk_f[feature_rows], 0.0, 1.0)
    duty = duty_f[feature_rows]
    items = declarations.select(
        *KEYS,
        truck_key(),
        "truck_id",
        pl.col("crossing"),
        "declared_at",
        *item_rule_columns(rules or RuleSet(), lang=lang),
    ).with_columns(
        risk=pl.Series(risk),
        duty_at_risk_usd=pl.Series(duty),
    )
    extra = [name[: -len("_code")] for name in scorer.feature_names if name.endswith("_code")]
    raw = declarations.select(
        *CATEGORICAL_SOURCE_COLUMNS,
        *(c for c in extra if c in declarations.columns and c not in CATEGORICAL_SOURCE_COLUMNS),
    )
    return ItemScores(
        items=items,
        features=features,
        feature_rows=feature_rows,
        raw=raw,
        model_version=scorer.model_version,
        run_id=scorer.run_id,
        rule_texts=rule_translations(rules, lang=lang) if rules is not None else {},
    )


def any_wrong(column: str = "risk") -> pl.Expr:
    """1 - prod(1 - p): the chance that at least one of independent items is wrong."""
    return 1.0 - pl.col(column).clip(0.0, 1.0).neg().log1p().sum().exp()


def aggregate_trucks(items: pl.DataFrame) -> pl.DataFrame:
    """One row per truck and crossing, in order of first appearance, with rules and risk.

    ``draw_key`` (truck, crossing, first declaration) seeds the random-share draw, so that a
    truck's next trip gets a fresh draw. ``top_item_row`` is the row in ``items`` of the
    truck's riskiest item (the earliest of equals), the one ``explain`` explains.
    """
    ruled = items.get_column("rule_lane").null_count() < items.height
    trucks = (
        items.with_row_index(TOP_ITEM)
        .group_by(TRUCK, maintain_order=True)
        .agg(
            pl.col("truck_id").first(),
            pl.concat_str(
                pl.col("truck_key").first(),
                pl.col("crossing").first(),
                pl.col("declaration_id").min(),
                separator="|",
            ).alias("draw_key"),
            pl.col("declared_at").min().alias("first_declared_at"),
            pl.col("declaration_id").n_unique().cast(pl.Int64).alias("n_declarations"),
            pl.len().cast(pl.Int64).alias("n_items"),
            any_wrong().alias("risk"),
            pl.col("duty_at_risk_usd").sum(),
            pl.col("risk").max().alias("max_item_risk"),
            pl.col(TOP_ITEM).get(pl.col("risk").arg_max()).cast(pl.Int64),
            # Without any rule hit the rule columns are constant: no need to aggregate them.
            *(truck_rule_aggregations() if ruled else []),
        )
    )
    if ruled:
        return trucks.with_columns(truck_rule_columns()).drop(RULE_HELPERS)
    return trucks.with_columns(rule_lane=pl.lit(None, dtype=pl.String), rule_reasons=_NO_REASONS)


_LANE_OF_TRUCK = ["lane", "selection", "decided_by"]


def _with_model(frame: pl.DataFrame, scored: ItemScores) -> pl.DataFrame:
    return frame.with_columns(
        model_version=pl.lit(scored.model_version, dtype=pl.String),
        run_id=pl.lit(scored.run_id, dtype=pl.String),
    )


REASON_COLUMNS = ("reasons", "reasons_ru", "reasons_en", "reason_features")


def _fill_reasons(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(name).fill_null(_NO_REASONS) for name in REASON_COLUMNS)


def _rule_reason_in(scored: ItemScores, index: int, name: str) -> pl.Expr:
    """An item's ``rule_reason`` in Russian (``index`` 0) or English (1)."""
    if not scored.rule_texts:
        return pl.col("rule_reason").alias(name)  # no rules: null throughout
    texts = scored.rule_texts
    return (
        pl.col("rule_reason")
        .replace_strict(
            list(texts), [pair[index] for pair in texts.values()], default=pl.col("rule_reason")
        )
        .cast(pl.String)
        .alias(name)
    )


def assemble(
    scored: ItemScores,
    trucks: pl.DataFrame,
    reasons: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> ScoredBatch:
    """The three output frames from the phases' results, in the batch's order."""
    item_reasons, declaration_reasons, truck_reasons = reasons
    lanes = trucks.select(*TRUCK, pl.col("risk").alias("truck_risk"), *_LANE_OF_TRUCK)
    items = (
        scored.items.join(lanes, on=TRUCK, how="left", maintain_order="left")
        .join(item_reasons, on=KEYS, how="left", maintain_order="left")
        .pipe(_fill_reasons)
        .pipe(_with_model, scored)
        .select(
            *KEYS,
            "truck_id",
            "truck_key",
            "crossing",
            "declared_at",
            "risk",
            "duty_at_risk_usd",
            "truck_risk",
            *_LANE_OF_TRUCK,
            "rule_reason",
            _rule_reason_in(scored, 0, "rule_reason_ru"),
            _rule_reason_in(scored, 1, "rule_reason_en"),
            *REASON_COLUMNS,
            "model_version",
            "run_id",
        )
    )
    declarations = (
        scored.items.group_by("declaration_id", maintain_order=True)
        .agg(
            pl.col("truck_id", "truck_key", "crossing").first(),
            pl.col("declared_at").min(),
            pl.len().cast(pl.Int64).alias("n_items"),
            any_wrong().alias("risk"),
            pl.col("duty_at_risk_usd").sum(),
            pl.col("risk").max().alias("max_item_risk"),
        )
        .join(lanes.drop("truck_risk"), on=TRUCK, how="left", maintain_order="left")
        .join(declaration_reasons, on="declaration_id", how="left", maintain_order="left")
        .pipe(_fill_reasons)
        .pipe(_with_model, scored)
    )
    truck_frame = (
        trucks.join(truck_reasons, on=TRUCK, how="left", maintain_order="left")
        .pipe(_fill_reasons)
        .pipe(_with_model, scored)
        .select(
            "truck_key",
            "truck_id",
            "crossing",
            "first_declared_at",
            "n_declarations",
            "n_items",
            "risk",
            "duty_at_risk_usd",
            "max_item_risk",
            *_LANE_OF_TRUCK,
            "officer_minutes",
            "duty_per_minute_usd",
            "rule_lane",
            "draw_key",
            *REASON_COLUMNS,
            "model_version",
            "run_id",
        )
    )
    return ScoredBatch(items=items, declarations=declarations, trucks=truck_frame)


def score_batch(
    batch: pa.Table | pl.DataFrame,
    scorer: Scorer,
    *,
    profiles: EntityProfiles | None = None,
    rules: RuleSet | None = None,
    capacity: CapacityConfig | None = None,
    arrivals: pl.DataFrame | None = None,
    reasons_for: Collection[str] = REASON_LANES,
    max_items_explained: int = MAX_ITEMS_EXPLAINED,
    lang: str = "en",
) -> ScoredBatch:
    """Score one batch of canonical ``DeclarationItem`` rows end to end (the pure core).

    ``profiles`` defaults to the scorer's (entity state at its training cut-off); ``rules``
    to none; ``capacity`` to the code defaults of ``risk.lanes.LaneCapacity``; ``arrivals``
    (``TruckArrival``) adds the weighbridge features. Reasons are computed only for trucks
    whose lane is in ``reasons_for``.
    """
    import time

    capacity = capacity or CapacityConfig()
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    declarations = as_polars(batch)
    features = compute_features(declarations, scorer, profiles=profiles, arrivals=arrivals)
    lap("features")
    scored = score_items(declarations, scorer, rules=rules, features=features, lang=lang)
    lap("predict")
    trucks = assign_lanes(aggregate_trucks(scored.items), capacity, draw_key="draw_key")
    lap("lanes")
    shares = random_shares(capacity, trucks.get_column("crossing").unique().to_list())
    reasons = explain(
        scored,
        trucks,
        scorer,
        reasons_for=reasons_for,
        max_items_explained=max_items_explained,
        random_share=shares,
        lang=lang,
    )
    lap("reasons")
    result = assemble(scored, trucks, reasons)
    lap("assemble")
    return ScoredBatch(result.items, result.declarations, result.trucks, timings)
