"""Batch scoring core: aggregation rule, lanes on the outputs, reasons from SHAP, determinism."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from score_support import world

from pipelines.score import (
    aggregate_trucks,
    compute_features,
    feature_matrix,
    predict_features,
    score_batch,
    take_features,
)
from risk.lanes import CapacityConfig, LaneCapacity
from risk.reasons import format_value
from risk.rules import HardRule, RuleSet

CAPACITY = CapacityConfig(
    seed=3,
    default=LaneCapacity(physical_per_hour=1.0, document_per_hour=3.0, horizon_hours=8.0),
)


@pytest.fixture(scope="module")
def scored():  # type: ignore[no-untyped-def]
    w = world()
    return score_batch(w.queue, w.scorer, capacity=CAPACITY, arrivals=w.arrivals)


def test_truck_risk_is_one_minus_the_product_and_duty_is_summed() -> None:
    items = pl.DataFrame(
        {
            "declaration_id": ["D1", "D1", "D2", "D3"],
            "truck_key": ["T1", "T1", "T1", "T2"],
            "truck_id": ["T1", "T1", "T1", "T2"],
            "crossing": ["A", "A", "A", "A"],
            "declared_at": pl.Series([0, 1, 2, 3]).cast(pl.Datetime("us")),
            "risk": [0.1, 0.2, 0.5, 0.3],
            "duty_at_risk_usd": [10.0, 20.0, 30.0, 7.0],
            "rule_lane": pl.Series([None] * 4, dtype=pl.String),
            "rule_reason": pl.Series([None] * 4, dtype=pl.String),
        }
    )
    trucks = aggregate_trucks(items)
    assert trucks["truck_key"].to_list() == ["T1", "T2"]
    assert trucks["risk"][0] == pytest.approx(1 - 0.9 * 0.8 * 0.5)
    assert trucks["risk"][1] == pytest.approx(0.3)
    assert trucks["duty_at_risk_usd"].to_list() == [60.0, 7.0]
    assert trucks.select("n_items", "n_declarations").rows() == [(3, 2), (1, 1)]
    assert trucks["max_item_risk"].to_list() == [0.5, 0.3]


def test_one_row_per_item_in_input_order_with_model_on_every_row(scored) -> None:  # type: ignore[no-untyped-def]
    queue = world().queue
    assert scored.items.select("declaration_id", "item_no").equals(
        queue.select("declaration_id", "item_no")
    )
    for frame in (scored.items, scored.declarations, scored.trucks):
        assert frame["model_version"].unique().to_list() == ["7"]
        assert frame["run_id"].unique().to_list() == ["run-test-0001"]
        assert frame["risk"].is_between(0, 1).all()
    assert scored.declarations.height == queue["declaration_id"].n_unique()
    assert scored.trucks.height == queue["truck_id"].n_unique()
    assert scored.trucks["n_items"].sum() == queue.height


def test_items_and_declarations_carry_their_trucks_lane(scored) -> None:  # type: ignore[no-untyped-def]
    lanes = scored.trucks.select("truck_key", "crossing", pl.col("lane").alias("truck_lane"))
    for frame in (scored.items, scored.declarations):
        joined = frame.join(lanes, on=["truck_key", "crossing"])
        assert joined.height == frame.height
        assert (joined["lane"] == joined["truck_lane"]).all()
    truck_duty = scored.items.group_by("truck_key").agg(pl.col("duty_at_risk_usd").sum())
    check = scored.trucks.join(truck_duty, on="truck_key", suffix="_items")
    assert np.allclose(check["duty_at_risk_usd"], check["duty_at_risk_usd_items"])


def test_lanes_fill_capacity_red_then_yellow(scored) -> None:  # type: ignore[no-untyped-def]
    trucks = scored.trucks
    budget = CAPACITY.default
    for _, group in trucks.group_by("crossing"):
        targeted = group.filter(selection="targeted")
        red = targeted.filter(lane="red")
        assert red["officer_minutes"].sum() <= budget.red_minutes
        assert targeted.filter(lane="yellow")["officer_minutes"].sum() <= budget.yellow_minutes
    counts = trucks.group_by("lane").len().to_dict(as_series=False)
    assert set(counts["lane"]) == {"red", "yellow", "green"}
    assert trucks.filter(selection="random").height > 0


def test_reasons_only_for_red_and_yellow_trucks(scored) -> None:  # type: ignore[no-untyped-def]
    trucks = scored.trucks
    green = trucks.filter(lane="green")
    assert green["reasons"].list.len().max() == 0
    flagged = trucks.filter(pl.col("lane") != "green", selection="targeted")
    lengths = flagged["reasons"].list.len()
    assert lengths.min() >= 1
    assert lengths.max() <= 5
    # Reasons are mostly the full three to five (fewer only when few features pushed up).
    assert (lengths >= 3).mean() > 0.8
    random = trucks.filter(selection="random")
    assert random["reasons"].list.first().str.starts_with("Random selection").all()
    assert scored.items.filter(lane="green")["reasons"].list.len().max() == 0


def test_reasons_are_the_top_shap_contributions_with_their_values(scored) -> None:  # type: ignore[no-untyped-def]
    w = world()
    explained = scored.items.with_row_index("row").filter(pl.col("reason_features").list.len() >= 3)
    assert explained.height > 0
    features = take_features(
        compute_features(w.queue, w.scorer, arrivals=w.arrivals), np.arange(w.queue.height)
    )
    names = w.scorer.feature_names
    sample = explained.head(20)
    matrix = feature_matrix(features[sample["row"].to_numpy()], names)
    contrib = w.scorer.contributions(matrix)
    for i, row in enumerate(sample.iter_rows(named=True)):
        order = np.argsort(-contrib[i], kind="stable")
        top = [names[j] for j in order[:3]]
        assert row["reason_features"][:3] == top
        # The first reason shows the value of its feature for this item.
        first = row["reason_features"][0]
        value = features[int(row["row"])][first].item()
        if not first.endswith("_code"):
            assert format_value(value) in row["reasons"][0]


def test_hard_rules_win_and_are_stated_first() -> None:
    w = world()
    importer = w.queue["importer_id"][0]
    rules = RuleSet(
        rules=(
            HardRule(
                name="watch",
                lane="red",
                reason_en="importer on the watch list",
                importer_ids=(importer,),
            ),
        )
    )
    result = score_batch(w.queue, w.scorer, rules=rules, capacity=CAPACITY, arrivals=w.arrivals)
    hit_trucks = w.queue.filter(pl.col("importer_id") == importer)["truck_id"].unique().to_list()
    ruled = result.trucks.filter(pl.col("truck_key").is_in(hit_trucks))
    assert ruled.height == len(hit_trucks)
    assert set(ruled["lane"]) == {"red"}
    assert set(ruled["selection"]) == {"rule"}
    assert (ruled["reasons"].list.first() == "Rule watch: importer on the watch list").all()
    assert (
        result.items.filter(pl.col("rule_reason").is_not_null()).height
        == w.queue.filter(pl.col("importer_id") == importer).height
    )


def test_same_batch_same_scores_and_arrow_input_agrees(scored) -> None:  # type: ignore[no-untyped-def]
    w = world()
    again = score_batch(w.queue.to_arrow(), w.scorer, capacity=CAPACITY, arrivals=w.arrivals)
    assert again.items.equals(scored.items)
    assert again.declarations.equals(scored.declarations)
    assert again.trucks.equals(scored.trucks)


def test_plate_string_does_not_move_a_score(scored) -> None:  # type: ignore[no-untyped-def]
    w = world()
    replated = w.queue.with_columns(vehicle_plate=pl.lit("777 XYZ 02"))
    again = score_batch(replated, w.scorer, capacity=CAPACITY, arrivals=w.arrivals)
    assert again.items["risk"].equals(scored.items["risk"])
    assert not math.isnan(again.trucks["risk"].sum())


def test_fast_prediction_equals_the_scorers_own() -> None:
    w = world()
    features = compute_features(w.queue, w.scorer, arrivals=w.arrivals)
    matrix = feature_matrix(features, w.scorer.feature_names)
    risk, duty = predict_features(w.scorer, features)
    assert w.scorer.duty_booster is not None
    assert np.array_equal(risk, w.scorer.predict_risk(matrix))
    shuffled = features.sample(fraction=1.0, shuffle=True, seed=3)
    again, _ = predict_features(w.scorer, shuffled)
    assert np.array_equal(
        again, w.scorer.predict_risk(feature_matrix(shuffled, w.scorer.feature_names))
    )
    assert np.allclose(duty, w.scorer.expected_duty(features, risk), rtol=1e-12, atol=0)
    assert duty.sum() > 0


def test_a_queue_spilling_past_the_profiles_edges_is_scored_as_of_them() -> None:
    """Papers filed before the cut-off and trucks of next month are scored, not refused;
    what the profile serves as it is keeps exactly the features it had."""
    w = world()
    trucks = w.queue["truck_id"].unique(maintain_order=True)
    early, late = trucks[:20].implode(), trucks[-20:].implode()
    cutoff = w.scorer.profiles.cutoff
    moved = w.queue.with_columns(
        declared_at=pl.when(pl.col("truck_id").is_in(early))
        .then(pl.lit(cutoff) - pl.duration(hours=5))
        .when(pl.col("truck_id").is_in(late))
        .then(pl.col("declared_at") + pl.duration(days=25))
        .otherwise(pl.col("declared_at"))
    )
    assert moved["declared_at"].dt.month().n_unique() == 2
    features = compute_features(moved, w.scorer, arrivals=w.arrivals)
    every = take_features(features, np.arange(moved.height))
    middle = ~moved["truck_id"].is_in(early) & ~moved["truck_id"].is_in(late)
    alone = moved.filter(middle)
    alone_features = take_features(
        compute_features(alone, w.scorer, arrivals=w.arrivals), np.arange(alone.height)
    )
    names = w.scorer.feature_names
    kept = every.filter(middle.to_numpy()).select(names)
    # The late trucks come after, so the middle ones see nothing new; the early trucks sit at
    # the cut-off, before all of them, and may add to their entity history only.
    reference = [n for n in names if n.startswith(("unit_value", "mass_per_unit"))]
    assert kept.select(reference).equals(alone_features.select(reference))
    late_rows = every.filter(moved["truck_id"].is_in(late).to_numpy())
    assert late_rows["unit_value_kg_reference_rows"].drop_nulls().len() > 0
    result = score_batch(moved, w.scorer, capacity=CAPACITY, arrivals=w.arrivals)
    assert result.items.height == moved.height


def _joined(result, scored_items, trucks, reasons):  # type: ignore[no-untyped-def]
    """What ``assemble`` stood for before it placed rows by position: left joins."""
    from pipelines.score import KEYS, REASON_COLUMNS, TRUCK

    empty = pl.lit([], dtype=pl.List(pl.String))
    lanes = trucks.select(
        *TRUCK, pl.col("risk").alias("truck_risk"), "lane", "selection", "decided_by"
    )
    items = (
        scored_items.join(lanes, on=TRUCK, how="left", maintain_order="left")
        .join(reasons[0], on=KEYS, how="left", maintain_order="left")
        .with_columns(pl.col(c).fill_null(empty) for c in REASON_COLUMNS)
    )
    declarations = (
        result.declarations.select("declaration_id", *TRUCK)
        .join(lanes.drop("truck_risk"), on=TRUCK, how="left", maintain_order="left")
        .join(reasons[1], on="declaration_id", how="left", maintain_order="left")
        .with_columns(pl.col(c).fill_null(empty) for c in REASON_COLUMNS)
    )
    return items, declarations


@pytest.mark.parametrize("layout", ["queue order", "trucks interleaved"])
def test_assemble_places_lanes_and_reasons_as_joins_would(layout: str) -> None:
    from pipelines.score import (
        REASON_COLUMNS,
        assemble,
        explain,
        random_shares,
        score_items,
        truck_rows,
    )
    from risk.lanes import assign_lanes

    w = world()
    queue = (
        w.queue if layout == "queue order" else w.queue.sample(fraction=1.0, shuffle=True, seed=5)
    )
    scored = score_items(queue, w.scorer)
    trucks = assign_lanes(aggregate_trucks(scored.items), CAPACITY, draw_key="draw_key")
    shares = random_shares(CAPACITY, trucks["crossing"].unique().to_list())
    reasons = explain(scored, trucks, w.scorer, random_share=shares)
    assert reasons[0].height > 0
    rows = truck_rows(scored.items, trucks)
    assert rows.null_count() == 0
    assert scored.items.select("truck_key", "crossing").equals(
        trucks.select("truck_key", "crossing")[rows]
    )
    result = assemble(scored, trucks, reasons)
    items, declarations = _joined(result, scored.items, trucks, reasons)
    columns = ["truck_risk", "lane", "selection", "decided_by", *REASON_COLUMNS]
    assert result.items.select(columns).equals(items.select(columns))
    assert result.declarations.select(columns[1:]).equals(declarations.select(columns[1:]))
    assert result.items.filter(pl.col("reasons").list.len() > 0).height == reasons[0].height


def test_an_item_whose_truck_is_missing_gets_no_lane() -> None:
    from pipelines.score import truck_rows

    items = pl.DataFrame({"truck_key": ["T1", "T2", "T1"], "crossing": ["A", "A", "A"]})
    trucks = pl.DataFrame({"truck_key": ["T1"], "crossing": ["A"]})
    assert truck_rows(items, trucks).to_list() == [0, None, 0]
    together = pl.DataFrame({"truck_key": ["T1", "T1", "T2"], "crossing": ["A", "A", "B"]})
    assert truck_rows(together, together.unique(maintain_order=True)).to_list() == [0, 0, 1]


def test_reasons_naming_a_row_twice_are_refused() -> None:
    from pipelines.score import _reasons_of

    frame = pl.DataFrame({"declaration_id": ["D1", "D2", "D3"]})
    reasons = pl.DataFrame(
        {
            "declaration_id": ["D3", "D1"],
            **{c: [["b"], ["a", "a2"]] for c in ("reasons", "reasons_ru", "reasons_en")},
            "reason_features": [["f"], ["g", "h"]],
        }
    )
    placed = _reasons_of(frame, reasons, ["declaration_id"])
    assert placed["reasons"].to_list() == [["a", "a2"], [], ["b"]]
    with pytest.raises(ValueError, match="twice"):
        _reasons_of(frame, pl.concat([reasons, reasons]), ["declaration_id"])


def test_features_in_another_order_score_each_item_the_same() -> None:
    from pipelines.score import score_items

    w = world()
    features = compute_features(w.queue, w.scorer, arrivals=w.arrivals)
    shuffled = features.sample(fraction=1.0, shuffle=True, seed=9)
    assert not shuffled.get_column("_row").is_sorted()
    ordered = score_items(w.queue, w.scorer, features=features)
    again = score_items(w.queue, w.scorer, features=shuffled)
    assert np.array_equal(ordered.feature_rows, np.arange(w.queue.height))
    assert again.items.equals(ordered.items)
    assert again.feature_frame(np.arange(5)).equals(ordered.feature_frame(np.arange(5)))
