"""Vectorised random draws the generator is built from (no Python loop per row)."""

from __future__ import annotations

import numpy as np


def weighted_choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with replacement, proportional to ``weights``."""
    cdf = np.cumsum(weights, dtype=np.float64)
    picks = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
    return np.minimum(picks, len(weights) - 1)


def conditional_choice(
    rng: np.random.Generator, matrix: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """For each entry of ``rows``, a column drawn from that row of a probability matrix.

    Loops over the distinct rows (a few dozen at most), never over entries.
    """
    out = np.zeros(len(rows), dtype=np.int64)
    u = rng.random(len(rows))
    cdf = np.cumsum(matrix, axis=1)
    for row in np.unique(rows):
        mask = rows == row
        picks = np.searchsorted(cdf[row], u[mask] * cdf[row, -1], side="right")
        out[mask] = np.minimum(picks, matrix.shape[1] - 1)
    return out


class GroupedChooser:
    """Draw members of a given group, proportional to member weights.

    Members are sorted by group; each group's cumulative weights are shifted by the group's
    number, so one ``searchsorted`` serves every group at once.
    """

    def __init__(self, groups: np.ndarray, weights: np.ndarray, n_groups: int) -> None:
        self.order = np.argsort(groups, kind="stable")
        sorted_groups = groups[self.order]
        sorted_weights = weights[self.order].astype(np.float64)
        totals = np.bincount(sorted_groups, weights=sorted_weights, minlength=n_groups)
        starts = np.concatenate([[0], np.cumsum(np.bincount(sorted_groups, minlength=n_groups))])
        within = np.cumsum(sorted_weights) - np.repeat(np.cumsum(totals) - totals, np.diff(starts))
        self.cdf = sorted_groups + within / np.where(totals > 0, totals, 1.0)[sorted_groups]
        self.has_members = totals > 0

    def choose(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        """One member per entry of ``groups`` (each group must have members)."""
        if not self.has_members[groups].all():
            raise ValueError("a group without members was asked for")
        target = groups + rng.random(len(groups)) * (1.0 - 1e-12)
        picks = np.searchsorted(self.cdf, target, side="right")
        return self.order[np.minimum(picks, len(self.order) - 1)]


def gumbel_keys(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Sort keys for weighted sampling without replacement (Gumbel top-k)."""
    with np.errstate(divide="ignore"):
        return np.log(weights) + rng.gumbel(size=len(weights))


def pick_by_budget(
    rng: np.random.Generator,
    weights: np.ndarray,
    sizes: np.ndarray,
    eligible: np.ndarray,
    budget: float,
) -> np.ndarray:
    """Boolean mask of units picked without replacement, proportional to weight, until their
    summed ``sizes`` (items) reach ``budget``."""
    picked = np.zeros(len(weights), dtype=bool)
    candidates = np.flatnonzero(eligible & (weights > 0))
    if budget <= 0 or len(candidates) == 0:
        return picked
    keys = gumbel_keys(rng, weights[candidates])
    order = candidates[np.argsort(-keys, kind="stable")]
    cumulative = np.cumsum(sizes[order])
    # Take units while the total stays nearest the budget (the last one only if it helps).
    count = int(np.searchsorted(cumulative, budget, side="left"))
    if count < len(order):
        before = cumulative[count - 1] if count > 0 else 0
        if abs(cumulative[count] - budget) <= abs(budget - before):
            count += 1
    picked[order[:count]] = True
    return picked


def segment_ids(counts: np.ndarray) -> np.ndarray:
    """For segments of the given lengths, the segment number of each element."""
    return np.repeat(np.arange(len(counts)), counts)


def position_in_segment(counts: np.ndarray) -> np.ndarray:
    """For segments of the given lengths, each element's position within its segment."""
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum())) - np.repeat(starts, counts)


def segment_sum(values: np.ndarray, segments: np.ndarray, n: int) -> np.ndarray:
    """Sum of values per segment id."""
    return np.bincount(segments, weights=values, minlength=n)


def segment_max(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Maximum per contiguous segment (every segment non-empty)."""
    starts = np.cumsum(counts) - counts
    return np.maximum.reduceat(values, starts)
