"""``risk score``: a queue or day file in any source profile → item, declaration, truck scores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from risk.errors import RiskError


def command(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Declaration files (.csv, .parquet, .ndjson), scored together."),
    ],
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            "-p",
            help="Source profile: a shipped name (canonical, kcs) or a TOML path.",
        ),
    ] = "canonical",
    model: Annotated[
        str | None,
        typer.Option(
            help="MLflow model URI. Default: models:/<registered model>-<profile>@champion."
        ),
    ] = None,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Item scores file; <stem>.declarations, <stem>.trucks and "
            "<stem>.quarantine.parquet are written beside it.",
        ),
    ] = Path("scores.parquet"),
    output_format: Annotated[
        str, typer.Option("--format", help="parquet or csv (reasons joined with ' | ').")
    ] = "parquet",
    capacity: Annotated[
        Path | None,
        typer.Option(help="Capacity TOML per crossing. Default: risk/reference/capacity.toml."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="Hard rules TOML (watch lists). Default: risk/reference/rules.toml."),
    ] = None,
    profiles: Annotated[
        Path | None,
        typer.Option(help="Entity profiles folder. Default: the ones bundled with the model."),
    ] = None,
    arrivals: Annotated[
        Path | None,
        typer.Option(help="TruckArrival Parquet of the queue (weighbridge readings)."),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(help="Score on Dask: 'local' (a LocalCluster on 127.0.0.1) or an address."),
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(min=1, help="Partitions (and local workers) with --cluster.")
    ] = None,
    lang: Annotated[
        str,
        typer.Option(
            help="Language of the reasons column: en or ru (reasons_ru and reasons_en are "
            "written too; the console shows the officer's language)."
        ),
    ] = "en",
    explain_items: Annotated[
        int,
        typer.Option(
            min=1,
            help="Items explained (SHAP) per red or yellow truck, riskiest first. SHAP costs "
            "about a hundred predictions per item.",
        ),
    ] = 1,
) -> None:
    """Score declarations: risk, duty at risk, lane and reasons per item, declaration, truck."""
    from pipelines.score_job import score_files

    try:
        if output_format not in ("parquet", "csv"):
            raise RiskError(f"--format {output_format!r}: choose parquet or csv")
        if lang not in ("en", "ru"):
            raise RiskError(f"--lang {lang!r}: choose en or ru")
        summary = score_files(
            inputs,
            output=output,
            profile=profile,
            model_uri=model,
            fmt=output_format,  # type: ignore[arg-type]
            capacity=capacity,
            rules=rules,
            profiles_dir=profiles,
            arrivals=arrivals,
            cluster=cluster,
            partitions=partitions,
            lang=lang,
            explain_items=explain_items,
        )
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in summary.lines():
        typer.echo(line)
