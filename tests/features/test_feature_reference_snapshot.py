"""A compacted price reference gives the same numbers by look-up in its snapshot (small scoring
batches) as by the general sort-and-count path (large batches), on whole batches and on trucks."""

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

CUTOFF = datetime(2024, 2, 10)
MakeTraffic = Callable[..., Traffic]


def _transform(
    traffic: Traffic, batch: pl.DataFrame, max_rows: int, monkeypatch: pytest.MonkeyPatch
) -> pl.DataFrame:
    monkeypatch.setattr(reference, "SNAPSHOT_BATCH_ROWS", max_rows)
    profiles = materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), CUTOFF)
    result = profiles.reference.transform(with_entity_columns(batch.lazy())).collect()
    assert getattr(profiles.reference, "_snapshot_memo", None) is not None or max_rows < 0
    return result.sort(KEYS)


@pytest.mark.parametrize("seed", [3, 11])
def test_snapshot_equals_the_general_path(
    seed: int, make_traffic: MakeTraffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = make_traffic(400, seed=seed, days=59)
    batch = traffic.declarations.filter(pl.col("declared_at") >= CUTOFF)
    general = _transform(traffic, batch, -1, monkeypatch)
    snapshot = _transform(traffic, batch, 10**9, monkeypatch)
    assert general.height > 100
    assert general["unit_value_kg_position"].null_count() < general.height
    assert_frame_equal(snapshot, general)
    # A truck's few items, answered from the snapshot by binary search per key.
    truck = batch.filter(pl.col("truck_id") == batch["truck_id"].drop_nulls()[0])
    assert_frame_equal(
        _transform(traffic, truck, 10**9, monkeypatch),
        general.join(truck.select(KEYS), on=KEYS, how="semi").sort(KEYS),
    )


def test_snapshot_lookup_of_many_keys_equals_the_general_path(
    make_traffic: MakeTraffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = make_traffic(400, seed=5, days=59)
    batch = traffic.declarations.filter(pl.col("declared_at") >= CUTOFF)
    monkeypatch.setattr(reference, "_FEW_KEYS", 0)  # the one-pass semi-join branch
    assert_frame_equal(
        _transform(traffic, batch, 10**9, monkeypatch), _transform(traffic, batch, -1, monkeypatch)
    )
