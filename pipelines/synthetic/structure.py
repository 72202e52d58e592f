"""Honest traffic: trucks carrying declarations of goods items, before any scheme is injected.

Who declares (importer, broker, seller), what (HS code by the importer's trade), from where
(origin, dispatch, procedure) and how much (the truck's load shared among its items, priced at
the HS reference for the origin with noise).
"""

from __future__ import annotations

import numpy as np

from pipelines.synthetic.config import TrafficConfig
from pipelines.synthetic.entities import (
    BROKER_RISK,
    IMPORTER_RISK,
    REGULAR,
    SELLER,
    US_PER_DAY,
    Entities,
)
from pipelines.synthetic.period import (
    CARGO,
    DESCRIPTION_VARIANTS,
    IMPORT,
    INTERNAL,
    LEAD_HOURS,
    SPLIT,
    TRANSIT,
    US_PER_HOUR,
    Period,
    queue_schedule,
    trip_skeleton,
    vehicle_schedule,
)
from pipelines.synthetic.reference import (
    CARGO_GROUPS,
    COUNTRY_INDEX,
    DISPATCH_BY_ORIGIN,
    EAEU,
    GROUPS,
    TRANSIT_DESTINATIONS,
    country_matrix,
    country_vector,
    currency_matrix,
    hs_reference,
    origin_matrix,
    price_factor,
)
from pipelines.synthetic.sampling import (
    GroupedChooser,
    conditional_choice,
    position_in_segment,
    segment_ids,
    segment_sum,
    weighted_choice,
)


def _importers(
    rng: np.random.Generator,
    ents: Entities,
    pool: np.ndarray,
    weights: np.ndarray,
    at_us: np.ndarray,
) -> np.ndarray:
    """Importers of a pool, by weight, active at each declaration's time."""
    chosen = pool[weighted_choice(rng, weights, len(at_us))]
    for _ in range(4):  # redraw the few picked before they existed
        early = np.flatnonzero(ents.imp_active_from_us[chosen] > at_us)
        if len(early) == 0:
            break
        chosen[early] = pool[weighted_choice(rng, weights, len(early))]
    early = np.flatnonzero(ents.imp_active_from_us[chosen] > at_us)
    if len(early):
        established = ents.imp_active_from_us[pool] <= at_us[early].min()
        chosen[early] = pool[established][weighted_choice(rng, weights[established], len(early))]
    return chosen


def build_period(
    rng: np.random.Generator,
    cfg: TrafficConfig,
    ents: Entities,
    *,
    start_us: int,
    end_us: int,
    items: int | None = None,
    trucks: int | None = None,
) -> Period:
    """Honest traffic of one period: ``items`` items (history) or ``trucks`` trucks (queue)."""
    ref = hs_reference()
    kinds, n_decl, per_decl = trip_skeleton(rng, cfg, items=items, trucks=trucks)
    n_trips, n_decls, n_items = len(kinds), len(per_decl), int(per_decl.sum())

    # Trips: a crossing, a vehicle (each truck once in today's queue), its carrier.
    if trucks is not None:
        vehicle, arrived = queue_schedule(
            rng, ents.veh_activity, ents.veh_last_visit_us, n_trips, start_us, end_us
        )
    else:
        vehicle, arrived = vehicle_schedule(rng, ents.veh_activity, n_trips, start_us, end_us)
    ents.veh_last_visit_us[vehicle] = np.maximum(ents.veh_last_visit_us[vehicle], arrived)
    # Trucks keep to their home crossing, mostly.
    shares = np.array([c.share for c in cfg.crossings])
    crossing = np.where(
        rng.random(n_trips) < 0.85,
        ents.veh_home[vehicle] % len(shares),
        weighted_choice(rng, shares, n_trips),
    )

    # Declarations: lodged hours before the truck reaches the crossing.
    d_trip = segment_ids(n_decl)
    d_kind = kinds[d_trip]
    d_pos = position_in_segment(n_decl)
    per_trip = np.repeat(np.cumsum(n_decl) - n_decl, n_decl)  # first declaration of the trip
    # A truck's papers are lodged together before it reaches the crossing; a split shipment's
    # declarations one after another, seconds apart, on the same day.
    lodged = arrived - rng.integers(
        LEAD_HOURS[0] * US_PER_HOUR, LEAD_HOURS[1] * US_PER_HOUR, n_trips
    )
    declared = (
        lodged[d_trip]
        + np.where(d_kind == SPLIT, d_pos * rng.integers(5, 40, n_decls), 0) * 1_000_000
    )
    end_of_day = (lodged // US_PER_DAY + 1) * US_PER_DAY - 1
    declared = np.minimum(declared, np.minimum(end_of_day, arrived - 1)[d_trip])

    cargo, split = d_kind == CARGO, d_kind == SPLIT
    regular = np.flatnonzero(ents.imp_kind == REGULAR)
    sellers = np.flatnonzero(ents.imp_kind == SELLER)
    importer = _importers(rng, ents, regular, ents.imp_activity[regular], declared)
    risky_weight = ents.imp_activity[regular] * IMPORTER_RISK[ents.imp_tier[regular]]
    splitter = _importers(rng, ents, regular, risky_weight, declared)
    importer = np.where(split, splitter[per_trip], importer)
    seller_weight = ents.imp_activity[sellers] * IMPORTER_RISK[ents.imp_tier[sellers]]
    importer = np.where(cargo, _importers(rng, ents, sellers, seller_weight, declared), importer)

    group_weight = np.bincount(ref.group, weights=ref.weight, minlength=len(GROUPS))
    group = np.where(
        rng.random(n_decls) < 0.8,
        ents.imp_group[importer],
        weighted_choice(rng, group_weight, n_decls),
    )
    cargo_groups = np.array([GROUPS.index(g) for g in CARGO_GROUPS])
    group = np.where(cargo, cargo_groups[rng.integers(0, len(cargo_groups), n_decls)], group)
    group = np.where(split, group[per_trip], group)

    origin = conditional_choice(rng, origin_matrix(), group)
    origin = np.where(cargo & (rng.random(n_decls) < 0.85), COUNTRY_INDEX["CN"], origin)
    origin = np.where(split, origin[per_trip], origin)
    dispatch = conditional_choice(rng, country_matrix(DISPATCH_BY_ORIGIN, None), origin)
    cargo_dispatch = np.where(rng.random(n_decls) < 0.7, COUNTRY_INDEX["KZ"], COUNTRY_INDEX["CN"])
    dispatch = np.where(cargo, cargo_dispatch[per_trip], dispatch)
    dispatch = np.where(split, dispatch[per_trip], dispatch)

    eaeu_origin = np.isin(origin, [COUNTRY_INDEX[c] for c in EAEU])
    via_kz = dispatch == COUNTRY_INDEX["KZ"]
    u = rng.random(n_decls)
    procedure = np.where(
        eaeu_origin,
        INTERNAL,
        np.where(
            via_kz,
            np.where(u < 0.55, INTERNAL, np.where(u < 0.9, IMPORT, TRANSIT)),
            np.where(u < 0.82, IMPORT, TRANSIT),
        ),
    )
    procedure = np.where(cargo | split, np.where(via_kz & (u < 0.4), INTERNAL, IMPORT), procedure)
    transit_to = weighted_choice(rng, country_vector(TRANSIT_DESTINATIONS), n_decls)
    destination = np.where(procedure == TRANSIT, transit_to, COUNTRY_INDEX["RU"])

    sellers_by_country = GroupedChooser(
        ents.cns_country, ents.cns_activity * ~ents.cns_nominee, len(ents.cns_activity)
    )
    consignor = sellers_by_country.choose(rng, dispatch)
    consignor = np.where(cargo | split, consignor[per_trip], consignor)
    consignor = np.where(rng.random(n_decls) < np.where(cargo, 0.4, 0.01), -1, consignor)
    broker = weighted_choice(rng, ents.brk_activity, n_decls)
    risky_broker = weighted_choice(
        rng, ents.brk_activity * BROKER_RISK[ents.brk_tier] ** 2, n_decls
    )
    broker = np.where(cargo | split, risky_broker[per_trip], broker)
    broker = np.where(~(cargo | split) & (rng.random(n_decls) < 0.04), -1, broker)
    currency = conditional_choice(rng, currency_matrix(), dispatch)

    # Items: goods of the declaration's group (mostly), sharing the truck's load.
    i_decl = segment_ids(per_decl)
    i_trip = d_trip[i_decl]
    by_group = GroupedChooser(ref.group, ref.weight, len(GROUPS))
    hs = np.where(
        (rng.random(n_items) < 0.85) | cargo[i_decl],
        by_group.choose(rng, group[i_decl]),
        weighted_choice(rng, ref.weight, n_items),
    )
    # A split shipment is one consignment: the same goods in every declaration.
    first_item = (np.cumsum(per_decl) - per_decl)[per_trip[i_decl]]
    hs = np.where(split[i_decl], hs[first_item], hs)

    load = np.where(
        kinds == CARGO,
        rng.uniform(5000, 16000, n_trips),
        np.clip(rng.lognormal(np.log(9000), 0.45, n_trips), 400, 21000),
    )
    share = rng.gamma(1.2, size=n_items)
    share = share / segment_sum(share, i_trip, n_trips)[i_trip]
    target = load[i_trip] * share / 1.08
    unit = ref.kg_per_unit[hs]
    qty = np.where(ref.unit_is_kg[hs], target, np.maximum(1.0, np.round(target / unit)))
    net = np.where(ref.unit_is_kg[hs], target, qty * unit * rng.lognormal(0, 0.12, n_items))
    qty = np.where(ref.unit_is_kg[hs], net, qty)
    i_origin = origin[i_decl]
    value = net * ref.usd_per_kg[hs] * price_factor()[i_origin] * rng.lognormal(0, 0.3, n_items)
    gross = net * rng.uniform(1.03, 1.12, n_items)

    return Period(
        t_kind=kinds,
        t_crossing=crossing,
        t_vehicle=vehicle,
        t_carrier=ents.veh_carrier[vehicle],
        t_arrived_us=arrived,
        t_n_decl=n_decl,
        d_trip=d_trip,
        d_n_items=per_decl,
        d_importer=importer,
        d_broker=broker,
        d_consignor=consignor,
        d_group=group,
        d_dispatch=dispatch,
        d_destination=destination,
        d_procedure=procedure,
        d_currency=currency,
        d_declared_us=declared,
        i_decl=i_decl,
        i_item_no=position_in_segment(per_decl) + 1,
        i_hs=hs,
        i_hs_decl=hs.copy(),
        i_origin=i_origin,
        i_origin_decl=i_origin.copy(),
        i_net=net,
        i_gross=gross,
        i_qty=qty,
        i_value=value,
        i_net_decl=net.copy(),
        i_gross_decl=gross.copy(),
        i_qty_decl=qty.copy(),
        i_value_decl=value.copy(),
        i_scheme=np.zeros(n_items, dtype=np.int64),
        i_description=rng.integers(0, DESCRIPTION_VARIANTS, n_items),
        i_true_wording=np.zeros(n_items, dtype=bool),
        i_null_net=rng.random(n_items) < 0.01,
        i_null_qty=rng.random(n_items) < 0.02,
    )


def weighbridge_readings(rng: np.random.Generator, cfg: TrafficConfig, p: Period) -> np.ndarray:
    """Cargo weight on the weighbridge (tare deducted): the truth, give or take the scale.

    NaN where the crossing has no weighbridge or the scale was down.
    """
    true_load = np.bincount(p.d_trip[p.i_decl], weights=p.i_gross, minlength=len(p.t_kind))
    error = rng.normal(0, 0.012, len(true_load))
    # A few honest trucks weigh oddly (wet load, mis-set tare): not every gap is fraud.
    error = np.where(
        rng.random(len(true_load)) < 0.01, rng.uniform(-0.08, 0.08, len(true_load)), error
    )
    reading = np.round(true_load * (1 + error), -1)
    weighed = np.array([c.has_weighbridge for c in cfg.crossings])[p.t_crossing]
    return np.where(weighed & (rng.random(len(true_load)) > 0.03), reading, np.nan)
