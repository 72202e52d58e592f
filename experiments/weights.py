"""Inverse-propensity weights: correcting for training only on what customs chose to inspect.

Labels exist for inspected items only, and most inspections were picked by rules and earlier
models, so the labelled rows over-represent what those picks looked for. Weighting each
inspected row by 1 / P(inspected | its stratum) makes the labelled set stand in for all
traffic. The propensity is estimated per stratum (by default crossing × HS chapter × origin,
the things the old rules and the random share select on) as the share of the stratum's items
that were inspected (random picks, rule picks and targeted picks together), smoothed towards
the overall inspection rate with ``prior_strength`` pseudo-items so that small strata do not
get wild weights; weights are capped at ``max_weight`` and scaled to a mean of 1 over the
rows they weight. When every item was inspected (the KCS benchmark) all weights are 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

# Derived stratum columns that are not plain columns of DeclarationItem.
DERIVED_STRATA = {"hs_chapter": pl.col("hs_code").str.slice(0, 2)}


def stratum_columns(strata: Sequence[str], present: Sequence[str] = ()) -> list[pl.Expr]:
    """Expressions for the stratum columns: a column already ``present`` as is, a derived one
    (``hs_chapter``) from its source."""
    return [
        (pl.col(name) if name in present else DERIVED_STRATA.get(name, pl.col(name))).alias(name)
        for name in strata
    ]


def inspection_propensity(
    items: pl.DataFrame, strata: Sequence[str], *, prior_strength: float = 20.0
) -> pl.Series:
    """Smoothed P(inspected | stratum) for every row of ``items`` (which needs ``inspected``
    and the stratum source columns), in row order."""
    rate = items["inspected"].cast(pl.Float64).mean()
    overall = rate if isinstance(rate, float) else 0.0
    counts = (
        pl.col("inspected").cast(pl.Float64).sum().over(list(strata)) + prior_strength * overall
    ) / (pl.len().over(list(strata)) + prior_strength)
    return (
        items.select(*stratum_columns(strata, items.columns), "inspected")
        .select(counts.alias("propensity"))
        .to_series()
    )


def inverse_propensity_weights(
    items: pl.DataFrame,
    strata: Sequence[str],
    *,
    prior_strength: float = 20.0,
    max_weight: float = 50.0,
) -> pl.Series:
    """1 / propensity for every row (capped), scaled to mean 1 over the inspected rows."""
    propensity = inspection_propensity(items, strata, prior_strength=prior_strength)
    raw = (1.0 / propensity.clip(lower_bound=1e-9)).clip(upper_bound=max_weight)
    inspected = items["inspected"]
    mean = raw.filter(inspected).mean()
    scale = 1.0 / float(mean) if isinstance(mean, float) and mean > 0 else 1.0
    return (raw * scale).alias("weight")
