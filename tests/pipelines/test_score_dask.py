"""Scoring on a Dask cluster gives exactly what scoring on one machine gives."""

from __future__ import annotations

import polars as pl
from score_support import world

from pipelines.score import score_batch
from pipelines.score_dask import cluster_client, partition_ids, score_on_cluster
from risk.lanes import CapacityConfig, LaneCapacity

CAPACITY = CapacityConfig(
    seed=3, default=LaneCapacity(physical_per_hour=1.0, document_per_hour=3.0, horizon_hours=8.0)
)


def test_partitions_keep_a_truck_together() -> None:
    queue = world().queue
    parts = queue.with_columns(part=partition_ids(queue, 3))
    per_truck = parts.group_by("truck_id", "crossing").agg(pl.col("part").n_unique())
    assert per_truck["part"].max() == 1
    assert parts["part"].n_unique() == 3


def test_dask_equals_local() -> None:
    w = world()
    local = score_batch(w.queue, w.scorer, capacity=CAPACITY, arrivals=w.arrivals)
    # In-process workers keep the test fast; the code path is the one real clusters take.
    with cluster_client("local", workers=2, processes=False) as client:
        remote = score_on_cluster(
            w.queue, w.scorer, capacity=CAPACITY, arrivals=w.arrivals, client=client, partitions=3
        )
    assert remote.items.equals(local.items)
    assert remote.declarations.equals(local.declarations)
    assert remote.trucks.equals(local.trucks)
    assert set(remote.trucks["lane"]) == {"red", "yellow", "green"}
