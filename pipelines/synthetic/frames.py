"""Column arrays of a period turned into the canonical frames of ``risk.schemas``."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.synthetic.config import TrafficConfig
from pipelines.synthetic.entities import Entities, importer_ids
from pipelines.synthetic.period import DESCRIPTION_VARIANTS, Period
from pipelines.synthetic.reference import (
    COUNTRIES,
    CURRENCIES,
    duty_factor,
    hs_reference,
    usd_per_unit,
)
from pipelines.synthetic.selectivity import OFFICERS_PER_CROSSING, Inspections
from pipelines.synthetic.shipment_schemes import VAGUE_DESCRIPTIONS
from risk.schemas import (
    LANES,
    PROCEDURES,
    RESULTS,
    SELECTIONS,
    TIMESTAMP,
    DeclarationItem,
    GroundTruth,
    InspectionOutcome,
    TruckArrival,
)

DESCRIPTION_SUFFIXES = (
    "",
    ", новые",
    ", в ассортименте",
    ", для розничной продажи",
    ", не бывшие в употреблении",
    ", в заводской упаковке",
    ", товарный знак отсутствует",
    ", модели в ассортименте",
)
assert len(DESCRIPTION_SUFFIXES) == DESCRIPTION_VARIANTS


def _descriptions() -> pl.Series:
    """Every wording: code x suffix, then the vague "cargo" ones."""
    ref = hs_reference()
    base = ref.frame["description_ru"].to_list()
    words = [b + s for b in base for s in DESCRIPTION_SUFFIXES]
    return pl.Series(words + list(VAGUE_DESCRIPTIONS))


def _pick(values: pl.Series | list[str] | tuple[str, ...], index: np.ndarray) -> pl.Series:
    series = values if isinstance(values, pl.Series) else pl.Series(list(values))
    return series.gather(index)


def _timestamps(us: np.ndarray) -> pl.Series:
    return pl.Series(us.astype(np.int64)).cast(TIMESTAMP)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    return prefix + pl.Series(numbers.astype(np.int64)).cast(pl.String).str.zfill(width)


def declarations_frame(
    cfg: TrafficConfig,
    ents: Entities,
    p: Period,
    weighbridge_kg: np.ndarray,
    *,
    first_declaration: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """DeclarationItem and TruckArrival frames of a period (declarations numbered on from
    ``first_declaration``; ``truck_id`` is the vehicle's stable id)."""
    ref = hs_reference()
    rates = usd_per_unit()
    crossing_ids = [c.id for c in cfg.crossings]
    posts = [c.customs_post for c in cfg.crossings]

    trip_crossing = p.t_crossing
    truck_id = _ids("TRK-", p.t_vehicle + 1, 6)
    d_crossing = trip_crossing[p.d_trip]
    declared = _timestamps(p.d_declared_us)
    declaration_id = (
        _pick(posts, d_crossing)
        + "/"
        + declared.dt.strftime("%d%m%y")
        + _ids("/", first_declaration + 1 + np.arange(len(p.d_trip)), 7)
    )
    i_decl, i_trip = p.i_decl, p.d_trip[p.i_decl]
    description = np.where(
        p.i_description >= 0,
        np.where(p.i_true_wording, p.i_hs, p.i_hs_decl) * DESCRIPTION_VARIANTS + p.i_description,
        ref.size * DESCRIPTION_VARIANTS + (-1 - p.i_description),
    )
    currency = p.d_currency[i_decl]
    invoice = np.round(p.i_value_decl / rates[currency], 2)
    customs_value = np.round(invoice * rates[currency], 2)
    duty_rate = np.round(ref.duty_rate_pct[p.i_hs_decl] * duty_factor()[p.i_origin_decl], 2)
    unit = ref.frame["unit"]
    quantity = np.where(
        ref.unit_is_kg[p.i_hs_decl], np.round(p.i_qty_decl, 1), np.round(p.i_qty_decl)
    )
    importer = p.d_importer[i_decl]
    registered = pl.Series(ents.imp_registered_day[importer].astype(np.int32)).cast(pl.Date)
    broker = p.d_broker[i_decl]
    consignor = p.d_consignor[i_decl]
    vehicle = p.t_vehicle[i_trip]
    carrier = p.t_carrier[i_trip]
    frame = pl.DataFrame(
        {
            "declaration_id": declaration_id.gather(i_decl),
            "item_no": pl.Series(p.i_item_no, dtype=pl.Int32),
            "declared_at": declared.gather(i_decl),
            "crossing": _pick(crossing_ids, d_crossing[i_decl]),
            "truck_id": truck_id.gather(i_trip),
            "vehicle_plate": ents.veh_plate.gather(vehicle),
            "carrier_id": _ids("CRR-", carrier, 5),
            "importer_id": importer_ids(importer),
            "importer_registered_on": registered,
            "registration_known": ents.imp_registration_known[importer],
            "declarant_id": _ids("BRK-", np.maximum(broker, 0), 4),
            "has_declarant": broker >= 0,
            "consignor_id": _pick(COUNTRIES, ents.cns_country[np.maximum(consignor, 0)])
            + _ids("-", np.maximum(consignor, 0), 6),
            "has_consignor": consignor >= 0,
            "hs_code": ref.hs_code.gather(p.i_hs_decl),
            "goods_description": _descriptions().gather(description),
            "origin_country": _pick(COUNTRIES, p.i_origin_decl),
            "dispatch_country": _pick(COUNTRIES, p.d_dispatch[i_decl]),
            "destination_country": _pick(COUNTRIES, p.d_destination[i_decl]),
            "procedure": pl.Series(PROCEDURES, dtype=pl.Enum(PROCEDURES)).gather(
                p.d_procedure[i_decl]
            ),
            "net_mass_kg": np.round(p.i_net_decl, 1),
            "null_net": p.i_null_net,
            "gross_mass_kg": np.round(p.i_gross_decl, 1),
            "quantity": quantity,
            "null_qty": p.i_null_qty,
            "quantity_unit": unit.gather(p.i_hs_decl),
            "invoice_value": invoice,
            "currency": _pick(CURRENCIES, currency),
            "customs_value_usd": customs_value,
            "duty_rate_pct": duty_rate,
        }
    )
    nulls = {
        "importer_registered_on": "registration_known",
        "declarant_id": "has_declarant",
        "consignor_id": "has_consignor",
    }
    frame = frame.with_columns(
        *[pl.when(pl.col(flag)).then(pl.col(col)).alias(col) for col, flag in nulls.items()],
        pl.when(~pl.col("null_net")).then(pl.col("net_mass_kg")).alias("net_mass_kg"),
        pl.when(~pl.col("null_qty")).then(pl.col("quantity")).alias("quantity"),
    ).select(DeclarationItem.column_names())
    declarations = DeclarationItem.validate(frame, cast=True)

    arrivals = TruckArrival.validate(
        pl.DataFrame(
            {
                "crossing": _pick(crossing_ids, trip_crossing),
                "truck_id": truck_id,
                "arrived_at": _timestamps(p.t_arrived_us),
                "weighbridge_kg": weighbridge_kg,
            }
        ).with_columns(pl.col("weighbridge_kg").fill_nan(None)),
        cast=True,
    )
    return declarations, arrivals


def outcomes_frame(
    cfg: TrafficConfig, p: Period, inspections: Inspections, declarations: pl.DataFrame
) -> pl.DataFrame:
    """InspectionOutcome rows, one per item, inspected or not."""
    crossing_ids = [c.id for c in cfg.crossings]
    short = [cid.split("-")[-1] for cid in crossing_ids]
    officer_crossing = np.maximum(inspections.officer, 0) // OFFICERS_PER_CROSSING
    officer = (
        "OFF-"
        + _pick(short, officer_crossing)
        + _ids("-", np.maximum(inspections.officer, 0) % OFFICERS_PER_CROSSING + 1, 2)
    )
    frame = pl.DataFrame(
        {
            "declaration_id": declarations["declaration_id"],
            "item_no": declarations["item_no"],
            "truck_id": declarations["truck_id"],
            "crossing": declarations["crossing"],
            "lane": pl.Series(LANES, dtype=pl.Enum(LANES)).gather(inspections.lane),
            "inspected": inspections.inspected,
            "selection": pl.Series(SELECTIONS, dtype=pl.Enum(SELECTIONS)).gather(
                inspections.selection
            ),
            "result": pl.Series(RESULTS, dtype=pl.Enum(RESULTS)).gather(
                np.maximum(inspections.result, 0)
            ),
            "extra_duty_usd": inspections.extra_duty_usd,
            "officer_id": officer,
            "has_officer": inspections.officer >= 0,
            "recorded_at": _timestamps(inspections.recorded_us),
        }
    ).with_columns(
        pl.when(pl.col("inspected")).then(pl.col("result")).alias("result"),
        pl.col("extra_duty_usd").fill_nan(None),
        pl.when(pl.col("has_officer")).then(pl.col("officer_id")).alias("officer_id"),
    )
    return InspectionOutcome.validate(frame.select(InspectionOutcome.column_names()), cast=True)


def ground_truth_frame(p: Period, evaded: np.ndarray, declarations: pl.DataFrame) -> pl.DataFrame:
    """GroundTruth rows: the scheme of every item and the duty it evaded."""
    frame = pl.DataFrame(
        {
            "declaration_id": declarations["declaration_id"],
            "item_no": declarations["item_no"],
            "scheme": pl.Series(RESULTS, dtype=pl.Enum(RESULTS)).gather(p.i_scheme),
            "duty_evaded_usd": np.where(p.i_scheme > 0, np.maximum(np.round(evaded, 2), 0.01), 0.0),
        }
    )
    return GroundTruth.validate(frame, cast=True)
