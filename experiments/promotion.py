"""Promotion: the alias ``champion`` moves only to a model that finds more at the same capacity.

The candidate (a registered version; the latest by default) is compared with the current
champion on the candidate's held-out period (its test period, or its validation file when
there was none) by precision at the inspection capacity (default 5%):

1. *re-scored* (preferred): the candidate's inputs are read again (its ``data/job.json``),
   checked against its data fingerprint, both models compute their own features in history
   mode over those inputs, and both rank the same held-out inspected items;
2. *logged*: when the inputs are gone or changed, the two runs' logged metrics are compared,
   but only if both runs were evaluated on identical data and periods;
3. otherwise the promotion is refused.

The candidate must be strictly better. A first model has nothing to beat. The champion a
promotion replaces is remembered in the registered model's ``previous_champion`` tag;
``rollback`` moves the alias back to it. ``force`` (with a reason) moves the alias to any
version without comparison, for an operator who knows why. Every move tags the version with
when, how and why.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from experiments.config import TrainJob
from experiments.metrics import precision_at
from experiments.registry import CHAMPION, latest_version
from risk.errors import RiskError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from experiments.scorer import Scorer

PREVIOUS_TAG = "previous_champion"


@dataclass(frozen=True)
class Decision:
    """What ``promote`` did and the figures behind it."""

    promoted: bool
    model_name: str
    candidate: str
    champion: str | None
    capacity: float
    method: str  # first | rescored | logged | forced | rollback | unchanged | refused
    candidate_precision: float | None = None
    champion_precision: float | None = None
    period: str = ""
    message: str = ""


def _version(client: MlflowClient, name: str, version: int | None, run_id: str | None) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        if version is not None:
            return client.get_model_version(name, str(version))
        if run_id is not None:
            found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
            if not found:
                raise RiskError(f"run {run_id} has no registered version of {name}")
            return max(found, key=lambda v: int(v.version))
    except MlflowException as exc:
        raise RiskError(f"{name} version {version}: {exc.message}") from None
    latest = latest_version(name)
    if latest is None:
        raise RiskError(f"no registered model {name!r}: run `risk train` first")
    return latest


def _champion(client: MlflowClient, name: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _move_alias(
    client: MlflowClient, name: str, version: str, old: str | None, how: str, reason: str
) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
    if old is not None and old != version:
        client.set_registered_model_tag(name, PREVIOUS_TAG, old)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(name, version, "promoted_at", stamp)
    client.set_model_version_tag(name, version, "promoted_how", how)
    if reason:
        client.set_model_version_tag(name, version, "promotion_reason", reason)


def _pct(capacity: float) -> str:
    return f"{capacity * 100:g}pct"


def _run_json(client: MlflowClient, run_id: str, path: str) -> dict[str, Any]:
    import mlflow

    text = mlflow.artifacts.load_text(f"runs:/{run_id}/{path}")
    return dict(json.loads(text))


def _rescore(
    client: MlflowClient, candidate: ModelVersion, champion: ModelVersion, capacity: float
) -> tuple[float, float, str] | None:
    """Both models' precision on the candidate's held-out items, or None if the candidate's
    inputs cannot be read back unchanged."""
    import mlflow

    from experiments.dataset import frame_hash, load_source_data
    from experiments.registry import load_scorer

    run_id = str(candidate.run_id)
    job = TrainJob.model_validate(_run_json(client, run_id, "data/job.json"))
    logged = _run_json(client, run_id, "data/fingerprint.json")
    try:
        data = load_source_data(job, job.data_dir or _default_dir())
    except RiskError:
        return None
    if frame_hash(data.declarations) != logged["declarations_hash"]:
        return None
    eval_split = logged["periods"]["eval_split"]
    with tempfile.TemporaryDirectory(prefix="risk-promote-") as folder:
        local = mlflow.artifacts.download_artifacts(
            f"runs:/{run_id}/evaluation/predictions.parquet", dst_path=folder
        )
        held_out = pl.read_parquet(local).filter(pl.col("split") == eval_split)
    held_out = held_out.select("declaration_id", "item_no", "label")
    figures = []
    features_by_config: dict[str, pl.DataFrame] = {}
    for version in (candidate, champion):
        scorer = load_scorer(f"models:/{version.name}/{version.version}")
        config = scorer.feature_config.model_dump_json()
        if config not in features_by_config:  # both models often share the feature config
            features_by_config[config] = scorer.feature_frame(
                data.declarations, data.outcomes, arrivals=data.arrivals, history=True
            )
        try:
            figures.append(_precision(scorer, features_by_config[config], held_out, capacity))
        except (pl.exceptions.PolarsError, ValueError) as exc:
            raise RiskError(
                f"version {version.version} cannot be re-scored with this code ({exc}); "
                "compare by hand and use --force --reason if it must move"
            ) from None
    period = f"{eval_split} period of version {candidate.version} ({held_out.height} items)"
    return figures[0], figures[1], period


def _default_dir() -> Any:
    from risk.settings import get_settings

    return get_settings().data_dir / "traffic" / "history"


def _precision(
    scorer: Scorer, features: pl.DataFrame, held_out: pl.DataFrame, capacity: float
) -> float:
    rows = held_out.join(
        features, on=["declaration_id", "item_no"], how="inner", maintain_order="left"
    )
    if rows.height != held_out.height:
        raise RiskError("the held-out items are no longer all in the candidate's inputs")
    # Ranked by the raw score, as the run's own evaluation does (see experiments.metrics).
    raw = scorer.raw_scores(scorer.feature_matrix(rows))
    return precision_at(rows["label"].to_numpy(), raw, capacity)


def _logged(
    client: MlflowClient, candidate: ModelVersion, champion: ModelVersion, capacity: float
) -> tuple[float, float, str] | None:
    """Logged metrics, when both runs saw identical data and periods."""
    prints = [
        _run_json(client, str(v.run_id), "data/fingerprint.json") for v in (candidate, champion)
    ]
    same = ("declarations_hash", "outcomes_hash", "periods", "splits")
    if any(prints[0].get(key) != prints[1].get(key) for key in same):
        return None
    key = f"{prints[0]['periods']['eval_split']}_precision_at_{_pct(capacity)}"
    mine, theirs = (
        client.get_run(str(v.run_id)).data.metrics.get(key) for v in (candidate, champion)
    )
    if mine is None or theirs is None:
        return None
    return float(mine), float(theirs), f"logged {key} (identical data and periods)"


def promote(
    model_name: str,
    *,
    version: int | None = None,
    run_id: str | None = None,
    capacity: float = 0.05,
    force: bool = False,
    rollback: bool = False,
    reason: str = "",
) -> Decision:
    """Move ``champion`` per the module docstring; the caller configures MLflow first."""
    from mlflow import MlflowClient

    client = MlflowClient()
    champion = _champion(client, model_name)
    old = None if champion is None else str(champion.version)
    if rollback:
        if not reason:
            raise RiskError("a rollback needs --reason")
        tags = client.get_registered_model(model_name).tags
        previous = tags.get(PREVIOUS_TAG)
        if previous is None:
            raise RiskError(f"{model_name} has no previous champion to roll back to")
        _move_alias(client, model_name, previous, old, "rollback", reason)
        return Decision(True, model_name, previous, old, capacity, "rollback", message=reason)
    candidate = _version(client, model_name, version, run_id)
    new = str(candidate.version)
    if champion is None:
        _move_alias(client, model_name, new, None, "first", reason or "first model")
        return Decision(True, model_name, new, None, capacity, "first", message="first model")
    if old == new:
        return Decision(
            False, model_name, new, old, capacity, "unchanged", message="already champion"
        )
    if force:
        if not reason:
            raise RiskError("--force needs --reason")
        _move_alias(client, model_name, new, old, "forced", reason)
        return Decision(True, model_name, new, old, capacity, "forced", message=reason)
    method = "rescored"
    found = _rescore(client, candidate, champion, capacity)
    if found is None:
        method = "logged"
        found = _logged(client, candidate, champion, capacity)
    if found is None:
        raise RiskError(
            f"cannot compare version {new} with champion {old}: the candidate's inputs are "
            "gone or changed and the two runs were not evaluated on the same data"
        )
    mine, theirs, period = found
    better = not math.isnan(mine) and (math.isnan(theirs) or mine > theirs)
    if better:
        _move_alias(
            client, model_name, new, old, method, reason or f"P@{_pct(capacity)} {mine:.4f}"
        )
    return Decision(
        promoted=better,
        model_name=model_name,
        candidate=new,
        champion=old,
        capacity=capacity,
        method=method if better else "refused",
        candidate_precision=mine,
        champion_precision=theirs,
        period=period,
        message="" if better else f"compared by {method}",
    )
