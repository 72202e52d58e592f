"""Evaluation of a scored, labelled frame: headline metrics per period and slices.

Metrics are computed on every labelled (inspected) item of a period, and again on the items
picked by the mandatory random share alone: targeted picks over-represent what earlier rules
looked for, so only the random share is an unbiased sample of the traffic the model will rank.
Metric names read ``<period>_<metric>`` and ``<period>_random_<metric>``, for example
``test_precision_at_5pct`` and ``test_random_precision_at_5pct``. ``revenue_at_*`` ranks by
probability (what precision ranks by); ``duty_ranked_revenue_at_*`` ranks by expected duty at
risk (probability x predicted duty), the order the lanes are filled in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from experiments.metrics import CAPACITY_SHARES, capacity_metrics, revenue_at, slice_metrics

# Fewest labelled random picks before their metrics are worth reporting.
MIN_RANDOM_ITEMS = 30
SLICE_COLUMNS = ("crossing", "hs_chapter")


def period_metrics(
    scored: pl.DataFrame,
    period: str,
    *,
    with_duty: bool,
    shares: Sequence[float] = CAPACITY_SHARES,
) -> dict[str, float]:
    """Metrics of one period of ``scored`` (needs ``split``, ``label``, ``risk``,
    ``selection``, ``duty_usd``); NaN figures are left out."""
    out: dict[str, float] = {}
    part = scored.filter(pl.col("split") == period)
    subsets = {period: part}
    random = part.filter(pl.col("selection") == "random")
    if random.height >= MIN_RANDOM_ITEMS and random.height < part.height:
        subsets[f"{period}_random"] = random
    for prefix, rows in subsets.items():
        if rows.height == 0:
            continue
        figures = capacity_metrics(
            rows["label"].to_numpy(),
            rows["risk"].to_numpy(),
            duty=rows["duty_usd"].to_numpy() if with_duty else None,
            shares=shares,
            ranking=rows["raw_score"].to_numpy() if "raw_score" in rows.columns else None,
        )
        if with_duty and "expected_duty_usd" in rows.columns:
            # Lanes are filled by expected duty, not by probability: what that ranking finds.
            for share in shares:
                figures[f"duty_ranked_revenue_at_{share * 100:g}pct"] = revenue_at(
                    rows["duty_usd"].to_numpy(), rows["expected_duty_usd"].to_numpy(), share
                )
        out.update({f"{prefix}_{k}": v for k, v in figures.items() if not math.isnan(v)})
    return out


def slices(
    scored: pl.DataFrame, period: str, *, with_duty: bool, columns: Sequence[str] = SLICE_COLUMNS
) -> pl.DataFrame:
    """``slice_metrics`` of one period per crossing and per HS chapter, stacked in one table."""
    part = scored.filter(pl.col("split") == period)
    tables = [
        slice_metrics(
            part,
            column,
            duty="duty_usd" if with_duty else None,
            ranking="raw_score" if "raw_score" in part.columns else None,
        )
        for column in columns
        if column in part.columns
    ]
    return pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame()
