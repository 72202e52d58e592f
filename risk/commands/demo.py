"""``risk demo``: the main job on the embedded default, end to end.

generate traffic → train → promote → score today's queue → lanes → simulate → report.
Everything goes under the data folder (``RISK_DATA_DIR``, default ./data). A re-run reuses the
generated traffic when its config is the default one, trains again, and reports a refused
promotion (an equal model does not replace the champion) as information, not as a failure.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from risk.errors import RiskError
from risk.settings import Settings, get_settings


def command(
    fresh: Annotated[
        bool, typer.Option(help="Generate the traffic again even if it is already there.")
    ] = False,
    retrain: Annotated[
        bool,
        typer.Option(
            help="Train a new model (default). --no-retrain scores with the current champion "
            "when there is one."
        ),
    ] = True,
    lang: Annotated[
        str,
        typer.Option(
            help="Language of the scores' reasons column: ru (the console's default) or en; "
            "both languages are kept and the console shows the officer's."
        ),
    ] = "ru",
) -> None:
    """Run the whole flow on synthetic traffic and print where everything is."""
    try:
        if lang not in ("en", "ru"):
            raise RiskError(f"--lang {lang!r}: choose en or ru")
        run(fresh=fresh, retrain=retrain, lang=lang)
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _step(name: str) -> float:
    typer.echo(f"· {name} ...")
    return time.perf_counter()


def run(*, fresh: bool = False, retrain: bool = True, lang: str = "ru") -> dict[str, Any]:
    """The demo as a function; returns what the report prints."""
    import logging

    settings = get_settings()
    data_dir = settings.ensure_data_dir()
    started = time.perf_counter()
    settings.configure_mlflow()
    # MLflow narrates every table it creates and file it copies; the demo prints its own report.
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    clock = _step("traffic")
    traffic_dir, traffic_note = _traffic(data_dir / "traffic", fresh=fresh)
    timings = {"traffic": time.perf_counter() - clock}

    clock = _step("model")
    model = _model(settings, traffic_dir, retrain=retrain)
    timings["train_promote"] = time.perf_counter() - clock

    clock = _step("score today's queue")
    from pipelines.score_job import score_files

    summary = score_files(
        [traffic_dir / "queue" / "declarations.parquet"],
        output=data_dir / "scores" / "queue.parquet",
        model_uri=model["uri"],
        arrivals=traffic_dir / "queue" / "arrivals.parquet",
        lang=lang,
    )
    timings["score"] = time.perf_counter() - clock

    clock = _step("publish to the console's store")
    from risk.commands.publish import publish

    published, _ = publish(
        settings,
        scores=summary.outputs["items"],
        declarations=traffic_dir / "queue" / "declarations.parquet",
        arrivals=traffic_dir / "queue" / "arrivals.parquet",
        history=traffic_dir / "history",
        published_by="risk demo",
    )
    timings["publish"] = time.perf_counter() - clock

    clock = _step("simulate the crossings")
    from risk.commands.simulate import run as simulate

    simulation = simulate(
        traffic=traffic_dir,
        scores=summary.outputs["trucks"],
        out=data_dir / "simulation",
        echo=False,
    )
    timings["simulate"] = time.perf_counter() - clock
    timings["total"] = time.perf_counter() - started

    _report(settings, traffic_dir, traffic_note, model, summary, simulation, timings)
    typer.echo(f"console      {published.added + published.rescored:,} trucks published to "
               f"{settings.database_url}")  # fmt: skip
    typer.echo("  open it:    .venv/bin/risk users add NAME --role officer, then "
               "RISK_ENV=development .venv/bin/risk console → http://127.0.0.1:8000")  # fmt: skip
    return {"model": model, "summary": summary, "simulation": simulation, "timings": timings}


def _traffic(folder: Path, *, fresh: bool) -> tuple[Path, str]:
    """The default traffic, generated unless an identical one is already there."""
    import json

    from pipelines.generate import TrafficConfig, generate_traffic, write_traffic

    config = TrafficConfig()
    manifest = folder / "manifest.json"
    if not fresh and manifest.is_file():
        written = json.loads(manifest.read_text(encoding="utf-8")).get("config")
        if written == json.loads(config.model_dump_json()):
            return folder, "reused (same seed and config)"
    write_traffic(generate_traffic(config), folder)
    return folder, "generated"


def _model(settings: Settings, traffic_dir: Path, *, retrain: bool) -> dict[str, Any]:
    """Train and register a model, then try to promote it; the champion's URI either way."""
    from experiments.config import LightGBMParams, TrainJob
    from experiments.promotion import promote
    from experiments.registry import champion_uri, latest_version, registered_model_name

    name = registered_model_name(settings.registered_model, "canonical")
    info: dict[str, Any] = {"name": name, "uri": champion_uri(name)}
    if not retrain and latest_version(name) is not None:
        try:
            from experiments.registry import resolve_version

            resolve_version(info["uri"])
            info["promotion"] = "not retrained (--no-retrain): scoring with the champion"
            return info
        except RiskError:
            pass  # no champion yet: train one

    from experiments.train import train

    result = train(TrainJob(data_dir=traffic_dir / "history"), LightGBMParams(), settings=settings)
    info.update(run_id=result.run_id, version=result.model_version, metrics=result.metrics)
    info["experiment_id"] = result.experiment_id
    try:
        decision = promote(name, run_id=result.run_id)
    except RiskError as exc:
        info["promotion"] = f"not promoted: {exc}"
        return info
    info["promotion"] = promotion_note(decision)
    return info


def promotion_note(decision: Any) -> str:
    """A promotion decision in one line; a refusal is information, not a failure."""
    if decision.promoted:
        return f"version {decision.candidate} is champion ({decision.method})"
    figures = ""
    if decision.candidate_precision is not None and decision.champion_precision is not None:
        figures = (
            f": P@{decision.capacity:.0%} {decision.candidate_precision:.4f} against "
            f"{decision.champion_precision:.4f}"
        )
    return (
        f"version {decision.candidate} not promoted, champion stays version "
        f"{decision.champion} ({decision.method}{figures})"
    )


def _report(
    settings: Settings,
    traffic_dir: Path,
    traffic_note: str,
    model: dict[str, Any],
    summary: Any,
    simulation: dict[str, Any],
    timings: dict[str, float],
) -> None:
    from risk.simulation import format_table

    echo = typer.echo
    echo("")
    echo(f"greyrisk demo done in {timings['total']:.0f} s "
         f"(traffic {timings['traffic']:.0f} s, train+promote {timings['train_promote']:.0f} s, "
         f"score {timings['score']:.0f} s, publish {timings['publish']:.0f} s, "
         f"simulate {timings['simulate']:.0f} s)")  # fmt: skip
    echo(f"traffic      {traffic_dir}  ({traffic_note})")
    if "run_id" in model:
        test = model.get("metrics", {}).get("test_precision_at_5pct")
        figure = f", test P@5% {test:.3f}" if test is not None else ""
        echo(f"trained      {model['name']} version {model['version']}, run {model['run_id']}"
             f"{figure}")  # fmt: skip
    echo(f"promotion    {model['promotion']}")
    echo(f"scored with  {summary.model_version} (run {summary.run_id})")
    lanes = ", ".join(f"{k} {summary.lanes.get(k, 0):,}" for k in ("red", "yellow", "green"))
    random = summary.selections.get("random", 0)
    echo(f"lanes        {lanes} trucks ({random:,} of the red picked at random)")
    for name, path in summary.outputs.items():
        echo(f"  {name:<14}{path}")
    echo("")
    echo(format_table(simulation["results"]))
    for line in simulation["headline"]:
        echo(line)
    echo(f"  table         {simulation['table']}")
    echo(f"  plot          {simulation['plot']}")
    echo("")
    uri = settings.mlflow_tracking_uri
    echo(f"MLflow       {uri} (experiment '{settings.mlflow_experiment}')")
    echo(f"  open the UI: .venv/bin/mlflow ui --backend-store-uri {uri} --port 5000, "
         "then http://127.0.0.1:5000")  # fmt: skip
