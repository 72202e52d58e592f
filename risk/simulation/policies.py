"""Selection policies run through the crossing simulation on the same queue and ground truth.

Each policy gives every truck of the standing queue a lane; the simulation says how long the
queue takes to clear, and the ground truth says what the inspections found. An inspection
finds an item's violation with a probability that depends on the scheme and the lane (a
document check finds a fraction of what a physical inspection finds). The uniform draws are
shared by all policies (common random numbers), so a difference between policies is never
luck of the draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from risk.lanes import CapacityConfig, assign_lanes, truck_key
from risk.rules import RuleSet, item_rule_columns
from risk.simulation.engine import Crossing, SimulationResult, Truck, simulate

_HASH_SCALE = float(2**64)
_SEVERITY = {"green": 0, "blue": 0, "yellow": 1, "red": 2}


@dataclass(frozen=True)
class Detection:
    """Chance that an inspection finds a violation, per scheme, for a physical inspection;
    a document check finds ``document_factor`` times as often."""

    physical: Mapping[str, float] = field(default_factory=dict)
    default_physical: float = 0.9
    document_factor: float = 0.5

    def physical_for(self, scheme: str) -> float:
        return float(self.physical.get(scheme, self.default_physical))


@dataclass(frozen=True)
class Queue:
    """A standing queue: trucks in queue order, and their items with the ground truth.

    ``trucks``: ``truck_key``, ``crossing``, ``n_items``, ``violation`` (any item not clean),
    ``duty_evaded_usd``, ``arrived_at``. ``items``: ``truck_key``, ``declaration_id``,
    ``item_no``, ``scheme``, ``duty_evaded_usd``.
    """

    trucks: pl.DataFrame
    items: pl.DataFrame


def load_queue(
    declarations: pl.DataFrame,
    truth: pl.DataFrame,
    arrivals: pl.DataFrame | None = None,
    *,
    limit: int | None = None,
) -> Queue:
    """The queue from canonical frames; ``limit`` keeps the first trucks to arrive."""
    items = declarations.with_columns(truck_key()).join(
        truth.select("declaration_id", "item_no", "scheme", "duty_evaded_usd"),
        on=["declaration_id", "item_no"],
        how="left",
        maintain_order="left",
    )
    items = items.with_columns(
        pl.col("scheme").cast(pl.String).fill_null("clean"),
        pl.col("duty_evaded_usd").fill_null(0.0),
    )
    trucks = items.group_by("truck_key").agg(
        pl.col("crossing").min(),
        pl.len().cast(pl.Int64).alias("n_items"),
        (pl.col("scheme") != "clean").sum().cast(pl.Int64).alias("violating_items"),
        pl.col("duty_evaded_usd").sum(),
        pl.col("declared_at").min().alias("_first_declared"),
    )
    if arrivals is not None and arrivals.height:
        first = arrivals.group_by("truck_id").agg(pl.col("arrived_at").min())
        trucks = trucks.join(first, left_on="truck_key", right_on="truck_id", how="left")
    else:
        trucks = trucks.with_columns(arrived_at=pl.lit(None, dtype=pl.Datetime("us")))
    trucks = (
        trucks.with_columns(
            pl.coalesce("arrived_at", "_first_declared").alias("arrived_at"),
            (pl.col("violating_items") > 0).alias("violation"),
        )
        .drop("_first_declared")
        .sort("arrived_at", "truck_key")
    )
    if limit is not None:
        trucks = trucks.head(limit)
    kept = trucks.get_column("truck_key").implode()
    items = items.filter(pl.col("truck_key").is_in(kept)).select(
        "truck_key", "declaration_id", "item_no", "scheme", "duty_evaded_usd"
    )
    return Queue(trucks=trucks, items=items)


def share_lanes(trucks: pl.DataFrame, share: float, *, seed: int) -> pl.Series:
    """Red for a seeded random share of the trucks, green for the rest."""
    u = trucks.get_column("truck_key").hash(seed=seed).cast(pl.Float64) / _HASH_SCALE
    return pl.Series("lane", np.where(u.to_numpy() < share, "red", "green"), dtype=pl.String)


def rule_lanes(
    declarations: pl.DataFrame,
    trucks: pl.DataFrame,
    rules: RuleSet,
    capacity: CapacityConfig | None = None,
) -> pl.Series:
    """Lanes picked by rules alone, no model.

    Without ``capacity``: red for every truck a red rule matches. With it: the matched trucks
    fill the same officer minutes the model gets (largest duty at stake per minute first),
    so that the comparison with the model is one of selection, not of capacity.
    """
    hits = (
        declarations.with_columns(truck_key(), *item_rule_columns(rules))
        .with_columns(
            stake=pl.col("customs_value_usd") * pl.col("duty_rate_pct").fill_null(0.0) / 100
        )
        .group_by("truck_key")
        .agg(
            (pl.col("rule_lane") == "red").any().alias("hit"),
            pl.col("stake").sum(),
        )
    )
    frame = trucks.select("truck_key", "crossing", "n_items").join(
        hits, on="truck_key", how="left", maintain_order="left"
    )
    hit = frame.get_column("hit").fill_null(False)
    if capacity is None:
        return pl.Series("lane", np.where(hit.to_numpy(), "red", "green"), dtype=pl.String)
    # A hit is "risk 1", a miss "risk 0": the lane filler then ranks hits by stake per minute.
    only_hits = CapacityConfig(
        seed=capacity.seed,
        default=capacity.default.model_copy(
            update={"random_share": 0.0, "min_risk_red": 0.5, "min_risk_yellow": 0.5}
        ),
        crossing={
            name: cap.model_copy(
                update={"random_share": 0.0, "min_risk_red": 0.5, "min_risk_yellow": 0.5}
            )
            for name, cap in capacity.crossing.items()
        },
    )
    lanes = assign_lanes(
        frame.with_columns(
            risk=hit.cast(pl.Float64),
            duty_at_risk_usd=pl.col("stake").fill_null(0.0) * hit.cast(pl.Float64),
            rule_lane=pl.lit(None, dtype=pl.String),
        ),
        only_hits,
    )
    return lanes.get_column("lane")


def model_lanes(trucks: pl.DataFrame, scored_trucks: pl.DataFrame) -> pl.Series:
    """The lanes batch scoring gave (``truck_key``, ``lane``); an unscored truck is green.

    A truck scored on several trips takes its most severe lane.
    """
    severity = pl.col("lane").replace_strict(_SEVERITY, default=0, return_dtype=pl.Int8)
    per_truck = scored_trucks.group_by("truck_key").agg(
        pl.col("lane").sort_by(severity, descending=True).first()
    )
    lanes = trucks.select("truck_key").join(
        per_truck, on="truck_key", how="left", maintain_order="left"
    )
    return lanes.get_column("lane").fill_null("green").rename("lane")


@dataclass(frozen=True)
class PolicyResult:
    """What one policy did to the queue."""

    policy: str
    trucks: int
    red: int
    yellow: int
    violations: int  # trucks carrying at least one violation
    violations_caught: int  # of those, trucks where an inspection found one
    items_caught: int
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
            "violating_trucks": self.violations,
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
    queue: Queue,
    lanes: pl.Series,
    crossings: Mapping[str, Crossing],
    *,
    detection: Detection | None = None,
    seed: int = 0,
) -> PolicyResult:
    """Simulate the queue under ``lanes`` (one per truck, queue order) and count the finds.

    The standing queue is all there at time zero, in its order.
    """
    detection = detection or Detection()
    trucks = queue.trucks
    lane = lanes.to_numpy().astype(str)
    fleet = [
        Truck(crossing=c, lane=ln, arrival_min=0.0, n_items=int(k))
        for c, ln, k in zip(
            trucks.get_column("crossing").to_list(),
            lane,
            trucks.get_column("n_items").to_list(),
            strict=True,
        )
    ]
    result = simulate(fleet, crossings)

    items = queue.items.join(
        trucks.select("truck_key").with_columns(lane=pl.Series(lane)),
        on="truck_key",
        how="left",
        maintain_order="left",
    )
    physical = pl.col("scheme").replace_strict(
        {s: detection.physical_for(s) for s in items.get_column("scheme").unique().to_list()},
        return_dtype=pl.Float64,
    )
    chance = (
        pl.when(pl.col("scheme") == "clean")
        .then(0.0)
        .when(pl.col("lane") == "red")
        .then(physical)
        .when(pl.col("lane") == "yellow")
        .then(physical * detection.document_factor)
        .otherwise(0.0)
    )
    # The same draw per item for every policy (common random numbers).
    draw = (
        pl.concat_str(pl.col("declaration_id"), pl.col("item_no").cast(pl.String), separator="#")
        .hash(seed=seed + 1)
        .cast(pl.Float64)
        / _HASH_SCALE
    )
    found = items.with_columns(found=draw < chance).filter("found")
    caught_trucks = found.get_column("truck_key").n_unique()
    return PolicyResult(
        policy=name,
        trucks=trucks.height,
        red=int((lane == "red").sum()),
        yellow=int((lane == "yellow").sum()),
        violations=int(trucks.get_column("violation").sum()),
        violations_caught=int(caught_trucks),
        items_caught=found.height,
        duty_evaded_usd=float(trucks.get_column("duty_evaded_usd").sum()),
        duty_recovered_usd=float(found.get_column("duty_evaded_usd").sum()),
        simulation=result,
    )


def results_table(results: list[PolicyResult]) -> pl.DataFrame:
    """One row per policy with the figures the report prints."""
    return pl.DataFrame([r.as_row() for r in results])


def format_table(results: list[PolicyResult]) -> str:
    """A plain-text table for stdout."""
    rows = [r.as_row() for r in results]
    if not rows:
        return "(no policies)"
    headers = list(rows[0])
    cells = [[f"{row[h]:,}" if isinstance(row[h], int) else str(row[h]) for h in headers]
             for row in rows]  # fmt: skip
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    out = [line(headers), "-" * len(line(headers))]
    out += [line(c) for c in cells]
    return "\n".join(out)
