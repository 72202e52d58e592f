"""Entity history against a naive row-by-row implementation, and its point-in-time rules."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from feature_traffic import Traffic, make_traffic
from polars.testing import assert_frame_equal

from features import entity_kernel
from features.config import WINDOWS_DAYS, FeatureConfig
from features.history import ENTITIES, Entity, entity_feature_names
from features.pipeline import FEATURE_COLUMNS, KEYS, build_features

CONFIG = FeatureConfig()
TRIP_AND_ARRIVAL = [c for c in FEATURE_COLUMNS if c.startswith("trip_")]


def _features(traffic: Traffic, *, arrivals: bool = True) -> pl.DataFrame:
    return (
        build_features(
            traffic.declarations.lazy(),
            traffic.outcomes.lazy(),
            arrivals=traffic.arrivals.lazy() if arrivals else None,
        )
        .collect()
        .sort(KEYS)
    )


def _key(row: dict[str, Any], entity: Entity) -> tuple[Any, ...] | None:
    derived = {"hs_chapter": row["hs_code"][:2], "hs6": row["hs_code"][:6]}
    parts = tuple(derived.get(c, row.get(c)) for c in entity.columns)
    return None if any(p is None for p in parts) else parts


def _judged(traffic: Traffic) -> list[dict[str, Any]]:
    """Each outcome expanded to the items it judges, with the duty shared, naively."""
    items = traffic.declarations.to_dicts()
    by_declaration: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_declaration[item["declaration_id"]].append(item)
    judged = []
    horizon = timedelta(days=CONFIG.outcome_horizon_days)
    for outcome in traffic.outcomes.to_dicts():
        targets = [
            item
            for item in by_declaration[outcome["declaration_id"]]
            if outcome["item_no"] is None or item["item_no"] == outcome["item_no"]
        ]
        for item in targets:
            if not item["declared_at"] <= outcome["recorded_at"] < item["declared_at"] + horizon:
                continue
            inspected = bool(outcome["inspected"])
            judged.append(
                {
                    "item": item,
                    "recorded_at": outcome["recorded_at"],
                    "inspected": int(inspected),
                    "violation": int(inspected and outcome["result"] != "clean"),
                    "duty": (outcome["extra_duty_usd"] or 0.0) / len(targets),
                }
            )
    return judged


def _naive_history(traffic: Traffic, entity: Entity) -> dict[tuple[str, int], dict[str, Any]]:
    items = traffic.declarations.to_dicts()
    judged = _judged(traffic)
    k, p0 = CONFIG.prior_strength, CONFIG.prior_violation_rate
    expected = {}
    for row in items:
        t, key = row["declared_at"], _key(row, entity)
        if key is None:
            expected[(row["declaration_id"], row["item_no"])] = dict.fromkeys(
                entity_feature_names(entity)
            )
            continue
        seen = {
            (other["declaration_id"], other["declared_at"])
            for other in items
            if _key(other, entity) == key and other["declared_at"] < t
        }
        known = [j for j in judged if j["recorded_at"] < t]
        mine = [j for j in known if _key(j["item"], entity) == key]
        prior = (sum(j["violation"] for j in known) + k * p0) / (
            sum(j["inspected"] for j in known) + k
        )
        inspections = sum(j["inspected"] for j in mine)
        values: dict[str, Any] = {f"{entity.name}_declarations": len(seen)}
        for days in WINDOWS_DAYS if entity.windows else ():
            since = t - timedelta(days=days)
            values[f"{entity.name}_declarations_{days}d"] = sum(1 for _, at in seen if at >= since)
        first = min((at for _, at in seen), default=None)
        values[f"{entity.name}_days_since_first_seen"] = (
            None if first is None else (t - first) / timedelta(days=1)
        )
        values[f"{entity.name}_inspections"] = inspections
        values[f"{entity.name}_violation_rate"] = (
            sum(j["violation"] for j in mine) + k * prior
        ) / (inspections + k)
        values[f"{entity.name}_duty_found_usd"] = sum(j["duty"] for j in mine)
        expected[(row["declaration_id"], row["item_no"])] = values
    return expected


# Each key's slot comes from a hash table; with room for one key at first it doubles again
# and again as keys come, carrying on where it stopped: both here.
@pytest.mark.parametrize("first_room", [4096, 1], ids=["roomy", "growing"])
@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_entity_history_matches_a_naive_implementation(
    entity: Entity, first_room: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(entity_kernel, "FIRST_TABLE_KEYS", first_room)
    traffic = make_traffic(40, seed=5, days=40, entities=3)
    features = _features(traffic)
    expected = _naive_history(traffic, entity)
    names = entity_feature_names(entity)
    for row in features.select(*KEYS, *names).to_dicts():
        want = expected[(row["declaration_id"], row["item_no"])]
        for name in names:
            if want[name] is None:
                assert row[name] is None, (row, name)
            else:
                assert row[name] == pytest.approx(want[name], rel=1e-9, abs=1e-9), (row, name)


def test_the_order_of_the_rows_changes_no_feature() -> None:
    # Shuffled, a declaration's items are no longer together: declarations are then told
    # apart by rank instead of by runs of rows, and nothing is computed once per run.
    traffic = make_traffic(60, seed=9, days=30, entities=3)
    shuffled = Traffic(
        traffic.declarations.sample(fraction=1.0, shuffle=True, seed=3),
        traffic.outcomes,
        traffic.arrivals,
    )
    assert not shuffled.declarations.select(KEYS).equals(traffic.declarations.select(KEYS))
    # Sums over a declaration or trip may add in another order: equal to float rounding.
    assert_frame_equal(_features(shuffled), _features(traffic), check_exact=False, rel_tol=1e-12)


def test_items_of_one_declaration_do_not_see_each_other() -> None:
    traffic = make_traffic(30, seed=2, days=20)
    features = _features(traffic)
    per_declaration = features.group_by("declaration_id").agg(
        pl.len(), pl.col("importer_declarations", "truck_inspections").n_unique()
    )
    assert per_declaration["len"].max() > 1  # type: ignore[operator]
    assert (per_declaration["importer_declarations"] == 1).all()
    assert (per_declaration["truck_inspections"] == 1).all()
    first = features.sort("declared_at").row(0, named=True)
    # The very first declaration has no past at all, however many items it has.
    assert first["importer_declarations"] == 0
    assert first["importer_inspections"] == 0
    assert first["importer_days_since_first_seen"] is None


def test_a_rows_own_outcome_never_reaches_its_features() -> None:
    traffic = make_traffic(60, seed=9, days=30)
    baseline = _features(traffic)
    target = traffic.declarations.row(len(traffic.declarations) // 2, named=True)
    # Its outcome now claims a violation with a big duty, recorded at the very second it was
    # declared, and another one recorded (impossibly) a day before it.
    forged = pl.DataFrame(
        [
            {
                **base,
                "declaration_id": target["declaration_id"],
                "item_no": item_no,
                "inspected": True,
                "selection": "random",
                "lane": "red",
                "result": "splitting",
                "extra_duty_usd": 10_000.0,
                "recorded_at": recorded,
            }  # fmt: skip
            for item_no, recorded in (
                (target["item_no"], target["declared_at"]),
                (None, target["declared_at"] - timedelta(days=1)),
            )
            for base in traffic.outcomes.head(1).to_dicts()
        ],
        schema=traffic.outcomes.schema,
    )
    changed = _features(
        Traffic(traffic.declarations, pl.concat([traffic.outcomes, forged]), traffic.arrivals)
    )
    key = (pl.col("declaration_id") == target["declaration_id"]) & (
        pl.col("item_no") == target["item_no"]
    )
    assert_frame_equal(changed.filter(key), baseline.filter(key), rel_tol=1e-12, abs_tol=1e-12)
    # The forged outcome recorded at declared_at is real for later declarations of that origin.
    later = (pl.col("declared_at") > target["declared_at"]) & (
        pl.col("declaration_id") != target["declaration_id"]
    )
    assert (
        changed.filter(later)["origin_duty_found_usd"].sum()
        > baseline.filter(later)["origin_duty_found_usd"].sum()
    )


@pytest.mark.parametrize("seed", range(6))
def test_appending_the_future_changes_nothing_at_t(seed: int) -> None:
    traffic = make_traffic(80, seed=seed, days=50)
    rng_t = traffic.declarations["declared_at"].sort()[len(traffic.declarations) * (seed + 2) // 9]
    assert isinstance(rng_t, datetime)
    # Trip features see the truck's papers of the same day (the whole load is known when the
    # truck is scored), so the cut is put at midnight for them; everything else at any moment.
    for cut, columns in (
        (rng_t, [c for c in FEATURE_COLUMNS if c not in TRIP_AND_ARRIVAL]),
        (datetime.combine(rng_t.date(), datetime.min.time()), FEATURE_COLUMNS),
    ):
        past = Traffic(
            traffic.declarations.filter(pl.col("declared_at") < cut),
            traffic.outcomes.filter(pl.col("recorded_at") < cut),
            traffic.arrivals,
        )
        before = _features(past).select(*KEYS, *columns)
        after = _features(traffic).filter(pl.col("declared_at") < cut).select(*KEYS, *columns)
        assert before.height > 0
        # Sums of floats may be added in another order: equal to rounding, not to the bit.
        assert_frame_equal(before, after, rel_tol=1e-12, abs_tol=1e-12)
