"""What supervisors and analysts watch: share inspected, hit rates, duty recovered, model."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from risk.schemas import RESULTS
from risk.store.models import Inspection, ScoreRun, Truck
from risk.store.outcomes import latest_inspections
from risk.store.trucks import LANE_ORDER

SELECTION_ORDER = ("targeted", "random", "rule")


@dataclass(frozen=True)
class HitRate:
    selection: str
    inspections: int
    violations: int

    @property
    def rate(self) -> float | None:
        return self.violations / self.inspections if self.inspections else None


@dataclass(frozen=True)
class Dashboard:
    trucks: int
    waiting: int
    inspected: int
    planned_inspections: int
    overrides: int
    duty_recovered_usd: float
    duty_at_risk_waiting_usd: float
    minutes_lane_to_result: float | None
    model_version: str | None
    lanes: dict[str, int]
    hit_rates: list[HitRate]
    results: dict[str, int]
    model_versions: dict[str, int] = field(default_factory=dict)

    @property
    def share_inspected(self) -> float | None:
        return self.inspected / self.trucks if self.trucks else None

    @property
    def share_planned(self) -> float | None:
        return self.planned_inspections / self.trucks if self.trucks else None

    @property
    def share_overridden(self) -> float | None:
        return self.overrides / self.trucks if self.trucks else None


def dashboard(*, session: Session, crossing: str | None = None) -> Dashboard:
    """The figures of one crossing (all crossings when None)."""
    scope = [Truck.crossing == crossing] if crossing else []
    lanes = dict(
        session.execute(select(Truck.lane, func.count()).where(*scope).group_by(Truck.lane)).all()
    )
    statuses = dict(
        session.execute(
            select(Truck.status, func.count()).where(*scope).group_by(Truck.status)
        ).all()
    )
    overrides = session.scalar(select(func.count()).where(Truck.decided_by == "override", *scope))
    at_risk = session.scalar(
        select(func.coalesce(func.sum(Truck.duty_at_risk_usd), 0.0)).where(
            Truck.status == "waiting", *scope
        )
    )
    versions = dict(
        session.execute(
            select(Truck.model_version, func.count())
            .where(*scope)
            .group_by(Truck.model_version)
            .order_by(Truck.model_version)
        ).all()
    )
    latest = session.scalar(select(ScoreRun).order_by(ScoreRun.published_at.desc()).limit(1))

    inspections = latest_inspections(session=session, crossing=crossing, with_declarations=False)
    per_selection = {s: [0, 0] for s in SELECTION_ORDER}
    results = dict.fromkeys(RESULTS, 0)
    waits = []
    for inspection in inspections:
        counts = per_selection.setdefault(inspection.selection, [0, 0])
        counts[0] += 1
        counts[1] += inspection.result != "clean"
        results[inspection.result] = results.get(inspection.result, 0) + 1
        waits.append((inspection.recorded_at - inspection.truck.lane_set_at).total_seconds() / 60)
    total = sum(lanes.values())
    return Dashboard(
        trucks=total,
        waiting=int(statuses.get("waiting", 0)),
        inspected=int(statuses.get("inspected", 0)),
        planned_inspections=sum(n for lane, n in lanes.items() if lane != "green"),
        overrides=int(overrides or 0),
        duty_recovered_usd=float(sum(i.extra_duty_usd for i in inspections)),
        duty_at_risk_waiting_usd=float(at_risk or 0.0),
        minutes_lane_to_result=statistics.median(waits) if waits else None,
        model_version=latest.model_version if latest else None,
        lanes={lane: int(lanes.get(lane, 0)) for lane in LANE_ORDER},
        hit_rates=[HitRate(s, n, v) for s, (n, v) in per_selection.items()],
        results={k: v for k, v in results.items() if v},
        model_versions={str(k): int(v) for k, v in versions.items()},
    )


def recorded_results(*, session: Session) -> int:
    """How many results were ever recorded (corrections included)."""
    return int(session.scalar(select(func.count(Inspection.id))) or 0)
