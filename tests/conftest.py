"""Shared test set-up: no test talks to the outside world or to the developer's own stores."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(autouse=True)
def _isolated_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point every test's data folder at a temporary one, and forget cached settings."""
    from risk.settings import get_settings

    if "RISK_DATA_DIR" not in os.environ:
        monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    # A developer's own MLflow store must never receive test runs.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
