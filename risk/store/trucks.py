"""Publishing scored trucks into the queue, and reading the queue and a truck back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dataframely as dy
import polars as pl
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from risk.errors import RiskError
from risk.store import audit
from risk.store.frames import PublishedDeclaration, PublishedItem, PublishedTruck
from risk.store.models import Declaration, Item, ScoreRun, Truck, utcnow

# Lane order of the queue: the trucks an officer acts on first are on top.
LANE_ORDER = ("red", "yellow", "blue", "green")


class NotFoundError(RiskError):
    """No such truck (or declaration) in the store."""


@dataclass(frozen=True)
class PublishSummary:
    run_id: str
    added: int
    rescored: int
    skipped_inspected: int
    # Trucks whose lane a watch-list entry of the store set while publishing.
    watch_listed: int = 0
    # Waiting trucks of the same crossings missing from this queue (``replaces_queue``).
    departed: int = 0


def lane_actor(decided_by: str, model_version: str) -> str:
    """Who set a lane, as the audit log names it."""
    if decided_by == "model":
        return f"model {model_version}"
    if decided_by == "random":
        return "random share"
    return "rule"


def publish_scores(
    *,
    session: Session,
    trucks: pl.DataFrame,
    declarations: pl.DataFrame,
    items: pl.DataFrame,
    run_id: str,
    model_version: str,
    published_by: str,
    model_run_id: str | None = None,
    source: str | None = None,
    replaces_queue: bool = False,
) -> PublishSummary:
    """Put scored trucks into their crossings' queues; the caller commits.

    A truck already waiting (or departed) is re-scored (its lane follows the new score unless
    a supervisor overrode it); a truck already inspected keeps its record and is skipped.
    Every lane set here is an audit entry naming the model version, the rule or the random
    share. ``replaces_queue``: the trucks are the whole standing queue of their crossings, so
    the ones still waiting from older publications but not in it have left: they are marked
    departed (and audited) and leave the queue page; an on-the-spot score adds one truck
    and replaces nothing.
    The store's active watch lists apply once more (``risk.store.rule_lanes``).
    """
    from risk.store.frames import reasons_language, with_reason_languages
    from risk.store.rule_lanes import apply_watch_lists
    from risk.store.watchlists import rules_in_force

    lang = reasons_language(trucks)
    # Frames with only ``reasons`` (one language) keep them in the language they are in.
    trucks, declarations, items = (
        with_reason_languages(frame, lang) for frame in (trucks, declarations, items)
    )
    trucks_valid = _validate(PublishedTruck, trucks, "trucks")
    declarations_valid = _validate(PublishedDeclaration, declarations, "declarations")
    items_valid = _validate(PublishedItem, items, "items")
    _check_links(trucks_valid, declarations_valid, items_valid)
    trucks_valid, items_valid, watch_listed = apply_watch_lists(
        trucks=trucks_valid,
        declarations=declarations_valid,
        items=items_valid,
        rules=rules_in_force(session=session),
        lang=lang,
    )
    if session.get(ScoreRun, run_id) is not None:
        raise RiskError(f"run {run_id} is published already")

    now = utcnow()
    session.add(
        ScoreRun(
            run_id=run_id,
            model_version=model_version,
            model_run_id=model_run_id,
            published_at=now,
            published_by=published_by,
            source=source,
            trucks=trucks_valid.height,
        )
    )
    items_by_declaration = _group(items_valid, "declaration_id")
    declarations_by_truck = _group(declarations_valid, "truck_id", "crossing")
    existing = _visits_of(session, declarations_valid)

    added = rescored = skipped = 0
    stale: list[int] = []  # re-scored visits, whose papers are replaced
    assigned: list[tuple[Truck, dict[str, Any], str | None, bool]] = []
    for row in trucks_valid.iter_rows(named=True):
        truck = existing.get((row["truck_id"], row["crossing"]))
        if truck is not None and truck.status == "inspected":
            skipped += 1
            continue
        lane_before = None
        if truck is None:
            truck = Truck(crossing=row["crossing"], truck_id=row["truck_id"])
            session.add(truck)
            added += 1
        else:
            lane_before = truck.lane
            stale.append(truck.id)
            rescored += 1
        overridden = truck.decided_by == "override"
        truck.vehicle_plate = row["vehicle_plate"]
        truck.arrived_at = row["arrived_at"]
        truck.run_id = run_id
        truck.model_version = model_version
        truck.risk = row["risk"]
        truck.duty_at_risk_usd = row["duty_at_risk_usd"]
        truck.n_items = row["n_items"]
        truck.model_lane = row["lane"]
        truck.selection = row["selection"]
        truck.random_pick = row["selection"] == "random"
        truck.reasons = list(row["reasons"])
        truck.reasons_ru = list(row["reasons_ru"])
        truck.reasons_en = list(row["reasons_en"])
        truck.status = "waiting"
        if not overridden:
            truck.lane = row["lane"]
            truck.decided_by = row["decided_by"]
            truck.lane_set_at = now
        assigned.append((truck, row, lane_before, overridden))
    session.flush()  # new visits get their ids, which name them in the audit log
    # The old papers must be gone before new ones reuse their declaration ids.
    _delete_papers(session, stale)
    _insert_papers(session, run_id, assigned, declarations_by_truck, items_by_declaration)
    for truck, row, lane_before, overridden in assigned:
        audit.append(
            session=session,
            actor=lane_actor(row["decided_by"], model_version),
            action="lane_assigned",
            crossing=row["crossing"],
            truck_id=row["truck_id"],
            truck_pk=truck.id,
            lane_before=lane_before,
            lane_after=truck.lane,
            at=now,
            details={
                "run_id": run_id,
                "model_version": model_version,
                "published_by": published_by,
                "risk": round(row["risk"], 4),
                "duty_at_risk_usd": round(row["duty_at_risk_usd"], 2),
                "model_lane": row["lane"],
                "selection": row["selection"],
                "kept_override": overridden,
                # A rule's lane is explained by the rule: its reasons lead the truck's.
                **(
                    {name: list(row[name]) for name in ("reasons", "reasons_ru", "reasons_en")}
                    if row["decided_by"] == "rule"
                    else {}
                ),
            },
        )
    session.flush()
    departed = 0
    if replaces_queue:
        crossings = trucks_valid.get_column("crossing").unique().to_list()
        departed = _depart_missing(
            session, crossings=crossings, run_id=run_id, published_by=published_by, now=now
        )
    return PublishSummary(
        run_id=run_id,
        added=added,
        rescored=rescored,
        skipped_inspected=skipped,
        watch_listed=watch_listed,
        departed=departed,
    )


def _depart_missing(
    session: Session, *, crossings: list[str], run_id: str, published_by: str, now: Any
) -> int:
    """Mark departed the trucks of ``crossings`` still waiting from an older publication."""
    gone = session.execute(
        select(Truck.id, Truck.crossing, Truck.truck_id, Truck.lane, Truck.run_id).where(
            Truck.crossing.in_(crossings), Truck.status == "waiting", Truck.run_id != run_id
        )
    ).all()
    for start in range(0, len(gone), 5000):
        ids = [row.id for row in gone[start : start + 5000]]
        # The version moves on, so a page still showing the truck cannot override it.
        session.execute(
            update(Truck)
            .where(Truck.id.in_(ids), Truck.status == "waiting")
            .values(status="departed", version=Truck.version + 1)
            .execution_options(synchronize_session=False)
        )
    for row in gone:
        audit.append(
            session=session,
            actor=published_by,
            action="truck_departed",
            crossing=row.crossing,
            truck_id=row.truck_id,
            truck_pk=row.id,
            lane_before=row.lane,
            lane_after=row.lane,
            at=now,
            details={"run_id": run_id, "last_run_id": row.run_id},
        )
    session.flush()
    return len(gone)


def _validate(schema: type[dy.Schema], frame: pl.DataFrame, name: str) -> pl.DataFrame:
    missing = [c for c in schema.column_names() if c not in frame.columns]
    if missing:
        raise RiskError(f"{name}: missing column(s) {', '.join(missing)}")
    result = schema.filter(frame.select(schema.column_names()), cast=True)
    if len(result.failure) > 0:
        first = result.failure.details().row(0, named=True)
        key = ", ".join(f"{k}={first[k]!r}" for k in schema.primary_key())
        broken = ", ".join(k for k, v in first.items() if v == "invalid")
        raise RiskError(f"{name}: {len(result.failure)} invalid row(s); first {key}: {broken}")
    return result.result


def _check_links(trucks: pl.DataFrame, declarations: pl.DataFrame, items: pl.DataFrame) -> None:
    orphans = declarations.join(trucks, on=["crossing", "truck_id"], how="anti")
    if orphans.height:
        first = orphans.row(0, named=True)
        raise RiskError(
            f"declarations: {orphans.height} on no published truck; first "
            f"{first['declaration_id']} (truck {first['truck_id']} at {first['crossing']})"
        )
    orphan_items = items.join(declarations, on="declaration_id", how="anti")
    if orphan_items.height:
        first = orphan_items.row(0, named=True)
        raise RiskError(
            f"items: {orphan_items.height} of no published declaration; first "
            f"{first['declaration_id']} item {first['item_no']}"
        )


def _visits_of(session: Session, declarations: pl.DataFrame) -> dict[tuple[str, str], Truck]:
    """Visits already in the store, found by the declarations they carry.

    A vehicle comes back days later with other papers: that is a new visit. The same papers
    again are the same visit, re-scored. Papers already on another truck are an error.
    """
    wanted = {
        row[0]: (row[1], row[2])
        for row in declarations.select("declaration_id", "truck_id", "crossing").iter_rows()
    }
    ids = list(wanted)
    visits: dict[tuple[str, str], Truck] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for declaration_id, truck in session.execute(
            select(Declaration.declaration_id, Truck)
            .join(Truck, Declaration.truck_pk == Truck.id)
            .where(Declaration.declaration_id.in_(chunk))
        ).all():
            key = wanted[declaration_id]
            if (truck.truck_id, truck.crossing) != key:
                raise RiskError(
                    f"declaration {declaration_id} is on truck {truck.truck_id} at "
                    f"{truck.crossing} already, not on {key[0]} at {key[1]}"
                )
            visits[key] = truck
    return visits


def _delete_papers(session: Session, trucks: Sequence[int]) -> None:
    """Delete the declarations and items of the given visits, in bulk (chunks of 5,000)."""
    for start in range(0, len(trucks), 5000):
        chunk = list(trucks[start : start + 5000])
        papers = select(Declaration.id).where(Declaration.truck_pk.in_(chunk))
        session.execute(
            delete(Item).where(Item.declaration_pk.in_(papers)),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            delete(Declaration).where(Declaration.truck_pk.in_(chunk)),
            execution_options={"synchronize_session": False},
        )


def _insert_papers(
    session: Session,
    run_id: str,
    assigned: Sequence[tuple[Truck, dict[str, Any], str | None, bool]],
    declarations_by_truck: dict[tuple[Any, ...], list[dict[str, Any]]],
    items_by_declaration: dict[tuple[Any, ...], list[dict[str, Any]]],
) -> None:
    """The declarations and items of the trucks just placed by run ``run_id`` (flushed, so
    with their ids), as two bulk INSERTs: ORM objects for a queue's 30,000 items cost seconds
    of attribute events. The declarations' ids are read back by the run (``RETURNING`` over
    many batches splices its results quadratically). The trucks' ``declarations``
    collections are expired, to be read back from the store."""
    declaration_rows = [
        {k: v for k, v in paper.items() if k not in {"truck_id", "crossing"}}
        | {"truck_pk": truck.id}
        for truck, row, _, _ in assigned
        for paper in declarations_by_truck.get((row["truck_id"], row["crossing"]), [])
    ]
    if declaration_rows:
        session.execute(insert(Declaration), declaration_rows)
        placed = select(Declaration.declaration_id, Declaration.id).join(
            Truck, Declaration.truck_pk == Truck.id
        )
        ids = {key: pk for key, pk in session.execute(placed.where(Truck.run_id == run_id))}
        item_rows = [
            {k: v for k, v in item.items() if k != "declaration_id"}
            | {"declaration_pk": ids[paper["declaration_id"]]}
            for paper in declaration_rows
            for item in items_by_declaration.get((paper["declaration_id"],), [])
        ]
        if item_rows:
            session.execute(insert(Item), item_rows)
    for truck, _, _, _ in assigned:
        session.expire(truck, ["declarations"])


def _group(frame: pl.DataFrame, *keys: str) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        grouped.setdefault(tuple(row[k] for k in keys), []).append(row)
    return grouped


def _lane_rank() -> Any:
    return case({lane: i for i, lane in enumerate(LANE_ORDER)}, value=Truck.lane, else_=9)


def queue(
    *,
    session: Session,
    crossing: str | None = None,
    lane: str | None = None,
    include_inspected: bool = False,
    limit: int = 500,
) -> Sequence[Truck]:
    """Trucks in lane order (red, yellow, blue, green), riskiest first within a lane."""
    query = (
        select(Truck)
        .order_by(_lane_rank(), Truck.risk.desc(), Truck.duty_at_risk_usd.desc(), Truck.id)
        .limit(limit)
    )
    if crossing:
        query = query.where(Truck.crossing == crossing)
    if lane:
        query = query.where(Truck.lane == lane)
    if not include_inspected:
        query = query.where(Truck.status == "waiting")
    return session.scalars(query).all()


def crossings(*, session: Session) -> list[str]:
    return list(session.scalars(select(Truck.crossing).distinct().order_by(Truck.crossing)))


def lane_counts(*, session: Session, crossing: str | None = None) -> dict[str, int]:
    """Waiting trucks per lane."""
    query = select(Truck.lane, func.count(Truck.id)).where(Truck.status == "waiting")
    if crossing:
        query = query.where(Truck.crossing == crossing)
    counts = dict(session.execute(query.group_by(Truck.lane)).all())
    return {lane: int(counts.get(lane, 0)) for lane in LANE_ORDER}


def get_truck(*, session: Session, truck_pk: int) -> Truck:
    """A truck with its declarations and items loaded."""
    truck = session.scalar(
        select(Truck)
        .where(Truck.id == truck_pk)
        .options(selectinload(Truck.declarations).selectinload(Declaration.items))
    )
    if truck is None:
        raise NotFoundError(f"no truck {truck_pk} in the store")
    return truck


def find_truck(*, session: Session, crossing: str, truck_id: str) -> Truck | None:
    """The latest visit of a vehicle to a crossing."""
    return session.scalar(
        select(Truck)
        .where(Truck.crossing == crossing, Truck.truck_id == truck_id)
        .order_by(Truck.id.desc())
        .limit(1)
    )


def latest_run(*, session: Session) -> ScoreRun | None:
    return session.scalar(select(ScoreRun).order_by(ScoreRun.published_at.desc()).limit(1))
