"""What officers decide: inspection results and supervisors' lane overrides.

Both are guarded by the truck's version: the page an officer saves from carries the version it
showed, and the change is ``UPDATE trucks ... WHERE id = :id AND version = :seen``. Of two
officers saving at once the database lets exactly one through; the other gets a
``ConflictError`` that says who changed the truck, instead of silently overwriting it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from risk.errors import RiskError
from risk.schemas import LANES, RESULTS
from risk.store import audit
from risk.store.models import AuditEntry, Declaration, Inspection, Truck, User, utcnow
from risk.store.trucks import NotFoundError

MIN_REASON_LENGTH = 5
MAX_NOTES_LENGTH = 2000
# Roles allowed to act: analysts see everything and change nothing.
RECORDERS = ("officer", "supervisor")
OVERRIDERS = ("supervisor",)


class PermissionDeniedError(RiskError):
    """The user's role does not allow this action."""


class ConflictError(RiskError):
    """The truck changed since the page was loaded; nothing was saved."""

    def __init__(
        self, message: str, *, truck_id: str, actor: str | None, at: datetime | None
    ) -> None:
        super().__init__(message)
        self.truck_id = truck_id
        self.actor = actor
        self.at = at


class DecisionError(RiskError):
    """The decision itself is not acceptable (bad result, missing reason, wrong lane)."""


def export_selection(decided_by: str, selection: str) -> str:
    """InspectionOutcome's selection for an inspected truck.

    A supervisor's override is a human pick, neither the model's nor the random share's, so it
    counts with the rules: the hit rates of the model and of the random share stay honest.
    """
    if decided_by in {"override", "rule"}:
        return "rule"
    if decided_by == "random":
        return "random"
    return "targeted" if selection in {"targeted", "none"} else selection


def record_result(
    *,
    session: Session,
    truck_pk: int,
    seen_version: int,
    by: User,
    result: str,
    extra_duty_usd: float = 0.0,
    notes: str = "",
    declaration_id: str | None = None,
) -> Inspection:
    """Record what the inspection of a truck found; the caller commits.

    ``declaration_id`` names the declaration the violation was found in (None: the whole
    truck). A truck in the green lane was released: a supervisor must override it first.
    """
    _require(by, RECORDERS, "record inspection results")
    if result not in RESULTS:
        raise DecisionError(f"result {result!r}: must be one of {', '.join(RESULTS)}")
    if not math.isfinite(extra_duty_usd) or extra_duty_usd < 0:
        raise DecisionError("extra duty: must be a number of US dollars, zero or more")
    if result == "clean" and extra_duty_usd > 0:
        raise DecisionError("extra duty: a clean inspection assesses no extra duty")
    if len(notes) > MAX_NOTES_LENGTH:
        raise DecisionError(f"notes: at most {MAX_NOTES_LENGTH} characters")
    truck = _load(session, truck_pk)
    if truck.lane == "green":
        raise DecisionError(
            f"truck {truck.truck_id} is in the green lane (released); "
            "a supervisor must move it to an inspection lane first"
        )
    if declaration_id is not None:
        owned = session.scalar(
            select(Declaration.id).where(
                Declaration.truck_pk == truck_pk, Declaration.declaration_id == declaration_id
            )
        )
        if owned is None:
            raise DecisionError(f"declaration {declaration_id!r} is not on truck {truck.truck_id}")
    _bump(session, truck, seen_version, status="inspected")
    inspection = Inspection(
        truck_pk=truck_pk,
        officer=by.username,
        lane=truck.lane,
        selection=export_selection(truck.decided_by, truck.selection),
        result=result,
        declaration_id=declaration_id if result != "clean" else None,
        extra_duty_usd=float(extra_duty_usd),
        notes=notes.strip(),
        recorded_at=utcnow(),
    )
    session.add(inspection)
    audit.append(
        session=session,
        actor=by.username,
        action="result_recorded",
        crossing=truck.crossing,
        truck_id=truck.truck_id,
        truck_pk=truck.id,
        lane_before=truck.lane,
        lane_after=truck.lane,
        details={
            "result": result,
            "extra_duty_usd": round(float(extra_duty_usd), 2),
            "declaration_id": inspection.declaration_id,
            "selection": inspection.selection,
            "notes": inspection.notes,
            "version": seen_version + 1,
        },
    )
    session.flush()
    return inspection


def override_lane(
    *,
    session: Session,
    truck_pk: int,
    seen_version: int,
    by: User,
    lane: str,
    reason: str,
) -> Truck:
    """Move a waiting truck to another lane, with the supervisor's reason; caller commits."""
    _require(by, OVERRIDERS, "override lanes")
    reason = reason.strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise DecisionError(f"reason: an override needs a reason ({MIN_REASON_LENGTH}+ chars)")
    if lane not in LANES:
        raise DecisionError(f"lane {lane!r}: must be one of {', '.join(LANES)}")
    truck = _load(session, truck_pk)
    if truck.status == "departed":
        raise DecisionError(f"truck {truck.truck_id} has left the queue; its lane is final")
    if truck.status != "waiting":
        raise DecisionError(f"truck {truck.truck_id} was inspected already; its lane is final")
    if lane == truck.lane:
        raise DecisionError(f"truck {truck.truck_id} is in the {lane} lane already")
    lane_before = truck.lane
    _bump(session, truck, seen_version, lane=lane, decided_by="override", lane_set_at=utcnow())
    audit.append(
        session=session,
        actor=by.username,
        action="lane_overridden",
        crossing=truck.crossing,
        truck_id=truck.truck_id,
        truck_pk=truck.id,
        lane_before=lane_before,
        lane_after=lane,
        details={"reason": reason, "model_lane": truck.model_lane, "version": seen_version + 1},
    )
    session.flush()
    session.refresh(truck)
    return truck


def _require(user: User, roles: tuple[str, ...], what: str) -> None:
    if user.role not in roles:
        raise PermissionDeniedError(
            f"{user.username} ({user.role}) may not {what}: needs {' or '.join(roles)}"
        )


def _load(session: Session, truck_pk: int) -> Truck:
    truck = session.get(Truck, truck_pk, populate_existing=True)
    if truck is None:
        raise NotFoundError(f"no truck {truck_pk} in the store")
    return truck


def _bump(session: Session, truck: Truck, seen_version: int, **values: Any) -> None:
    """Apply ``values`` only if nobody changed the truck since ``seen_version``."""
    if truck.version != seen_version:
        raise _conflict(session, truck)
    changed = session.scalar(
        update(Truck)
        .where(Truck.id == truck.id, Truck.version == seen_version)
        .values(version=Truck.version + 1, **values)
        .returning(Truck.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:  # someone committed between our read and our write
        session.rollback()
        raise _conflict(session, session.get(Truck, truck.id, populate_existing=True) or truck)


def _conflict(session: Session, truck: Truck) -> ConflictError:
    last = session.scalar(
        select(AuditEntry)
        .where(AuditEntry.truck_pk == truck.id)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    who = f" by {last.actor} at {last.at:%Y-%m-%d %H:%M:%S} UTC ({last.action})" if last else ""
    return ConflictError(
        f"truck {truck.truck_id} was changed{who} after you opened it; nothing was saved. "
        "Reload the page, check the change, and save again if it still stands.",
        truck_id=truck.truck_id,
        actor=last.actor if last else None,
        at=last.at if last else None,
    )
