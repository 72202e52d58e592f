"""A period of traffic (the history, or today's queue) as column arrays, and its shape.

Arrays live at three levels — trips (``t_``), declarations (``d_``) and items (``i_``) — kept
contiguous: the declarations of a trip and the items of a declaration are neighbours, and trips
are in order of arrival. Items carry what the goods really are (``i_hs``, ``i_value``...) beside
what is declared (``i_hs_decl``, ``i_value_decl``...): schemes open the gap between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.synthetic.config import TrafficConfig
from pipelines.synthetic.entities import US_PER_DAY
from pipelines.synthetic.sampling import gumbel_keys, segment_ids, weighted_choice

NORMAL, GROUPAGE, CARGO, SPLIT = range(4)
IMPORT, TRANSIT, INTERNAL = range(3)  # positions in risk.schemas.PROCEDURES
US_PER_HOUR = 3_600_000_000
# Mean items per trip of each kind, to turn an item budget into a number of trips.
MEAN_ITEMS = {NORMAL: 4.5, CARGO: 43.0, SPLIT: 22.0}
DESCRIPTION_VARIANTS = 8
# Least days between two visits of one vehicle (a round trip), and how long before reaching
# the crossing its papers are lodged (pre-arrival information): leads stay far below the gap.
MIN_DAYS_BETWEEN_VISITS = 4
LEAD_HOURS = (1, 12)
# Trucks arrive mostly by day.
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 8, 8, 7, 6, 5, 4, 3, 2, 2, 1.0])


@dataclass
class Period:
    """Column arrays of one period's trips, declarations and items."""

    t_kind: np.ndarray
    t_crossing: np.ndarray
    t_vehicle: np.ndarray
    t_carrier: np.ndarray
    t_arrived_us: np.ndarray
    t_n_decl: np.ndarray
    d_trip: np.ndarray
    d_n_items: np.ndarray
    d_importer: np.ndarray
    d_broker: np.ndarray  # -1: none
    d_consignor: np.ndarray  # -1: none
    d_group: np.ndarray
    d_dispatch: np.ndarray
    d_destination: np.ndarray
    d_procedure: np.ndarray
    d_currency: np.ndarray
    d_declared_us: np.ndarray
    i_decl: np.ndarray
    i_item_no: np.ndarray
    i_hs: np.ndarray  # what the goods really are
    i_hs_decl: np.ndarray  # what the declaration says
    i_origin: np.ndarray
    i_origin_decl: np.ndarray
    i_net: np.ndarray
    i_gross: np.ndarray
    i_qty: np.ndarray
    i_value: np.ndarray
    i_net_decl: np.ndarray
    i_gross_decl: np.ndarray
    i_qty_decl: np.ndarray
    i_value_decl: np.ndarray
    i_scheme: np.ndarray  # index into risk.schemas.RESULTS, 0 = clean
    i_description: np.ndarray  # variant; -1 - k for the k-th vague "cargo" wording
    i_true_wording: np.ndarray  # describe what the goods are, not what the code says
    i_null_net: np.ndarray
    i_null_qty: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.i_decl)


def _candidates(rng: np.random.Generator, kind: int, n: int) -> tuple[np.ndarray, ...]:
    """Trip kinds, declarations per trip and items per declaration for ``n`` trips."""
    if kind == NORMAL:
        kinds = np.where(rng.random(n) < 0.04, GROUPAGE, NORMAL)
        n_decl = np.where(
            kinds == GROUPAGE, rng.integers(5, 16, n), 1 + np.minimum(rng.poisson(0.45, n), 5)
        )
        groupage = np.repeat(kinds == GROUPAGE, n_decl)
        per_decl = np.where(
            groupage,
            np.minimum(rng.geometric(0.5, len(groupage)), 10),
            np.minimum(rng.geometric(0.38, len(groupage)), 40),
        )
    elif kind == CARGO:
        kinds = np.full(n, CARGO)
        n_decl = rng.integers(12, 41, n)
        per_decl = np.minimum(rng.geometric(0.6, int(n_decl.sum())), 5)
    else:
        kinds = np.full(n, SPLIT)
        n_decl = rng.integers(8, 26, n)
        per_decl = 1 + (rng.random(int(n_decl.sum())) < 0.3)
    return kinds, n_decl.astype(np.int64), per_decl.astype(np.int64)


def _trips_for_budget(rng: np.random.Generator, kind: int, budget: float) -> tuple[np.ndarray, ...]:
    """Trips of a kind whose items add up to about ``budget``."""
    if budget <= 0:
        return _candidates(rng, kind, 0)
    kinds, n_decl, per_decl = _candidates(rng, kind, int(budget / MEAN_ITEMS[kind] * 1.4) + 5)
    per_trip = np.add.reduceat(per_decl, np.cumsum(n_decl) - n_decl)
    cumulative = np.cumsum(per_trip)
    count = min(int(np.searchsorted(cumulative, budget, side="left")) + 1, len(kinds))
    before = cumulative[count - 2] if count > 1 else 0
    if count > 1 and abs(budget - before) < abs(cumulative[count - 1] - budget):
        count -= 1
    return kinds[:count], n_decl[:count], per_decl[: int(n_decl[:count].sum())]


def trip_skeleton(
    rng: np.random.Generator, cfg: TrafficConfig, *, items: int | None, trucks: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trip kinds, declarations per trip and items per declaration, trips shuffled.

    History is sized by ``items``, today's queue by ``trucks``; cargo and split trips are cut
    to their schemes' item budgets so that realised rates match the configured ones.
    """
    total = items if items is not None else int((trucks or 0) * MEAN_ITEMS[NORMAL])
    cargo = _trips_for_budget(rng, CARGO, cfg.scheme_rates["cargo_consolidation"] * total)
    split = _trips_for_budget(rng, SPLIT, cfg.scheme_rates["splitting"] * total)
    if items is not None:
        normal = _trips_for_budget(rng, NORMAL, items - len(cargo[2]) - len(split[2]))
    else:
        normal = _candidates(rng, NORMAL, max(1, (trucks or 0) - len(cargo[0]) - len(split[0])))
    kinds = np.concatenate([normal[0], cargo[0], split[0]])
    n_decl = np.concatenate([normal[1], cargo[1], split[1]])
    per_decl = np.concatenate([normal[2], cargo[2], split[2]])
    order = rng.permutation(len(kinds))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    decl_order = np.argsort(position[segment_ids(n_decl)], kind="stable")
    return kinds[order], n_decl[order], per_decl[decl_order]


def _time_of_day(rng: np.random.Generator, day_start_us: np.ndarray) -> np.ndarray:
    hour = weighted_choice(rng, HOUR_WEIGHTS, len(day_start_us))
    return day_start_us + hour * US_PER_HOUR + rng.integers(0, US_PER_HOUR, len(day_start_us))


def vehicle_schedule(
    rng: np.random.Generator,
    activity: np.ndarray,
    n_trips: int,
    start_us: int,
    end_us: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Vehicles and arrival times of ``n_trips`` trips, sorted by time.

    A truck needs days for the round trip, so one vehicle's visits are at least
    ``MIN_DAYS_BETWEEN_VISITS`` apart: matching a declaration to its arrival by truck and
    nearest time (as ingest and features do) is never ambiguous.
    """
    days = max(1, (end_us - start_us) // US_PER_DAY)
    # Day-grid gaps of at least MIN + 1 days leave MIN days once the hour of day is drawn.
    min_gap = MIN_DAYS_BETWEEN_VISITS + 1
    max_visits = days // min_gap + 1
    rate = activity / activity.sum() * 1.3 * n_trips / days
    for _ in range(6):
        mean_gap = np.maximum(1.0 / np.maximum(rate, 1e-12), min_gap + 0.5)
        gaps = (
            min_gap
            + rng.exponential(1.0, (len(activity), max_visits)) * (mean_gap - min_gap)[:, None]
        )
        first = rng.uniform(0.0, 1.0, len(activity)) * mean_gap
        visit_day = np.floor(first[:, None] + np.cumsum(gaps, axis=1) - gaps[:, :1])
        valid = visit_day < days
        if valid.sum() >= n_trips:
            break
        rate = rate * 1.6
    else:
        raise ValueError(f"{len(activity)} vehicles cannot make {n_trips} trips in {days} days")
    vehicle, _ = np.nonzero(valid)
    day = visit_day[valid].astype(np.int64)
    keep = np.sort(rng.choice(len(day), size=n_trips, replace=False))
    arrived = _time_of_day(rng, start_us + day[keep] * US_PER_DAY)
    order = np.argsort(arrived, kind="stable")
    return vehicle[keep][order], np.minimum(arrived[order], end_us - 1)


def queue_schedule(
    rng: np.random.Generator,
    activity: np.ndarray,
    last_visit_us: np.ndarray,
    n_trips: int,
    start_us: int,
    end_us: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Vehicles (each once) and arrival times of today's queue, sorted by time; trucks that
    crossed in the last days of history are back in the queue only if nothing else is left."""
    if n_trips > len(activity):
        raise ValueError(f"{len(activity)} vehicles cannot fill a queue of {n_trips} trucks")
    rested = last_visit_us < start_us - MIN_DAYS_BETWEEN_VISITS * US_PER_DAY
    keys = gumbel_keys(rng, activity * np.where(rested, 1.0, 1e-9))
    vehicle = np.argsort(-keys, kind="stable")[:n_trips]
    days = max(1, (end_us - start_us) // US_PER_DAY)
    arrived = _time_of_day(rng, start_us + rng.integers(0, days, n_trips) * US_PER_DAY)
    order = np.argsort(arrived, kind="stable")
    return vehicle[order], np.minimum(arrived[order], end_us - 1)
