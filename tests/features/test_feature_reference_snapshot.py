"""A compacted price reference gives the same numbers by look-up in its snapshot (what a
profile serves scoring batches with) as by the general sort-and-count path, on whole batches
and on trucks, and keeps the batch's row order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import polars as pl
import pytest
from feature_traffic import Traffic
from polars.testing import assert_frame_equal

from features import reference
from features.history import with_entity_columns
from features.pipeline import KEYS
from features.profiles import materialize_profiles
from features.reference import METRICS

CUTOFF = datetime(2024, 2, 10)
MakeTraffic = Callable[..., Traffic]


def _transform(
    traffic: Traffic, batch: pl.DataFrame, snapshot: bool, monkeypatch: pytest.MonkeyPatch
) -> pl.DataFrame:
    monkeypatch.setattr(reference, "SNAPSHOT", snapshot)
    profiles = materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), CUTOFF)
    result = profiles.reference.transform(with_entity_columns(batch.lazy())).collect()
    assert (getattr(profiles.reference, "_snapshot_memo", None) is not None) == snapshot
    if snapshot:  # one row per batch row, in its order
        assert_frame_equal(result.select(KEYS), batch.select(KEYS))
        result = result.filter(
            pl.any_horizontal(pl.col(f"{m}_reference_level").is_not_null() for m in METRICS)
        )
    return result.sort(KEYS)


@pytest.mark.parametrize("seed", [3, 11])
def test_snapshot_equals_the_general_path(
    seed: int, make_traffic: MakeTraffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = make_traffic(400, seed=seed, days=59)
    batch = traffic.declarations.filter(pl.col("declared_at") >= CUTOFF)
    general = _transform(traffic, batch, False, monkeypatch)
    snapshot = _transform(traffic, batch, True, monkeypatch)
    assert general.height > 100
    assert general["unit_value_kg_position"].null_count() < general.height
    assert_frame_equal(snapshot, general)
    # A truck's few items, answered from the snapshot by binary search per key.
    truck = batch.filter(pl.col("truck_id") == batch["truck_id"].drop_nulls()[0])
    assert_frame_equal(
        _transform(traffic, truck, True, monkeypatch),
        general.join(truck.select(KEYS), on=KEYS, how="semi").sort(KEYS),
    )
