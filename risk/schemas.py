"""Canonical frames that cross the project's boundaries.

Every frame read from outside or handed between packages has one of these schemas. Hard rules
(the ``dy.rule``s and column constraints here) send a row to quarantine at ingest; soft rules
(``risk.soft_rules``) keep the row and mark it, because an odd declaration is exactly what the
model must see. Field-by-field documentation: ``docs/schema.md``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import dataframely as dy
import polars as pl

# Customs procedures a consignment can move under at an EAEU road crossing.
PROCEDURES = ("import", "transit", "eaeu_internal")
# Lanes of the selectivity system: red = physical inspection, yellow = document check,
# green = release, blue = post-clearance audit.
LANES = ("green", "yellow", "red", "blue")
# How an inspected item was picked: by the model/score, by the mandatory random share, or by
# a hard rule (watch list, priority control). "none" for items that were not inspected.
SELECTIONS = ("targeted", "random", "rule", "none")
# Inspection results: clean, or the grey-import scheme found (DOMAIN.md's nine schemes + other).
VIOLATION_TYPES = (
    "undervaluation",
    "reexport",
    "cargo_consolidation",
    "transit_diversion",
    "misclassification",
    "false_origin",
    "one_day_firm",
    "weight_misdeclaration",
    "splitting",
    "other",
)
RESULTS = ("clean", *VIOLATION_TYPES)

HS_CODE_PATTERN = r"^[0-9]{4,10}$"
TIMESTAMP = pl.Datetime("us")  # naive, UTC by convention throughout the project


@cache
def iso_countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes plus the user-assigned ones customs uses for 'unknown'."""
    text = files("risk.reference").joinpath("countries.txt").read_text(encoding="utf-8")
    codes = {line.strip() for line in text.splitlines() if line and not line.startswith("#")}
    user_assigned = (
        {"AA", "ZZ"}
        | {f"Q{c}" for c in "MNOPQRSTUVWXYZ"}
        | {f"X{c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    )
    return frozenset(codes | user_assigned)


def _is_country(column: str, *, nullable: bool) -> pl.Expr:
    valid = pl.col(column).is_in(sorted(iso_countries()))
    return valid | pl.col(column).is_null() if nullable else valid


class DeclarationItem(dy.Schema):
    """One goods item of a consignment declaration, as customs sees it before the barrier."""

    declaration_id = dy.String(primary_key=True, min_length=1)
    item_no = dy.Int32(primary_key=True, min=1)
    declared_at = dy.Datetime(nullable=False, time_unit="us")
    crossing = dy.String(nullable=False, min_length=1)
    truck_id = dy.String(nullable=True)
    vehicle_plate = dy.String(nullable=True)
    carrier_id = dy.String(nullable=True)
    importer_id = dy.String(nullable=False, min_length=1)
    importer_registered_on = dy.Date(nullable=True)
    declarant_id = dy.String(nullable=True)
    consignor_id = dy.String(nullable=True)
    hs_code = dy.String(nullable=False, regex=HS_CODE_PATTERN)
    goods_description = dy.String(nullable=True)
    origin_country = dy.String(nullable=False)
    dispatch_country = dy.String(nullable=True)
    destination_country = dy.String(nullable=True)
    procedure = dy.Enum(PROCEDURES, nullable=False)
    net_mass_kg = dy.Float64(nullable=True, min=0.0)
    gross_mass_kg = dy.Float64(nullable=True, min=0.0)
    quantity = dy.Float64(nullable=True, min=0.0)
    quantity_unit = dy.String(nullable=True)
    invoice_value = dy.Float64(nullable=False, min=0.0)
    currency = dy.String(nullable=False, regex=r"^[A-Z]{3}$")
    customs_value_usd = dy.Float64(nullable=False, min=0.0)
    duty_rate_pct = dy.Float64(nullable=True, min=0.0)

    @dy.rule()
    def origin_country_is_iso(cls) -> pl.Expr:
        return _is_country("origin_country", nullable=False)

    @dy.rule()
    def dispatch_country_is_iso(cls) -> pl.Expr:
        return _is_country("dispatch_country", nullable=True)

    @dy.rule()
    def destination_country_is_iso(cls) -> pl.Expr:
        return _is_country("destination_country", nullable=True)


class TruckArrival(dy.Schema):
    """A truck joining the queue of a crossing, with the weighbridge reading if there is one."""

    crossing = dy.String(nullable=False, min_length=1)
    truck_id = dy.String(nullable=False, min_length=1)
    arrived_at = dy.Datetime(nullable=False, time_unit="us")
    weighbridge_kg = dy.Float64(nullable=True, min=0.0)


class InspectionOutcome(dy.Schema):
    """What customs decided and found for one item; the labels of the next model.

    ``item_no`` null means the result applies to the whole declaration.
    """

    declaration_id = dy.String(nullable=False, min_length=1)
    item_no = dy.Int32(nullable=True, min=1)
    truck_id = dy.String(nullable=True)
    crossing = dy.String(nullable=True)
    lane = dy.Enum(LANES, nullable=False)
    inspected = dy.Bool(nullable=False)
    selection = dy.Enum(SELECTIONS, nullable=False)
    result = dy.Enum(RESULTS, nullable=True)
    extra_duty_usd = dy.Float64(nullable=True, min=0.0)
    officer_id = dy.String(nullable=True)
    recorded_at = dy.Datetime(nullable=False, time_unit="us")

    @dy.rule()
    def result_only_when_inspected(cls) -> pl.Expr:
        return pl.col("inspected") == pl.col("result").is_not_null()

    @dy.rule()
    def not_inspected_means_no_selection(cls) -> pl.Expr:
        return pl.col("inspected") | (pl.col("selection") == "none")


class GroundTruth(dy.Schema):
    """What really happened, known only for synthetic traffic; never shown to the model."""

    declaration_id = dy.String(nullable=False, min_length=1)
    item_no = dy.Int32(nullable=False, min=1)
    scheme = dy.Enum(RESULTS, nullable=False)
    duty_evaded_usd = dy.Float64(nullable=False, min=0.0)


def empty(schema: type[dy.Schema]) -> pl.DataFrame:
    """An empty frame of a schema, for code paths that start with no history."""
    return schema.create_empty()
