"""Logging a training run to MLflow: params, metrics, plots, tables, the pyfunc model.

Artifacts of a run:
- ``data/fingerprint.json`` periods, row counts, content hashes; ``data/job.json`` the job
  (inputs as absolute paths), which ``risk promote`` uses to re-score the same held-out data;
- ``evaluation/slices.parquet`` and ``.csv`` metrics per crossing and per HS chapter (the
  evaluated period), ``evaluation/predictions.parquet`` the held-out items with their scores;
- ``plots/*.png`` PR curve, calibration curve, precision@n% curve, feature importance;
- ``features/catalog.json`` and ``features/catalog.md`` the features the model reads;
- ``model/`` the pyfunc (scorer folder inside: boosters, calibration, entity profiles).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from experiments import plots
from experiments.config import LightGBMParams, TrainJob, flat_params
from experiments.evaluation import slices
from experiments.pyfunc import SCORER_ARTIFACT, RiskModel, example_rows
from experiments.registry import MODEL_ARTIFACT
from experiments.train import Fitted, TrainResult, build_scorer
from experiments.training_set import TrainingSet

if TYPE_CHECKING:
    from mlflow.entities import Experiment

    from experiments.scorer import Scorer
    from risk.settings import Settings

# What the pyfunc needs at load time; listed explicitly so MLflow does not spend a
# subprocess inferring it. The project's own packages must be importable where it is served.
_RUNTIME_PACKAGES = ("polars", "pyarrow", "numpy", "pandas", "lightgbm", "pydantic", "dataframely")


def _requirements() -> list[str]:
    pins = []
    for package in _RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def _catalog(scorer: Scorer) -> tuple[dict[str, Any], str]:
    entries = {
        name: {
            "meaning": entry.meaning,
            "scheme": entry.scheme,
            "reason_en": entry.reason_en,
            "reason_ru": entry.reason_ru,
            "categorical": name in scorer.categorical_features,
        }
        for name, entry in scorer.catalog.items()
    }
    lines = ["| feature | meaning | scheme |", "|---|---|---|"]
    lines += [f"| `{n}` | {e['meaning']} | {e['scheme']} |" for n, e in entries.items()]
    return entries, "\n".join(lines) + "\n"


def _curves(scored: pl.DataFrame, period: str) -> dict[str, tuple[Any, Any]]:
    part = scored.filter(pl.col("split") == period)
    curves = {period: (part["label"].to_numpy(), part["risk"].to_numpy())}
    random = part.filter(pl.col("selection") == "random")
    if 0 < random.height < part.height:
        curves[f"{period} random picks"] = (random["label"].to_numpy(), random["risk"].to_numpy())
    return curves


def _log_plots(fitted: Fitted, eval_split: str) -> None:
    import mlflow

    curves = _curves(fitted.scored, eval_split)
    figures = {
        "plots/pr_curve.png": plots.pr_curve(curves),
        "plots/calibration_curve.png": plots.calibration_curve(curves),
        "plots/precision_at_curve.png": plots.precision_at_curve(curves),
        "plots/feature_importance.png": plots.feature_importance(fitted.booster),
    }
    for name, figure in figures.items():
        mlflow.log_figure(figure, name)


def input_example(declarations: pl.DataFrame, cutoff_iso: str) -> pl.DataFrame:
    """A few real rows moved to the profiles' cut-off, so the bundled profiles accept them."""
    import datetime as dt

    cutoff = dt.datetime.fromisoformat(cutoff_iso)
    return declarations.tail(3).with_columns(
        pl.lit(cutoff, dtype=pl.Datetime("us")).alias("declared_at")
    )


def log_model(
    scorer: Scorer, example: pl.DataFrame, *, model_name: str | None
) -> tuple[str, str | None]:
    """Log the scorer as a pyfunc in the active run; register it under ``model_name``.
    Returns the model URI and the registered version (None when not registered)."""
    import mlflow
    from mlflow.models import infer_signature

    example_pd = example_rows(example)
    output = scorer.score(example).to_pandas()
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values; item_no never does.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(example_pd, output)
    with tempfile.TemporaryDirectory(prefix="risk-scorer-") as tmp, warnings.catch_warnings():
        # MLflow 3.17 compares the example's column index with a range when it saves the
        # example, which pandas 3 deprecates; the saved example is right all the same.
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        folder = scorer.save(Path(tmp) / SCORER_ARTIFACT)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=RiskModel(),
            artifacts={SCORER_ARTIFACT: str(folder)},
            signature=signature,
            input_example=example_pd,
            pip_requirements=_requirements(),
        )
    if model_name is None:
        return info.model_uri, None
    registered = mlflow.register_model(info.model_uri, model_name)
    return info.model_uri, str(registered.version)


def use_experiment(settings: Settings) -> Experiment:
    """Point MLflow at the settings' store and experiment, creating the experiment if needed.

    With a local SQLite store, a new experiment keeps its artifacts in ``mlartifacts`` beside
    the database (MLflow would otherwise put them under the current directory); any other
    store decides for itself.
    """
    import mlflow
    from mlflow import MlflowClient

    uri = settings.configure_mlflow()
    name = settings.mlflow_experiment
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        location = None
        if uri.startswith("sqlite:///"):
            store = Path(uri.removeprefix("sqlite:///")).resolve()
            location = (store.parent / "mlartifacts").as_uri()
        client.create_experiment(name, artifact_location=location)
    return mlflow.set_experiment(name)


def log_training_run(
    ts: TrainingSet,
    fitted: Fitted,
    job: TrainJob,
    params: LightGBMParams,
    *,
    settings: Settings,
    model_name: str,
) -> TrainResult:
    """One MLflow run with everything listed in the module docstring."""
    import mlflow

    experiment = use_experiment(settings)
    with mlflow.start_run(run_name=job.run_name) as run:
        return log_into_active_run(
            ts,
            fitted,
            job,
            params,
            model_name=model_name,
            run_id=run.info.run_id,
            experiment_id=experiment.experiment_id,
        )


def log_into_active_run(
    ts: TrainingSet,
    fitted: Fitted,
    job: TrainJob,
    params: LightGBMParams,
    *,
    model_name: str,
    run_id: str,
    experiment_id: str,
) -> TrainResult:
    """Log a fitted model and its evaluation into the active run (``risk tune`` logs the
    best trial into its parent run this way)."""
    import mlflow

    eval_split = ts.periods.eval_split
    mlflow.set_tags(
        {
            "profile": ts.data.profile,
            "eval_split": eval_split,
            "registered_model": model_name,
            "data.declarations_hash": ts.fingerprint["declarations_hash"],
            "duty_rule": fitted.duty_rule,
        }
    )
    mlflow.log_params(
        {
            **flat_params("lgb", params),
            **flat_params("job", job.model_copy(update={"features": ts.feature_config})),
            "data.valid_from": str(ts.periods.valid_from),
            "data.test_from": str(ts.periods.test_from),
            "data.split_by_file": str(ts.periods.by_file),
            "model.features": str(len(ts.feature_names)),
        }
    )
    timings = {**ts.timings, **fitted.timings}
    mlflow.log_metrics({**fitted.metrics, **{f"time_{k}": v for k, v in timings.items()}})
    mlflow.log_dict(ts.fingerprint, "data/fingerprint.json")
    mlflow.log_dict(json.loads(job.model_dump_json()), "data/job.json")
    table = slices(fitted.scored, eval_split, with_duty=ts.with_duty)
    with tempfile.TemporaryDirectory(prefix="risk-eval-") as tmp:
        folder = Path(tmp)
        table.write_parquet(folder / "slices.parquet")
        table.write_csv(folder / "slices.csv")
        fitted.scored.write_parquet(folder / "predictions.parquet")
        mlflow.log_artifacts(str(folder), "evaluation")
    _log_plots(fitted, eval_split)
    scorer = build_scorer(ts, fitted, job, model_name=model_name, run_id=run_id)
    entries, markdown = _catalog(scorer)
    mlflow.log_dict(entries, "features/catalog.json")
    mlflow.log_text(markdown, "features/catalog.md")
    example = input_example(ts.data.declarations, scorer.metadata["profile_cutoff"])
    _, model_version = log_model(
        scorer, example, model_name=model_name if job.register_model else None
    )
    return TrainResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=model_name,
        model_version=model_version,
        eval_split=eval_split,
        metrics=fitted.metrics,
        fingerprint=ts.fingerprint,
        timings=timings,
    )
