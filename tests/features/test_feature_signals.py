"""Value, weight, route, behaviour and truck features against naive row-by-row versions."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from feature_traffic import Traffic, make_traffic

from features.config import FeatureConfig
from features.pipeline import KEYS, build_features
from features.reference import METRICS, UnitValueReference
from features.truck import LOW_IS_RISKY, SUMMARISED, truck_features

CONFIG = FeatureConfig(reference_min_rows=3)


def _features(traffic: Traffic, config: FeatureConfig = CONFIG) -> pl.DataFrame:
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


@pytest.fixture(scope="module")
def three_months() -> Traffic:
    return make_traffic(120, seed=4, days=85)


@pytest.fixture(scope="module")
def features(three_months: Traffic) -> pl.DataFrame:
    return _features(three_months)


def _metric(row: dict[str, Any], metric: str) -> float | None:
    value, net, quantity = row["customs_value_usd"], row["net_mass_kg"], row["quantity"]
    pairs = {
        "unit_value_kg": (value, net),
        "unit_value_unit": (value, quantity),
        "mass_per_unit": (net, quantity),
    }
    top, bottom = pairs[metric]
    return math.log(top / bottom) if top and bottom and top > 0 and bottom > 0 else None


def _level_key(row: dict[str, Any], level: int) -> tuple[str, ...]:
    hs = row["hs_code"]
    prefix = hs[: {0: 10, 1: 6, 2: 4, 3: 2, 4: 2}[level]]
    return (prefix, row["origin_country"]) if level < 4 else (prefix,)


@pytest.mark.parametrize("metric", METRICS)
def test_price_reference_matches_a_naive_implementation(
    metric: str, three_months: Traffic, features: pl.DataFrame
) -> None:
    rows = three_months.declarations.to_dicts()
    month = {id(r): r["declared_at"].replace(day=1, hour=0, minute=0, second=0) for r in rows}
    got = {(r["declaration_id"], r["item_no"]): r for r in features.to_dicts()}
    checked_levels = set()
    for row in rows:
        value = _metric(row, metric)
        out = got[(row["declaration_id"], row["item_no"])]
        past = [r for r in rows if month[id(r)] < month[id(row)]]
        expected = None
        for level in range(5):
            values = [
                v
                for r in past
                if _level_key(r, level) == _level_key(row, level)
                and (v := _metric(r, metric)) is not None
            ]
            if len(values) >= CONFIG.reference_min_rows:
                expected = (level, values)
                break
        if value is None or expected is None:
            assert out[f"{metric}_log_ratio"] is None
            assert out[f"{metric}_reference_level"] is None
            continue
        level, values = expected
        checked_levels.add(level)
        assert out[f"{metric}_reference_level"] == level
        assert out[f"{metric}_reference_rows"] == len(values)
        assert out[f"{metric}_log_ratio"] == pytest.approx(value - statistics.median(values))
        below = sum(v < value for v in values)
        assert out[f"{metric}_position"] == pytest.approx(below / len(values))
    assert len(checked_levels) >= 2  # the fallback really happened


def test_first_month_has_no_reference(features: pl.DataFrame) -> None:
    january = features.filter(pl.col("declared_at") < datetime(2024, 2, 1))
    assert january["unit_value_kg_log_ratio"].null_count() == january.height


def test_reference_estimator_follows_sklearn_conventions(three_months: Traffic) -> None:
    reference = UnitValueReference(period="1mo", min_rows=3)
    assert reference.fit(three_months.declarations) is reference
    assert {"rows_", "periods_", "valid_from_"} <= set(vars(reference))
    assert reference.min_rows == 3 and reference.period == "1mo"


def test_weight_and_behaviour_match_naive(three_months: Traffic, features: pl.DataFrame) -> None:
    rows = three_months.declarations.to_dicts()
    arrivals = three_months.arrivals.to_dicts()
    by_declaration: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_trip: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_declaration[r["declaration_id"]].append(r)
        truck = r["truck_id"] or "decl:" + r["declaration_id"]
        by_trip[(truck, r["crossing"], r["declared_at"].date())].append(r)
    got = {(r["declaration_id"], r["item_no"]): r for r in features.to_dicts()}
    thresholds, margin = CONFIG.value_thresholds_usd, CONFIG.just_under_margin
    for r in rows:
        out = got[(r["declaration_id"], r["item_no"])]
        trip = by_trip[
            (r["truck_id"] or "decl:" + r["declaration_id"], r["crossing"], r["declared_at"].date())
        ]
        declaration = by_declaration[r["declaration_id"]]
        declaration_value = sum(i["customs_value_usd"] for i in declaration)
        gaps = [(t - r["customs_value_usd"]) / t for t in thresholds if r["customs_value_usd"] < t]
        assert out["value_gap_below_threshold"] == pytest.approx(min(gaps) if gaps else None)
        assert out["value_just_under_threshold"] == int(bool(gaps) and min(gaps) <= margin)
        gaps = [(t - declaration_value) / t for t in thresholds if declaration_value < t]
        assert out["declaration_value_just_under_threshold"] == int(
            bool(gaps) and min(gaps) <= margin
        )
        invoice = r["invoice_value"]
        zeros = 0
        while invoice > 0 and invoice == int(invoice) and zeros < 6 and int(invoice) % 10 == 0:
            invoice, zeros = invoice / 10, zeros + 1
        assert out["invoice_value_roundness"] == zeros
        assert out["declaration_items"] == len(declaration)
        assert out["declaration_value_usd"] == pytest.approx(declaration_value)
        assert out["trip_items"] == len(trip)
        assert out["trip_declarations"] == len({i["declaration_id"] for i in trip})
        assert out["trip_importers"] == len({i["importer_id"] for i in trip})
        assert out["trip_chapters"] == len({i["hs_code"][:2] for i in trip})
        assert out["gross_net_ratio"] == pytest.approx(r["gross_mass_kg"] / r["net_mass_kg"])
        registered = r["importer_registered_on"]
        assert out["importer_age_days"] == (
            None if registered is None else (r["declared_at"].date() - registered).days
        )
        burst = out["importer_declarations_1d"] / ((out["importer_declarations_30d"] + 1) / 30)
        assert out["importer_burst_ratio"] == pytest.approx(burst)
        # Weighbridge: the reading of this truck at this crossing nearest in time, within 48 h.
        readings = [
            a
            for a in arrivals
            if a["truck_id"] == r["truck_id"]
            and a["crossing"] == r["crossing"]
            and abs(a["arrived_at"] - r["declared_at"]) <= timedelta(hours=48)
        ]
        gross = sum(i["gross_mass_kg"] for i in trip)
        if not readings or r["truck_id"] is None:
            assert out["trip_weighbridge_gap_ratio"] is None
        else:
            nearest = min(readings, key=lambda a: abs(a["arrived_at"] - r["declared_at"]))
            assert out["trip_weighbridge_gap_ratio"] == pytest.approx(
                (nearest["weighbridge_kg"] - gross) / gross
            )


def test_route_signals_and_codes_match_naive(three_months: Traffic, features: pl.DataFrame) -> None:
    got = {(r["declaration_id"], r["item_no"]): r for r in features.to_dicts()}
    for r in three_months.declarations.to_dicts():
        out = got[(r["declaration_id"], r["item_no"])]
        origin, dispatch = r["origin_country"], r["dispatch_country"]
        assert out["origin_differs_from_dispatch"] == int(
            dispatch is not None and dispatch != origin
        )
        assert out["cn_origin_kz_dispatch"] == int(origin == "CN" and dispatch == "KZ")
        assert out["is_transit"] == int(r["procedure"] == "transit")
        assert out["is_eaeu_internal"] == int(r["procedure"] == "eaeu_internal")
        assert out["dispatch_from_eaeu_member"] == int(
            dispatch in {"AM", "BY", "KG", "KZ", "RU"} and dispatch != origin
        )
        assert out["origin_country_code"] == (ord(origin[0]) - 65) * 26 + ord(origin[1]) - 65
        assert out["procedure_code"] == ("import", "transit", "eaeu_internal").index(r["procedure"])
        assert out["hs_chapter_code"] == int(r["hs_code"][:2])
        assert out["duty_at_stake_usd"] == pytest.approx(
            r["customs_value_usd"] * r["duty_rate_pct"] / 100
        )


def test_truck_features_aggregate_their_items(features: pl.DataFrame) -> None:
    trucks = {t["trip_id"]: t for t in truck_features(features.lazy()).collect().to_dicts()}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in features.to_dicts():
        groups[item["trip_id"]].append(item)
    assert set(trucks) == set(groups)
    for trip, items in groups.items():
        truck = trucks[trip]
        assert truck["truck_key"] == (items[0]["truck_id"] or items[0]["declaration_id"])
        for name in [*SUMMARISED[:20], *LOW_IS_RISKY]:
            values = [i[name] for i in items if i[name] is not None]
            if not values:
                assert truck[f"{name}_max"] is None
                continue
            assert truck[f"{name}_max"] == pytest.approx(max(values))
            assert truck[f"{name}_mean"] == pytest.approx(sum(values) / len(values))
            if name in LOW_IS_RISKY:
                assert truck[f"{name}_min"] == pytest.approx(min(values))


def test_trip_ids_built_per_run_are_the_row_by_row_ones() -> None:
    from features.behaviour import trip_id, with_trip_id

    day = datetime(2026, 10, 1, 8)
    frame = pl.DataFrame(
        {
            "truck_id": ["T1", "T1", None, None, "T1", "T2", "T2", "T1"],
            "declaration_id": ["D1", "D1", "D2", "D3", "D4", "D5", "D5", "D6"],
            "crossing": ["A", "A", "A", "A", "B", "A", None, "A"],
            "declared_at": [
                day,
                day,
                day,
                day,
                day,
                day + timedelta(days=1),
                day + timedelta(days=1),
                day + timedelta(days=1),
            ],
        }
    )
    for rows in (frame, frame.reverse(), frame.sample(fraction=1.0, shuffle=True, seed=3)):
        got = with_trip_id(rows.lazy()).collect().get_column("trip_id")
        assert got.to_list() == rows.select(trip_id()).get_column("trip_id").to_list()
    assert with_trip_id(frame.lazy()).collect()["trip_id"].to_list()[:4] == [
        "T1|A|2026-10-01",
        "T1|A|2026-10-01",
        "decl:D2|A|2026-10-01",
        "decl:D3|A|2026-10-01",
    ]
