"""The inspection history: what the old selectivity system picked and what officers found.

Old hard rules (watched HS chapters and origins, big declarations, new importers) and an old
importer-profile score pick most inspections; a mandatory random share picks the rest. Only
inspected items get a result, officers miss some schemes, and fraud the old rules do not look
at stays unlabelled: the selection bias a new model has to live with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.synthetic.config import TrafficConfig
from pipelines.synthetic.entities import BROKER_RISK, US_PER_DAY, Entities
from pipelines.synthetic.period import TRANSIT, US_PER_HOUR, Period
from pipelines.synthetic.reference import COUNTRY_INDEX, hs_reference
from pipelines.synthetic.sampling import segment_max, segment_sum
from risk.schemas import LANES, RESULTS, SELECTIONS

GREEN, YELLOW, RED = (LANES.index(lane) for lane in ("green", "yellow", "red"))
TARGETED, RANDOM, RULE, NONE = (SELECTIONS.index(s) for s in ("targeted", "random", "rule", "none"))
OFFICERS_PER_CROSSING = 24


@dataclass(frozen=True)
class Inspections:
    """Per-item outcome arrays of one period (declaration-level decisions broadcast)."""

    lane: np.ndarray
    inspected: np.ndarray
    selection: np.ndarray
    result: np.ndarray  # index into RESULTS, -1 when not inspected
    extra_duty_usd: np.ndarray  # NaN when not inspected
    officer: np.ndarray  # -1 when nobody inspected
    recorded_us: np.ndarray


def _top_share(
    rng: np.random.Generator, score: np.ndarray, eligible: np.ndarray, count: int
) -> np.ndarray:
    """Mask of the ``count`` highest-scoring eligible declarations."""
    picked = np.zeros(len(score), dtype=bool)
    candidates = np.flatnonzero(eligible)
    order = candidates[np.argsort(-score[candidates], kind="stable")]
    picked[order[: max(0, count)]] = True
    return picked


def inspect(
    rng: np.random.Generator,
    cfg: TrafficConfig,
    ents: Entities,
    p: Period,
    evaded: np.ndarray,
    weighbridge_kg: np.ndarray,
) -> Inspections:
    """Select declarations the old way, inspect them, and record what was found."""
    ref = hs_reference()
    n_decls = len(p.d_trip)
    chapter = ref.hs_code.str.slice(0, 2).to_numpy()[p.i_hs_decl]
    watched_chapter = np.isin(chapter, list(cfg.rule_hs_chapters))
    watched_origin = np.isin(
        p.i_origin_decl, [COUNTRY_INDEX[c] for c in cfg.rule_origins if c in COUNTRY_INDEX]
    )
    # The classic price trigger: declared value per kg under half the code's reference price.
    cheap = p.i_value_decl < 0.5 * ref.usd_per_kg[p.i_hs_decl] * p.i_net_decl
    item_score = (
        1.2 * watched_chapter
        + 0.6 * watched_origin
        + 1.0 * ref.sensitive[p.i_hs_decl]
        + 0.8 * cheap
    )
    declared_load = np.bincount(p.d_trip[p.i_decl], weights=p.i_gross_decl, minlength=len(p.t_kind))
    with np.errstate(invalid="ignore", divide="ignore"):
        off_scale = np.abs(weighbridge_kg / declared_load - 1) > 0.1  # NaN (no scale) is False
    value = segment_sum(p.i_value_decl, p.i_decl, n_decls)
    age_days = p.d_declared_us // US_PER_DAY - ents.imp_registered_day[p.d_importer]
    known = ents.imp_registration_known[p.d_importer]
    origin = p.i_origin_decl[np.cumsum(p.d_n_items) - p.d_n_items]
    rule_score = (
        segment_max(item_score, p.d_n_items)
        + 1.0 * (value >= cfg.splitting_threshold_usd)
        + 0.5 * (known & (age_days < 180))
        + 0.4 * ((p.d_dispatch == COUNTRY_INDEX["KZ"]) & (origin != COUNTRY_INDEX["KZ"]))
        + 0.5 * (p.d_procedure == TRANSIT)
        + 1.0 * off_scale[p.d_trip]
        + cfg.rule_noise * rng.normal(0, 1, n_decls)
    )
    broker = np.where(p.d_broker >= 0, BROKER_RISK[ents.brk_tier[np.maximum(p.d_broker, 0)]], 1.0)
    profile_score = (
        1.5 * (ents.imp_tier[p.d_importer] == 2)
        + 0.7 * (ents.imp_tier[p.d_importer] == 1)
        + 0.3 * (broker > 1)
        + rng.normal(0, 1.2, n_decls)
    )

    random_pick = rng.random(n_decls) < cfg.random_inspection_share
    rule_pick = _top_share(
        rng, rule_score, ~random_pick, round(cfg.rule_inspection_share * n_decls)
    )
    profile_pick = _top_share(
        rng,
        profile_score,
        ~random_pick & ~rule_pick,
        round(cfg.targeted_inspection_share * n_decls),
    )
    selection = np.select([random_pick, rule_pick, profile_pick], [RANDOM, RULE, TARGETED], NONE)
    red = rng.random(n_decls) < cfg.red_lane_share
    lane = np.where(selection == NONE, GREEN, np.where(random_pick | red, RED, YELLOW))
    inspected = selection != NONE

    # Officers find a scheme with a scheme-specific chance, lower on a document check.
    detection = np.zeros(len(RESULTS))
    for name, chance in cfg.detection_rates.items():
        detection[RESULTS.index(name)] = chance
    chance = detection[p.i_scheme] * np.where(lane[p.i_decl] == RED, 1.0, cfg.document_check_factor)
    found = inspected[p.i_decl] & (p.i_scheme > 0) & (rng.random(n_decls)[p.i_decl] < chance)
    result = np.where(inspected[p.i_decl], np.where(found, p.i_scheme, 0), -1)
    assessed = np.round(evaded * rng.uniform(0.85, 1.0, p.n_items), 2)
    extra_duty = np.where(found, np.maximum(assessed, 0.01), 0.0)
    extra_duty = np.where(inspected[p.i_decl], extra_duty, np.nan)

    crossing = p.t_crossing[p.d_trip]
    officer = crossing * OFFICERS_PER_CROSSING + rng.integers(0, OFFICERS_PER_CROSSING, n_decls)
    officer = np.where(inspected, officer, -1)
    hours = np.select(
        [lane == RED, lane == YELLOW],
        [
            np.clip(rng.lognormal(np.log(20), 0.6, n_decls), 3, 72),
            np.clip(rng.lognormal(np.log(6), 0.5, n_decls), 1, 36),
        ],
        rng.uniform(1 / 3, 3, n_decls),
    )
    recorded = p.t_arrived_us[p.d_trip] + (hours * US_PER_HOUR).astype(np.int64)
    return Inspections(
        lane=lane[p.i_decl],
        inspected=inspected[p.i_decl],
        selection=selection[p.i_decl],
        result=result,
        extra_duty_usd=extra_duty,
        officer=officer[p.i_decl],
        recorded_us=recorded[p.i_decl],
    )
