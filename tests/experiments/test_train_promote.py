"""End to end against a temporary SQLite MLflow store: train, register, promote, refuse,
roll back; the pyfunc and the fast scorer agree; the KCS form of `risk train` works."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from training_support import FAST
from typer.testing import CliRunner

from experiments.config import TrainJob
from experiments.train import TrainResult, prepare, train
from pipelines.generate import Traffic
from risk.cli import app
from risk.settings import get_settings

# MLflow 3.17's SQL tracking store maps a relationship with ``noload``, deprecated in
# SQLAlchemy 2.1; the warning is raised while MLflow imports its store, nothing of ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)

KCS_SAMPLE = Path(__file__).parents[1] / "data" / "kcs_sample.csv"
FAST_OPTIONS = ["--rounds", "60", "--param", "early_stopping_rounds=20", "--threads", "2"]


def _train_on_shuffled_labels(history: Path, seed: int) -> TrainResult:
    """A model that learned nothing: training and validation labels shuffled."""
    job = TrainJob(data_dir=history)
    ts = prepare(job, get_settings())
    shuffled = ts.labelled.with_columns(
        pl.when(pl.col("split") == "test")
        .then(pl.col("label"))
        .otherwise(pl.col("label").shuffle(seed=seed))
    )
    return train(job, FAST, training_set=dataclasses.replace(ts, labelled=shuffled))


def _champion(name: str = "grey-import-risk") -> str:
    from mlflow import MlflowClient

    return str(MlflowClient().get_model_version_by_alias(name, "champion").version)


def test_train_promote_refuse_and_roll_back(traffic_dir: Path, traffic: Traffic) -> None:
    import mlflow

    from experiments.pyfunc import example_rows
    from experiments.registry import load_scorer

    runner = CliRunner()
    history = traffic_dir / "history"
    settings = get_settings()
    settings.configure_mlflow()

    weak = _train_on_shuffled_labels(history, seed=1)
    assert weak.model_version == "1"
    first = runner.invoke(app, ["promote"])
    assert first.exit_code == 0, first.output
    assert "version 1 is now champion (first" in first.output
    assert _champion() == "1"

    tuned = runner.invoke(app, ["tune", "--data-dir", str(history), "--trials", "2", *FAST_OPTIONS])
    assert tuned.exit_code == 0, tuned.output
    assert "registered grey-import-risk version 2" in tuned.output
    parent = mlflow.search_runs(filter_string="tags.`tune.objective` = 'valid_pr_auc'")
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent['run_id'][0]}'"
    )
    assert len(parent) == 1 and len(children) == 2

    better = runner.invoke(app, ["promote", "--capacity", "0.1"])
    assert better.exit_code == 0, better.output
    assert "version 2 is now champion (rescored; was version 1)" in better.output
    assert "champion version 1" in better.output
    # Re-scoring the candidate on its own held-out period reproduces its logged figure.
    logged = mlflow.get_run(parent["run_id"][0]).data.metrics["test_precision_at_10pct"]
    assert f"candidate version 2 P@10% {logged:.4f}" in better.output
    assert _champion() == "2"

    # The fast scorer and the pyfunc give the same scores for today's queue.
    queue = traffic.queue_declarations
    scorer = load_scorer("models:/grey-import-risk@champion")
    assert scorer.model_version == "grey-import-risk/2"
    fast = scorer.score(queue)
    served = mlflow.pyfunc.load_model("models:/grey-import-risk@champion").predict(
        example_rows(queue)
    )
    np.testing.assert_allclose(served["risk"].to_numpy(), fast["risk"].to_numpy())
    assert fast["risk"].is_between(0, 1).all() and fast.height == queue.height

    _train_on_shuffled_labels(history, seed=2)
    refused = runner.invoke(app, ["promote", "--capacity", "0.1"])
    assert refused.exit_code == 1, refused.output
    assert "refused: version 3 does not beat champion version 2" in refused.output
    assert "candidate version 3 P@10%" in refused.output
    assert _champion() == "2"

    no_reason = runner.invoke(app, ["promote", "--rollback"])
    assert no_reason.exit_code == 2 and "needs --reason" in no_reason.output
    rolled = runner.invoke(app, ["promote", "--rollback", "--reason", "drift in v2"])
    assert rolled.exit_code == 0, rolled.output
    assert _champion() == "1"


def test_kcs_two_files_train_on_the_first_and_validate_on_the_second(tmp_path: Path) -> None:
    import mlflow

    sample = pl.read_csv(KCS_SAMPLE, infer_schema_length=0)
    first = sample.filter(pl.col("Date") < "2020-10-01")
    second = sample.filter(pl.col("Date") >= "2020-10-01")
    first.write_csv(tmp_path / "train.csv")
    second.write_csv(tmp_path / "valid.csv")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "train",
            "--profile",
            "kcs",
            str(tmp_path / "train.csv"),
            str(tmp_path / "valid.csv"),
            "--rounds",
            "20",
            "--calibration",
            "platt",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "registered grey-import-risk-kcs version 1" in result.output
    assert "metrics on the valid period" in result.output
    settings = get_settings()
    experiment = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    assert experiment is not None
    # Artifacts live beside the SQLite store in the data folder, not in the working directory.
    expected = (settings.data_dir.resolve() / "mlartifacts").as_uri()
    assert experiment.artifact_location == expected
    run = mlflow.search_runs(experiment_names=[settings.mlflow_experiment]).iloc[0]
    assert run["tags.eval_split"] == "valid"
    assert run["metrics.valid_items"] == second.height
    assert run["params.data.split_by_file"] == "True"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"], "plots")}
    assert {
        "plots/pr_curve.png",
        "plots/calibration_curve.png",
        "plots/precision_at_curve.png",
        "plots/feature_importance.png",
    } <= artifacts
    promoted = runner.invoke(app, ["promote"])
    assert promoted.exit_code == 0, promoted.output
    assert "grey-import-risk-kcs version 1 is now champion" in promoted.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--profile", "kcs"], "needs source files"),
        (["train", "--data-dir", "/nonexistent"], "no training data"),
        (["train", "--param", "num_leaves=1"], "num_leaves"),
        (["promote", "--capacity", "2"], "--capacity"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_kcs_one_file_is_split_by_time(tmp_path: Path) -> None:
    import mlflow

    result = CliRunner().invoke(
        app,
        ["train", "--profile", "kcs", str(KCS_SAMPLE), "--rounds", "10", "--no-register"],
    )
    assert result.exit_code == 0, result.output
    assert "metrics on the test period:" in result.output
    assert "registered" not in result.output
    run = mlflow.search_runs(experiment_names=[get_settings().mlflow_experiment]).iloc[0]
    assert run["tags.eval_split"] == "test"
    valid_from, test_from = run["params.data.valid_from"], run["params.data.test_from"]
    assert "2020-01-01" < valid_from < test_from < "2020-12-31"
    total = run["metrics.test_items"] + run["metrics.valid_items"]
    assert total < 300  # the rest trained
