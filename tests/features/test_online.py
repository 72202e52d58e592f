"""The online feature path equals the feature pipeline in profile mode, row for row.

Generated traffic, entity profiles cut inside its history, and then single trucks, batches of
trucks and edge cases scored both ways, through the scoring-time edges of
``pipelines.score_features.compute_features`` (``as_of_cutoff``, ``scoring_profiles``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.config import FeatureConfig
from features.online import OnlineFeatures, UnsupportedBatchError
from features.pipeline import KEYS, build_features
from features.profiles import EntityProfiles, materialize_profiles
from pipelines.generate import TrafficConfig, generate_traffic
from pipelines.score_features import as_of_cutoff, scoring_profiles
from risk.lanes import truck_key
from risk.schemas import InspectionOutcome, empty

CUTOFF = dt.datetime(2026, 9, 25, 6, 30)
# Rows this long before the cut-off are in the pool too: scoring moves them to the cut-off.
EARLY = dt.timedelta(days=2)


@dataclass(frozen=True)
class World:
    profiles: EntityProfiles
    config: FeatureConfig
    online: OnlineFeatures
    pool: pl.DataFrame  # DeclarationItem rows to score, with ``truck_key``
    arrivals: pl.DataFrame


def _world(config: FeatureConfig) -> World:
    traffic = generate_traffic(
        TrafficConfig(
            seed=23,
            as_of=dt.date(2026, 10, 20),
            history_days=60,
            history_items=4000,
            queue_trucks=150,
        )
    )
    history = traffic.declarations
    profiles = materialize_profiles(history.lazy(), traffic.outcomes.lazy(), CUTOFF, config=config)
    latest = scoring_profiles(profiles).reference.latest  # type: ignore[attr-defined]
    pool = pl.concat(
        [history.filter(pl.col("declared_at") >= CUTOFF - EARLY), traffic.queue_declarations]
    ).with_columns(truck_key())
    return World(
        profiles=profiles,
        config=config,
        online=OnlineFeatures.from_profiles(profiles, config, reference_until=latest),
        pool=pool,
        arrivals=pl.concat([traffic.arrivals, traffic.queue_arrivals]),
    )


@pytest.fixture(scope="module")
def world() -> World:
    return _world(FeatureConfig())


def pipeline_features(
    world: World, batch: pl.DataFrame, arrivals: pl.DataFrame | None = None
) -> pl.DataFrame:
    """What ``compute_features`` asks of the pipeline for ``batch``."""
    then = as_of_cutoff(batch, world.profiles)
    return build_features(
        then.lazy(),
        empty(InspectionOutcome).lazy(),
        profiles=scoring_profiles(world.profiles),
        config=world.config,
        arrivals=None if arrivals is None else arrivals.lazy(),
    ).collect()


def online_features(
    world: World, batch: pl.DataFrame, arrivals: pl.DataFrame | None = None
) -> pl.DataFrame:
    return world.online.features(as_of_cutoff(batch, world.profiles), arrivals)


def assert_same(world: World, batch: pl.DataFrame, arrivals: pl.DataFrame | None = None) -> None:
    online = online_features(world, batch, arrivals)
    pipeline = pipeline_features(world, batch, arrivals)
    # The online path keeps the batch's order; the pipeline's is its own.
    assert online.select(KEYS).equals(batch.select(KEYS))
    # 1e-9 absolute, or relative for sums of duty in the thousands of USD.
    assert_frame_equal(
        online.sort(KEYS),
        pipeline.sort(KEYS),
        check_dtypes=True,
        check_exact=False,
        abs_tol=1e-9,
        rel_tol=1e-12,
    )


def trucks(world: World) -> list[pl.DataFrame]:
    """The pool's trucks, each a batch of its rows (truck_key dropped)."""
    return [
        part.drop("truck_key") for part in world.pool.partition_by("truck_key", maintain_order=True)
    ]


def test_the_pool_covers_the_edges_of_scoring_time(world: World) -> None:
    declared = world.pool.get_column("declared_at")
    period_end = scoring_profiles(world.profiles).reference.latest  # type: ignore[attr-defined]
    assert (declared < CUTOFF).sum() > 0  # moved to the cut-off
    assert (declared > period_end).sum() > 0  # after the reference period
    per_truck = world.pool.group_by("truck_key").agg(pl.col("declaration_id").n_unique())
    assert (per_truck.get_column("declaration_id") > 1).any()  # trucks with several papers


def test_single_trucks_match_the_pipeline(world: World) -> None:
    batches = trucks(world)
    assert len(batches) >= 250
    # Two hundred trucks: the first of the history rows around the cut-off, the rest queue.
    for batch in batches[:40] + batches[-160:]:
        assert_same(world, batch)


def test_batches_of_several_trucks_match_the_pipeline(world: World) -> None:
    batches = trucks(world)
    for start, size in [(0, 2), (10, 5), (40, 12), (len(batches) - 30, 30)]:
        assert_same(world, pl.concat(batches[start : start + size]))


def test_trucks_with_weighbridge_readings_match_the_pipeline(world: World) -> None:
    batches = trucks(world)[-30:]
    matched = 0
    for batch in batches:
        assert_same(world, batch, world.arrivals)
        gap = online_features(world, batch, world.arrivals).get_column("trip_weighbridge_gap_ratio")
        matched += int(gap.is_not_null().sum())
    assert matched > 0


def _edited(batch: pl.DataFrame, **columns: pl.Expr) -> pl.DataFrame:
    return batch.with_columns(**{name: expr for name, expr in columns.items()})


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param({"importer_id": pl.lit("IMP-NEVER-SEEN")}, id="unknown-importer"),
        pytest.param(
            {"hs_code": pl.lit("9999999999"), "origin_country": pl.lit("AQ")},
            id="new-hs-code-no-reference",
        ),
        pytest.param(
            {"quantity": pl.lit(None, pl.Float64), "net_mass_kg": pl.lit(None, pl.Float64)},
            id="null-quantity-and-mass",
        ),
        pytest.param(
            {"gross_mass_kg": pl.lit(None, pl.Float64), "net_mass_kg": pl.lit(0.0)},
            id="null-gross-zero-net",
        ),
        pytest.param(
            {
                "truck_id": pl.lit(None, pl.String),
                "declarant_id": pl.lit(None, pl.String),
                "consignor_id": pl.lit(None, pl.String),
                "carrier_id": pl.lit(None, pl.String),
            },
            id="missing-parties",
        ),
        pytest.param(
            {
                "dispatch_country": pl.lit(None, pl.String),
                "destination_country": pl.lit(None, pl.String),
                "importer_registered_on": pl.lit(None, pl.Date),
                "duty_rate_pct": pl.lit(None, pl.Float64),
            },
            id="missing-facts",
        ),
        pytest.param(
            {"invoice_value": pl.lit(5000.0), "customs_value_usd": pl.lit(995.0)},
            id="round-invoice-just-under",
        ),
        pytest.param(
            {"origin_country": pl.lit("CN"), "dispatch_country": pl.lit("KZ")},
            id="re-export-route",
        ),
        pytest.param({"declared_at": pl.lit(dt.datetime(2026, 11, 30, 12))}, id="far-later"),
    ],
)
def test_edge_cases_match_the_pipeline(world: World, edit: dict[str, pl.Expr]) -> None:
    batches = trucks(world)
    for batch in (batches[3], batches[-7], pl.concat(batches[20:24])):
        assert_same(world, _edited(batch, **edit))


def test_a_new_hs_code_has_no_reference(world: World) -> None:
    batch = _edited(trucks(world)[-1], hs_code=pl.lit("9999999999"), origin_country=pl.lit("AQ"))
    features = online_features(world, batch)
    assert features.get_column("unit_value_kg_reference_level").is_null().all()
    assert features.get_column("importer_declarations").is_not_null().all()


def test_a_batch_sees_its_own_earlier_declarations(world: World) -> None:
    batch = trucks(world)[-1].head(1)
    later = batch.with_columns(
        pl.lit("DECL-LATER").alias("declaration_id"),
        pl.col("declared_at") + dt.timedelta(hours=1),
    )
    both = online_features(world, pl.concat([batch, later]))
    counts = both.get_column("importer_declarations").to_list()
    assert counts[1] == counts[0] + 1
    assert_same(world, pl.concat([batch, later]))


def test_extra_categoricals_match_the_pipeline() -> None:
    world = _world(FeatureConfig(extra_categoricals=("currency", "quantity_unit")))
    for batch in trucks(world)[-20:]:
        assert_same(world, batch)
    assert "currency_code" in online_features(world, trucks(world)[0]).columns


def test_refusals_are_the_pipelines(world: World) -> None:
    batch = trucks(world)[-1]
    with pytest.raises(ValueError, match="before the entity profile's cut-off"):
        world.online.features(batch.with_columns(declared_at=pl.lit(CUTOFF - EARLY)))
    strict = OnlineFeatures.from_profiles(world.profiles, world.config)
    with pytest.raises(ValueError, match="period"):
        strict.features(batch.with_columns(declared_at=pl.lit(dt.datetime(2026, 11, 1))))
    two_times = pl.concat(
        [
            batch.head(1),
            batch.head(1).with_columns(
                item_no=pl.lit(99, pl.Int32),
                declared_at=pl.col("declared_at") + dt.timedelta(minutes=1),
            ),
        ]
    )
    with pytest.raises(UnsupportedBatchError):
        world.online.features(two_times)
