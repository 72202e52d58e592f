"""Queues for the store tests: the project's generator with a fixed seed, scored on the spot.

The scores are fabricated (a seeded risk per item, reasons naming the values behind them),
but every frame is valid under the store's ``Published*`` schemas and lanes come from the
real ``risk.lanes.assign_lanes``: it is test data for the store, not a model.
A plain module (not conftest) so that tests import it by a name no other folder uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from uuid import uuid4

import numpy as np
import polars as pl
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from risk import store
from risk.lanes import CapacityConfig, LaneCapacity, assign_lanes, truck_key

# Small enough that a 40-truck queue fills red and yellow only in part.
CAPACITY = CapacityConfig(
    seed=11,
    default=LaneCapacity(
        physical_per_hour=0.2, document_per_hour=0.3, random_share=0.1, min_risk_yellow=0.05
    ),
)


@dataclass(frozen=True)
class ScoredQueue:
    trucks: pl.DataFrame
    declarations: pl.DataFrame
    items: pl.DataFrame
    history_declarations: pl.DataFrame
    history_outcomes: pl.DataFrame


def publish(
    session: Session,
    queue: ScoredQueue,
    run_id: str,
    *,
    model_version: str = "grey-import-risk/1",
    published_by: str = "test",
    replaces_queue: bool = False,
) -> store.PublishSummary:
    """``queue`` published into the store as run ``run_id`` (by model ``grey-import-risk/1``
    unless told otherwise)."""
    return store.publish_scores(
        session=session,
        trucks=queue.trucks,
        declarations=queue.declarations,
        items=queue.items,
        run_id=run_id,
        model_version=model_version,
        published_by=published_by,
        replaces_queue=replaces_queue,
    )


@cache
def scored_queue(seed: int = 5, trucks: int = 40) -> ScoredQueue:
    from pipelines.generate import TrafficConfig, generate_traffic

    traffic = generate_traffic(
        TrafficConfig(seed=seed, history_days=30, history_items=1500, queue_trucks=trucks)
    )
    rng = np.random.default_rng(seed)
    queue = traffic.queue_declarations.with_columns(truck_key())
    n = queue.height
    risk = np.round(rng.beta(0.6, 4.0, n), 4)
    duty_rate = queue.get_column("duty_rate_pct").fill_null(5.0).to_numpy() / 100
    items = queue.with_columns(
        risk=pl.Series(risk),
        duty_at_risk_usd=pl.Series(np.round(risk * queue["customs_value_usd"] * duty_rate, 2)),
        reasons=pl.Series(
            [
                [
                    f"Declared value {v:,.0f} USD for HS {h}",
                    f"Origin {o}, dispatched from {d or '—'}",
                ]
                for v, h, o, d in queue.select(
                    "customs_value_usd", "hs_code", "origin_country", "dispatch_country"
                ).iter_rows()
            ],
            dtype=pl.List(pl.String),
        ),
    )
    declarations = (
        items.sort("risk", descending=True)
        .group_by("declaration_id", maintain_order=True)
        .agg(
            pl.col("truck_key").first().alias("truck_id"),
            pl.col("crossing", "declared_at", "importer_id", "importer_registered_on").first(),
            pl.col("declarant_id", "procedure").first(),
            pl.col("risk").max(),
            pl.col("duty_at_risk_usd").sum(),
            pl.col("reasons").first(),
        )
        .sort("declaration_id")
    )
    trucks_frame = (
        items.sort("risk", descending=True)
        .group_by("truck_key", "crossing", maintain_order=True)
        .agg(
            pl.col("vehicle_plate").first(),
            n_items=pl.len().cast(pl.Int64),
            risk=pl.col("risk").max(),
            duty_at_risk_usd=pl.col("duty_at_risk_usd").sum(),
            reasons=pl.col("reasons").first(),
        )
        .with_columns(rule_lane=pl.lit(None, dtype=pl.String))
        .sort("truck_key")
    )
    trucks_frame = (
        assign_lanes(trucks_frame, CAPACITY)
        .join(
            traffic.queue_arrivals.select("crossing", "truck_id", "arrived_at"),
            left_on=["crossing", "truck_key"],
            right_on=["crossing", "truck_id"],
            how="left",
        )
        .rename({"truck_key": "truck_id"})
    )
    return ScoredQueue(
        trucks=trucks_frame,
        declarations=declarations,
        items=items,
        history_declarations=traffic.declarations,
        history_outcomes=traffic.outcomes,
    )


def postgres_admin_url() -> str | None:
    """The throwaway server of scripts/test.sh; in CI its absence is a failure, not a skip."""
    url = os.environ.get("RISK_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail("RISK_TEST_POSTGRES_URL is not set in CI: scripts/test.sh starts PostgreSQL")
    pytest.skip("RISK_TEST_POSTGRES_URL is not set (run scripts/test.sh for a PostgreSQL server)")
    raise AssertionError("unreachable")


@contextmanager
def fresh_postgres_database(admin_url: str, *, template: str | None = None) -> Iterator[str]:
    """A new database on the test server (a copy of ``template`` if given), dropped after."""
    name = f"risk_test_{uuid4().hex[:12]}"
    admin = create_engine(
        make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


PASSWORD = "correct horse battery"


def prepare_store(url: str) -> None:
    """Migrate and add one user per role (``officer1``, ...): what every store test starts from."""
    from risk import store

    store.migrate(url)
    engine = store.make_engine(url)
    with store.session_factory(engine).begin() as session:
        for role in store.ROLES:
            store.add_user(session=session, username=f"{role}1", password=PASSWORD, role=role)
    engine.dispose()
