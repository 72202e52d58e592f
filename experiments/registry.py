"""The MLflow model registry: names, logging the pyfunc, and loading the fast scorer.

Registered model names: ``settings.registered_model`` for models trained on the project's
canonical traffic, suffixed with the source profile otherwise (``grey-import-risk-kcs``), so
that a model trained on one source never competes with, or replaces, one trained on another.

``load_scorer(model_uri)`` takes any MLflow model URI (``models:/NAME@champion``,
``models:/NAME/3``, ``runs:/RUN_ID/model``, ``models:/m-...``), downloads the model folder
once and builds the ``experiments.scorer.Scorer`` bundled in it, without the pyfunc layer.
Its ``model_version`` reads ``NAME/N`` when the URI names a registered version or alias
(``run:RUN_ID`` otherwise) and its ``run_id`` is the training run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.config import CANONICAL_PROFILE
from risk.errors import RiskError

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from experiments.scorer import Scorer

CHAMPION = "champion"
MODEL_ARTIFACT = "model"


def registered_model_name(base: str, profile: str) -> str:
    """``base`` for canonical data, ``base-<profile>`` for any other source profile."""
    return base if profile == CANONICAL_PROFILE else f"{base}-{profile}"


def champion_uri(name: str) -> str:
    """The URI of the model in service under ``name``."""
    return f"models:/{name}@{CHAMPION}"


@dataclass(frozen=True)
class VersionRef:
    """A registered model version as named by a URI."""

    name: str
    version: str
    run_id: str

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


def resolve_version(model_uri: str) -> VersionRef | None:
    """The registered version a ``models:/NAME@alias`` or ``models:/NAME/N`` URI names
    (None for other URIs). Raises ``RiskError`` when it does not exist."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not model_uri.startswith("models:/"):
        return None
    target = model_uri.removeprefix("models:/").rstrip("/")
    client = MlflowClient()
    found: ModelVersion | None
    try:
        if "@" in target:
            name, alias = target.split("@", 1)
            found = client.get_model_version_by_alias(name, alias)
        elif "/" in target:
            name, version = target.rsplit("/", 1)
            found = (
                latest_version(name)
                if version == "latest"
                else client.get_model_version(name, version)
            )
        else:
            return None  # a logged model id (models:/m-...)
    except MlflowException as exc:
        raise RiskError(f"no model at {model_uri}: {exc.message}") from None
    if found is None:
        raise RiskError(f"no model at {model_uri}")
    return VersionRef(name=found.name, version=str(found.version), run_id=found.run_id or "")


def latest_version(name: str) -> ModelVersion | None:
    """The highest version number registered under ``name``."""
    from mlflow import MlflowClient

    versions = MlflowClient().search_model_versions(f"name = '{name}'")
    return max(versions, key=lambda v: int(v.version), default=None)


def _scorer_folder(model_dir: Path) -> Path:
    from mlflow.models import Model

    from experiments.pyfunc import SCORER_ARTIFACT

    flavor = Model.load(str(model_dir / "MLmodel")).flavors.get("python_function", {})
    relative = flavor.get("artifacts", {}).get(SCORER_ARTIFACT, {}).get("path")
    if relative is None:
        raise RiskError(f"{model_dir} is not a grey-import risk model (no scorer artifact)")
    return model_dir / relative


def load_scorer(model_uri: str, *, num_threads: int = 0) -> Scorer:
    """The fast in-process scorer of the model at ``model_uri`` (see the module docstring)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from experiments.scorer import Scorer

    ref = resolve_version(model_uri)
    download_uri = f"models:/{ref.name}/{ref.version}" if ref else model_uri
    # Everything is read into memory, so the downloaded copy goes away at once.
    with tempfile.TemporaryDirectory(prefix="risk-model-") as target:
        try:
            local = Path(mlflow.artifacts.download_artifacts(download_uri, dst_path=target))
        except (MlflowException, OSError) as exc:
            raise RiskError(f"cannot load model {model_uri}: {exc}") from None
        scorer = Scorer.load(_scorer_folder(local), num_threads=num_threads)
    if ref is not None:
        scorer.model_version = ref.label
        scorer.run_id = ref.run_id or scorer.run_id
    else:
        scorer.model_version = f"run:{scorer.run_id}"
    return scorer
