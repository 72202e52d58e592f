"""The frames the store takes from scoring: trucks, their declarations, and the items.

``risk publish`` maps what ``risk score`` writes onto these; ``publish_scores`` validates them
whole (a batch with one bad row is refused, naming the row and the rule), because a queue
missing a truck would send that truck to the barrier unexamined.
"""

from __future__ import annotations

import dataframely as dy

from risk.schemas import HS_CODE_PATTERN, LANES, PROCEDURES, SELECTIONS

DECIDED_BY = ("model", "rule", "random")


class PublishedTruck(dy.Schema):
    """One truck of a crossing's queue with its score and lane."""

    crossing = dy.String(primary_key=True, min_length=1)
    # The truck key of ``risk.lanes.truck_key``: the truck id, or ``decl:<id>`` without one.
    truck_id = dy.String(primary_key=True, min_length=1, max_length=96)
    vehicle_plate = dy.String(nullable=True)
    arrived_at = dy.Datetime(nullable=True, time_unit="us")
    n_items = dy.Int64(min=1)
    risk = dy.Float64(min=0.0, max=1.0)
    duty_at_risk_usd = dy.Float64(min=0.0)
    lane = dy.Enum(LANES)
    selection = dy.Enum(SELECTIONS)
    decided_by = dy.Enum(DECIDED_BY)
    reasons = dy.List(dy.String())


class PublishedDeclaration(dy.Schema):
    """One declaration on a truck, with what the officer needs to know about its parties."""

    declaration_id = dy.String(primary_key=True, min_length=1, max_length=64)
    crossing = dy.String(min_length=1)
    truck_id = dy.String(min_length=1, max_length=96)
    declared_at = dy.Datetime(time_unit="us")
    importer_id = dy.String(min_length=1)
    importer_registered_on = dy.Date(nullable=True)
    declarant_id = dy.String(nullable=True)
    procedure = dy.Enum(PROCEDURES)
    risk = dy.Float64(min=0.0, max=1.0)
    duty_at_risk_usd = dy.Float64(min=0.0)
    reasons = dy.List(dy.String())


class PublishedItem(dy.Schema):
    """One goods item as declared, with its own score."""

    declaration_id = dy.String(primary_key=True, min_length=1, max_length=64)
    item_no = dy.Int32(primary_key=True, min=1)
    hs_code = dy.String(regex=HS_CODE_PATTERN)
    goods_description = dy.String(nullable=True)
    origin_country = dy.String(min_length=2, max_length=2)
    dispatch_country = dy.String(nullable=True)
    net_mass_kg = dy.Float64(nullable=True, min=0.0)
    gross_mass_kg = dy.Float64(nullable=True, min=0.0)
    customs_value_usd = dy.Float64(min=0.0)
    duty_rate_pct = dy.Float64(nullable=True, min=0.0)
    risk = dy.Float64(min=0.0, max=1.0)
    duty_at_risk_usd = dy.Float64(min=0.0)
    reasons = dy.List(dy.String())
