"""The MLflow pyfunc face of a model: canonical declaration rows in, scores out.

It wraps the very ``Scorer`` that batch scoring loads with ``experiments.registry.
load_scorer``; the pyfunc adds only the pandas conversion, so use it for MLflow serving and
``mlflow.pyfunc.load_model``, and the scorer where speed matters.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

with warnings.catch_warnings():
    # MLflow infers schemas of its own agent types while importing pyfunc and warns that an
    # Any field cannot be validated; nothing of ours is involved, so the warning is noise.
    warnings.filterwarnings("ignore", message=r".*Any type hint is inferred as AnyType")
    import mlflow.pyfunc

from experiments.scorer import Scorer
from risk.schemas import DeclarationItem

SCORER_ARTIFACT = "scorer"


def declarations_from_pandas(frame: pd.DataFrame) -> pl.DataFrame:
    """Canonical ``DeclarationItem`` dtypes for the schema's columns; other columns (a source
    profile's ``src_*``) are kept as text."""
    data = pl.from_pandas(frame)
    schema = DeclarationItem.create_empty().schema
    missing = [name for name in schema if name not in data.columns]
    if missing:
        raise ValueError(f"declaration rows lack column(s) {missing}")
    return data.with_columns(
        *(pl.col(name).cast(dtype, strict=True) for name, dtype in schema.items()),
        *(pl.col(name).cast(pl.String) for name in data.columns if name not in schema),
    )


def example_rows(declarations: pl.DataFrame) -> pd.DataFrame:
    """A frame in the form the pyfunc takes (no list columns, enums as text)."""
    flat = declarations.select(pl.exclude(pl.List(pl.String)).exclude("soft_flags")).with_columns(
        pl.col(pl.Enum, pl.Categorical).cast(pl.String)
    )
    return flat.to_pandas()


class RiskModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """``predict(declaration rows) -> declaration_id, item_no, risk, expected_duty_usd,
    model_version, run_id``; rows must be declared at or after the bundled profiles' cut-off."""

    def load_context(self, context: Any) -> None:
        self.scorer = Scorer.load(Path(context.artifacts[SCORER_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.scorer.score(declarations_from_pandas(model_input)).to_pandas()
