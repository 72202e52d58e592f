"""``risk simulate``: the standing queue under four selection policies, in a crossing simulation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from risk.errors import RiskError
from risk.settings import get_settings


def command(
    traffic: Annotated[
        Path | None,
        typer.Option(help="Folder written by `risk generate`. Default: <data dir>/traffic."),
    ] = None,
    scores: Annotated[
        Path | None,
        typer.Option(
            help="Truck scores of the queue (<stem>.trucks.parquet of `risk score`). "
            "Default: score the queue now with --model."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="MLflow model URI for scoring the queue. Default: the champion."),
    ] = None,
    capacity: Annotated[
        Path | None,
        typer.Option(help="Capacity TOML (lanes and crossings). Default: the shipped one."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="Hard rules TOML, added to the old rules in 'rules only'."),
    ] = None,
    trucks: Annotated[
        int, typer.Option(min=1, help="Trucks of the standing queue, first to arrive first.")
    ] = 7000,
    inspect_share: Annotated[
        float, typer.Option(min=0, max=1, help="Share inspected in 'inspect nearly all'.")
    ] = 0.95,
    random_share: Annotated[
        float, typer.Option(min=0, max=1, help="Share inspected in 'random n%'.")
    ] = 0.10,
    seed: Annotated[int, typer.Option(help="Seed of the policies' and detection draws.")] = 0,
    replan_hours: Annotated[
        list[float] | None,
        typer.Option(
            help="Also re-fill the model's lanes for this planning horizon in hours "
            "(repeatable; default 48). Shows what more officer time buys."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for simulation.csv and queue.png. Default: <data dir>/simulation."
        ),
    ] = None,
) -> None:
    """Compare inspect-nearly-all, random, rules-only and model lanes on the generated queue."""
    try:
        run(
            traffic=traffic,
            scores=scores,
            model=model,
            capacity=capacity,
            rules=rules,
            trucks=trucks,
            inspect_share=inspect_share,
            random_share=random_share,
            seed=seed,
            replan_hours=tuple(replan_hours) if replan_hours is not None else (48.0,),
            out=out,
        )
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def run(
    *,
    traffic: Path | None = None,
    scores: Path | None = None,
    model: str | None = None,
    capacity: Path | None = None,
    rules: Path | None = None,
    trucks: int = 7000,
    inspect_share: float = 0.95,
    random_share: float = 0.10,
    seed: int = 0,
    replan_hours: tuple[float, ...] = (48.0,),
    out: Path | None = None,
    echo: bool = True,
) -> dict[str, object]:
    """The simulation as a function (``risk demo`` calls it); returns what it wrote."""
    import polars as pl

    from risk.atomic import write_frame
    from risk.lanes import load_capacity
    from risk.rules import RuleSet, load_rules
    from risk.simulation import Detection, format_table, load_queue, results_table
    from risk.simulation.compare import PolicySettings, compare_policies, headline, legacy_rules
    from risk.simulation.plot import plot_queues

    settings = get_settings()
    folder = traffic or settings.data_dir / "traffic"
    out_dir = out or settings.data_dir / "simulation"
    paths = {
        "declarations": folder / "queue" / "declarations.parquet",
        "arrivals": folder / "queue" / "arrivals.parquet",
        "truth": folder / "truth" / "ground_truth.parquet",
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise RiskError(f"no generated traffic with ground truth: missing {', '.join(missing)}")
    declarations = pl.read_parquet(paths["declarations"])
    arrivals = pl.read_parquet(paths["arrivals"])
    truth = pl.read_parquet(paths["truth"])
    manifest = _manifest(folder)

    capacity_config = load_capacity(capacity)
    if scores is None:
        from pipelines.score_job import score_files

        scored_path = out_dir / "queue_scores.parquet"
        summary = score_files(
            [paths["declarations"]],
            output=scored_path,
            model_uri=model,
            capacity=capacity_config,
            rules=rules,
            arrivals=paths["arrivals"],
        )
        scores = summary.outputs["trucks"]
    if not scores.is_file():
        raise RiskError(f"truck scores not found: {scores}")
    scored_trucks = pl.read_parquet(scores)

    old_rules = legacy_rules(
        manifest.get("rule_hs_chapters", legacy_rules().rules[0].hs_prefixes),
        manifest.get("rule_origins", legacy_rules().rules[0].origin_countries),
    )
    extra = load_rules(rules) if rules is not None else RuleSet()
    detection = Detection(
        physical=manifest.get("detection_rates", {}),
        document_factor=float(manifest.get("document_check_factor", 0.5)),
    )
    queue = load_queue(declarations, truth, arrivals, limit=trucks)
    results = compare_policies(
        queue,
        declarations,
        scored_trucks,
        capacity_config,
        rules=RuleSet(rules=old_rules.rules + extra.rules),
        detection=detection,
        settings=PolicySettings(
            inspect_share=inspect_share,
            random_share=random_share,
            seed=seed,
            replan_hours=replan_hours,
        ),
    )
    table_path = write_frame(results_table(results), out_dir / "simulation.csv")
    plot_path = plot_queues(results, out_dir / "queue.png")
    summary_lines = headline(results)
    if echo:
        typer.echo(f"Standing queue of {queue.trucks.height:,} trucks, {len(results)} policies:")
        typer.echo(format_table(results))
        for line in summary_lines:
            typer.echo(line)
        typer.echo(f"table: {table_path}")
        typer.echo(f"plot:  {plot_path}")
    return {
        "results": results,
        "table": table_path,
        "plot": plot_path,
        "scores": scores,
        "headline": summary_lines,
    }


def _manifest(folder: Path) -> dict[str, Any]:
    """The generator's config (detection rates, old rules), if the manifest is there."""
    path = folder / "manifest.json"
    if not path.is_file():
        return {}
    config = json.loads(path.read_text(encoding="utf-8")).get("config", {})
    return config if isinstance(config, dict) else {}
