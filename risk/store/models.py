"""Tables of the decisions store: scores as published, what officers did, and who did it.

Times are naive UTC, as everywhere in the project. The tables are the store's own business;
the console and the API speak in their own request/response models, never in these rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("officer", "supervisor", "analyst")
# Who set a truck's current lane (``risk.lanes``' decided_by, plus a supervisor's override).
DECIDERS = ("model", "rule", "random", "override")
# "departed": a newer queue of its crossing was published without it (it has left the queue).
TRUCK_STATUSES = ("waiting", "inspected", "departed")

# Constraint names are fixed so that migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now as a naive UTC timestamp, the project's convention."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    """A machine client's bearer token; only its SHA-256 is kept (tokens are 256-bit random,
    so a slow hash would add latency to every API call without adding safety)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    label: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(lazy="joined")


class WebSession(Base):
    """A signed-in browser; the cookie carries the signed token, the table its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)

    user: Mapped[User] = relationship(lazy="joined")


class ScoreRun(Base):
    """One publication of scored trucks (a batch run or an on-the-spot API score)."""

    __tablename__ = "score_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(128))
    # The MLflow run that trained the model, as scoring reports it.
    model_run_id: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    published_by: Mapped[str] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(Text)
    trucks: Mapped[int] = mapped_column(Integer, default=0)


class Truck(Base):
    """A truck standing in a crossing's queue, with its current lane.

    ``version`` guards against lost updates: every change (result, override, re-score) is an
    ``UPDATE ... WHERE version = :seen`` and a stale page gets a conflict instead of winning
    (the ORM does this itself for its own flushes through ``version_id_col``).
    """

    __tablename__ = "trucks"
    # A vehicle comes back: each row is one visit, known by the declarations it carries
    # (declaration ids are unique), so (crossing, truck_id) is not unique.
    __table_args__ = (
        Index("ix_trucks_crossing_truck_id", "crossing", "truck_id"),
        Index("ix_trucks_queue", "crossing", "status", "lane"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crossing: Mapped[str] = mapped_column(String(64))
    truck_id: Mapped[str] = mapped_column(String(96))
    vehicle_plate: Mapped[str | None] = mapped_column(String(32))
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime)
    run_id: Mapped[str] = mapped_column(ForeignKey("score_runs.run_id"))
    model_version: Mapped[str] = mapped_column(String(128))
    risk: Mapped[float] = mapped_column(Float)
    duty_at_risk_usd: Mapped[float] = mapped_column(Float)
    n_items: Mapped[int] = mapped_column(Integer, default=1)
    model_lane: Mapped[str] = mapped_column(String(8))
    # InspectionOutcome's selection as lane assignment made it (targeted/random/rule/none).
    selection: Mapped[str] = mapped_column(String(16))
    lane: Mapped[str] = mapped_column(String(8))
    decided_by: Mapped[str] = mapped_column(String(16))
    random_pick: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    # The same reasons in Russian and in English (``reasons``: as ``risk score --lang`` wrote
    # them); a page reads its own language, else the other.
    reasons_ru: Mapped[list[Any]] = mapped_column(default=list)
    reasons_en: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    lane_set_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}

    declarations: Mapped[list[Declaration]] = relationship(
        back_populates="truck", cascade="all, delete-orphan", order_by="Declaration.declaration_id"
    )


class Declaration(Base):
    __tablename__ = "declarations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    truck_pk: Mapped[int] = mapped_column(ForeignKey("trucks.id", ondelete="CASCADE"), index=True)
    declaration_id: Mapped[str] = mapped_column(String(64), unique=True)
    declared_at: Mapped[datetime] = mapped_column(DateTime)
    importer_id: Mapped[str] = mapped_column(String(64), index=True)
    importer_registered_on: Mapped[date | None] = mapped_column(Date)
    declarant_id: Mapped[str | None] = mapped_column(String(64))
    procedure: Mapped[str] = mapped_column(String(16))
    risk: Mapped[float] = mapped_column(Float)
    duty_at_risk_usd: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    # The same reasons in Russian and in English (``reasons``: as ``risk score --lang`` wrote
    # them); a page reads its own language, else the other.
    reasons_ru: Mapped[list[Any]] = mapped_column(default=list)
    reasons_en: Mapped[list[Any]] = mapped_column(default=list)

    truck: Mapped[Truck] = relationship(back_populates="declarations")
    items: Mapped[list[Item]] = relationship(
        back_populates="declaration", cascade="all, delete-orphan", order_by="Item.item_no"
    )


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("declaration_pk", "item_no", name="uq_items_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    declaration_pk: Mapped[int] = mapped_column(ForeignKey("declarations.id", ondelete="CASCADE"))
    item_no: Mapped[int] = mapped_column(Integer)
    hs_code: Mapped[str] = mapped_column(String(10))
    goods_description: Mapped[str | None] = mapped_column(Text)
    origin_country: Mapped[str] = mapped_column(String(2))
    dispatch_country: Mapped[str | None] = mapped_column(String(2))
    net_mass_kg: Mapped[float | None] = mapped_column(Float)
    gross_mass_kg: Mapped[float | None] = mapped_column(Float)
    customs_value_usd: Mapped[float] = mapped_column(Float)
    duty_rate_pct: Mapped[float | None] = mapped_column(Float)
    risk: Mapped[float] = mapped_column(Float)
    duty_at_risk_usd: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    # The same reasons in Russian and in English (``reasons``: as ``risk score --lang`` wrote
    # them); a page reads its own language, else the other.
    reasons_ru: Mapped[list[Any]] = mapped_column(default=list)
    reasons_en: Mapped[list[Any]] = mapped_column(default=list)

    declaration: Mapped[Declaration] = relationship(back_populates="items")


class Inspection(Base):
    """An officer's recorded result for a truck. Append-only: a correction is a new row and
    the latest row of a truck is its result."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    truck_pk: Mapped[int] = mapped_column(ForeignKey("trucks.id", ondelete="CASCADE"), index=True)
    officer: Mapped[str] = mapped_column(String(64))
    lane: Mapped[str] = mapped_column(String(8))
    selection: Mapped[str] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(String(32))
    # The declaration the violation was found in; null means the whole truck.
    declaration_id: Mapped[str | None] = mapped_column(String(64))
    extra_duty_usd: Mapped[float] = mapped_column(Float, default=0.0)
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    truck: Mapped[Truck] = relationship()


class ImporterRecord(Base):
    """An importer's past, summarised from imported history outcomes (``risk publish
    --history``); the console adds the results recorded since."""

    __tablename__ = "importer_records"

    importer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    declarations: Mapped[int] = mapped_column(Integer)
    inspected: Mapped[int] = mapped_column(Integer)
    violations: Mapped[int] = mapped_column(Integer)
    extra_duty_usd: Mapped[float] = mapped_column(Float)
    last_violation_at: Mapped[datetime | None] = mapped_column(DateTime)
    as_of: Mapped[datetime] = mapped_column(DateTime)


class AuditEntry(Base):
    """Who or what set a lane, overrode it, or recorded a result, and when. Append-only: the
    service layer only inserts, a session guard refuses changes, and the database refuses
    UPDATE and DELETE with a trigger."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(32))
    crossing: Mapped[str | None] = mapped_column(String(64))
    truck_id: Mapped[str | None] = mapped_column(String(96))
    # The visit (trucks.id); not a foreign key, so that the log never depends on other rows.
    truck_pk: Mapped[int | None] = mapped_column(Integer, index=True)
    lane_before: Mapped[str | None] = mapped_column(String(8))
    lane_after: Mapped[str | None] = mapped_column(String(8))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WatchListEntry(Base):
    """A supervisor's hard rule (``risk.rules.HardRule``): a watch list or priority control.

    Entries are never deleted: a change rewrites the row and bumps ``version`` (a stale edit
    form gets a conflict), retiring sets ``retired_at``; every step is also an audit entry
    holding the rule as it was and the supervisor's reason, so the log tells the whole story.
    """

    __tablename__ = "watch_list_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    lane: Mapped[str] = mapped_column(String(8))
    reason_en: Mapped[str] = mapped_column(Text)
    reason_ru: Mapped[str] = mapped_column(Text, default="")
    importer_ids: Mapped[list[Any]] = mapped_column(default=list)
    hs_prefixes: Mapped[list[Any]] = mapped_column(default=list)
    origin_countries: Mapped[list[Any]] = mapped_column(default=list)
    dispatch_countries: Mapped[list[Any]] = mapped_column(default=list)
    crossings: Mapped[list[Any]] = mapped_column(default=list)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(64))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    retired_by: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}


class LoginFailure(Base):
    """A refused log-in, kept for the rate limit (``risk.store.accounts``) and then dropped:
    five within five minutes for one user name from one address stop further tries."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key", "username", "client", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
