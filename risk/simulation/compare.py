"""The comparison ``risk simulate`` prints: four selection policies on one standing queue.

- inspect nearly all: the autumn-2025 regime, a physical inspection for ``inspect_share`` of
  the trucks (95% by default);
- random n%: a physical inspection for a random ``random_share`` of the trucks, nothing else;
- rules only: the old hard rules (watched HS chapters from watched origins, plus any rules
  file) fill the same officer minutes the model gets, so that rules and model are compared
  on selection, not on capacity;
- model lanes: the lanes batch scoring gave (capacity-aware, with its own random share);
- model lanes, H h plan: the same scores with the lanes filled again for a planning horizon of
  H hours, to show what more officer time buys (more caught, later cleared).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from risk.lanes import LANE_COLUMNS, CapacityConfig, assign_lanes
from risk.rules import HardRule, RuleSet
from risk.simulation.policies import (
    Detection,
    PolicyResult,
    Queue,
    crossings_for,
    model_lanes,
    rule_lanes,
    run_policy,
    share_lanes,
)

# What the old selectivity watched (the generator's "old rules" default to the same).
LEGACY_HS_CHAPTERS = ("84", "85", "87", "61", "62", "64")
LEGACY_ORIGINS = ("CN",)


def legacy_rules(
    hs_chapters: Sequence[str] = LEGACY_HS_CHAPTERS, origins: Sequence[str] = LEGACY_ORIGINS
) -> RuleSet:
    """The old static risk profile as a hard rule: watched chapters from watched origins."""
    return RuleSet(
        rules=(
            HardRule(
                name="legacy-profile",
                lane="red",
                reason_en="watched HS chapter from a watched origin",
                reason_ru="товарная группа и страна происхождения из профиля риска",
                hs_prefixes=tuple(hs_chapters),
                origin_countries=tuple(origins),
            ),
        )
    )


@dataclass(frozen=True)
class PolicySettings:
    """Knobs of the comparison."""

    inspect_share: float = 0.95
    random_share: float = 0.10
    seed: int = 0
    replan_hours: tuple[float, ...] = ()


def with_horizon(capacity: CapacityConfig, hours: float) -> CapacityConfig:
    """The same capacity planned over another horizon, at every crossing."""
    update = {"horizon_hours": hours}
    return CapacityConfig(
        seed=capacity.seed,
        default=capacity.default.model_copy(update=update),
        crossing={n: c.model_copy(update=update) for n, c in capacity.crossing.items()},
    )


def replanned(scored_trucks: pl.DataFrame, capacity: CapacityConfig) -> pl.DataFrame:
    """Lanes filled again from the scores (risk, duty, rules, random draw) of a scoring run."""
    base = scored_trucks.drop([c for c in LANE_COLUMNS if c in scored_trucks.columns])
    return assign_lanes(base, capacity, draw_key="draw_key")


def compare_policies(
    queue: Queue,
    declarations: pl.DataFrame,
    scored_trucks: pl.DataFrame | None,
    capacity: CapacityConfig,
    *,
    rules: RuleSet,
    detection: Detection,
    settings: PolicySettings = PolicySettings(),
) -> list[PolicyResult]:
    """Run every policy through the same crossings, queue and detection draws."""
    crossings = crossings_for(queue.trucks, capacity)
    trucks = queue.trucks
    policies: list[tuple[str, pl.Series]] = [
        (
            f"inspect nearly all ({settings.inspect_share:.0%})",
            share_lanes(trucks, settings.inspect_share, seed=settings.seed),
        ),
        (
            f"random {settings.random_share:.0%}",
            share_lanes(trucks, settings.random_share, seed=settings.seed + 7),
        ),
        ("rules only", rule_lanes(declarations, trucks, rules, capacity)),
    ]
    if scored_trucks is not None:
        policies.append(("model lanes", model_lanes(trucks, scored_trucks)))
        for hours in settings.replan_hours:
            lanes = replanned(scored_trucks, with_horizon(capacity, hours))
            policies.append((f"model lanes, {hours:g} h plan", model_lanes(trucks, lanes)))
    return [
        run_policy(name, queue, lanes, crossings, detection=detection, seed=settings.seed)
        for name, lanes in policies
    ]


def headline(results: Sequence[PolicyResult]) -> list[str]:
    """Each model-lanes policy against inspecting nearly all, one sentence each."""
    everything = next((r for r in results if r.policy.startswith("inspect nearly all")), None)
    if everything is None:
        return []
    lines = []
    for model in results:
        if not model.policy.startswith("model lanes") or not model.hours_to_clear:
            continue
        speed = everything.hours_to_clear / model.hours_to_clear
        caught = _share(model.violations_caught, everything.violations_caught)
        duty = _share(model.duty_recovered_usd, everything.duty_recovered_usd)
        lines.append(
            f"{model.policy.capitalize()} clear the queue {speed:.1f}x faster than inspecting "
            f"nearly all ({model.hours_to_clear:.0f} h against {everything.hours_to_clear:.0f} h)"
            f", catching {caught:.0%} of the violating trucks it catches and {duty:.0%} of the "
            f"duty it recovers, with {model.red + model.yellow:,} inspections instead of "
            f"{everything.red + everything.yellow:,}."
        )
    return lines


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
