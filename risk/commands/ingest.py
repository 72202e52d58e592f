"""``risk ingest``: foreign files through a source profile into canonical Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from risk.errors import InputError, RiskError
from risk.settings import get_settings

if TYPE_CHECKING:
    import polars as pl


def command(
    files: Annotated[
        list[Path],
        typer.Argument(help="Source files (.csv, .parquet, .ndjson/.jsonl), validated together."),
    ],
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            "-p",
            help="Source profile: a shipped name (canonical, kcs) or a path to a TOML file.",
        ),
    ] = "canonical",
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: <data_dir>/ingest)."),
    ] = None,
    arrivals: Annotated[
        Path | None,
        typer.Option(
            help="TruckArrival Parquet with weighbridge readings, for the weighbridge soft rule."
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="Text encoding of CSV/NDJSON sources (e.g. cp1251); default: profile's."),
    ] = None,
) -> None:
    """Validate source files; write declarations, outcomes and quarantine Parquet files."""
    import polars as pl

    from pipelines.ingest import ingest

    out_dir = out if out is not None else get_settings().data_dir / "ingest"
    try:
        arrival_frame = None if arrivals is None else _read_arrivals(arrivals)
        result = ingest(files, profile, out_dir, arrivals=arrival_frame, encoding=encoding)
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # the output folder: not writable, full disk; nothing was written
        typer.echo(f"error: cannot write the outputs to {out_dir}: {exc}", err=True)
        raise typer.Exit(2) from None

    typer.echo(f"profile {result.profile}: {len(result.sources)} file(s)")
    typer.echo(
        f"rows in {result.rows_in:,} = valid {result.rows_valid:,} "
        f"+ quarantined {result.rows_quarantined:,}"
    )
    for reason, count in result.failure_counts.items():
        typer.echo(f"  {count:>8,}  {reason}")
    flagged = result.declarations.filter(pl.col("soft_flags").list.len() > 0).height
    typer.echo(f"soft flags on {flagged:,} valid rows (kept, marked in soft_flags)")
    for name, path in result.outputs.items():
        typer.echo(f"{name}: {path}")


def _read_arrivals(path: Path) -> pl.DataFrame:
    import polars as pl

    from risk.schemas import TruckArrival

    if not path.is_file():
        raise InputError(f"arrivals file not found: {path}")
    try:
        return TruckArrival.validate(pl.read_parquet(path), cast=True)
    except Exception as exc:  # unreadable or not TruckArrival rows: one clear line
        raise InputError(f"{path}: not a TruckArrival Parquet file: {exc}") from None
