"""The pipeline's contract: shape, keys, codes, catalogue, and history/profile parity."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from feature_traffic import Traffic
from polars.testing import assert_frame_equal

from features import history
from features.catalog import CATALOG, entry_for, render_markdown
from features.config import FeatureConfig
from features.pipeline import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    KEYS,
    build_features,
    categorical_features,
    feature_columns,
)
from features.profiles import SNAPSHOT_FILES, EntityProfiles, materialize_profiles
from features.truck import TRUCK_FEATURE_COLUMNS, truck_features

MakeTraffic = Callable[..., Traffic]


def _history(traffic: Traffic, config: FeatureConfig | None = None) -> pl.DataFrame:
    return (
        build_features(
            traffic.declarations.lazy(),
            traffic.outcomes.lazy(),
            arrivals=traffic.arrivals.lazy(),
            config=config,
        )
        .collect()
        .sort(KEYS)
    )


def test_one_row_per_item_with_unique_keys(traffic: Traffic) -> None:
    features = _history(traffic)
    assert features.height == traffic.declarations.height
    assert features.select(KEYS).is_duplicated().sum() == 0
    assert features.columns == [*KEYS, "truck_id", "crossing", "declared_at", "trip_id",
                                *FEATURE_COLUMNS]  # fmt: skip
    assert_frame_equal(features.select(KEYS), traffic.declarations.select(KEYS).sort(KEYS))


def test_categoricals_are_plain_integers(traffic: Traffic) -> None:
    features = _history(traffic)
    for name in CATEGORICAL_FEATURES:
        assert features.schema[name] == pl.Int32, name
        assert features[name].drop_nulls().min() >= 0  # type: ignore[operator]
    assert not any(
        isinstance(dtype, pl.Categorical | pl.Enum | pl.String) for dtype in
        features.select(FEATURE_COLUMNS).schema.values()
    )  # fmt: skip


def test_extra_categoricals_are_hashed_stably(traffic: Traffic) -> None:
    source = traffic.declarations.with_columns(
        pl.when(pl.col("item_no") == 1).then(pl.lit("office-7")).otherwise(pl.lit("office-9"))
        .alias("src_office_id")
    )  # fmt: skip
    config = FeatureConfig(extra_categoricals=("src_office_id",))
    features = _history(Traffic(source, traffic.outcomes, traffic.arrivals), config)
    assert feature_columns(config)[-1] == "src_office_id_code"
    assert categorical_features(config)[-1] == "src_office_id_code"
    codes = dict(
        features.join(source.select(*KEYS, "src_office_id"), on=KEYS)
        .select("src_office_id", "src_office_id_code")
        .unique()
        .iter_rows()
    )
    # CRC-32 of the text modulo 2**20: fixed forever, whatever else is in the data.
    assert codes == {v: zlib.crc32(v.encode()) % (1 << 20) for v in ("office-7", "office-9")}
    assert entry_for("src_office_id_code").scheme == "any"


def test_every_feature_is_in_the_catalogue() -> None:
    assert set(FEATURE_COLUMNS) == set(CATALOG)
    markdown = render_markdown()
    for name in FEATURE_COLUMNS:
        assert f"`{name}`" in markdown
        entry = CATALOG[name]
        assert "{value}" in entry.reason_en
        assert entry.reason(1.5, "ru") and entry.reason(None, "en")


def test_docs_are_generated_from_the_catalogue() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "features.md"
    assert docs.read_text(encoding="utf-8") == render_markdown()


@pytest.mark.parametrize("seed", [3, 11])
def test_profile_mode_equals_history_mode(
    seed: int, tmp_path: Path, make_traffic: MakeTraffic
) -> None:
    traffic = make_traffic(400, seed=seed, days=59)
    cutoff = datetime(2024, 2, 10)
    history = _history(traffic).filter(pl.col("declared_at") >= cutoff)
    profiles = materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff)
    profiles = EntityProfiles.load(profiles.save(tmp_path / "profile"))
    scored = (
        build_features(
            traffic.declarations.lazy().filter(pl.col("declared_at") >= cutoff),
            traffic.outcomes.lazy(),
            profiles=profiles,
            arrivals=traffic.arrivals.lazy(),
        )
        .collect()
        .sort(KEYS)
    )
    assert history.height > 100
    assert_frame_equal(scored, history, rel_tol=1e-9, abs_tol=1e-9)


def test_profile_mode_refuses_declarations_before_the_cutoff(traffic: Traffic) -> None:
    cutoff = datetime(2024, 1, 20)
    profiles = materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff)
    with pytest.raises(Exception, match="before the entity profile's cut-off"):
        build_features(
            traffic.declarations.lazy(), traffic.outcomes.lazy(), profiles=profiles
        ).collect()


def test_profile_mode_refuses_a_later_reference_period(traffic: Traffic) -> None:
    cutoff = datetime(2024, 1, 20)
    profiles = materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff)
    later = traffic.declarations.lazy().filter(pl.col("declared_at") >= datetime(2024, 2, 1))
    with pytest.raises(Exception, match="serves only the period starting 2024-01-01"):
        build_features(later, traffic.outcomes.lazy(), profiles=profiles).collect()


def test_profile_mode_refuses_another_config(traffic: Traffic) -> None:
    profiles = materialize_profiles(
        traffic.declarations.lazy(), traffic.outcomes.lazy(), datetime(2024, 1, 20)
    )
    with pytest.raises(ValueError, match="reference_min_rows"):
        build_features(
            traffic.declarations.lazy().filter(pl.col("declared_at") >= datetime(2024, 1, 20)),
            traffic.outcomes.lazy(),
            profiles=profiles,
            config=FeatureConfig(reference_min_rows=3),
        )


def test_truck_features_one_row_per_trip(traffic: Traffic) -> None:
    items = _history(traffic)
    trucks = truck_features(items.lazy()).collect()
    assert trucks.height == items["trip_id"].n_unique()
    assert set(TRUCK_FEATURE_COLUMNS) <= set(trucks.columns)
    busiest = items.group_by("trip_id").agg(pl.len(), pl.col("importer_declarations").max())
    joined = trucks.join(busiest, on="trip_id")
    assert (joined["trip_items"] == joined["len"]).all()
    assert (joined["importer_declarations_max"] == joined["importer_declarations"]).all()


def test_profile_mode_equals_history_mode_on_generated_traffic(tmp_path: Path) -> None:
    from pipelines.generate import TrafficConfig, generate_traffic

    generated = generate_traffic(
        TrafficConfig(seed=3, history_days=60, history_items=3000, queue_trucks=20)
    )
    traffic = Traffic(generated.declarations, generated.outcomes, generated.arrivals)
    last = generated.declarations["declared_at"].max()
    assert isinstance(last, datetime)
    # Midnight, ten days into the last month: both sides of the cut-off are busy.
    cutoff = datetime(last.year, last.month, 1) + timedelta(days=10)
    profiles = EntityProfiles.load(
        materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff).save(
            tmp_path / "profile"
        )
    )
    history = _history(traffic).filter(pl.col("declared_at") >= cutoff)
    scored = (
        build_features(
            traffic.declarations.lazy().filter(pl.col("declared_at") >= cutoff),
            traffic.outcomes.lazy(),
            profiles=profiles,
            arrivals=traffic.arrivals.lazy(),
        )
        .collect()
        .sort(KEYS)
    )
    assert history.height > 200
    assert history["importer_inspections"].sum() > 0
    assert history["unit_value_kg_log_ratio"].null_count() < history.height
    assert_frame_equal(scored, history, rel_tol=1e-9, abs_tol=1e-9)


def test_empty_input_gives_an_empty_frame_of_the_same_columns() -> None:
    from risk.schemas import DeclarationItem, InspectionOutcome, empty

    features = build_features(
        empty(DeclarationItem).lazy(), empty(InspectionOutcome).lazy()
    ).collect()
    assert features.height == 0
    assert features.columns == [*KEYS, "truck_id", "crossing", "declared_at", "trip_id",
                                *FEATURE_COLUMNS]  # fmt: skip


def test_extra_input_columns_are_ignored(traffic: Traffic) -> None:
    noisy = traffic.declarations.with_columns(
        pl.lit(["odd_weight"]).alias("soft_flags"), pl.lit("x").alias("src_note")
    )
    plain = _history(traffic)
    assert_frame_equal(
        _history(Traffic(noisy, traffic.outcomes, traffic.arrivals)), plain, rel_tol=1e-12
    )


def test_profile_save_replaces_and_load_checks_the_polars_version(
    traffic: Traffic, tmp_path: Path
) -> None:
    cutoff = datetime(2024, 1, 20)
    profiles = materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff)
    folder = profiles.save(tmp_path / "profile")
    profiles.save(folder)  # saving again replaces the folder whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile"]
    loaded = EntityProfiles.load(folder)
    assert loaded.cutoff == cutoff
    assert loaded.pending_items.equals(profiles.pending_items)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta["polars_version"] = "0.0.1"
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="materialise the profile again"):
        EntityProfiles.load(folder)


def test_shuffled_batches_order_by_the_packed_code_or_by_two_columns_alike(
    make_traffic: MakeTraffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows shuffled, so that a declaration's items are not next to each other: the batch is
    # ordered by (time, declaration) through one packed code or, with PACKED_BITS = 0, by the
    # two columns; both give the features of the batch in file order.
    traffic = make_traffic(300, seed=5, days=59)
    cutoff = datetime(2024, 2, 10)
    profiles = materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff)
    batch = traffic.declarations.filter(pl.col("declared_at") >= cutoff)
    shuffled = batch.sample(fraction=1.0, shuffle=True, seed=3)

    def scored(rows: pl.DataFrame) -> pl.DataFrame:
        return build_features(
            rows.lazy(),
            traffic.outcomes.lazy(),
            profiles=profiles,
            arrivals=traffic.arrivals.lazy(),
        ).collect()

    in_order = scored(batch).sort(KEYS)
    packed = scored(shuffled)
    assert packed["importer_declarations_7d"].sum() > 0
    assert packed.select(KEYS).equals(shuffled.select(KEYS))
    assert_frame_equal(packed.sort(KEYS), in_order)
    monkeypatch.setattr(history, "PACKED_BITS", 0)
    assert_frame_equal(scored(shuffled), packed)


def test_a_format_1_profile_without_a_reference_snapshot_scores_the_same(
    tmp_path: Path, make_traffic: MakeTraffic
) -> None:
    traffic = make_traffic(300, seed=6, days=59)
    cutoff = datetime(2024, 2, 10)
    profiles = materialize_profiles(traffic.declarations.lazy(), traffic.outcomes.lazy(), cutoff)
    folder = profiles.save(tmp_path / "profile")
    assert all((folder / name).is_file() for name in SNAPSHOT_FILES)
    new = EntityProfiles.load(folder)

    def scored(past: EntityProfiles) -> pl.DataFrame:
        return build_features(
            traffic.declarations.lazy().filter(pl.col("declared_at") >= cutoff),
            traffic.outcomes.lazy(),
            profiles=past,
        ).collect()

    with_snapshot = scored(new)
    for name in SNAPSHOT_FILES:
        (folder / name).unlink()
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    (folder / "meta.json").write_text(json.dumps({**meta, "format_version": 1}), encoding="utf-8")
    old = EntityProfiles.load(folder)
    assert getattr(old.reference, "_snapshot_memo", None) is None
    assert_frame_equal(scored(old), with_snapshot)
    assert with_snapshot["unit_value_kg_position"].null_count() < with_snapshot.height


def test_row_order_and_items_of_one_declaration_apart_change_no_feature(
    traffic: Traffic,
) -> None:
    # Shuffled, a declaration's items are no longer adjacent (the exact-rank path); and one
    # declaration whose items name two importers is counted once for each of them.
    counts = traffic.declarations.group_by("declaration_id").len()
    split = counts.filter(pl.col("len") > 1).sort("declaration_id")["declaration_id"][0]
    declarations = traffic.declarations.with_columns(
        pl.when((pl.col("declaration_id") == split) & (pl.col("item_no") > 1))
        .then(pl.lit("importer-split"))
        .otherwise(pl.col("importer_id"))
        .alias("importer_id")
    )
    plain = _history(Traffic(declarations, traffic.outcomes, traffic.arrivals))
    shuffled = declarations.sample(fraction=1.0, shuffle=True, seed=3)
    assert shuffled["declaration_id"].rle_id().max() + 1 > counts.height  # type: ignore[operator]
    assert_frame_equal(
        _history(Traffic(shuffled, traffic.outcomes, traffic.arrivals)), plain, rel_tol=1e-12
    )
