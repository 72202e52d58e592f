"""Lanes: capacity is respected, filled in order of duty per minute, random share and rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.errors import RiskError
from risk.lanes import CapacityConfig, LaneCapacity, assign_lanes, load_capacity


def _trucks(n: int, *, seed: int = 0, crossings: tuple[str, ...] = ("A", "B")) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    risk = rng.beta(0.5, 5, n)
    return pl.DataFrame(
        {
            "truck_key": [f"T{i:06d}" for i in range(n)],
            "crossing": [crossings[i % len(crossings)] for i in range(n)],
            "n_items": rng.integers(1, 6, n),
            "risk": risk,
            "duty_at_risk_usd": risk * rng.lognormal(7, 1, n),
            "rule_lane": pl.Series([None] * n, dtype=pl.String),
        }
    )


def _capacity(**overrides: float) -> CapacityConfig:
    base = {
        "physical_per_hour": 2.0,
        "document_per_hour": 4.0,
        "horizon_hours": 10.0,
        "random_share": 0.0,
    }
    return CapacityConfig(seed=1, default=LaneCapacity(**(base | overrides)))


def test_targeted_minutes_stay_within_each_crossings_budget() -> None:
    # Random picks come out of the red minutes; here they fit in them.
    cap = _capacity(random_share=0.03, physical_per_hour=20.0, document_per_hour=40.0)
    out = assign_lanes(_trucks(3000), cap)
    assert out.filter(selection="random").height > 0
    per = out.group_by("crossing", "lane", "selection").agg(pl.col("officer_minutes").sum())
    for crossing in ("A", "B"):
        red = per.filter(crossing=crossing, lane="red")["officer_minutes"].sum()
        yellow = per.filter(crossing=crossing, lane="yellow")["officer_minutes"].sum()
        assert red <= cap.default.red_minutes + 1e-6
        assert yellow <= cap.default.yellow_minutes + 1e-6
        # Capacity is used, not left idle, when the queue is far longer than the horizon.
        assert red > 0.8 * cap.default.red_minutes
        assert yellow > 0.8 * cap.default.yellow_minutes


def test_red_then_yellow_in_order_of_duty_per_minute() -> None:
    cap = _capacity()
    out = assign_lanes(_trucks(2000), cap).with_columns(
        value_red=pl.col("duty_at_risk_usd") / (60 + 10 * (pl.col("n_items") - 1)),
        value_yellow=pl.col("duty_at_risk_usd") / (15 + 3 * (pl.col("n_items") - 1)),
    )
    for crossing in ("A", "B"):
        rows = out.filter(crossing=crossing)
        red = rows.filter(lane="red")
        rest = rows.filter(pl.col("lane") != "red")
        assert red.height > 0
        assert red["value_red"].min() >= rest["value_red"].max()
        yellow = rows.filter(lane="yellow")
        green = rows.filter(lane="green")
        assert yellow.height > 0
        assert yellow["value_yellow"].min() >= green["value_yellow"].max()
    assert set(out.filter(pl.col("lane") != "green")["selection"]) == {"targeted"}
    assert set(out.filter(lane="green")["selection"]) == {"none"}


def test_more_items_cost_more_minutes_so_a_small_high_value_truck_goes_first() -> None:
    cap = _capacity(physical_per_hour=1.0, horizon_hours=1.0, document_per_hour=0.0)
    trucks = pl.DataFrame(
        {
            "truck_key": ["big", "small"],
            "crossing": ["A", "A"],
            "n_items": [5, 1],
            "risk": [0.9, 0.5],
            # big: 1000 over 100 min = 10/min; small: 900 over 60 min = 15/min
            "duty_at_risk_usd": [1000.0, 900.0],
            "rule_lane": pl.Series([None, None], dtype=pl.String),
        }
    )
    out = assign_lanes(trucks, cap)
    assert out["lane"].to_list() == ["green", "red"]
    assert out["officer_minutes"].to_list() == [0.0, 60.0]


def test_random_share_is_marked_honoured_and_deterministic() -> None:
    cap = _capacity(random_share=0.03, physical_per_hour=0.0, document_per_hour=0.0)
    trucks = _trucks(20_000).with_columns(risk=pl.lit(0.0), duty_at_risk_usd=pl.lit(0.0))
    out = assign_lanes(trucks, cap)
    random = out.filter(selection="random")
    assert 0.025 < random.height / out.height < 0.035
    assert set(random["lane"]) == {"red"}
    assert set(random["decided_by"]) == {"random"}
    # Nothing else is inspected: there is no capacity and every score is zero.
    assert out.filter(lane="red").height == random.height
    assert out.equals(assign_lanes(trucks, cap))
    # The draw depends on the truck, not on the batch it came in: a split queue agrees.
    half = assign_lanes(trucks.tail(7_000), cap)
    assert half["selection"].equals(out.tail(7_000)["selection"])
    other_seed = assign_lanes(trucks, cap.model_copy(update={"seed": 2}))
    assert not other_seed["selection"].equals(out["selection"])


def test_random_picks_use_red_capacity_first() -> None:
    trucks = _trucks(1000, crossings=("A",))
    with_random = assign_lanes(trucks, _capacity(random_share=0.05))
    targeted = with_random.filter(lane="red", selection="targeted")
    without = assign_lanes(trucks, _capacity(random_share=0.0)).filter(lane="red")
    assert targeted.height < without.height
    total = with_random.filter(lane="red")["officer_minutes"].sum()
    random_minutes = with_random.filter(selection="random")["officer_minutes"].sum()
    assert total - random_minutes <= _capacity().default.red_minutes + 1e-6


def test_hard_rules_override_the_score() -> None:
    trucks = _trucks(50, crossings=("A",)).with_columns(
        rule_lane=pl.when(pl.col("truck_key") == "T000000")
        .then(pl.lit("red"))
        .when(pl.col("truck_key") == "T000001")
        .then(pl.lit("green"))
        .otherwise(None),
        risk=pl.when(pl.col("truck_key") == "T000000").then(0.0).otherwise(0.99),
        duty_at_risk_usd=pl.when(pl.col("truck_key") == "T000000").then(0.0).otherwise(1e6),
    )
    out = assign_lanes(trucks, _capacity(random_share=1.0)).head(2)
    assert out.select("lane", "selection", "decided_by").rows() == [
        ("red", "rule", "rule"),
        ("green", "none", "rule"),
    ]


def test_min_risk_keeps_low_risk_trucks_out_of_spare_capacity() -> None:
    cap = _capacity(physical_per_hour=100.0, document_per_hour=100.0, min_risk_red=0.5)
    trucks = _trucks(100, crossings=("A",)).with_columns(risk=pl.int_range(100, eager=True) / 100)
    out = assign_lanes(trucks, cap)
    assert out.filter(lane="red")["risk"].min() >= 0.5
    assert out.filter(lane="yellow")["risk"].max() < 0.5


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    per_hour=st.floats(0.0, 5.0),
    horizon=st.floats(0.5, 12.0),
    seed=st.integers(0, 10_000),
)
def test_capacity_is_never_exceeded(n: int, per_hour: float, horizon: float, seed: int) -> None:
    cap = _capacity(physical_per_hour=per_hour, document_per_hour=per_hour, horizon_hours=horizon)
    out = assign_lanes(_trucks(n, seed=seed), cap)
    for crossing in out["crossing"].unique():
        rows = out.filter(crossing=crossing)
        assert rows.filter(lane="red")["officer_minutes"].sum() <= cap.default.red_minutes + 1e-6
        assert (
            rows.filter(lane="yellow")["officer_minutes"].sum() <= cap.default.yellow_minutes + 1e-6
        )
    assert out.height == n


def test_capacity_file_overrides_per_crossing(tmp_path: Path) -> None:
    path = tmp_path / "capacity.toml"
    path.write_text(
        "seed = 5\n[default]\nphysical_per_hour = 3\n[crossing.Zhaisan]\nhorizon_hours = 6\n",
        encoding="utf-8",
    )
    cap = load_capacity(path)
    assert cap.seed == 5
    assert cap.for_crossing("Zhaisan").physical_per_hour == 3
    assert cap.for_crossing("Zhaisan").horizon_hours == 6
    assert cap.for_crossing("elsewhere").horizon_hours == 24


def test_shipped_capacity_file_loads() -> None:
    cap = load_capacity()
    assert cap.default.random_share == pytest.approx(0.03)
    assert cap.default.physical_bays >= 1


@pytest.mark.parametrize(
    "text",
    ["[default]\nphysical_per_hour = -1\n", "[default]\nbays = 3\n", "[default\n"],
)
def test_bad_capacity_file_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "capacity.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RiskError, match="capacity file"):
        load_capacity(path)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 400),
    per_hour=st.floats(0.0, 30.0),
    share=st.sampled_from([0.0, 0.05, 0.5]),
    ruled=st.sampled_from([0.0, 0.1, 0.6]),
    seed=st.integers(0, 10_000),
)
def test_ranking_only_the_trucks_that_can_fit_marks_what_ranking_all_marks(
    n: int, per_hour: float, share: float, ruled: float, seed: int
) -> None:
    """The shortcut in ``_fill`` against the full sort it stands for, on queues full of ties
    (few distinct duties, risks and item counts), a null crossing, rules and random picks
    that may spend the whole red budget before the model gets any."""
    from risk import lanes

    rng = np.random.default_rng(seed)
    risk = rng.choice([0.0, 0.1, 0.5, 0.9], n)
    trucks = pl.DataFrame(
        {
            "truck_key": [f"T{i:04d}" for i in rng.permutation(n)],
            "crossing": rng.choice(["A", "B", "C", ""], n).tolist(),
            "n_items": rng.integers(1, 4, n),
            "risk": risk,
            "duty_at_risk_usd": risk * rng.choice([0.0, 100.0, 250.0], n),
            "rule_lane": [
                str(rng.choice(["red", "green"])) if u < ruled else None for u in rng.random(n)
            ],
        }
    ).with_columns(crossing=pl.col("crossing").replace("", None))
    cap = _capacity(
        physical_per_hour=per_hour,
        document_per_hour=per_hour * 2,
        random_share=share,
        min_risk_yellow=0.1,
    )
    fast = assign_lanes(trucks, cap)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lanes, "_fill", lanes._fill_by_sorting)
        slow = assign_lanes(trucks, cap)
    assert fast.equals(slow)


def test_nan_duty_is_ranked_as_a_full_sort_ranks_it() -> None:
    trucks = _trucks(300, crossings=("A",)).with_columns(
        duty_at_risk_usd=pl.when(pl.int_range(pl.len()) % 50 == 0)
        .then(float("nan"))
        .otherwise(pl.col("duty_at_risk_usd"))
    )
    out = assign_lanes(trucks, _capacity())
    # Polars ranks NaN above every number when sorting descending: those trucks go first.
    assert set(out.filter(pl.col("duty_at_risk_usd").is_nan())["lane"]) == {"red"}
