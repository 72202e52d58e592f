"""Selection policies run through the crossing simulation on the same queue and ground truth.

Each policy gives every truck of the standing queue a lane; the simulation says how long the
queue takes to clear, and the ground truth says what the inspections found. An inspection
finds a violating truck's fraud with a fixed probability per lane (a physical inspection
nearly always, a document check less often); the draws are shared by all policies (common
random numbers), so a difference between policies is never luck of the draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from risk.lanes import CapacityConfig, truck_key
from risk.rules import RuleSet, item_rule_columns
from risk.simulation.engine import Crossing, SimulationResult, Truck, simulate

_HASH_SCALE = float(2**64)


@dataclass(frozen=True)
class Detection:
    """Chance that an inspection of a violating truck finds the violation."""

    physical: float = 0.95
    document: float = 0.5


def queue_trucks(
    declarations: pl.DataFrame,
    truth: pl.DataFrame,
    arrivals: pl.DataFrame | None = None,
    *,
    limit: int | None = None,
) -> pl.DataFrame:
    """One row per truck of a standing queue, in the order the trucks joined it.

    Columns: ``truck_key``, ``crossing``, ``n_items``, ``first_declaration``, ``violation``
    (any item not clean), ``violating_items``, ``duty_evaded_usd`` (sum over its items).
    ``limit`` keeps the first trucks of the queue.
    """
    items = declarations.with_columns(truck_key()).join(
        truth.select("declaration_id", "item_no", "scheme", "duty_evaded_usd"),
        on=["declaration_id", "item_no"],
        how="left",
    )
    trucks = items.group_by("truck_key").agg(
        pl.col("crossing").min(),
        pl.len().cast(pl.Int64).alias("n_items"),
        pl.col("declaration_id").min().alias("first_declaration"),
        pl.col("declared_at").min().alias("_first_declared"),
        (pl.col("scheme").cast(pl.String).fill_null("clean") != "clean")
        .sum()
        .alias("violating_items"),
        pl.col("duty_evaded_usd").fill_null(0.0).sum(),
    )
    if arrivals is not None and arrivals.height:
        joined = arrivals.group_by("truck_id").agg(pl.col("arrived_at").min())
        trucks = trucks.join(joined, left_on="truck_key", right_on="truck_id", how="left")
    else:
        trucks = trucks.with_columns(arrived_at=pl.lit(None, dtype=pl.Datetime("us")))
    trucks = (
        trucks.with_columns(
            pl.coalesce("arrived_at", "_first_declared").alias("arrived_at"),
            (pl.col("violating_items") > 0).alias("violation"),
        )
        .sort("arrived_at", "truck_key")
        .drop("_first_declared")
    )
    return trucks.head(limit) if limit is not None else trucks


def share_lanes(trucks: pl.DataFrame, share: float, *, seed: int) -> pl.Series:
    """Red for a seeded random share of the trucks, green for the rest."""
    u = trucks.get_column("truck_key").hash(seed=seed).cast(pl.Float64) / _HASH_SCALE
    return pl.Series("lane", np.where(u.to_numpy() < share, "red", "green"), dtype=pl.String)


def rule_lanes(declarations: pl.DataFrame, trucks: pl.DataFrame, rules: RuleSet) -> pl.Series:
    """Red for the trucks a rule sends to inspection, green for the rest (no model)."""
    flagged = (
        declarations.with_columns(truck_key(), *item_rule_columns(rules))
        .filter(pl.col("rule_lane") == "red")
        .get_column("truck_key")
        .unique()
        .implode()
    )
    red = trucks.select(pl.col("truck_key").is_in(flagged)).to_series()
    return pl.Series("lane", np.where(red.to_numpy(), "red", "green"), dtype=pl.String)


def model_lanes(trucks: pl.DataFrame, scored_trucks: pl.DataFrame) -> pl.Series:
    """The lanes batch scoring gave (``truck_key``, ``lane``); an unscored truck is green."""
    lanes = trucks.select("truck_key").join(
        scored_trucks.select("truck_key", "lane"), on="truck_key", how="left", maintain_order="left"
    )
    return lanes.get_column("lane").fill_null("green").rename("lane")


@dataclass(frozen=True)
class PolicyResult:
    """What one policy did to the queue."""

    policy: str
    trucks: int
    red: int
    yellow: int
    violations: int
    violations_caught: int
    duty_evaded_usd: float
    duty_recovered_usd: float
    simulation: SimulationResult

    @property
    def hours_to_clear(self) -> float:
        return self.simulation.hours_to_clear

    @property
    def mean_wait_hours(self) -> float:
        waits = self.simulation.wait_hours
        return float(waits.mean()) if len(waits) else 0.0

    @property
    def p95_wait_hours(self) -> float:
        waits = self.simulation.wait_hours
        return float(np.percentile(waits, 95)) if len(waits) else 0.0

    def as_row(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "trucks": self.trucks,
            "red": self.red,
            "yellow": self.yellow,
            "hours_to_clear": round(self.hours_to_clear, 1),
            "mean_wait_h": round(self.mean_wait_hours, 1),
            "p95_wait_h": round(self.p95_wait_hours, 1),
            "violations": self.violations,
            "caught": self.violations_caught,
            "duty_recovered_usd": round(self.duty_recovered_usd),
            "duty_share": round(self.duty_recovered_usd / self.duty_evaded_usd, 3)
            if self.duty_evaded_usd
            else 0.0,
        }


def crossings_for(trucks: pl.DataFrame, capacity: CapacityConfig) -> dict[str, Crossing]:
    """The simulated crossing of every crossing in the queue, from the capacity file."""
    names = trucks.get_column("crossing").unique().to_list()
    return {name: Crossing.from_capacity(capacity.for_crossing(name)) for name in names}


def run_policy(
    name: str,
    trucks: pl.DataFrame,
    lanes: pl.Series,
    crossings: Mapping[str, Crossing],
    *,
    detection: Detection = Detection(),
    seed: int = 0,
) -> PolicyResult:
    """Simulate the queue under ``lanes`` and count what the inspections found.

    The standing queue is all there at time zero, in its order.
    """
    lane = lanes.to_numpy()
    crossing = trucks.get_column("crossing").to_list()
    n_items = trucks.get_column("n_items").to_list()
    fleet = [
        Truck(crossing=c, lane=str(ln), arrival_min=0.0, n_items=int(k))
        for c, ln, k in zip(crossing, lane, n_items, strict=True)
    ]
    result = simulate(fleet, crossings)
    # The same uniform draw per truck for every policy (common random numbers).
    u = (
        trucks.get_column("truck_key").hash(seed=seed + 1).cast(pl.Float64) / _HASH_SCALE
    ).to_numpy()
    found = ((lane == "red") & (u < detection.physical)) | (
        (lane == "yellow") & (u < detection.document)
    )
    violation = trucks.get_column("violation").to_numpy()
    duty = trucks.get_column("duty_evaded_usd").to_numpy()
    caught = found & violation
    return PolicyResult(
        policy=name,
        trucks=trucks.height,
        red=int((lane == "red").sum()),
        yellow=int((lane == "yellow").sum()),
        violations=int(violation.sum()),
        violations_caught=int(caught.sum()),
        duty_evaded_usd=float(duty.sum()),
        duty_recovered_usd=float(duty[caught].sum()),
        simulation=result,
    )


def results_table(results: list[PolicyResult]) -> pl.DataFrame:
    """One row per policy with the figures the report prints."""
    return pl.DataFrame([r.as_row() for r in results])


def format_table(results: list[PolicyResult]) -> str:
    """A plain-text table for stdout."""
    rows = [r.as_row() for r in results]
    headers = list(rows[0]) if rows else []
    cells = [[str(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    out = [line, "-" * len(line)]
    for c in cells:
        out.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(c, widths, strict=True))
            )
        )
    return "\n".join(out)
