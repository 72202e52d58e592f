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
4. ``explain``: exact SHAP contributions (``experiments.shap``: LightGBM's ``pred_contrib``
   numbers, still about ten predictions' worth each) only for the items of trucks that end
   red or yellow, turned into reasons through the feature catalogue; each truck explains its
   ``max_items_explained`` riskiest items (one by default), and its declarations and items
   have reasons where one of those items lies.

Features and prediction live in ``pipelines.score_features``, reasons in
``pipelines.score_reasons``; the file job around it all (read through ingest, quarantine,
atomic writes) is ``score_files`` in ``pipelines.score_job``.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
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
from risk.runs import run_starts, run_totals

if TYPE_CHECKING:
    from features.profiles import EntityProfiles

__all__ = [
    "KEYS",
    "MAX_ITEMS_EXPLAINED",
    "REASON_LANES",
    "ROW",
    "TRUCK",
    "Assembly",
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
    "prepare_assembly",
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
    # Back from the feature pipeline's row order to the batch's (ROW is a permutation: in
    # order, it is the batch's order already).
    order = features.get_column(ROW)
    if order.is_sorted():
        feature_rows = np.arange(features.height)
        risk, duty = risk_f, duty_f
    else:
        feature_rows = inverse_rows(order.to_numpy(), features.height)
        risk, duty = risk_f[feature_rows], duty_f[feature_rows]
    risk = np.clip(risk, 0.0, 1.0)
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
    return 1.0 - _log_none_wrong(column).sum().exp()


def _log_none_wrong(column: str = "risk") -> pl.Expr:
    """log(1 - p) per item: ``any_wrong`` sums these over a group."""
    return pl.col(column).clip(0.0, 1.0).neg().log1p()


def _any_wrong_of(log_sums: np.ndarray) -> pl.Series:
    """``any_wrong`` from the sums of ``_log_none_wrong`` (as Polars computes it)."""
    return 1.0 - pl.Series("risk", log_sums, dtype=pl.Float64).exp()


def aggregate_trucks(items: pl.DataFrame) -> pl.DataFrame:
    """One row per truck and crossing, in order of first appearance, with rules and risk.

    ``draw_key`` (truck, crossing, first declaration) seeds the random-share draw, so that a
    truck's next trip gets a fresh draw. ``top_item_row`` is the row in ``items`` of the
    truck's riskiest item (the earliest of equals), the one ``explain`` explains.
    """
    ruled = items.get_column("rule_lane").null_count() < items.height
    trucks = _trucks_by_runs(items, ruled)
    if trucks is None:
        trucks = _trucks_by_group_by(items, ruled)
    if ruled:
        return trucks.with_columns(truck_rule_columns()).drop(RULE_HELPERS)
    return trucks.with_columns(rule_lane=pl.lit(None, dtype=pl.String), rule_reasons=_NO_REASONS)


def _trucks_by_group_by(items: pl.DataFrame, ruled: bool) -> pl.DataFrame:
    """``aggregate_trucks``' aggregations by grouping (any row order): the definition."""
    return (
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


def _trucks_by_runs(items: pl.DataFrame, ruled: bool) -> pl.DataFrame | None:
    """``_trucks_by_group_by``'s frame from the runs of the items' trucks (``risk.runs``),
    or None where the items are not in runs (then the group-by decides).

    A queue lists a truck's items together, a declaration's items together too: a truck's
    declarations are the runs of declarations within its run, and the least declaration id,
    the earliest time, the sums and the riskiest item come from one native pass.
    """
    if not items.height:
        return None
    keys = items.select(*TRUCK, "declaration_id").rechunk()  # its texts read by every pass
    # The declarations' runs on a second thread (the kernels and sorts release the GIL).
    with ThreadPoolExecutor(max_workers=1) as pool:
        found_parts = pool.submit(run_starts, keys, [*TRUCK, "declaration_id"])
        starts = run_starts(keys, TRUCK)
        log_terms = items.select(_log_none_wrong()).to_series()
        parts = found_parts.result()
    if starts is None or parts is None:
        return None
    totals = run_totals(
        starts,
        risk=items.get_column("risk"),
        log_terms=log_terms,
        duty=items.get_column("duty_at_risk_usd"),
        when=items.get_column("declared_at"),
        parts=parts[:-1],
        texts=keys.get_column("declaration_id"),
    )
    if totals is None or totals.n_parts is None or totals.least_part_row is None:
        return None
    heads = items.select(*TRUCK, "truck_id")[starts[:-1]]
    least = items.get_column("declaration_id").gather(totals.least_part_row)
    trucks = heads.with_columns(
        pl.concat_str(*TRUCK, pl.lit(least), separator="|").alias("draw_key"),
        pl.Series("first_declared_at", totals.earliest).cast(items.schema["declared_at"]),
        pl.Series("n_declarations", totals.n_parts, dtype=pl.Int64),
        pl.Series("n_items", np.diff(starts), dtype=pl.Int64),
        _any_wrong_of(totals.log_sum),
        pl.Series("duty_at_risk_usd", totals.duty_sum, dtype=pl.Float64),
        pl.Series("max_item_risk", totals.max_risk, dtype=pl.Float64),
        pl.Series(TOP_ITEM, totals.top_row, dtype=pl.Int64),
    )
    if not ruled:
        return trucks
    # The rules' aggregations by the trucks' runs: an integer key, in order already.
    run = np.repeat(np.arange(len(starts) - 1, dtype=np.int64), np.diff(starts))
    rules = (
        items.select("rule_lane", "rule_reason")
        .with_columns(pl.Series("_run", run))
        .group_by("_run", maintain_order=True)
        .agg(truck_rule_aggregations())
        .drop("_run")
    )
    return trucks.hstack(rules)


_LANE_OF_TRUCK = ["lane", "selection", "decided_by"]


def _with_model(frame: pl.DataFrame, scored: ItemScores) -> pl.DataFrame:
    return frame.with_columns(
        model_version=pl.lit(scored.model_version, dtype=pl.String),
        run_id=pl.lit(scored.run_id, dtype=pl.String),
    )


REASON_COLUMNS = ("reasons", "reasons_ru", "reasons_en", "reason_features")


def _rule_reason_in(scored: ItemScores, index: int, name: str) -> pl.Expr:
    """An item's ``rule_reason`` in Russian (``index`` 0) or English (1)."""
    reasons = scored.items.get_column("rule_reason")
    if not scored.rule_texts or reasons.null_count() == reasons.len():
        return pl.col("rule_reason").alias(name)  # no rule matched: null throughout
    texts = scored.rule_texts
    return (
        pl.col("rule_reason")
        .replace_strict(
            list(texts), [pair[index] for pair in texts.values()], default=pl.col("rule_reason")
        )
        .cast(pl.String)
        .alias(name)
    )


def truck_rows(items: pl.DataFrame, trucks: pl.DataFrame) -> pl.Series:
    """For each item, the row in ``trucks`` of its truck (null where ``trucks`` lacks it).

    A queue lists a truck's items together, and ``aggregate_trucks`` keeps the order of first
    appearance, so the trucks are usually the runs of equal (truck, crossing) in ``items``,
    in order: then the row is the run's number, found without hashing a million keys. Any
    other layout is matched by a join.
    """
    keys = items.select(TRUCK)
    if keys.height and not any(keys.null_count().row(0)):
        starts = keys.select(
            pl.any_horizontal(pl.col(c) != pl.col(c).shift() for c in TRUCK).fill_null(True)
        ).to_series()
        first = np.flatnonzero(starts.to_numpy())
        if len(first) == trucks.height and keys[first].equals(trucks.select(TRUCK)):
            return starts.cast(pl.UInt32).cum_sum() - 1
    numbered = trucks.select(TRUCK).with_row_index("_truck")
    joined = keys.join(numbered, on=TRUCK, how="left", maintain_order="left")
    return joined.get_column("_truck")


def _reasons_of(frame: pl.DataFrame, reasons: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    """The reason columns for each row of ``frame``: its row of ``reasons`` (matched on
    ``on``), empty lists where it has none. Reasons are few (the riskiest items of red and
    yellow trucks), so they are placed by their rows instead of joined onto every row."""
    found = (
        frame.select(on)
        .with_row_index("_at")
        .join(reasons.select(on).with_row_index("_of"), on=on, how="inner")
        .sort("_at")
    )
    at = found.get_column("_at").to_numpy()
    return _placed(reasons, at, found.get_column("_of").to_numpy(), frame.height, on)


def _placed(
    reasons: pl.DataFrame, at: np.ndarray, of: np.ndarray, height: int, on: list[str]
) -> pl.DataFrame:
    """The reason columns of ``height`` rows: row ``of[i]`` of ``reasons`` at row ``at[i]``
    (ascending), empty lists elsewhere."""
    if len(at) > 1 and not np.all(np.diff(at) > 0):
        raise ValueError(f"reasons name a row twice (keys {on})")
    picked = reasons.select(REASON_COLUMNS)[pl.Series(of, dtype=pl.get_index_type())]
    offsets: dict[bytes, pa.Array] = {}  # the columns' lists are mostly equally long
    return pl.DataFrame(
        [_spread(picked.get_column(name), at, height, offsets) for name in REASON_COLUMNS]
    )


def _item_reasons_by_runs(
    items: pl.DataFrame, reasons: pl.DataFrame, per_declaration: pl.DataFrame
) -> pl.DataFrame:
    """``_reasons_of(items, reasons, KEYS)`` where each declaration's items are one run
    (``per_declaration`` from ``_declarations_by_runs``): a reason's declaration is found
    among the declarations, its item among that run's few rows, without hashing every item."""
    found = (
        reasons.select(KEYS)
        .with_row_index("_of")
        .join(per_declaration.select("declaration_id", "_first", "n_items"), on="declaration_id")
    )
    sizes = found.get_column("n_items").to_numpy()
    of = np.repeat(found.get_column("_of").to_numpy(), sizes)
    within = np.arange(len(of)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    rows = np.repeat(found.get_column("_first").to_numpy().astype(np.int64), sizes) + within
    same = items.get_column("item_no").gather(rows) == reasons.get_column("item_no").gather(of)
    keep = same.fill_null(False).to_numpy()
    at, of = rows[keep], of[keep]
    order = np.argsort(at, kind="stable")
    return _placed(reasons, at[order], of[order], items.height, KEYS)


def _spread(
    lists: pl.Series, at: np.ndarray, height: int, offsets: dict[bytes, pa.Array] | None = None
) -> pl.Series:
    """A list column of ``height`` rows: ``lists`` at the (ascending) rows ``at``, empty
    lists elsewhere (a null list becomes empty too), built from Arrow offsets.

    The offsets are a step function (they grow only after the few rows ``at``): each step
    is repeated over its rows, in one pass. ``offsets`` shares them between columns whose
    lists have the same lengths.
    """
    lengths = lists.list.len().fill_null(0).to_numpy().astype(np.int64)
    key = lengths.tobytes() + np.asarray(at, dtype=np.int64).tobytes()
    shared = offsets if offsets is not None else {}
    if key not in shared:
        steps = np.concatenate([[0], np.cumsum(lengths)])
        repeats = np.diff(np.concatenate([[0], np.asarray(at, dtype=np.int64) + 1, [height + 1]]))
        ends = np.repeat(steps, repeats)
        shared[key] = pa.Array.from_buffers(pa.int64(), height + 1, [None, pa.py_buffer(ends)])
    values = lists.fill_null(_NO_REASONS).to_arrow()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    array = pa.LargeListArray.from_arrays(shared[key], values.flatten())
    return pl.Series(lists.name, array, dtype=lists.dtype)


def _declarations_by_group_by(items: pl.DataFrame) -> pl.DataFrame:
    """Per declaration (any row order): its first row, time, items, risk and duty."""
    return (
        items.with_row_index("_first")
        .group_by("declaration_id", maintain_order=True)
        .agg(
            pl.col("_first").first(),
            pl.col("declared_at").min(),
            pl.len().cast(pl.Int64).alias("n_items"),
            any_wrong().alias("risk"),
            pl.col("duty_at_risk_usd").sum(),
            pl.col("risk").max().alias("max_item_risk"),
        )
    )


def _declarations_by_runs(items: pl.DataFrame) -> pl.DataFrame | None:
    """``_declarations_by_group_by``'s frame from the runs of the items' declarations, or
    None where they are not in runs."""
    starts = run_starts(items, ["declaration_id"]) if items.height else None
    if starts is None:
        return None
    totals = run_totals(
        starts,
        risk=items.get_column("risk"),
        log_terms=items.select(_log_none_wrong()).to_series(),
        duty=items.get_column("duty_at_risk_usd"),
        when=items.get_column("declared_at"),
    )
    if totals is None:
        return None
    first = starts[:-1]
    return pl.DataFrame(
        [
            items.get_column("declaration_id").gather(first),
            pl.Series("_first", first, dtype=pl.get_index_type()),
            pl.Series("declared_at", totals.earliest).cast(items.schema["declared_at"]),
            pl.Series("n_items", np.diff(starts), dtype=pl.Int64),
            _any_wrong_of(totals.log_sum),
            pl.Series("duty_at_risk_usd", totals.duty_sum, dtype=pl.Float64),
            pl.Series("max_item_risk", totals.max_risk, dtype=pl.Float64),
        ]
    )


@dataclass(frozen=True)
class Assembly:
    """What ``assemble`` takes from the items and trucks alone (``prepare_assembly``): each
    item's row in ``trucks``, and the declarations' totals by their runs (None where the
    items are not in runs of declarations)."""

    of_truck: pl.Series
    per_declaration: pl.DataFrame | None


def prepare_assembly(scored: ItemScores, trucks: pl.DataFrame) -> Assembly:
    """The part of ``assemble`` that needs no reasons: it can run beside ``explain``."""
    # The trucks' rows on a second thread while the declarations' runs are totalled.
    with ThreadPoolExecutor(max_workers=1) as pool:
        found_trucks = pool.submit(truck_rows, scored.items, trucks)
        per_declaration = _declarations_by_runs(scored.items)
        return Assembly(found_trucks.result(), per_declaration)


def assemble(
    scored: ItemScores,
    trucks: pl.DataFrame,
    reasons: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
    prepared: Assembly | None = None,
) -> ScoredBatch:
    """The three output frames from the phases' results, in the batch's order.

    Items and declarations take their truck's lane by the truck's row (``truck_rows``) and
    their reasons by a gather (``_reasons_of``), the same as left joins on the truck and
    the keys would give, without probing a million rows twice. ``prepared``:
    ``prepare_assembly(scored, trucks)`` if the caller ran it already (beside ``explain``).
    """
    item_reasons, declaration_reasons, truck_reasons = reasons
    lanes = trucks.select(pl.col("risk").alias("truck_risk"), *_LANE_OF_TRUCK)
    prepared = prepared if prepared is not None else prepare_assembly(scored, trucks)
    of_truck, per_declaration = prepared.of_truck, prepared.per_declaration
    if per_declaration is None:
        per_declaration = _declarations_by_group_by(scored.items)
        placed_reasons = _reasons_of(scored.items, item_reasons, KEYS)
    else:
        placed_reasons = _item_reasons_by_runs(scored.items, item_reasons, per_declaration)
    items = (
        scored.items.select(
            *KEYS,
            "truck_id",
            "truck_key",
            "crossing",
            "declared_at",
            "risk",
            "duty_at_risk_usd",
        )
        .hstack(lanes[of_truck])
        .hstack(
            scored.items.select(
                "rule_reason",
                _rule_reason_in(scored, 0, "rule_reason_ru"),
                _rule_reason_in(scored, 1, "rule_reason_en"),
            )
        )
        .hstack(placed_reasons)
        .pipe(_with_model, scored)
    )
    first = per_declaration.get_column("_first")
    declarations = (
        per_declaration.select("declaration_id")
        .hstack(scored.items.select("truck_id", "truck_key", "crossing")[first])
        .hstack(per_declaration.select(pl.exclude("declaration_id", "_first")))
        .hstack(lanes.select(_LANE_OF_TRUCK)[of_truck.gather(first)])
        .hstack(_reasons_of(per_declaration, declaration_reasons, ["declaration_id"]))
        .pipe(_with_model, scored)
    )
    truck_frame = (
        trucks.select(
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
        )
        .hstack(_reasons_of(trucks, truck_reasons, TRUCK))
        .pipe(_with_model, scored)
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
    # Assembling what needs no reasons runs beside them (SHAP and the kernels release the GIL).
    with ThreadPoolExecutor(max_workers=1) as pool:
        prepared = pool.submit(prepare_assembly, scored, trucks)
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
        result = assemble(scored, trucks, reasons, prepared.result())
    lap("assemble")
    return ScoredBatch(result.items, result.declarations, result.trucks, timings)
