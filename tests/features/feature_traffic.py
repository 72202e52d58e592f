"""Small seeded traffic for the feature tests, drawn column by column from the schemas.

A plain module (not conftest) so that tests can import it by a name no other folder uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from risk.schemas import DeclarationItem, InspectionOutcome, TruckArrival

START = datetime(2024, 1, 1)
HS_CODES = (
    "8517130000", "8517620009", "8471300000", "6403990000", "6204430000", "8703239019",
    "3304990000", "9503007000", "8528720000", "8528591000", "0805100000", "7208510000",
)  # fmt: skip
ORIGINS = ("CN", "KZ", "TR", "DE", "RU")
CROSSINGS = ("KZRU-A", "KZRU-B")


@dataclass
class Traffic:
    declarations: pl.DataFrame
    outcomes: pl.DataFrame
    arrivals: pl.DataFrame


def make_traffic(
    n_declarations: int, *, seed: int, days: float = 60.0, entities: int = 6
) -> Traffic:
    """Declarations of 1-3 items over ``days``, an outcome for most items, truck arrivals.

    Pools of entities are small so that histories overlap; timestamps are on a minute grid so
    that declarations at the very same time (and outcomes recorded then) happen.
    """
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.integers(0, int(days * 24 * 60), n_declarations))
    items_per = rng.integers(1, 4, n_declarations)
    n = int(items_per.sum())
    decl_index = np.repeat(np.arange(n_declarations), items_per)
    item_no = np.concatenate([np.arange(1, k + 1) for k in items_per]).astype(np.int32)
    declared_at = [START + timedelta(minutes=int(m)) for m in minutes[decl_index]]

    def pool(prefix: str, size: int, nullable: float = 0.0) -> list[str | None]:
        picks = rng.integers(0, size, n_declarations)[decl_index]
        missing = rng.random(n_declarations)[decl_index] < nullable
        return [None if miss else f"{prefix}{p}" for p, miss in zip(picks, missing, strict=True)]

    hs = [HS_CODES[i] for i in rng.integers(0, len(HS_CODES), n)]
    origin = [ORIGINS[i] for i in rng.integers(0, len(ORIGINS), n)]
    dispatch = [o if rng.random() < 0.6 else "KZ" for o in origin]
    base_price = {code: 5.0 + 7.0 * i for i, code in enumerate(HS_CODES)}
    net = np.round(rng.lognormal(4.0, 1.0, n), 1)
    price = np.array([base_price[h] for h in hs]) * rng.lognormal(0.0, 0.4, n)
    value = np.round(net * price, 0)
    value[rng.random(n) < 0.1] = 999.0
    quantity = np.where(rng.random(n) < 0.15, np.nan, np.round(net / 2.0 + 1.0))
    registered = [START.date() - timedelta(days=int(d)) for d in rng.integers(-30, 400, n)]
    declarations = pl.DataFrame(
        {
            "declaration_id": [f"D{i:05d}" for i in decl_index],
            "item_no": item_no,
            "declared_at": declared_at,
            "crossing": [CROSSINGS[i] for i in rng.integers(0, 2, n_declarations)[decl_index]],
            "truck_id": pool("T", entities * 2, nullable=0.1),
            "vehicle_plate": None,
            "carrier_id": pool("C", entities, nullable=0.1),
            "importer_id": pool("I", entities * 2),
            "importer_registered_on": [None if rng.random() < 0.1 else r for r in registered],
            "declarant_id": pool("B", entities),
            "consignor_id": pool("S", entities * 2, nullable=0.2),
            "hs_code": hs,
            "goods_description": None,
            "origin_country": origin,
            "dispatch_country": [None if rng.random() < 0.05 else d for d in dispatch],
            "destination_country": "RU",
            "procedure": [("import", "transit", "eaeu_internal")[i] for i in rng.integers(0, 3, n)],
            "net_mass_kg": net,
            "gross_mass_kg": np.round(net * rng.uniform(1.0, 1.2, n), 1),
            "quantity": quantity,
            "quantity_unit": "pcs",
            "invoice_value": value,
            "currency": "USD",
            "customs_value_usd": value,
            "duty_rate_pct": rng.choice([0.0, 5.0, 10.0], n),
        },
        schema_overrides={"procedure": pl.String},
    ).with_columns(pl.col("quantity").fill_nan(None))
    declarations = DeclarationItem.validate(declarations, cast=True)

    # Outcomes: per item for most declarations, per declaration (item_no null) for some.
    whole = rng.random(n_declarations) < 0.2
    rows = []
    for i in range(n):
        d = decl_index[i]
        if whole[d] and item_no[i] != 1:
            continue
        inspected = bool(rng.random() < 0.4)
        found = inspected and rng.random() < 0.35
        lag = timedelta(minutes=int(rng.choice([0, 30, 600, 3000, 20000])))
        rows.append(
            {
                "declaration_id": f"D{d:05d}",
                "item_no": None if whole[d] else int(item_no[i]),
                "truck_id": None,
                "crossing": None,
                "lane": "red" if inspected else "green",
                "inspected": inspected,
                "selection": ("targeted" if inspected else "none"),
                "result": ("undervaluation" if found else "clean") if inspected else None,
                "extra_duty_usd": float(rng.integers(10, 500)) if found else None,
                "officer_id": None,
                "recorded_at": declared_at[i] + lag,
            }
        )
    outcomes = InspectionOutcome.validate(pl.DataFrame(rows), cast=True)

    trips = (
        declarations.filter(pl.col("truck_id").is_not_null())
        .group_by("truck_id", "crossing", pl.col("declared_at").dt.date().alias("day"))
        .agg(pl.col("declared_at").min(), pl.col("gross_mass_kg").sum())
    )
    arrivals = TruckArrival.validate(
        trips.sort("truck_id", "crossing", "day").select(
            "crossing",
            "truck_id",
            (pl.col("declared_at") + pl.duration(hours=2)).alias("arrived_at"),
            (pl.col("gross_mass_kg") * 1.05).alias("weighbridge_kg"),
        ),
        cast=True,
    )
    return Traffic(declarations, outcomes, arrivals)
