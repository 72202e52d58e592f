"""The nine grey-import schemes of DOMAIN.md, injected into honest traffic, and the duty evaded.

Shipment-level schemes (``shipment_schemes``) run first; the item-level ones here take the
items left clean. Duty evaded is the gap between customs payments (duty + import VAT) on what
the goods are and on what was declared.
"""

from __future__ import annotations

import numpy as np

from pipelines.synthetic import shipment_schemes as shipments
from pipelines.synthetic.config import TrafficConfig
from pipelines.synthetic.entities import Entities
from pipelines.synthetic.period import TRANSIT, Period
from pipelines.synthetic.reference import (
    FALSE_ORIGINS,
    country_vector,
    customs_payments,
    duty_factor,
    hs_reference,
)
from pipelines.synthetic.sampling import gumbel_keys, weighted_choice
from pipelines.synthetic.shipment_schemes import CODE


def apply_schemes(
    rng: np.random.Generator, cfg: TrafficConfig, ents: Entities, p: Period
) -> np.ndarray:
    """Inject every scheme into a period in place; return the duty evaded per item (USD)."""
    budget = {name: rate * p.n_items for name, rate in cfg.scheme_rates.items()}
    shipments.cargo_consolidation(rng, p)
    shipments.splitting(rng, cfg, p)
    shipments.reexport(rng, ents, p, budget["reexport"])
    shipments.one_day_firms(rng, ents, p, budget["one_day_firm"])
    shipments.transit_diversion(rng, ents, p, budget["transit_diversion"])
    shipments.weight_misdeclaration(rng, ents, p, budget["weight_misdeclaration"])

    free = shipments.free_declarations(p)[p.i_decl] & (p.d_procedure[p.i_decl] != TRANSIT)
    weight = shipments.declaration_weights(p, ents)[p.i_decl]
    misclassification(rng, p, free, weight, budget["misclassification"])
    false_origin(rng, p, free & (p.i_scheme == 0), weight, budget["false_origin"])
    undervaluation(rng, p, free & (p.i_scheme == 0), weight, budget["undervaluation"])

    # Honest slips: a gross mass typed below the net one.
    slips = (p.i_scheme == 0) & (rng.random(p.n_items) < 0.003)
    p.i_gross_decl[slips] = p.i_net_decl[slips] * rng.uniform(0.9, 0.99, int(slips.sum()))
    return duty_evaded(p)


def _top_k(
    rng: np.random.Generator, weights: np.ndarray, eligible: np.ndarray, k: float
) -> np.ndarray:
    """``k`` eligible items drawn without replacement, proportional to weight."""
    candidates = np.flatnonzero(eligible & (weights > 0))
    count = min(len(candidates), int(round(k)))
    keys = gumbel_keys(rng, weights[candidates])
    return np.sort(candidates[np.argsort(-keys, kind="stable")[:count]])


def misclassification(
    rng: np.random.Generator, p: Period, eligible: np.ndarray, weight: np.ndarray, k: float
) -> None:
    """Goods declared under a lower-duty cover code at the cover's price: a TV as a monitor;
    drones, chips and CNC tools (dual use) as toys, connectors or machine parts."""
    ref = hs_reference()
    factor = duty_factor()[p.i_origin]
    cover = np.maximum(ref.cover[p.i_hs], 0)
    price_ratio = ref.usd_per_kg[cover] / ref.usd_per_kg[p.i_hs] * rng.lognormal(0, 0.2, p.n_items)
    cover_value = p.i_value * np.minimum(1.0, price_ratio)
    gain = customs_payments(p.i_value, ref.duty_rate_pct[p.i_hs] * factor) - customs_payments(
        cover_value, ref.duty_rate_pct[cover] * factor
    )
    eligible = eligible & (ref.cover[p.i_hs] >= 0) & (gain > 0.01 * p.i_value)
    items = _top_k(rng, weight * np.where(ref.sensitive[p.i_hs], 3.0, 1.0), eligible, k)
    p.i_hs_decl[items] = cover[items]
    # Some keep the true goods' wording under the cover code: the text betrays the code.
    p.i_true_wording[items] = rng.random(len(items)) < 0.3
    p.i_value_decl[items] = cover_value[items]
    kg = ref.unit_is_kg[cover[items]]
    p.i_qty_decl[items] = np.where(kg, p.i_net_decl[items], p.i_qty_decl[items])
    p.i_scheme[items] = CODE["misclassification"]


def false_origin(
    rng: np.random.Generator, p: Period, eligible: np.ndarray, weight: np.ndarray, k: float
) -> None:
    """A duty-free (EAEU, CIS free trade) or preferential origin claimed for dutiable goods."""
    ref = hs_reference()
    full_duty = (duty_factor()[p.i_origin] == 1.0) & (ref.duty_rate_pct[p.i_hs] > 0)
    items = _top_k(rng, weight, eligible & full_duty, k)
    p.i_origin_decl[items] = weighted_choice(rng, country_vector(FALSE_ORIGINS), len(items))
    p.i_scheme[items] = CODE["false_origin"]


def undervaluation(
    rng: np.random.Generator, p: Period, eligible: np.ndarray, weight: np.ndarray, k: float
) -> None:
    """Value per kg far below what the code and origin usually cost."""
    items = _top_k(rng, weight, eligible, k)
    p.i_value_decl[items] = p.i_value[items] * rng.uniform(0.15, 0.6, len(items))
    p.i_scheme[items] = CODE["undervaluation"]


def duty_evaded(p: Period) -> np.ndarray:
    """Customs payments due on the truth minus those on the declaration, for scheme items.

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
