"""One typed settings object for every command and service, read from the environment.

Nothing happens at import time: folders are made and MLflow is pointed at its store only when a
command asks for it (``Settings.ensure_data_dir``, ``Settings.configure_mlflow``).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment variables are prefixed ``RISK_`` (``RISK_DATA_DIR``); MLflow's own
    ``MLFLOW_TRACKING_URI`` is honoured as the tracking store."""

    model_config = SettingsConfigDict(env_prefix="RISK_", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development", description="Refuses default secrets when 'production'."
    )
    data_dir: Path = Field(Path("data"), description="Where generated files and stores live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the decisions store; SQLite in data_dir if unset."
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking store; sqlite:///<data_dir>/mlflow.db if unset.",
    )
    mlflow_experiment: str = Field("grey-import-risk", description="MLflow experiment name.")
    registered_model: str = Field(
        "grey-import-risk", description="Registered model name (a profile suffix is added)."
    )
    secret_key: SecretStr | None = Field(None, description="Console session signing key.")
    cache_dir: Path | None = Field(
        None, description="Cache of compiled models; the user's cache folder if unset."
    )
    compiled_model: bool = Field(
        True, description="Batch scoring predicts through the compiled model (lleaves)."
    )
    exact_shap: bool = Field(
        True,
        description="Reasons' SHAP values through the project's exact TreeSHAP kernel "
        "(experiments.shap); false asks LightGBM's pred_contrib.",
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{(self.data_dir / 'risk.db').as_posix()}"
        if self.mlflow_tracking_uri is None:
            self.mlflow_tracking_uri = f"sqlite:///{(self.data_dir / 'mlflow.db').as_posix()}"
        return self

    def ensure_data_dir(self) -> Path:
        """Create the data folder on first use and return it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def configure_mlflow(self) -> str:
        """Point MLflow at the tracking store (and registry) and return the URI."""
        import mlflow

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        uri = str(self.mlflow_tracking_uri)
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return uri


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
