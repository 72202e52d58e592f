"""Schemes that shape whole declarations or trucks: who trades, how goods move, how many papers.

Each changes what is *declared* (procedure, parties, the ``*_decl`` arrays) and leaves what the
goods really are untouched. Victims are picked by the entities' risk, so fraud clusters on track
records; each scheme takes about its configured share of the period's items.
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
from pipelines.synthetic.period import CARGO, GROUPAGE, INTERNAL, NORMAL, SPLIT, TRANSIT, Period
from pipelines.synthetic.reference import (
    COUNTRY_INDEX,
    DIVERSION_DESTINATIONS,
    EAEU,
    country_vector,
    currency_matrix,
    hs_reference,
)
from pipelines.synthetic.sampling import (
    conditional_choice,
    pick_by_budget,
    segment_max,
    segment_sum,
    weighted_choice,
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


def declaration_weights(p: Period, ents: Entities) -> np.ndarray:
    """How strongly a declaration attracts schemes: its importer's, broker's, carrier's risk."""
    broker = np.where(p.d_broker >= 0, BROKER_RISK[ents.brk_tier[np.maximum(p.d_broker, 0)]], 1.0)
    carrier = CARRIER_RISK[ents.car_tier[p.t_carrier[p.d_trip]]]
    return IMPORTER_RISK[ents.imp_tier[p.d_importer]] * broker * np.sqrt(carrier)


def free_declarations(p: Period) -> np.ndarray:
    """Declarations of ordinary trucks with no scheme yet."""
    kind = p.t_kind[p.d_trip]
    return (segment_max(p.i_scheme, p.d_n_items) == 0) & ((kind == NORMAL) | (kind == GROUPAGE))


def _first_origin(p: Period) -> np.ndarray:
    return p.i_origin[np.cumsum(p.d_n_items) - p.d_n_items]


def scale_declared(p: Period, items: np.ndarray, factor: np.ndarray, *, mass: bool) -> None:
    """Declare a share of the value (and, with ``mass``, of the weight and quantity)."""
    ref = hs_reference()
    p.i_value_decl[items] = p.i_value[items] * factor
    if mass:
        p.i_net_decl[items] = p.i_net[items] * factor
        p.i_gross_decl[items] = p.i_gross[items] * factor
        pieces = np.maximum(1.0, np.round(p.i_qty[items] * factor))
        kg = ref.unit_is_kg[p.i_hs_decl[items]]
        p.i_qty_decl[items] = np.where(kg, p.i_net_decl[items], pieces)


def _label(p: Period, decls: np.ndarray, scheme: str) -> np.ndarray:
    """Mark every item of the chosen declarations; return the item numbers."""
    items = np.flatnonzero(decls[p.i_decl])
    p.i_scheme[items] = CODE[scheme]
    return items


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


def cargo_consolidation(rng: np.random.Generator, p: Period) -> None:
    """Marketplace parcels of many small consignees under vague words: part of the weight and
    value undeclared (the weighbridge sees it all), documents and fields missing."""
    items = np.flatnonzero(p.t_kind[p.d_trip[p.i_decl]] == CARGO)
    truck_share = rng.uniform(0.55, 0.85, len(p.t_kind))[p.d_trip[p.i_decl[items]]]
    scale_declared(p, items, truck_share, mass=True)
    value_share = rng.uniform(0.3, 0.7, len(p.d_trip))[p.i_decl[items]]
    p.i_value_decl[items] = p.i_value[items] * value_share
    vague = rng.random(len(items)) < 0.7
    wording = -1 - rng.integers(0, len(VAGUE_DESCRIPTIONS), len(items))
    p.i_description[items] = np.where(vague, wording, p.i_description[items])
    p.i_null_qty[items] |= rng.random(len(items)) < 0.5
    p.i_null_net[items] |= rng.random(len(items)) < 0.3
    p.i_scheme[items] = CODE["cargo_consolidation"]


def splitting(rng: np.random.Generator, cfg: TrafficConfig, p: Period) -> None:
    """One consignment cut into declarations each just under the value threshold above which
    the old rules look harder; the cut hides an undervaluation."""
    ref = hs_reference()
    n_decls = len(p.d_trip)
    items = np.flatnonzero(p.t_kind[p.d_trip[p.i_decl]] == SPLIT)
    declared_total = cfg.splitting_threshold_usd * rng.uniform(0.85, 0.99, n_decls)
    true_total = declared_total * rng.uniform(1.4, 2.4, n_decls)
    current = segment_sum(p.i_value, p.i_decl, n_decls)
    grow = (true_total / np.maximum(current, 1e-9))[p.i_decl[items]]
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
    p.i_value_decl[items] = p.i_value[items] * (declared_total / true_total)[p.i_decl[items]]
    p.i_scheme[items] = CODE["splitting"]


def reexport(rng: np.random.Generator, ents: Entities, p: Period, budget: float) -> None:
    """Chinese goods cleared cheaply in Kazakhstan, "resold" by a Kazakh nominee to a young
    Russian nominee buyer, and moved on as internal EAEU trade at the lower value."""
    eligible = free_declarations(p) & (_first_origin(p) == COUNTRY_INDEX["CN"])
    eligible &= p.d_procedure != TRANSIT
    chosen = pick_by_budget(rng, declaration_weights(p, ents), p.d_n_items, eligible, budget)
    p.d_dispatch[chosen] = COUNTRY_INDEX["KZ"]
    p.d_procedure[chosen] = INTERNAL
    p.d_destination[chosen] = COUNTRY_INDEX["RU"]
    nominees = np.flatnonzero(ents.cns_nominee)
    picks = weighted_choice(rng, ents.cns_activity[nominees], int(chosen.sum()))
    p.d_consignor[chosen] = nominees[picks]
    p.d_currency[chosen] = conditional_choice(rng, currency_matrix(), p.d_dispatch[chosen])
    _new_firms(rng, ents, p, chosen, kind=NOMINEE, declarations_per_firm=6,
               registered_days_before=(10, 90))  # fmt: skip
    items = _label(p, chosen, "reexport")
    scale_declared(p, items, rng.uniform(0.35, 0.7, len(p.d_trip))[p.i_decl[items]], mass=False)


def one_day_firms(rng: np.random.Generator, ents: Entities, p: Period, budget: float) -> None:
    """Firms registered days before a burst of large, undervalued declarations, then gone."""
    eligible = free_declarations(p) & (p.d_procedure != TRANSIT)
    size = np.sqrt(segment_sum(p.i_value, p.i_decl, len(p.d_trip)))
    # The firm is new, so its risk is the broker's and carrier's, not the replaced importer's.
    weight = size * declaration_weights(p, ents) / IMPORTER_RISK[ents.imp_tier[p.d_importer]]
    chosen = pick_by_budget(rng, weight, p.d_n_items, eligible, budget)
    _new_firms(rng, ents, p, chosen, kind=ONE_DAY_FIRM, declarations_per_firm=4,
               registered_days_before=(2, 20))  # fmt: skip
    items = _label(p, chosen, "one_day_firm")
    scale_declared(p, items, rng.uniform(0.3, 0.7, len(p.d_trip))[p.i_decl[items]], mass=False)


def transit_diversion(rng: np.random.Generator, ents: Entities, p: Period, budget: float) -> None:
    """Dutiable goods declared as transit to a third country, and unloaded on the way."""
    eaeu_origin = np.isin(_first_origin(p), [COUNTRY_INDEX[c] for c in EAEU])
    duty = segment_max(hs_reference().duty_rate_pct[p.i_hs], p.d_n_items)
    weight = declaration_weights(p, ents) * (1 + duty / 5)
    chosen = pick_by_budget(rng, weight, p.d_n_items, free_declarations(p) & ~eaeu_origin, budget)
    p.d_procedure[chosen] = TRANSIT
    destinations = country_vector(DIVERSION_DESTINATIONS)
    p.d_destination[chosen] = weighted_choice(rng, destinations, int(chosen.sum()))
    _label(p, chosen, "transit_diversion")


def weight_misdeclaration(
    rng: np.random.Generator, ents: Entities, p: Period, budget: float
) -> None:
    """A whole truck declared lighter (and so cheaper) than the weighbridge says."""
    n_trips = len(p.t_kind)
    busy = np.bincount(p.d_trip, weights=~free_declarations(p), minlength=n_trips) > 0
    trip_items = np.bincount(p.d_trip, weights=p.d_n_items, minlength=n_trips)
    weight = np.maximum.reduceat(declaration_weights(p, ents), np.cumsum(p.t_n_decl) - p.t_n_decl)
    weight *= CARRIER_RISK[ents.car_tier[p.t_carrier]]
    chosen = pick_by_budget(rng, weight, trip_items, ~busy & (p.t_kind == NORMAL), budget)
    items = _label(p, chosen[p.d_trip], "weight_misdeclaration")
    share = rng.uniform(0.5, 0.8, n_trips)[p.d_trip[p.i_decl[items]]]
    scale_declared(p, items, share, mass=True)
