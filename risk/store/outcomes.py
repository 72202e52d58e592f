"""Inspection results as labels: the export the next ``risk train`` reads, and track records.

An officer records one result per truck. The export turns it into ``InspectionOutcome`` rows,
one per declaration on the truck (``item_no`` null: the result applies to the declaration):
the declaration the violation was found in gets it and the extra duty; the others on the same
inspected truck were looked at and found clean. A violation recorded for the whole truck marks
every declaration, the extra duty split by customs value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from risk.schemas import DeclarationItem, InspectionOutcome
from risk.store.models import Declaration, ImporterRecord, Inspection, Truck, utcnow


@dataclass(frozen=True)
class TrackRecord:
    """An importer's inspections so far: imported history plus results recorded since."""

    importer_id: str
    declarations: int
    inspected: int
    violations: int
    extra_duty_usd: float
    last_violation_at: datetime | None

    @property
    def hit_rate(self) -> float | None:
        return self.violations / self.inspected if self.inspected else None


def latest_inspections(
    *,
    session: Session,
    since: datetime | None = None,
    crossing: str | None = None,
    with_declarations: bool = True,
) -> Sequence[Inspection]:
    """The current result of every inspected truck (a correction replaces the earlier one)."""
    newest = select(func.max(Inspection.id)).group_by(Inspection.truck_pk).scalar_subquery()
    load_truck = selectinload(Inspection.truck)
    if with_declarations:
        load_truck.selectinload(Truck.declarations).selectinload(Declaration.items)
    query = (
        select(Inspection)
        .where(Inspection.id.in_(newest))
        .options(load_truck)
        .order_by(Inspection.recorded_at, Inspection.id)
    )
    if since is not None:
        query = query.where(Inspection.recorded_at >= since)
    if crossing is not None:
        query = query.join(Truck).where(Truck.crossing == crossing)
    return session.scalars(query).all()


def declaration_outcomes(inspection: Inspection) -> Iterable[dict[str, Any]]:
    """The InspectionOutcome rows (as dicts, plus ``importer_id``) of one inspection."""
    truck = inspection.truck
    values = {
        d.declaration_id: sum(i.customs_value_usd for i in d.items) for d in truck.declarations
    }
    total = sum(values.values())
    for declaration in truck.declarations:
        whole_truck = inspection.declaration_id is None
        hit = whole_truck or inspection.declaration_id == declaration.declaration_id
        if inspection.result == "clean" or not hit:
            result, duty = "clean", 0.0
        elif whole_truck:
            share = values[declaration.declaration_id] / total if total > 0 else 1 / len(values)
            result, duty = inspection.result, inspection.extra_duty_usd * share
        else:
            result, duty = inspection.result, inspection.extra_duty_usd
        yield {
            "declaration_id": declaration.declaration_id,
            "item_no": None,
            # A truck key "decl:<id>" stands for a declaration that travelled without a truck id.
            "truck_id": None if truck.truck_id.startswith("decl:") else truck.truck_id,
            "crossing": truck.crossing,
            "lane": inspection.lane,
            "inspected": True,
            "selection": inspection.selection,
            "result": result,
            "extra_duty_usd": duty,
            "officer_id": inspection.officer,
            "recorded_at": inspection.recorded_at,
            "importer_id": declaration.importer_id,
        }


def export_outcomes(
    *, session: Session, since: datetime | None = None, crossing: str | None = None
) -> pl.DataFrame:
    """Recorded results as ``InspectionOutcome`` rows, validated, for the next training."""
    rows = [
        {k: v for k, v in row.items() if k != "importer_id"}
        for inspection in latest_inspections(session=session, since=since, crossing=crossing)
        for row in declaration_outcomes(inspection)
    ]
    if not rows:
        return InspectionOutcome.create_empty()
    frame = pl.DataFrame(rows, schema_overrides={"item_no": pl.Int32, "result": pl.String})
    return InspectionOutcome.validate(frame, cast=True)


def track_records(*, session: Session, importer_ids: Sequence[str]) -> dict[str, TrackRecord]:
    """Each importer's record: imported history plus the results recorded in the console."""
    ids = sorted(set(importer_ids))
    history = {
        r.importer_id: r
        for r in session.scalars(select(ImporterRecord).where(ImporterRecord.importer_id.in_(ids)))
    }
    inspections = session.scalars(
        select(Inspection)
        .where(
            Inspection.id.in_(
                select(func.max(Inspection.id)).group_by(Inspection.truck_pk).scalar_subquery()
            ),
            Inspection.truck_pk.in_(
                select(Declaration.truck_pk).where(Declaration.importer_id.in_(ids))
            ),
        )
        .options(
            selectinload(Inspection.truck)
            .selectinload(Truck.declarations)
            .selectinload(Declaration.items)
        )
    ).all()
    recent: dict[str, list[dict[str, Any]]] = {}
    for inspection in inspections:
        for row in declaration_outcomes(inspection):
            recent.setdefault(row["importer_id"], []).append(row)
    records = {}
    for importer_id in ids:
        past = history.get(importer_id)
        rows = recent.get(importer_id, [])
        violations = [r for r in rows if r["result"] != "clean"]
        last_times = [r["recorded_at"] for r in violations]
        if past is not None and past.last_violation_at is not None:
            last_times.append(past.last_violation_at)
        records[importer_id] = TrackRecord(
            importer_id=importer_id,
            declarations=(past.declarations if past else 0) + len(rows),
            inspected=(past.inspected if past else 0) + len(rows),
            violations=(past.violations if past else 0) + len(violations),
            extra_duty_usd=(past.extra_duty_usd if past else 0.0)
            + sum(r["extra_duty_usd"] for r in violations),
            last_violation_at=max(last_times) if last_times else None,
        )
    return records


def import_history(*, session: Session, declarations: pl.DataFrame, outcomes: pl.DataFrame) -> int:
    """Replace the importers' history summaries from past declarations and outcomes.

    ``declarations`` are ``DeclarationItem`` rows, ``outcomes`` ``InspectionOutcome`` rows;
    an outcome for a whole declaration (``item_no`` null) and item outcomes count once per
    declaration. Returns the number of importers. The caller commits.
    """
    items = DeclarationItem.validate(declarations, cast=True)
    results = InspectionOutcome.validate(outcomes, cast=True)
    per_declaration = results.group_by("declaration_id").agg(
        inspected=pl.col("inspected").any(),
        violation=(pl.col("result").is_not_null() & (pl.col("result") != "clean")).any(),
        extra_duty_usd=pl.col("extra_duty_usd").fill_null(0.0).sum(),
        recorded_at=pl.col("recorded_at").max(),
    )
    summary = (
        items.group_by("declaration_id")
        .agg(pl.col("importer_id").first(), pl.col("declared_at").max())
        .join(per_declaration, on="declaration_id", how="left")
        .group_by("importer_id")
        .agg(
            declarations=pl.len(),
            inspected=pl.col("inspected").fill_null(False).sum(),
            violations=pl.col("violation").fill_null(False).sum(),
            extra_duty_usd=pl.col("extra_duty_usd").filter(pl.col("violation")).sum(),
            last_violation_at=pl.col("recorded_at").filter(pl.col("violation")).max(),
        )
        .sort("importer_id")
    )
    as_of = items.get_column("declared_at").max() if items.height else utcnow()
    session.execute(delete(ImporterRecord))
    session.add_all(
        ImporterRecord(
            importer_id=row["importer_id"],
            declarations=int(row["declarations"]),
            inspected=int(row["inspected"]),
            violations=int(row["violations"]),
            extra_duty_usd=float(row["extra_duty_usd"] or 0.0),
            last_violation_at=row["last_violation_at"],
            as_of=as_of,
        )
        for row in summary.iter_rows(named=True)
    )
    session.flush()
    return summary.height
