"""The row-local features of ``features.pipeline`` in plain Python, for the online path.

Route facts and codes, goods, declaration and trip totals, value thresholds, round amounts,
mass ratios and importer age: each is a few arithmetic operations per row, which Python does
for a handful of rows in microseconds where a Polars plan costs milliseconds to build. Every
function mirrors one expression of ``features.behaviour``, ``features.route``,
``features.codes`` or ``features.pipeline`` (null handling included: Polars' three-valued
logic, ``fill_null(False)`` where the expression has it); ``tests/features/test_online.py``
holds the two equal on generated traffic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from features.codes import stable_hash
from features.config import FeatureConfig
from features.reference import METRICS
from features.route import EAEU
from risk.schemas import PROCEDURES

# Columns of ``DeclarationItem`` the row-local features read.
INPUT_COLUMNS = (
    "declaration_id",
    "item_no",
    "truck_id",
    "crossing",
    "declared_at",
    "importer_id",
    "importer_registered_on",
    "hs_code",
    "origin_country",
    "dispatch_country",
    "destination_country",
    "procedure",
    "net_mass_kg",
    "gross_mass_kg",
    "quantity",
    "invoice_value",
    "customs_value_usd",
    "duty_rate_pct",
)
_PROCEDURE_CODES = {name: i for i, name in enumerate(PROCEDURES)}
_ROUND_ZEROS = 6

Rows = dict[str, list[Any]]


def country_code(country: str | None) -> int | None:
    """``features.codes.country_code``: 26 * letter1 + letter2 of an ISO alpha-2 code."""
    if country is None or len(country) != 2:
        return None
    first, second = ord(country[0]) - 65, ord(country[1]) - 65
    if not (0 <= first < 26 and 0 <= second < 26):
        return None
    return first * 26 + second


def hs_chapter_code(hs_code: str | None) -> int | None:
    """``features.codes.hs_chapter_code``: the first two digits as an integer."""
    if hs_code is None:
        return None
    chapter = hs_code[:2]
    return int(chapter) if chapter.isascii() and chapter.isdigit() else None


def roundness(value: float | None) -> int:
    """``features.behaviour.roundness``: trailing zeros of a whole positive amount."""
    if value is None or not math.isfinite(value) or value <= 0 or value != round(value):
        return 0
    return sum(1 for k in range(1, _ROUND_ZEROS + 1) if value % (10**k) == 0)


def gap_below_threshold(value: float | None, thresholds: Sequence[float]) -> float | None:
    """``features.behaviour.gap_below_threshold``: (T - v) / T to the nearest T above v."""
    if value is None:
        return None
    gaps = [(limit - value) / limit for limit in thresholds if value < limit]
    return min(gaps) if gaps else None


def just_under(gap: float | None, margin: float) -> int:
    return 1 if gap is not None and gap <= margin else 0


def safe_log_ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``features.reference.log_metrics``: log(a / b) when both are positive."""
    if numerator is None or denominator is None or not (numerator > 0 and denominator > 0):
        return None
    return math.log(numerator / denominator)


def trip_id(truck: str | None, declaration: str, crossing: str | None, at: datetime) -> str | None:
    """``features.behaviour.trip_id``: truck (or declaration), crossing and calendar day."""
    if crossing is None:
        return None
    vehicle = truck if truck is not None else "decl:" + declaration
    return f"{vehicle}|{crossing}|{at.date().isoformat()}"


def _total(values: list[float | None]) -> float:
    total = 0.0
    for value in values:
        if value is not None:
            total += value
    return total


def _per_group(groups: list[Any], values: list[Any], reduce: Any) -> list[Any]:
    """``reduce(values of the row's group)`` per row, groups by equal key (None is a group)."""
    members: dict[Any, list[Any]] = {}
    for group, value in zip(groups, values, strict=True):
        members.setdefault(group, []).append(value)
    reduced = {group: reduce(part) for group, part in members.items()}
    return [reduced[group] for group in groups]


def row_signals(rows: Rows, config: FeatureConfig) -> Rows:
    """Every row-local feature of the batch, plus ``trip_id``, ``trip_gross_kg`` and the
    three reference metrics (``features.reference.METRICS``) the price look-up needs."""
    n = len(rows["declaration_id"])
    declarations = rows["declaration_id"]
    origin, dispatch = rows["origin_country"], rows["dispatch_country"]
    procedure = rows["procedure"]
    customs, net = rows["customs_value_usd"], rows["net_mass_kg"]
    gross, quantity = rows["gross_mass_kg"], rows["quantity"]
    trips = [
        trip_id(truck, declaration, crossing, at)
        for truck, declaration, crossing, at in zip(
            rows["truck_id"], declarations, rows["crossing"], rows["declared_at"], strict=True
        )
    ]
    out: Rows = {"trip_id": trips}
    out["declaration_items"] = _per_group(declarations, [1] * n, len)
    out["declaration_value_usd"] = _per_group(declarations, customs, _total)
    out["trip_declarations"] = _per_group(trips, declarations, lambda v: len(set(v)))
    out["trip_items"] = _per_group(trips, [1] * n, len)
    out["trip_importers"] = _per_group(trips, rows["importer_id"], lambda v: len(set(v)))
    chapters = [None if h is None else h[:2] for h in rows["hs_code"]]
    out["trip_chapters"] = _per_group(trips, chapters, lambda v: len(set(v)))
    out["trip_value_usd"] = _per_group(trips, customs, _total)
    out["trip_gross_kg"] = _per_group(trips, gross, _total)
    out["invoice_value_roundness"] = [roundness(v) for v in rows["invoice_value"]]
    out["gross_net_ratio"] = [
        None if m is None or not m > 0 or g is None else g / m
        for g, m in zip(gross, net, strict=True)
    ]
    out["importer_age_days"] = [
        None if registered is None else float(_days(at.date(), registered))
        for at, registered in zip(rows["declared_at"], rows["importer_registered_on"], strict=True)
    ]
    thresholds, margin = config.value_thresholds_usd, config.just_under_margin
    item_gap = [gap_below_threshold(v, thresholds) for v in customs]
    declaration_gap = [gap_below_threshold(v, thresholds) for v in out["declaration_value_usd"]]
    out["value_gap_below_threshold"] = item_gap
    out["value_just_under_threshold"] = [just_under(g, margin) for g in item_gap]
    out["declaration_value_gap_below_threshold"] = declaration_gap
    out["declaration_value_just_under_threshold"] = [just_under(g, margin) for g in declaration_gap]
    out["origin_differs_from_dispatch"] = [
        0 if d is None else (None if o is None else int(d != o))
        for o, d in zip(origin, dispatch, strict=True)
    ]
    out["cn_origin_kz_dispatch"] = [
        int(o == "CN" and d == "KZ") for o, d in zip(origin, dispatch, strict=True)
    ]
    out["is_transit"] = [None if p is None else int(p == "transit") for p in procedure]
    out["is_eaeu_internal"] = [None if p is None else int(p == "eaeu_internal") for p in procedure]
    out["dispatch_from_eaeu_member"] = [
        int(d is not None and o is not None and d in EAEU and d != o)
        for o, d in zip(origin, dispatch, strict=True)
    ]
    out["customs_value_log"] = [None if v is None else math.log1p(v) for v in customs]
    out["duty_rate_pct"] = list(rows["duty_rate_pct"])
    out["duty_at_stake_usd"] = [
        None if v is None else v * (0.0 if rate is None else rate) / 100.0
        for v, rate in zip(customs, rows["duty_rate_pct"], strict=True)
    ]
    out["origin_country_code"] = [country_code(c) for c in origin]
    out["dispatch_country_code"] = [country_code(c) for c in dispatch]
    out["destination_country_code"] = [country_code(c) for c in rows["destination_country"]]
    out["procedure_code"] = [None if p is None else _PROCEDURE_CODES.get(p) for p in procedure]
    out["hs_chapter_code"] = [hs_chapter_code(h) for h in rows["hs_code"]]
    out["crossing_code"] = [None if c is None else stable_hash(c) for c in rows["crossing"]]
    kg, unit, per_unit = METRICS
    out[kg] = [safe_log_ratio(v, m) for v, m in zip(customs, net, strict=True)]
    out[unit] = [safe_log_ratio(v, q) for v, q in zip(customs, quantity, strict=True)]
    out[per_unit] = [safe_log_ratio(m, q) for m, q in zip(net, quantity, strict=True)]
    return out


def _days(later: date, earlier: date) -> int:
    return (later - earlier).days
