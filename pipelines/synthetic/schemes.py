"""The nine grey-import schemes of DOMAIN.md, injected into honest traffic.

Each scheme changes what is *declared* (the ``*_decl`` arrays, procedure, parties) and leaves
what the goods really are untouched, so the signs the domain describes appear in the data and
the duty evaded is the gap between customs payments on the truth and on the declaration.
Schemes pick their victims by the entities' risk, so fraud clusters on track records.
"""

from __future__ import annotations

import numpy as np

from pipelines.synthetic.config import TrafficConfig
from pipelines.synthetic.entities import (
    BROKER_RISK,
    CARRIER_RISK,
    IMPORTER_RISK,
    NOMINEE,
    ONE_DAY_FIRM,
    US_PER_DAY,
    Entities,
)
from pipelines.synthetic.reference import (
    COUNTRY_INDEX,
    DIVERSION_DESTINATIONS,
    EAEU,
    FALSE_ORIGINS,
    country_vector,
    currency_matrix,
    customs_payments,
    duty_factor,
    hs_reference,
)
from pipelines.synthetic.sampling import (
    conditional_choice,
    gumbel_keys,
    pick_by_budget,
    segment_max,
    segment_sum,
    weighted_choice,
)
from pipelines.synthetic.structure import (
    CARGO,
    GROUPAGE,
    INTERNAL,
    NORMAL,
    SPLIT,
    TRANSIT,
    Period,
)
from risk.schemas import RESULTS

CODE = {name: RESULTS.index(name) for name in RESULTS}
VAGUE_DESCRIPTIONS = (
    "Товары народного потребления",
    "Сборный груз",
    "Товары народного потребления в ассортименте",
    "Одежда и обувь в ассортименте",
    "Хозяйственные товары",
    "Образцы товаров",
)


def _items_of(p: Period, decls: np.ndarray) -> np.ndarray:
    """Item mask of a declaration mask."""
    return decls[p.i_decl]


def _declaration_weights(p: Period, ents: Entities) -> np.ndarray:
    broker = np.where(p.d_broker >= 0, BROKER_RISK[ents.brk_tier[np.maximum(p.d_broker, 0)]], 1.0)
    carrier = CARRIER_RISK[ents.car_tier[p.t_carrier[p.d_trip]]]
    return IMPORTER_RISK[ents.imp_tier[p.d_importer]] * broker * np.sqrt(carrier)


def _new_firms(
    rng: np.random.Generator,
    ents: Entities,
    p: Period,
    chosen: np.ndarray,
    *,
    kind: int,
    declarations_per_firm: float,
    registered_days_before: tuple[int, int],
) -> None:
    """Hand chosen declarations, in time order, to freshly registered firms."""
    decls = np.flatnonzero(chosen)
    if len(decls) == 0:
        return
    decls = decls[np.argsort(p.d_declared_us[decls], kind="stable")]
    new_firm = rng.random(len(decls)) < 1.0 / declarations_per_firm
    new_firm[0] = True
    firm = np.cumsum(new_firm) - 1
    first_seen = p.d_declared_us[decls][new_firm]
    lo, hi = registered_days_before
    registered = first_seen // US_PER_DAY - rng.integers(lo, hi + 1, len(first_seen))
    numbers = ents.add_importers(
        kind=kind,
        first_seen_us=first_seen,
        registered_day=registered,
        group=p.d_group[decls][new_firm],
    )
    p.d_importer[decls] = numbers[firm]


def _scale_declared(p: Period, items: np.ndarray, factor: np.ndarray, *, mass: bool) -> None:
    """Declare a share of the value (and, with ``mass``, of the weight and quantity)."""
    ref = hs_reference()
    p.i_value_decl[items] = p.i_value[items] * factor
    if mass:
        p.i_net_decl[items] = p.i_net[items] * factor
        p.i_gross_decl[items] = p.i_gross[items] * factor
        pieces = np.maximum(1.0, np.round(p.i_qty[items] * factor))
        kg = ref.unit_is_kg[p.i_hs_decl[items]]
        p.i_qty_decl[items] = np.where(kg, p.i_net_decl[items], pieces)


def apply_schemes(
    rng: np.random.Generator, cfg: TrafficConfig, ents: Entities, p: Period
) -> np.ndarray:
    """Inject every scheme into a period in place; return the duty evaded per item (USD)."""
    ref = hs_reference()
    rates = cfg.scheme_rates
    total = p.n_items
    n_decls = len(p.d_trip)
    d_kind = p.t_kind[p.d_trip]
    i_kind = d_kind[p.i_decl]

    # Cargo consolidation: marketplace parcels under vague words, part of the weight and value
    # undeclared (the weighbridge sees it all), documents missing.
    items = np.flatnonzero(i_kind == CARGO)
    trip_factor = rng.uniform(0.55, 0.85, len(p.t_kind))
    decl_factor = rng.uniform(0.3, 0.7, n_decls)
    _scale_declared(p, items, trip_factor[p.d_trip[p.i_decl[items]]], mass=True)
    p.i_value_decl[items] = p.i_value[items] * decl_factor[p.i_decl[items]]
    vague = rng.random(len(items)) < 0.7
    p.i_description[items] = np.where(
        vague, -1 - rng.integers(0, len(VAGUE_DESCRIPTIONS), len(items)), p.i_description[items]
    )
    p.i_null_qty[items] |= rng.random(len(items)) < 0.5
    p.i_null_net[items] |= rng.random(len(items)) < 0.3
    p.i_scheme[items] = CODE["cargo_consolidation"]

    # Splitting: one consignment cut into declarations each just under the threshold.
    split_decls = d_kind == SPLIT
    items = np.flatnonzero(i_kind == SPLIT)
    declared_total = cfg.splitting_threshold_usd * rng.uniform(0.85, 0.99, n_decls)
    true_total = declared_total * rng.uniform(1.4, 2.4, n_decls)
    current = segment_sum(p.i_value, p.i_decl, n_decls)
    grow = np.where(split_decls, true_total / np.maximum(current, 1e-9), 1.0)[p.i_decl[items]]
    for column in (p.i_value, p.i_net, p.i_gross):
        column[items] *= grow
    kg = ref.unit_is_kg[p.i_hs[items]]
    p.i_qty[items] = np.where(kg, p.i_net[items], np.maximum(1.0, np.round(p.i_qty[items] * grow)))
    for true, declared in (
        (p.i_net, p.i_net_decl),
        (p.i_gross, p.i_gross_decl),
        (p.i_qty, p.i_qty_decl),
    ):
        declared[items] = true[items]
    share = (declared_total / true_total)[p.i_decl[items]]
    p.i_value_decl[items] = p.i_value[items] * share
    p.i_scheme[items] = CODE["splitting"]

    weight = _declaration_weights(p, ents)
    origin = p.i_origin[np.cumsum(p.d_n_items) - p.d_n_items]
    eaeu_origin = np.isin(origin, [COUNTRY_INDEX[c] for c in EAEU])

    def free_declarations() -> np.ndarray:
        clean = segment_max(p.i_scheme, p.d_n_items) == 0
        return clean & ((d_kind == NORMAL) | (d_kind == GROUPAGE))

    # Re-export: Chinese goods cleared cheaply in Kazakhstan, "resold" by a Kazakh nominee to a
    # young Russian nominee buyer, moved on as internal EAEU trade at the lower value.
    eligible = free_declarations() & (origin == COUNTRY_INDEX["CN"]) & (p.d_procedure != TRANSIT)
    chosen = pick_by_budget(rng, weight, p.d_n_items, eligible, rates["reexport"] * total)
    kz = COUNTRY_INDEX["KZ"]
    p.d_dispatch[chosen] = kz
    p.d_procedure[chosen] = INTERNAL
    p.d_destination[chosen] = COUNTRY_INDEX["RU"]
    nominees = np.flatnonzero(ents.cns_nominee)
    p.d_consignor[chosen] = nominees[
        weighted_choice(rng, ents.cns_activity[nominees], int(chosen.sum()))
    ]
    p.d_currency[chosen] = conditional_choice(rng, currency_matrix(), p.d_dispatch[chosen])
    _new_firms(
        rng, ents, p, chosen, kind=NOMINEE, declarations_per_firm=6, registered_days_before=(10, 90)
    )
    items = np.flatnonzero(_items_of(p, chosen))
    _scale_declared(p, items, rng.uniform(0.35, 0.7, n_decls)[p.i_decl[items]], mass=False)
    p.i_scheme[items] = CODE["reexport"]

    # One-day firms: registered days before a burst of large declarations, then gone.
    eligible = free_declarations() & (p.d_procedure != TRANSIT)
    size = np.sqrt(segment_sum(p.i_value, p.i_decl, n_decls))
    chosen = pick_by_budget(rng, size * weight / IMPORTER_RISK[ents.imp_tier[p.d_importer]],
                            p.d_n_items, eligible, rates["one_day_firm"] * total)  # fmt: skip
    _new_firms(
        rng,
        ents,
        p,
        chosen,
        kind=ONE_DAY_FIRM,
        declarations_per_firm=4,
        registered_days_before=(2, 20),
    )
    items = np.flatnonzero(_items_of(p, chosen))
    _scale_declared(p, items, rng.uniform(0.3, 0.7, n_decls)[p.i_decl[items]], mass=False)
    p.i_scheme[items] = CODE["one_day_firm"]

    # Transit diversion: declared as transit to a third country, unloaded on the way.
    eligible = free_declarations() & ~eaeu_origin
    rate = segment_max(ref.duty_rate_pct[p.i_hs], p.d_n_items)
    chosen = pick_by_budget(
        rng, weight * (1 + rate / 5), p.d_n_items, eligible, rates["transit_diversion"] * total
    )
    p.d_procedure[chosen] = TRANSIT
    p.d_destination[chosen] = weighted_choice(
        rng, country_vector(DIVERSION_DESTINATIONS), int(chosen.sum())
    )
    p.i_scheme[_items_of(p, chosen)] = CODE["transit_diversion"]

    # Weight misdeclaration: a whole truck declared lighter (and cheaper) than it weighs.
    trip_clean = np.bincount(p.d_trip, weights=~free_declarations(), minlength=len(p.t_kind)) == 0
    trip_items = np.bincount(p.d_trip, weights=p.d_n_items, minlength=len(p.t_kind))
    trip_weight = np.maximum.reduceat(weight, np.cumsum(p.t_n_decl) - p.t_n_decl)
    trip_weight *= CARRIER_RISK[ents.car_tier[p.t_carrier]]
    chosen_trips = pick_by_budget(rng, trip_weight, trip_items, trip_clean & (p.t_kind == NORMAL),
                                  rates["weight_misdeclaration"] * total)  # fmt: skip
    items = np.flatnonzero(chosen_trips[p.d_trip[p.i_decl]])
    _scale_declared(
        p, items, rng.uniform(0.5, 0.8, len(p.t_kind))[p.d_trip[p.i_decl[items]]], mass=True
    )
    p.i_scheme[items] = CODE["weight_misdeclaration"]

    # Item-level schemes on what is left.
    free_items = free_declarations()[p.i_decl] & (p.d_procedure[p.i_decl] != TRANSIT)
    item_weight = weight[p.i_decl]
    factor = duty_factor()

    # Misclassification: declared under a lower-duty cover code at the cover's price
    # (a TV as a monitor; drones, chips and CNC tools as toys, connectors or machine parts).
    cover = np.maximum(ref.cover[p.i_hs], 0)
    price_ratio = ref.usd_per_kg[cover] / ref.usd_per_kg[p.i_hs] * rng.lognormal(0, 0.2, total)
    cover_value = p.i_value * np.minimum(1.0, price_ratio)
    gain = customs_payments(
        p.i_value, ref.duty_rate_pct[p.i_hs] * factor[p.i_origin]
    ) - customs_payments(cover_value, ref.duty_rate_pct[cover] * factor[p.i_origin])
    eligible = free_items & (ref.cover[p.i_hs] >= 0) & (gain > 0.01 * p.i_value)
    items = _top_k(
        rng,
        item_weight * np.where(ref.sensitive[p.i_hs], 3.0, 1.0),
        eligible,
        rates["misclassification"] * total,
    )
    p.i_hs_decl[items] = cover[items]
    # Some keep the true goods' wording under the cover code: the text betrays the code.
    p.i_true_wording[items] = rng.random(len(items)) < 0.3
    p.i_value_decl[items] = cover_value[items]
    p.i_qty_decl[items] = np.where(
        ref.unit_is_kg[cover[items]], p.i_net_decl[items], p.i_qty_decl[items]
    )
    p.i_scheme[items] = CODE["misclassification"]

    # False origin: a duty-free or preferential origin claimed for dutiable goods.
    full_duty = (factor[p.i_origin] == 1.0) & (ref.duty_rate_pct[p.i_hs] > 0)
    eligible = free_items & (p.i_scheme == 0) & full_duty
    items = _top_k(rng, item_weight, eligible, rates["false_origin"] * total)
    p.i_origin_decl[items] = weighted_choice(rng, country_vector(FALSE_ORIGINS), len(items))
    p.i_scheme[items] = CODE["false_origin"]

    # Undervaluation: value per kg far below the reference for the code and origin.
    eligible = free_items & (p.i_scheme == 0)
    items = _top_k(rng, item_weight, eligible, rates["undervaluation"] * total)
    p.i_value_decl[items] = p.i_value[items] * rng.uniform(0.15, 0.6, len(items))
    p.i_scheme[items] = CODE["undervaluation"]

    # Honest slips: a gross mass typed below the net one.
    slips = (p.i_scheme == 0) & (rng.random(total) < 0.003)
    p.i_gross_decl[slips] = p.i_net_decl[slips] * rng.uniform(0.9, 0.99, int(slips.sum()))

    return _evaded(p)


def _top_k(
    rng: np.random.Generator, weights: np.ndarray, eligible: np.ndarray, k: float
) -> np.ndarray:
    candidates = np.flatnonzero(eligible & (weights > 0))
    count = min(len(candidates), int(round(k)))
    keys = gumbel_keys(rng, weights[candidates])
    return np.sort(candidates[np.argsort(-keys, kind="stable")[:count]])


def _evaded(p: Period) -> np.ndarray:
    """Customs payments (duty + import VAT) due on the truth minus those on the declaration.

    Transit pays nothing at the border, so diverted transit evades everything that was due.
    """
    ref = hs_reference()
    factor = duty_factor()
    due = customs_payments(p.i_value, ref.duty_rate_pct[p.i_hs] * factor[p.i_origin])
    declared = customs_payments(
        p.i_value_decl, ref.duty_rate_pct[p.i_hs_decl] * factor[p.i_origin_decl]
    )
    declared = np.where(p.d_procedure[p.i_decl] == TRANSIT, 0.0, declared)
    return np.where(p.i_scheme > 0, np.maximum(due - declared, 0.01), 0.0)
