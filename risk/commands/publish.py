"""``risk publish``: put the trucks ``risk score`` scored into the console's queues."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer

from risk.errors import RiskError
from risk.settings import Settings, get_settings


def command(
    scores: Annotated[
        Path,
        typer.Argument(
            help="The scores file written by `risk score` (its .declarations and .trucks "
            "siblings are read too), or the folder holding them."
        ),
    ],
    declarations: Annotated[
        Path,
        typer.Option(
            "--declarations",
            "-d",
            help="The DeclarationItem Parquet that was scored (what officers read: goods, "
            "HS codes, parties).",
        ),
    ],
    arrivals: Annotated[
        Path | None,
        typer.Option(help="TruckArrival Parquet of the queue: arrival times and waiting."),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            help="A history folder (declarations.parquet, outcomes.parquet) for importers' "
            "track records, e.g. data/traffic/history."
        ),
    ] = None,
) -> None:
    """Publish scored trucks (lanes, reasons) into the store the console reads."""
    try:
        summary, importers = publish(
            get_settings(),
            scores=scores,
            declarations=declarations,
            arrivals=arrivals,
            history=history,
            published_by=f"cli:{getpass.getuser()}",
        )
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"published run {summary.run_id}: {summary.added:,} trucks added, "
        f"{summary.rescored:,} re-scored, {summary.skipped_inspected:,} already inspected "
        f"(kept), {summary.watch_listed:,} laned by the store's watch lists, "
        f"{summary.departed:,} trucks of the previous queue marked departed"
    )
    if importers is not None:
        typer.echo(f"track records of {importers:,} importers from {history}")


def publish(
    settings: Settings,
    *,
    scores: Path,
    declarations: Path,
    arrivals: Path | None,
    history: Path | None,
    published_by: str,
) -> tuple[Any, int | None]:
    """Migrate the store, publish the scores and (optionally) importers' track records."""
    from risk import store
    from risk.store.files import import_history_files, publish_files

    url = str(settings.database_url)
    settings.ensure_data_dir()
    store.migrate(url)
    engine = store.make_engine(url)
    try:
        with store.session_factory(engine).begin() as session:
            summary = publish_files(
                session=session,
                scores=scores,
                declarations=declarations,
                arrivals=arrivals,
                published_by=published_by,
            )
            importers = import_history_files(session=session, folder=history) if history else None
    finally:
        engine.dispose()
    return summary, importers


def export_command(
    out: Annotated[
        Path,
        typer.Argument(help="Output file (.parquet, .csv or .ndjson), written atomically."),
    ],
) -> None:
    """Export recorded inspection results as InspectionOutcome rows for `risk train`."""
    from risk import store
    from risk.store.files import write_outcomes

    url = str(get_settings().database_url)
    try:
        store.migrate(url)
        engine = store.make_engine(url)
        try:
            with store.session_factory(engine)() as session:
                rows = write_outcomes(session=session, out=out)
        finally:
            engine.dispose()
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (OSError, ValueError) as exc:
        typer.echo(f"error: cannot write {out}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{rows:,} outcome rows written to {out}")
