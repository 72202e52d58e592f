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

The file job around it (read through ingest, quarantine, atomic writes) is ``score_files`` in
``pipelines.score_job``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl
import pyarrow as pa

from risk.lanes import CapacityConfig, assign_lanes, truck_key
from risk.reasons import (
    Contribution,
    ReasonTemplate,
    item_contributions,
    reason_texts,
    select,
    top_positive,
)
from risk.rules import (
    RULE_HELPERS,
    RuleSet,
    item_rule_columns,
    truck_rule_aggregations,
    truck_rule_columns,
)
from risk.schemas import InspectionOutcome, empty

if TYPE_CHECKING:
    from features.config import FeatureConfig
    from features.profiles import EntityProfiles

KEYS = ["declaration_id", "item_no"]
TRUCK = ["truck_key", "crossing"]
REASON_LANES = ("red", "yellow")
# SHAP for the riskiest item of each red or yellow truck: it dominates the truck's risk, and
# one explained row per truck keeps a 7,000-truck queue's reasons within seconds.
MAX_ITEMS_EXPLAINED = 1
RANDOM_REASON = {
    "en": "Random selection: the mandatory {share} share inspected whatever the score",
    "ru": "Случайный отбор: обязательная доля {share} проверяется независимо от оценки",
}
# Categorical features reach the model as integer codes; an officer reads the value itself.
CATEGORICAL_SOURCES = {
    "origin_country_code": pl.col("origin_country"),
    "dispatch_country_code": pl.col("dispatch_country"),
    "destination_country_code": pl.col("destination_country"),
    "procedure_code": pl.col("procedure").cast(pl.String),
    "hs_chapter_code": pl.col("hs_code").str.slice(0, 2),
    "crossing_code": pl.col("crossing"),
}
CATEGORICAL_SOURCE_COLUMNS = (
    "origin_country",
    "dispatch_country",
    "destination_country",
    "procedure",
    "hs_code",
    "crossing",
)


class Scorer(Protocol):
    """What batch scoring needs of a trained model (``experiments.registry.load_scorer``)."""

    model_version: str
    run_id: str
    feature_names: Sequence[str]
    feature_config: FeatureConfig
    profiles: EntityProfiles | None

    def predict_risk(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability of a violation per row of the feature matrix."""
        ...

    def expected_duty(self, features: pl.DataFrame, risk: np.ndarray) -> np.ndarray:
        """Expected duty at risk (USD) per row."""
        ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP contributions per row and feature (log-odds), without the bias column."""
        ...


@dataclass(frozen=True)
class ItemScores:
    """Phase 1 of one batch: scored items, with the features kept for the reasons phase."""

    items: pl.DataFrame
    features: pl.DataFrame  # ROW (the item's row in ``items``), the model's features
    feature_rows: np.ndarray  # for each row of ``items``, its row in ``features``
    raw: pl.DataFrame  # the source columns of categorical features, to show their values
    model_version: str
    run_id: str

    def feature_frame(self, rows: np.ndarray) -> pl.DataFrame:
        """The features of the given rows of ``items``, in that order."""
        return self.features[self.feature_rows[rows]]


@dataclass(frozen=True)
class ScoredBatch:
    """Per item, per declaration and per truck: risk, duty at risk, lane, reasons, model."""

    items: pl.DataFrame
    declarations: pl.DataFrame
    trucks: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def as_polars(batch: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """A Polars frame from an Arrow table or a Polars frame (no copy where possible)."""
    if isinstance(batch, pl.DataFrame):
        return batch
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return frame


def as_of_cutoff(declarations: pl.DataFrame, profiles: EntityProfiles) -> pl.DataFrame:
    """Declarations filed before the profile's cut-off, moved to the cut-off.

    Entity profiles answer for declarations from their cut-off on, which keeps training-time
    features free of look-ahead. Scoring is another matter: whatever is known now may be used.
    A queue holds papers lodged hours before the model's cut-off; they are scored with what
    was known at the cut-off (more, not less, than at their filing). Later rows are untouched.
    """
    cutoff = pl.lit(profiles.cutoff, dtype=pl.Datetime("us"))
    return declarations.with_columns(pl.col("declared_at").clip(lower_bound=cutoff))


@dataclass(frozen=True)
class LatestReference:
    """A profile's price reference, serving rows of later periods as of its own period.

    A profile keeps the price reference of its cut-off's period and refuses rows of later
    periods, whose history-mode reference would include months it never saw. At scoring time
    the latest reference there is is the right one, so rows of later periods are looked up as
    of the last instant of the profile's period; only the reference sees that date, the
    entity history keeps every row's own time.
    """

    reference: Any
    latest: datetime

    def transform(self, items: pl.LazyFrame) -> pl.LazyFrame:
        latest = pl.lit(self.latest, dtype=pl.Datetime("us"))
        return self.reference.transform(
            items.with_columns(pl.col("declared_at").clip(upper_bound=latest))
        )


def scoring_profiles(profiles: EntityProfiles) -> EntityProfiles:
    """The profile with its price reference wrapped in ``LatestReference``."""
    import dataclasses

    reference = profiles.reference
    start = getattr(reference, "valid_from_", None)
    if start is None or isinstance(reference, LatestReference):
        return profiles
    latest = pl.select(
        pl.lit(start, dtype=pl.Datetime("us"))
        .dt.offset_by(profiles.config.reference_period)
        .dt.offset_by("-1us")
    ).item()
    return dataclasses.replace(profiles, reference=LatestReference(reference, latest))


ROW = "_row"
_NO_REASONS = pl.lit([], dtype=pl.List(pl.String))


def compute_features(
    declarations: pl.DataFrame,
    scorer: Scorer,
    *,
    profiles: EntityProfiles | None = None,
    arrivals: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The model's features of every item, with ``ROW``, the item's row in ``declarations``.

    The rows come in whatever order the feature pipeline produced them: reordering a
    hundred-column frame costs more than the rest of scoring bar the model, so the scores
    are put back in order instead (a gather on one column). Entity history counts the batch's
    own earlier declarations too, so features are computed over a whole batch at once, never
    per partition of it. Items outside the time the entity profile serves are scored as of
    its edges (``as_of_cutoff``, ``scoring_profiles``).
    """
    from features.pipeline import build_features

    past = profiles if profiles is not None else scorer.profiles
    if past is not None:
        declarations_then = as_of_cutoff(declarations, past)
        past = scoring_profiles(past)
    else:
        declarations_then = declarations
    frame = build_features(
        declarations_then.lazy(),
        empty(InspectionOutcome).lazy(),
        profiles=past,
        config=scorer.feature_config,
        arrivals=arrivals.lazy() if arrivals is not None else None,
    ).collect()
    order = declarations.select(KEYS).with_row_index(ROW)
    rows = frame.select(KEYS).join(order, on=KEYS, how="left", maintain_order="left")
    if rows.get_column(ROW).null_count() or frame.height != declarations.height:
        raise ValueError(
            f"features for {frame.height} items, batch has {declarations.height}: "
            "duplicate (declaration_id, item_no) keys?"
        )
    return frame.select(scorer.feature_names).with_columns(rows.get_column(ROW))


def take_features(features: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The features of the given batch rows, in that order, renumbered 0..len(rows)-1."""
    position = _inverse(features.get_column(ROW).to_numpy(), features.height)
    return features[position[rows]].with_columns(
        pl.Series(ROW, np.arange(len(rows)), dtype=pl.UInt32)
    )


def _inverse(rows: np.ndarray, n: int) -> np.ndarray:
    inverse = np.empty(n, dtype=np.int64)
    inverse[rows] = np.arange(len(rows))
    return inverse


def feature_matrix(features: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Float32 matrix of the named columns, nulls as NaN (what LightGBM reads as missing)."""
    return features.select(pl.col(list(names)).cast(pl.Float32)).to_numpy()


def predict_matrix(
    scorer: Scorer, features: pl.DataFrame, matrix: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated risk and expected duty at risk per row of ``matrix`` (built once).

    The project's scorer (``experiments.scorer.Scorer``) maps categorical codes to the dense
    indices its boosters were trained on; doing that once and letting the classifier and the
    duty regressor read the same matrix saves a rebuild and a remap of the whole matrix. This
    mirrors ``Scorer.predict_risk`` and ``Scorer.expected_duty`` exactly (a test holds them
    equal); any other scorer is asked through the protocol.
    """
    booster = getattr(scorer, "booster", None)
    calibrator = getattr(scorer, "calibrator", None)
    categories = getattr(scorer, "categories", None)
    if booster is None or calibrator is None or categories is None or not len(matrix):
        risk = np.asarray(scorer.predict_risk(matrix), dtype=np.float64)
        return risk, np.asarray(scorer.expected_duty(features, risk), dtype=np.float64)
    threads = getattr(scorer, "num_threads", 0)
    dense = categories.transform(matrix)
    risk = np.asarray(calibrator.predict(booster.predict(dense, num_threads=threads)))
    duty_booster = getattr(scorer, "duty_booster", None)
    if duty_booster is not None:
        duty_if_wrong = np.clip(duty_booster.predict(dense, num_threads=threads), 0.0, None)
    else:
        duty_if_wrong = np.asarray(scorer.expected_duty(features, np.ones(len(risk))))
    return risk, risk * np.asarray(duty_if_wrong, dtype=np.float64)


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
    matrix = feature_matrix(features, scorer.feature_names)
    risk_f, duty_f = predict_matrix(scorer, features, matrix)
    # Back from the feature pipeline's row order to the batch's.
    feature_rows = _inverse(features.get_column(ROW).to_numpy(), features.height)
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
    )


def _any_wrong(column: str = "risk") -> pl.Expr:
    """1 - prod(1 - p): the chance that at least one of independent items is wrong."""
    return 1.0 - pl.col(column).clip(0.0, 1.0).neg().log1p().sum().exp()


def aggregate_trucks(items: pl.DataFrame) -> pl.DataFrame:
    """One row per truck and crossing, in order of first appearance, with rules and risk.

    ``draw_key`` (truck, crossing, first declaration) seeds the random-share draw, so that a
    truck's next trip gets a fresh draw.
    """
    ruled = items.get_column("rule_lane").null_count() < items.height
    trucks = items.group_by(TRUCK, maintain_order=True).agg(
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
        _any_wrong().alias("risk"),
        pl.col("duty_at_risk_usd").sum(),
        pl.col("risk").max().alias("max_item_risk"),
        # Without any rule hit the rule columns are constant: no need to aggregate them.
        *(truck_rule_aggregations() if ruled else []),
    )
    if ruled:
        return trucks.with_columns(truck_rule_columns()).drop(RULE_HELPERS)
    return trucks.with_columns(rule_lane=pl.lit(None, dtype=pl.String), rule_reasons=_NO_REASONS)


def explain(
    scored: ItemScores,
    trucks: pl.DataFrame,
    scorer: Scorer,
    *,
    reasons_for: Collection[str] = REASON_LANES,
    max_items_explained: int = MAX_ITEMS_EXPLAINED,
    random_share: Mapping[str | None, float] | None = None,
    lang: str = "en",
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Phase 4: reasons per item, declaration and truck for trucks in ``reasons_for`` lanes.

    ``trucks`` carries the lanes (``truck_key``, ``crossing``, ``lane``, ``selection``,
    ``rule_reasons``). Returns three frames keyed by (``declaration_id``, ``item_no``),
    ``declaration_id`` and (``truck_key``, ``crossing``), each with ``reasons`` and
    ``reason_features``; only rows that have reasons appear.

    A random pick's reason is its selection: the model did not choose it, and the random
    share grows with the queue (3% of a million-item day is thousands of trucks), so its
    items get no SHAP row.
    """
    items = scored.items
    flagged = trucks.filter(pl.col("lane").is_in(list(reasons_for)))
    explained = (
        items.with_row_index("_row")
        .join(flagged.filter(pl.col("selection") != "random").select(TRUCK), on=TRUCK, how="semi")
        .sort([*TRUCK, "risk", "_row"], descending=[False, False, True, False])
        .filter(pl.int_range(pl.len()).over(TRUCK) < max_items_explained)
        .sort("_row")
    )
    rows = explained.get_column("_row").to_numpy()
    names = list(scorer.feature_names)
    if len(rows):
        matrix = feature_matrix(scored.feature_frame(rows), names)
        contrib = np.asarray(scorer.contributions(matrix))
    else:
        contrib = np.empty((0, len(names)))
    top, _ = top_positive(contrib)
    needed = [names[j] for j in np.unique(top[top >= 0])]
    values = _display_values(scored, rows, needed)
    per_item = item_contributions(contrib, names, values)
    templates = _templates(needed)

    item_reasons: list[list[str]] = []
    item_features: list[list[str]] = []
    by_declaration: dict[str, list[Contribution]] = {}
    by_truck: dict[tuple[str, str], list[Contribution]] = {}
    for (declaration_id, key, crossing, rule_reason), contributions in zip(
        explained.select("declaration_id", *TRUCK, "rule_reason").iter_rows(),
        per_item,
        strict=True,
    ):
        chosen = select(contributions)
        texts = reason_texts(chosen, templates, lang)
        item_reasons.append([rule_reason, *texts][:5] if rule_reason is not None else texts)
        item_features.append([c.feature for c in chosen])
        by_declaration.setdefault(declaration_id, []).extend(contributions)
        by_truck.setdefault((key, crossing), []).extend(contributions)

    declaration_reasons: list[list[str]] = []
    declaration_features: list[list[str]] = []
    for contributions in by_declaration.values():
        chosen = select(contributions)
        declaration_reasons.append(reason_texts(chosen, templates, lang))
        declaration_features.append([c.feature for c in chosen])

    share = random_share or {}
    truck_reasons: list[list[str]] = []
    truck_features: list[list[str]] = []
    for key, crossing, selection, rule_reasons in flagged.select(
        *TRUCK, "selection", "rule_reasons"
    ).iter_rows():
        chosen = select(by_truck.get((key, crossing), []))
        lead = list(rule_reasons or [])
        if selection == "random":
            lead.append(_random_reason(share.get(crossing, 0.03), lang))
        truck_reasons.append([*lead, *reason_texts(chosen, templates, lang)][: max(5, len(lead))])
        truck_features.append([c.feature for c in chosen])

    def reasons(
        frame: pl.DataFrame, texts: list[list[str]], names: list[list[str]]
    ) -> pl.DataFrame:
        return frame.with_columns(
            pl.Series("reasons", texts, dtype=pl.List(pl.String)),
            pl.Series("reason_features", names, dtype=pl.List(pl.String)),
        )

    declaration_ids = pl.DataFrame(
        {"declaration_id": list(by_declaration)}, schema={"declaration_id": pl.String}
    )
    return (
        reasons(explained.select(KEYS), item_reasons, item_features),
        reasons(declaration_ids, declaration_reasons, declaration_features),
        reasons(flagged.select(TRUCK), truck_reasons, truck_features),
    )


def _random_reason(share: float, lang: str) -> str:
    return RANDOM_REASON.get(lang, RANDOM_REASON["en"]).format(share=f"{share:.0%}")


def _templates(names: Sequence[str]) -> dict[str, ReasonTemplate]:
    from features.catalog import entry_for

    templates = {}
    for name in names:
        try:
            entry = entry_for(name)
        except KeyError:
            continue
        templates[name] = ReasonTemplate(en=entry.reason_en, ru=entry.reason_ru)
    return templates


def _display_values(
    scored: ItemScores, rows: np.ndarray, names: Sequence[str]
) -> dict[str, list[object]]:
    """The values an officer reads behind each reason: categoricals decoded to their text."""
    if not len(rows) or not names:
        return {}
    picked = scored.feature_frame(rows).select(names)
    raw = scored.raw[rows]
    values: dict[str, list[object]] = {}
    for name in names:
        if name in CATEGORICAL_SOURCES:
            values[name] = raw.select(CATEGORICAL_SOURCES[name]).to_series().to_list()
        elif name.endswith("_code") and name[: -len("_code")] in raw.columns:
            values[name] = raw.get_column(name[: -len("_code")]).cast(pl.String).to_list()
        else:
            values[name] = picked.get_column(name).to_list()
    return values


def random_shares(
    capacity: CapacityConfig, crossings: Sequence[str | None]
) -> dict[str | None, float]:
    """The random share in force at each crossing, for the reason text."""
    return {name: capacity.for_crossing(name).random_share for name in crossings}


_LANE_OF_TRUCK = ["lane", "selection", "decided_by"]


def _with_model(frame: pl.DataFrame, scored: ItemScores) -> pl.DataFrame:
    return frame.with_columns(
        model_version=pl.lit(scored.model_version, dtype=pl.String),
        run_id=pl.lit(scored.run_id, dtype=pl.String),
    )


def _fill_reasons(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("reasons").fill_null(_NO_REASONS),
        pl.col("reason_features").fill_null(_NO_REASONS),
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
            "reasons",
            "reason_features",
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
            _any_wrong().alias("risk"),
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
            "reasons",
            "reason_features",
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
