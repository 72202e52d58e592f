"""The crossing simulation on tiny queues whose answers can be worked out by hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from risk.lanes import CapacityConfig, LaneCapacity
from risk.rules import HardRule, RuleSet
from risk.simulation import (
    Crossing,
    Detection,
    Truck,
    crossings_for,
    format_table,
    load_queue,
    model_lanes,
    rule_lanes,
    run_policy,
    share_lanes,
    simulate,
)
from risk.simulation.plot import plot_queues

ONE_OF_EACH = Crossing(
    booths=1,
    minutes_green=2.0,
    document_officers=1,
    minutes_document=10.0,
    minutes_document_per_item=5.0,
    physical_bays=1,
    minutes_physical=60.0,
    zone_capacity=10,
)


def _released(trucks: list[Truck], crossing: Crossing = ONE_OF_EACH) -> list[float]:
    result = simulate(trucks, {"A": crossing, "B": crossing})
    return result.released_min.tolist()


def test_green_trucks_pass_one_booth_one_after_another() -> None:
    assert _released([Truck("A", "green")] * 3) == [2.0, 4.0, 6.0]


def test_two_booths_halve_the_time() -> None:
    crossing = Crossing(booths=2, minutes_green=2.0)
    assert _released([Truck("A", "green")] * 4, crossing) == [2.0, 2.0, 4.0, 4.0]


def test_a_red_truck_does_not_hold_up_the_green_one_behind_it() -> None:
    # booth 0-2, bay 2-62 | booth 2-4, released | booth 4-6, waits for the bay 62-122
    trucks = [Truck("A", "red"), Truck("A", "green"), Truck("A", "red")]
    assert _released(trucks) == [62.0, 4.0, 122.0]


def test_a_full_zone_stops_the_barrier() -> None:
    # Only one truck may stand past the barrier: the green truck waits outside until 62.
    crossing = Crossing(
        booths=1, minutes_green=2.0, physical_bays=1, minutes_physical=60.0, zone_capacity=1
    )
    trucks = [Truck("A", "red"), Truck("A", "green"), Truck("A", "red")]
    result = simulate(trucks, {"A": crossing})
    assert result.released_min.tolist() == [62.0, 64.0, 126.0]
    assert result.entered_min.tolist() == [0.0, 62.0, 64.0]


def test_document_checks_take_longer_for_more_items() -> None:
    # booth 0-2, check 2-12 (one item) | booth 2-4, waits, check 12-32 (three items)
    trucks = [Truck("A", "yellow", n_items=1), Truck("A", "yellow", n_items=3)]
    assert _released(trucks) == [12.0, 32.0]


def test_crossings_run_side_by_side() -> None:
    trucks = [Truck("A", "red"), Truck("B", "red")]
    assert _released(trucks) == [62.0, 62.0]


def test_late_arrivals_find_an_empty_crossing() -> None:
    trucks = [Truck("A", "green", arrival_min=0.0), Truck("A", "green", arrival_min=100.0)]
    result = simulate(trucks, {"A": ONE_OF_EACH})
    assert result.released_min.tolist() == [2.0, 102.0]
    assert result.wait_hours.tolist() == pytest.approx([2 / 60, 2 / 60])


def test_queue_length_counts_trucks_not_yet_released() -> None:
    trucks = [Truck("A", "red"), Truck("A", "green"), Truck("A", "red")]
    result = simulate(trucks, {"A": ONE_OF_EACH})
    assert result.queue_time_min.tolist() == [0.0, 4.0, 62.0, 122.0]
    assert result.queue_length.tolist() == [3, 2, 1, 0]
    assert result.hours_to_clear == pytest.approx(122 / 60)


def _queue() -> tuple[pl.DataFrame, pl.DataFrame]:
    declarations = pl.DataFrame(
        {
            "declaration_id": ["D1", "D1", "D2", "D3", "D4"],
            "item_no": pl.Series([1, 2, 1, 1, 1], dtype=pl.Int32),
            "truck_id": ["T1", "T1", "T1", "T2", None],
            "crossing": ["A"] * 5,
            "declared_at": [datetime(2025, 10, 1, h) for h in (3, 3, 4, 1, 2)],
            "importer_id": ["I1", "I1", "I2", "I3", "I4"],
            "hs_code": ["8517120000", "8517", "6403", "8471", "9503"],
            "origin_country": ["CN"] * 5,
            "dispatch_country": ["KZ"] * 5,
            "customs_value_usd": [1000.0, 2000.0, 500.0, 800.0, 90.0],
            "duty_rate_pct": [10.0, 10.0, 5.0, 0.0, 20.0],
        }
    )
    truth = pl.DataFrame(
        {
            "declaration_id": ["D1", "D1", "D2", "D3", "D4"],
            "item_no": pl.Series([1, 2, 1, 1, 1], dtype=pl.Int32),
            "scheme": ["clean", "undervaluation", "clean", "clean", "misclassification"],
            "duty_evaded_usd": [0.0, 500.0, 0.0, 0.0, 70.0],
        }
    )
    return declarations, truth


def test_queue_aggregates_items_into_trucks_in_queue_order() -> None:
    declarations, truth = _queue()
    queue = load_queue(declarations, truth)
    assert queue.trucks.select(
        "truck_key", "n_items", "violating_items", "violation", "duty_evaded_usd"
    ).rows() == [
        ("T2", 1, 0, False, 0.0),
        ("D4", 1, 1, True, 70.0),
        ("T1", 3, 1, True, 500.0),
    ]
    first_two = load_queue(declarations, truth, limit=2)
    assert first_two.trucks.height == 2
    assert sorted(first_two.items["declaration_id"]) == ["D3", "D4"]


def test_policy_counts_what_inspections_find() -> None:
    declarations, truth = _queue()
    queue = load_queue(declarations, truth)
    crossings = {"A": ONE_OF_EACH}
    certain = Detection(default_physical=1.0, document_factor=1.0)
    lanes = pl.Series(["green", "yellow", "red"])
    result = run_policy("hand", queue, lanes, crossings, detection=certain)
    assert (result.red, result.yellow) == (1, 1)
    assert (result.violations, result.violations_caught, result.items_caught) == (2, 2, 2)
    assert result.duty_recovered_usd == pytest.approx(570.0)
    blind = run_policy("blind", queue, lanes, crossings, detection=Detection(default_physical=0.0))
    assert blind.violations_caught == 0
    # Documents find nothing: only the red truck's undervaluation is found.
    no_papers = Detection(default_physical=1.0, document_factor=0.0)
    red_only = run_policy("red", queue, lanes, crossings, detection=no_papers)
    assert (red_only.violations_caught, red_only.duty_recovered_usd) == (1, 500.0)
    per_scheme = Detection(physical={"undervaluation": 0.0}, default_physical=1.0)
    assert run_policy("s", queue, lanes, crossings, detection=per_scheme).items_caught <= 1
    # T2 green 0-2; D4 booth 2-4, check 4-14; T1 booth 4-6, bay 6-86 (60 + 2 extra items x 10)
    crossings = {"A": Crossing(**(ONE_OF_EACH.__dict__ | {"minutes_physical_per_item": 10.0}))}
    timed = run_policy("hand", queue, lanes, crossings, detection=certain)
    assert timed.simulation.released_min.tolist() == [2.0, 14.0, 86.0]
    assert timed.hours_to_clear == pytest.approx(86 / 60)
    assert timed.mean_wait_hours == pytest.approx((2 + 14 + 86) / 3 / 60)
    assert "hand" in format_table([timed])


def test_detection_draws_are_shared_between_policies() -> None:
    declarations, truth = _queue()
    queue = load_queue(declarations, truth)
    half = Detection(default_physical=0.5, document_factor=1.0)
    lanes = pl.Series(["red", "red", "red"])
    runs = {run_policy(n, queue, lanes, {"A": ONE_OF_EACH}, detection=half, seed=4).items_caught
            for n in ("a", "b")}  # fmt: skip
    assert len(runs) == 1


def test_policy_lanes() -> None:
    declarations, truth = _queue()
    trucks = load_queue(declarations, truth).trucks
    watch = RuleSet(
        rules=(HardRule(name="w", lane="red", reason_en="phones", hs_prefixes=("8517",)),)
    )
    assert rule_lanes(declarations, trucks, watch).to_list() == ["green", "green", "red"]
    scored = pl.DataFrame({"truck_key": ["T1", "T2", "T2"], "lane": ["yellow", "green", "red"]})
    assert model_lanes(trucks, scored).to_list() == ["red", "green", "yellow"]
    many = pl.DataFrame({"truck_key": [f"T{i}" for i in range(10_000)]})
    red_share = (share_lanes(many, 0.95, seed=3) == "red").mean()
    assert red_share == pytest.approx(0.95, abs=0.01)


def test_rules_only_with_capacity_fills_the_models_minutes_with_rule_hits() -> None:
    declarations, truth = _queue()
    trucks = load_queue(declarations, truth).trucks
    watch = RuleSet(
        rules=(HardRule(name="w", lane="red", reason_en="x", origin_countries=("CN",)),)
    )
    # 90 minutes: T1 (most duty at stake per minute; 3 items, 80 min) fits, nothing after it.
    one = CapacityConfig(
        default=LaneCapacity(physical_per_hour=1.5, document_per_hour=0, horizon_hours=1)
    )
    assert rule_lanes(declarations, trucks, watch, one).to_list() == ["green", "green", "red"]
    assert rule_lanes(declarations, trucks, watch).to_list() == ["red", "red", "red"]


def test_crossings_come_from_the_capacity_file() -> None:
    cap = CapacityConfig(
        default=LaneCapacity(physical_per_hour=6, minutes_physical=60),
        crossing={"B": LaneCapacity(physical_per_hour=12, minutes_physical=30)},
    )
    trucks = pl.DataFrame({"crossing": ["A", "B"]})
    crossings = crossings_for(trucks, cap)
    assert crossings["A"].physical_bays == 6
    assert crossings["B"].physical_bays == 6
    assert crossings["B"].minutes_physical == 30


def test_plot_is_written(tmp_path: Path) -> None:
    declarations, truth = _queue()
    queue = load_queue(declarations, truth)
    results = [
        run_policy(name, queue, pl.Series([lane] * 3), {"A": ONE_OF_EACH})
        for name, lane in (("all red", "red"), ("all green", "green"))
    ]
    path = plot_queues(results, tmp_path / "queue.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.all(np.diff(results[0].simulation.queue_length) <= 0)
