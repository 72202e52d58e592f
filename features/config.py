"""Hyperparameters of the feature pipeline: one typed, frozen model, logged to MLflow as params.

Changing any of these changes the features, so a model bundles the config it was trained with
and scoring must use the same one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Windows of the recent-activity counters. They are part of the feature names, so they are fixed
# here rather than configurable: a model's columns must not move with a setting.
WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30)


class FeatureConfig(BaseModel):
    """Settings of ``features.pipeline.build_features``; the defaults suit the synthetic traffic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prior_strength: float = Field(
        default=20.0,
        gt=0,
        description="Pseudo-inspections pulling an entity's violation rate towards the prior.",
    )
    prior_violation_rate: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Violation rate assumed before any inspection has been recorded at all.",
    )
    outcome_horizon_days: int = Field(
        default=90,
        gt=0,
        description=(
            "An outcome counts only if recorded within this many days of its declaration; "
            "bounds what an entity profile must remember of recent declarations."
        ),
    )
    reference_period: str = Field(
        default="1mo",
        description="Price references are refit at each period start (a Polars duration).",
    )
    reference_min_rows: int = Field(
        default=10,
        ge=1,
        description="Fewest past rows for an HS x origin level to serve as a reference.",
    )
    value_thresholds_usd: tuple[float, ...] = Field(
        # 216.4 USD = EUR 200 at the fixed rate in risk/reference/currency_rates.toml (the EAEU
        # duty-free limit for e-commerce parcels); 1,000 and 10,000 USD are round limits that
        # selectivity rules commonly use (the generator's splitting schemes stay under 10,000).
        default=(216.4, 1_000.0, 10_000.0),
        description="Value limits (USD) that splitting schemes stay just under.",
    )
    just_under_margin: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="A value within this share below a threshold counts as 'just under'.",
    )
    arrival_tolerance_hours: float = Field(
        default=48.0,
        gt=0,
        description="Farthest a weighbridge reading may be from a declaration to be matched.",
    )
    extra_categoricals: tuple[str, ...] = Field(
        default=(),
        description=(
            "Extra low-cardinality string columns of the input (e.g. 'src_office_id' from an "
            "ingest profile) to add as integer-coded categorical features '<name>_code'."
        ),
    )

    @field_validator("extra_categoricals")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("extra_categoricals names a column twice")
        return value
