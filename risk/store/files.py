"""Reading what ``risk score`` wrote, for ``risk publish``; writing outcomes for training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import polars as pl
from sqlalchemy.orm import Session

from risk.atomic import write_frame
from risk.errors import InputError, RiskError
from risk.schemas import DeclarationItem
from risk.store.frames import published_frames
from risk.store.models import utcnow
from risk.store.outcomes import export_outcomes, import_history
from risk.store.trucks import PublishSummary, publish_scores

LIST_SEPARATOR = " | "  # how ``risk score`` joins reasons in CSV


@dataclass(frozen=True)
class ScoreFiles:
    items: Path
    declarations: Path
    trucks: Path


def find_score_files(path: Path) -> ScoreFiles:
    """The three outputs of ``risk score``: give the items file, or the folder holding it."""
    if path.is_dir():
        trucks = sorted(path.glob("*.trucks.parquet")) + sorted(path.glob("*.trucks.csv"))
        if len(trucks) != 1:
            raise InputError(
                f"{path}: expected one '<name>.trucks.parquet' written by `risk score`, "
                f"found {len(trucks)}; give the scores file itself"
            )
        stem, fmt = trucks[0].name.rsplit(".trucks.", 1)
        path = path / f"{stem}.{fmt}"
    fmt = path.suffix.lstrip(".")
    stem = path.name.removesuffix(path.suffix)
    files = ScoreFiles(
        items=path,
        declarations=path.parent / f"{stem}.declarations.{fmt}",
        trucks=path.parent / f"{stem}.trucks.{fmt}",
    )
    for name in ("items", "declarations", "trucks"):
        if not getattr(files, name).is_file():
            raise InputError(f"scores: {getattr(files, name)} not found (written by `risk score`)")
    return files


def read_frame(path: Path) -> pl.DataFrame:
    try:
        if path.suffix == ".csv":
            frame = pl.read_csv(path, try_parse_dates=True)
            lists = [c for c in ("reasons", "reasons_ru", "reasons_en") if c in frame.columns]
            if lists:
                frame = frame.with_columns(
                    pl.col(name)
                    .cast(pl.String)
                    .fill_null("")
                    .str.split(LIST_SEPARATOR)
                    .list.eval(pl.element().filter(pl.element() != ""))
                    for name in lists
                )
            return frame
        return pl.read_parquet(path)
    except FileNotFoundError as error:
        raise InputError(f"{path}: not found") from error
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(f"{path}: cannot be read: {error}") from error


def publish_files(
    *,
    session: Session,
    scores: Path,
    declarations: Path,
    arrivals: Path | None,
    published_by: str,
) -> PublishSummary:
    """Publish a ``risk score`` output with the declarations it scored; caller commits.

    The output is the standing queue of its crossings: trucks still waiting from an older
    publication that it leaves out have departed (``publish_scores(replaces_queue=True)``).
    """
    files = find_score_files(scores)
    trucks = read_frame(files.trucks)
    if trucks.is_empty():
        raise RiskError(f"{files.trucks}: no trucks to publish")
    versions = trucks.get_column("model_version").unique().to_list()
    if len(versions) != 1:
        raise RiskError(f"{files.trucks}: one model version per publication, got {versions}")
    declared = DeclarationItem.validate(read_frame(declarations), cast=True)
    frames = published_frames(
        trucks=trucks,
        declarations=read_frame(files.declarations),
        items=read_frame(files.items),
        declaration_items=declared,
        arrivals=read_frame(arrivals) if arrivals is not None else None,
    )
    return publish_scores(
        session=session,
        trucks=frames[0],
        declarations=frames[1],
        items=frames[2],
        run_id=f"{utcnow():%Y%m%dT%H%M%S}-{uuid4().hex[:8]}",
        model_version=str(versions[0]),
        model_run_id=str(trucks.get_column("run_id")[0]) if "run_id" in trucks.columns else None,
        published_by=published_by,
        source=str(files.items),
        replaces_queue=True,
    )


def import_history_files(*, session: Session, folder: Path) -> int:
    """Importers' track records from a history folder (``declarations.parquet`` and
    ``outcomes.parquet``, as ``risk generate`` and ``risk ingest`` write them)."""
    declarations = read_frame(folder / "declarations.parquet")
    outcomes = read_frame(folder / "outcomes.parquet")
    return import_history(session=session, declarations=declarations, outcomes=outcomes)


def write_outcomes(*, session: Session, out: Path) -> int:
    """Recorded results as InspectionOutcome rows in ``out`` (written atomically)."""
    frame = export_outcomes(session=session)
    write_frame(frame, out)
    return frame.height
