"""Scale-out scoring on a Dask cluster, with results identical to ``score_batch`` on one machine.

The batch is split by truck (a truck's items never straddle two partitions) and the pure
phases of ``pipelines.score`` run per partition on the workers: prediction, and the SHAP
reasons that dominate the cost. Two steps stay whole-batch, because their answer depends on
every row:

- features: entity history counts the batch's own earlier declarations (an importer's third
  declaration today sees the first two), so they are computed once over the batch;
- lanes: capacity is per crossing, shared by every truck in its queue, so the small truck
  table is gathered and the lanes filled once on it; each partition then explains only its
  trucks that ended red or yellow.

``address`` is "local" (a ``LocalCluster`` bound to 127.0.0.1, no dashboard) or the address of
a running scheduler ("tcp://host:8786").
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.score import (
    KEYS,
    MAX_ITEMS_EXPLAINED,
    REASON_LANES,
    TRUCK,
    ItemScores,
    ScoredBatch,
    Scorer,
    aggregate_trucks,
    as_polars,
    assemble,
    compute_features,
    explain,
    random_shares,
    score_items,
    take_features,
)
from risk.lanes import CapacityConfig, assign_lanes
from risk.rules import RuleSet

if TYPE_CHECKING:
    from distributed import Client

    from features.profiles import EntityProfiles

PARTITION = "_partition"


@contextlib.contextmanager
def cluster_client(
    address: str = "local", *, workers: int = 2, processes: bool = True
) -> Iterator[Client]:
    """A Dask client: a private ``LocalCluster`` on 127.0.0.1, or one to ``address``."""
    from distributed import Client, LocalCluster

    if address == "local":
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes,
                # TCP on the loopback even for in-process workers: nothing listens outside.
                protocol="tcp",
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        with Client(address) as client:
            yield client


def partition_ids(declarations: pl.DataFrame, partitions: int) -> pl.Series:
    """Partition of every item: by truck and crossing, so a truck stays in one partition."""
    key = pl.concat_str(
        pl.coalesce(pl.col("truck_id"), pl.col("declaration_id")), pl.col("crossing"), separator="|"
    )
    return declarations.select((key.hash(seed=0) % partitions).cast(pl.Int64)).to_series()


def _phase_one(
    declarations: pl.DataFrame, features: pl.DataFrame, scorer: Scorer, rules: RuleSet, lang: str
) -> tuple[ItemScores, pl.DataFrame]:
    scored = score_items(declarations, scorer, rules=rules, features=features, lang=lang)
    return scored, aggregate_trucks(scored.items)


def _phase_two(
    phase_one: tuple[ItemScores, pl.DataFrame],
    lanes: pl.DataFrame,
    scorer: Scorer,
    options: dict[str, Any],
) -> ScoredBatch:
    scored, _ = phase_one
    trucks = lanes.join(
        scored.items.select(TRUCK).unique(), on=TRUCK, how="semi", maintain_order="left"
    )
    return assemble(scored, trucks, explain(scored, trucks, scorer, **options))


def score_on_cluster(
    batch: pa.Table | pl.DataFrame,
    scorer: Scorer,
    *,
    address: str = "local",
    partitions: int | None = None,
    profiles: EntityProfiles | None = None,
    rules: RuleSet | None = None,
    capacity: CapacityConfig | None = None,
    arrivals: pl.DataFrame | None = None,
    reasons_for: Collection[str] = REASON_LANES,
    max_items_explained: int = MAX_ITEMS_EXPLAINED,
    lang: str = "en",
    client: Client | None = None,
    processes: bool = True,
) -> ScoredBatch:
    """``score_batch`` on a Dask cluster; the same frames, in the same order."""
    declarations = as_polars(batch)
    capacity = capacity or CapacityConfig()
    rules = rules or RuleSet()
    features = compute_features(declarations, scorer, profiles=profiles, arrivals=arrivals)

    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(
                cluster_client(address, workers=partitions or 2, processes=processes)
            )
        n = partitions or max(1, len(client.scheduler_info().get("workers", {})))
        part = partition_ids(declarations, n)
        scorer_future = client.scatter(scorer, broadcast=True)
        first = []
        for p in range(n):
            mask = part == p
            if not mask.any():
                continue
            first.append(
                client.submit(
                    _phase_one,
                    declarations.filter(mask),
                    take_features(features, np.flatnonzero(mask.to_numpy())),
                    scorer_future,
                    rules,
                    lang,
                    pure=False,
                )
            )
        truck_parts = client.gather([client.submit(lambda r: r[1], f) for f in first])
        order = _first_appearance(declarations)
        trucks = (
            pl.concat(truck_parts).join(order, on=TRUCK, how="left").sort("_first").drop("_first")
        )
        lanes = assign_lanes(trucks, capacity, draw_key="draw_key")
        options = {
            "reasons_for": reasons_for,
            "max_items_explained": max_items_explained,
            "random_share": random_shares(
                capacity, lanes.get_column("crossing").unique().to_list()
            ),
            "lang": lang,
        }
        lanes_future = client.scatter(lanes, broadcast=True)
        parts: list[ScoredBatch] = client.gather(
            [client.submit(_phase_two, f, lanes_future, scorer_future, options) for f in first]
        )
    return _merge(parts, declarations, lanes)


def _first_appearance(declarations: pl.DataFrame) -> pl.DataFrame:
    from risk.lanes import truck_key

    return (
        declarations.select(truck_key(), "crossing")
        .with_row_index("_first")
        .group_by(TRUCK)
        .agg(pl.col("_first").min())
    )


def _merge(
    parts: list[ScoredBatch], declarations: pl.DataFrame, lanes: pl.DataFrame
) -> ScoredBatch:
    """Concatenate the partitions' frames back into the batch's order."""
    rows = declarations.select(KEYS).with_row_index("_row")
    items = (
        pl.concat([p.items for p in parts])
        .join(rows, on=KEYS, how="left")
        .sort("_row")
        .drop("_row")
    )
    declaration_order = (
        items.select("declaration_id").unique(maintain_order=True).with_row_index("_row")
    )
    declaration_frame = (
        pl.concat([p.declarations for p in parts])
        .join(declaration_order, on="declaration_id", how="left")
        .sort("_row")
        .drop("_row")
    )
    truck_order = lanes.select(TRUCK).with_row_index("_row")
    trucks = (
        pl.concat([p.trucks for p in parts])
        .join(truck_order, on=TRUCK, how="left")
        .sort("_row")
        .drop("_row")
    )
    return ScoredBatch(items=items, declarations=declaration_frame, trucks=trucks)
