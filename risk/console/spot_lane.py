"""The lane one truck gets if it joins a crossing's standing queue now, in plain Python.

``risk.lanes.assign_lanes`` fills a whole queue with a dozen Polars steps; for the one truck of
an API call that costs more than the arithmetic. This follows the same customs order over the
waiting trucks and the newcomer (hard rules, the random share by the same hash draw, red
minutes left by duty at risk per minute, then yellow) and gives the newcomer's lane;
``tests/console/test_console_scoring.py`` holds it equal to ``assign_lanes`` on generated
queues. Minute sums are added in ranking order, as the Polars cumulative sum adds them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from risk.lanes import CapacityConfig

# ``risk.lanes``' scale of the 64-bit hash to [0, 1).
_HASH_SCALE = float(2**64)
# ``risk.lanes._fill`` lets a running total exceed the budget by this much (rounding).
_SLACK = 1e-9


@dataclass(frozen=True)
class Waiting:
    """A truck of the queue, or the newcomer, as lane assignment sees it."""

    truck_key: str
    n_items: int
    risk: float
    duty_at_risk_usd: float
    rule_lane: str | None  # a lane fixed already (rule, random pick, override), else None
    draw_key: str


@dataclass(frozen=True)
class LaneDecision:
    """``risk.lanes.LANE_COLUMNS`` of one truck."""

    lane: str
    selection: str
    decided_by: str
    officer_minutes: float
    duty_per_minute_usd: float


def _usable(truck: Waiting) -> bool:
    return all(
        isinstance(v, int | float) and math.isfinite(v)
        for v in (truck.risk, truck.duty_at_risk_usd)
    )


def lane_in_queue(
    newcomer: Waiting, queue: Sequence[Waiting], capacity: CapacityConfig, crossing: str
) -> LaneDecision | None:
    """The newcomer's lane when it joins ``queue`` (the other trucks waiting at ``crossing``),
    as ``assign_lanes`` gives it over the newcomer and the queue; None when a risk or duty is
    missing or not finite (then ask ``assign_lanes`` itself: its ordering of nulls decides)."""
    trucks = [newcomer, *queue]
    if not all(_usable(t) for t in trucks):
        return None
    cap = capacity.for_crossing(crossing)
    draws = pl.Series([t.draw_key for t in trucks], dtype=pl.String).hash(seed=capacity.seed)
    share = cap.random_share
    m_red = [cap.minutes_physical + cap.minutes_physical_per_item * (t.n_items - 1) for t in trucks]
    m_yellow = [
        cap.minutes_document + cap.minutes_document_per_item * (t.n_items - 1) for t in trucks
    ]
    rule_red = [t.rule_lane == "red" for t in trucks]
    random = [
        t.rule_lane is None and float(u) / _HASH_SCALE < share
        for t, u in zip(trucks, draws.to_list(), strict=True)
    ]
    free = [t.rule_lane is None and not r for t, r in zip(trucks, random, strict=True)]
    taken = sum(
        m if red or pick else 0.0 for m, red, pick in zip(m_red, rule_red, random, strict=True)
    )
    targeted_red = _fill(
        trucks,
        [f and t.risk >= cap.min_risk_red for f, t in zip(free, trucks, strict=True)],
        m_red,
        cap.red_minutes - taken,
    )
    eligible_yellow = [
        f and not red and t.risk >= cap.min_risk_yellow
        for f, red, t in zip(free, targeted_red, trucks, strict=True)
    ]
    targeted_yellow = _fill(trucks, eligible_yellow, m_yellow, cap.yellow_minutes)
    me = newcomer
    red = rule_red[0] or random[0] or targeted_red[0]
    yellow = targeted_yellow[0]
    if rule_red[0]:
        selection = "rule"
    elif random[0]:
        selection = "random"
    elif targeted_red[0] or yellow:
        selection = "targeted"
    else:
        selection = "none"
    if rule_red[0] or me.rule_lane == "green":
        decided_by = "rule"
    elif random[0]:
        decided_by = "random"
    else:
        decided_by = "model"
    return LaneDecision(
        lane="red" if red else "yellow" if yellow else "green",
        selection=selection,
        decided_by=decided_by,
        officer_minutes=m_red[0] if red else m_yellow[0] if yellow else 0.0,
        duty_per_minute_usd=me.duty_at_risk_usd / m_red[0],
    )


def _fill(
    trucks: Sequence[Waiting], eligible: list[bool], minutes: list[float], budget: float
) -> list[bool]:
    """``risk.lanes._fill`` for one crossing: eligible trucks by duty at risk per minute (ties:
    higher risk, then truck key), taken while the running total of minutes fits the budget."""
    ranked = sorted(
        (i for i, ok in enumerate(eligible) if ok),
        key=lambda i: (
            -(trucks[i].duty_at_risk_usd / minutes[i]),
            -trucks[i].risk,
            trucks[i].truck_key,
        ),
    )
    chosen = [False] * len(trucks)
    used = 0.0
    for i in ranked:
        used += minutes[i]
        chosen[i] = used <= budget + _SLACK
    return chosen
