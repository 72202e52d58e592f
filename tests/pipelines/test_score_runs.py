"""Scoring's groups by the queue's runs equal the group-by's, and reasons land on the same rows."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from pipelines.score import (
    KEYS,
    _declarations_by_group_by,
    _declarations_by_runs,
    _item_reasons_by_runs,
    _log_none_wrong,
    _reasons_of,
    _trucks_by_group_by,
    _trucks_by_runs,
    aggregate_trucks,
)
from risk.rules import RULE_HELPERS, truck_rule_columns


def _items(seed: int, n_trucks: int = 2_000) -> pl.DataFrame:
    """Scored items in queue order: trucks in runs, declarations in runs within them."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, n_trucks)
    truck = np.repeat(np.arange(n_trucks), sizes)
    n = len(truck)
    change = np.r_[True, (np.diff(truck) != 0) | (rng.random(n - 1) < 0.3)]
    declaration = np.cumsum(change)
    rng.shuffle(declaration_ids := np.arange(declaration.max() + 1))
    risk = rng.choice([0.0, 0.01, 0.2, 0.5, 0.99, 1.0], n) * rng.random(n).round(1)
    frame = pl.DataFrame(
        {
            "declaration_id": [f"10610020/131026/{d:07d}" for d in declaration_ids[declaration]],
            "item_no": np.arange(n, dtype=np.int32),
            "truck_key": [f"TRK-{t}" for t in truck],
            "truck_id": [f"TRK-{t}" for t in truck],
            "crossing": rng.choice(["KZRU-KRG", "BY-PL"], n_trucks)[truck],
            "declared_at": pl.Series(rng.integers(0, 10**12, n)).cast(pl.Datetime("us")),
            "rule_lane": pl.Series(rng.choice(["", "", "", "red", "green"], n)),
            "rule_reason": pl.Series(rng.choice(["", "watch list", "trusted"], n)),
            "risk": risk,
            "duty_at_risk_usd": rng.exponential(300.0, n),
        }
    )
    return frame.with_columns(pl.col("rule_lane", "rule_reason").replace("", None))


@pytest.mark.parametrize("ruled", [False, True])
def test_trucks_by_runs_equal_trucks_by_group_by(ruled: bool) -> None:
    items = _items(5)
    if not ruled:
        items = items.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in ("rule_lane",))
    by_runs = _trucks_by_runs(items, ruled)
    assert by_runs is not None
    assert by_runs.equals(_trucks_by_group_by(items, ruled))
    # In many chunks (as a Parquet file reads) the same.
    chunked = pl.concat([items.slice(0, 5_000), items.slice(5_000)], rechunk=False)
    assert chunked.n_chunks() > 1
    assert aggregate_trucks(chunked).equals(aggregate_trucks(items))


def test_items_out_of_queue_order_are_grouped_the_general_way() -> None:
    items = _items(6).sample(fraction=1.0, shuffle=True, seed=1)
    assert _trucks_by_runs(items, True) is None
    assert _declarations_by_runs(items) is None
    expected = _trucks_by_group_by(items, True).with_columns(truck_rule_columns())
    assert aggregate_trucks(items).equals(expected.drop(RULE_HELPERS))


def test_declarations_by_runs_equal_declarations_by_group_by() -> None:
    items = _items(7)
    by_runs = _declarations_by_runs(items)
    assert by_runs is not None
    assert by_runs.equals(_declarations_by_group_by(items))
    log_terms = items.select(_log_none_wrong()).to_series()
    assert log_terms.min() == -math.inf  # a certain item (risk 1) is among them


def test_item_reasons_by_runs_land_where_the_join_puts_them() -> None:
    items = _items(8)
    per_declaration = _declarations_by_runs(items)
    assert per_declaration is not None
    picked = items.select(KEYS).gather([5, 0, 17, 400, 401, items.height - 1])
    reasons = pl.concat(
        [
            picked,
            pl.DataFrame({"declaration_id": ["nowhere"], "item_no": [1]}, schema=picked.schema),
            picked.head(1).with_columns(pl.lit(None, dtype=pl.Int32).alias("item_no")),
        ]
    ).with_columns(
        reasons=pl.concat_list(pl.col("declaration_id")),
        reasons_ru=pl.concat_list(pl.lit("ru")),
        reasons_en=pl.concat_list(pl.lit("en")),
        reason_features=pl.concat_list(pl.col("item_no").cast(pl.String)),
    )
    by_runs = _item_reasons_by_runs(items, reasons, per_declaration)
    assert by_runs.equals(_reasons_of(items, reasons, KEYS))
    assert (by_runs["reasons"].list.len() > 0).sum() == picked.height
    with pytest.raises(ValueError, match="twice"):
        _item_reasons_by_runs(items, pl.concat([reasons, reasons]), per_declaration)
