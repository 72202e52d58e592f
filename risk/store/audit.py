"""The audit log: every lane assignment, override, result and watch-list change, with who and
when.

Append-only three times over: this module only inserts; a session guard refuses any change or
deletion of an entry that slips through the ORM; the database refuses UPDATE and DELETE with a
trigger (created by the initial migration on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from risk.errors import RiskError
from risk.store.models import AuditEntry, utcnow

ACTIONS = (
    "lane_assigned",
    "lane_overridden",
    "result_recorded",
    "user_added",
    "token_added",
    "watch_list_added",
    "watch_list_changed",
    "watch_list_retired",
    "truck_departed",
)


class AuditTamperingError(RiskError):
    """Something tried to change or delete an audit entry."""


def guard_append_only(factory: sessionmaker[Session]) -> None:
    """Refuse, at flush time, any update or delete of an audit entry in these sessions."""

    @event.listens_for(factory, "before_flush")
    def _refuse_changes(session: Session, _context: Any, _instances: Any) -> None:
        for obj in (*session.dirty, *session.deleted):
            if isinstance(obj, AuditEntry):
                raise AuditTamperingError(
                    f"the audit log is append-only: entry {obj.id} cannot be changed"
                )


def append(
    *,
    session: Session,
    actor: str,
    action: str,
    crossing: str | None = None,
    truck_id: str | None = None,
    truck_pk: int | None = None,
    lane_before: str | None = None,
    lane_after: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add one entry to the log (flushed with the change it records, in the same commit)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(
        at=at or utcnow(),
        actor=actor,
        action=action,
        crossing=crossing,
        truck_id=truck_id,
        truck_pk=truck_pk,
        lane_before=lane_before,
        lane_after=lane_after,
        details=details or {},
    )
    session.add(entry)
    return entry


def entries(
    *,
    session: Session,
    truck_pk: int | None = None,
    truck_id: str | None = None,
    crossing: str | None = None,
    action: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> Sequence[AuditEntry]:
    """Newest first; ``before_id`` pages further back. ``truck_pk`` is one visit,
    ``truck_id`` every visit of a vehicle."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if truck_pk is not None:
        query = query.where(AuditEntry.truck_pk == truck_pk)
    if truck_id is not None:
        query = query.where(AuditEntry.truck_id == truck_id)
    if crossing is not None:
        query = query.where(AuditEntry.crossing == crossing)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return session.scalars(query).all()


def count(*, session: Session, action: str | None = None) -> int:
    query = select(func.count(AuditEntry.id))
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return int(session.scalar(query) or 0)
