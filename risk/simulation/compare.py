"""The comparison ``risk simulate`` prints: four selection policies on one standing queue.

- inspect nearly all: the autumn-2025 regime, a physical inspection for ``inspect_share`` of
  the trucks (95% by default);
- random n%: a physical inspection for a random ``random_share`` of the trucks, nothing else;
- rules only: the old hard rules (watched HS chapters from watched origins, plus any rules
  file) fill the same officer minutes the model gets, so that rules and model are compared
  on selection, not on capacity;
- model lanes: the lanes batch scoring gave (capacity-aware, with its own random share).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from risk.lanes import CapacityConfig
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
    return [
        run_policy(name, queue, lanes, crossings, detection=detection, seed=settings.seed)
        for name, lanes in policies
    ]


def headline(results: Sequence[PolicyResult]) -> str | None:
    """Model lanes against inspecting nearly all, in one sentence (None without both)."""
    by_name = {r.policy.split(" (")[0]: r for r in results}
    model, everything = by_name.get("model lanes"), by_name.get("inspect nearly all")
    if model is None or everything is None or not model.hours_to_clear:
        return None
    speed = everything.hours_to_clear / model.hours_to_clear
    caught = (
        model.violations_caught / everything.violations_caught
        if everything.violations_caught
        else 0.0
    )
    duty = (
        model.duty_recovered_usd / everything.duty_recovered_usd
        if everything.duty_recovered_usd
        else 0.0
    )
    inspections = model.red + model.yellow
    everything_inspections = everything.red + everything.yellow
    return (
        f"Model lanes clear the queue {speed:.1f}x faster than inspecting nearly all "
        f"({model.hours_to_clear:.0f} h against {everything.hours_to_clear:.0f} h), catching "
        f"{caught:.0%} of the violating trucks it catches and {duty:.0%} of the duty it recovers, "
        f"with {inspections:,} inspections instead of {everything_inspections:,}."
    )
