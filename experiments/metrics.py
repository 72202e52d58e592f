"""Metrics of a ranking under fixed inspection capacity: pure functions over NumPy arrays.

Customs inspects the top ``share`` of a ranking, so the figures that matter are what the top
holds: precision@n% (share of violations among the inspected), recall@n% (share of all
violations that were caught), revenue@n% (share of all extra duty that was found). AUCs and the
Brier score are secondary. The top is ``ceil(share × n)`` items (at least one); ties in the
score are broken by input order, so the same arrays always give the same figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

CAPACITY_SHARES: tuple[float, ...] = (0.01, 0.05, 0.10)

FloatArray = npt.NDArray[np.float64]


def _arrays(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-D of equal length")
    return y, s


def top_count(n: int, share: float) -> int:
    """How many of ``n`` ranked items fit in an inspection capacity of ``share`` (0..1]."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"capacity share must be in (0, 1], got {share}")
    return min(n, max(1, math.ceil(round(share * n, 9)))) if n else 0


def ranking(scores: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Indices from the highest score down; equal scores keep their input order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def precision_at(y_true: npt.ArrayLike, scores: npt.ArrayLike, share: float) -> float:
    """Share of violations among the top ``share`` of items by score."""
    y, s = _arrays(y_true, scores)
    k = top_count(len(y), share)
    return float(y[ranking(s)[:k]].mean()) if k else math.nan


def recall_at(y_true: npt.ArrayLike, scores: npt.ArrayLike, share: float) -> float:
    """Share of all violations that fall in the top ``share`` of items by score."""
    y, s = _arrays(y_true, scores)
    total = y.sum()
    if total == 0:
        return math.nan
    return float(y[ranking(s)[: top_count(len(y), share)]].sum() / total)


def revenue_at(duty: npt.ArrayLike, scores: npt.ArrayLike, share: float) -> float:
    """Extra duty found in the top ``share`` over all extra duty that could be found.

    ``duty`` is the assessed extra duty per item (0 for clean items, NaN treated as 0).
    """
    d, s = _arrays(duty, scores)
    d = np.nan_to_num(d, nan=0.0)
    total = d.sum()
    if total <= 0:
        return math.nan
    return float(d[ranking(s)[: top_count(len(d), share)]].sum() / total)


def pr_auc(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the precision-recall curve as average precision (step-wise, no interpolation)."""
    from sklearn.metrics import average_precision_score

    y, s = _arrays(y_true, scores)
    return float(average_precision_score(y, s)) if 0 < y.sum() < len(y) else math.nan


def roc_auc(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Probability that a random violation outranks a random clean item (ties count half)."""
    from sklearn.metrics import roc_auc_score

    y, s = _arrays(y_true, scores)
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else math.nan


def brier(y_true: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """Mean squared error of calibrated probabilities against 0/1 outcomes."""
    y, p = _arrays(y_true, probabilities)
    return float(np.mean((p - y) ** 2)) if len(y) else math.nan


def precision_curve(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, shares: Sequence[float]
) -> FloatArray:
    """precision@share for each share, for the precision@n% plot."""
    return np.array([precision_at(y_true, scores, share) for share in shares])


def _pct(share: float) -> str:
    return f"{share * 100:g}pct"


def capacity_metrics(
    y_true: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    *,
    duty: npt.ArrayLike | None = None,
    shares: Sequence[float] = CAPACITY_SHARES,
    ranking: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """Every headline figure of one held-out set, keyed like ``precision_at_5pct``.

    ``probabilities`` are the calibrated scores (the Brier score, and the ranking unless
    ``ranking`` is given: the raw model scores, which order the items exactly as the
    probabilities do but without the ties a step-wise calibration makes, so that the figures
    do not depend on row order); ``duty`` the extra duty per item, omitted when the source
    has no duty labels.
    """
    y, probability = _arrays(y_true, probabilities)
    p = probability if ranking is None else _arrays(y, ranking)[1]
    out: dict[str, float] = {
        "items": float(len(y)),
        "violations": float(y.sum()),
        "violation_rate": float(y.mean()) if len(y) else math.nan,
    }
    for share in shares:
        out[f"precision_at_{_pct(share)}"] = precision_at(y, p, share)
        out[f"recall_at_{_pct(share)}"] = recall_at(y, p, share)
        if duty is not None:
            out[f"revenue_at_{_pct(share)}"] = revenue_at(duty, p, share)
    out["pr_auc"] = pr_auc(y, p)
    out["roc_auc"] = roc_auc(y, p)
    out["brier"] = brier(y, probability)
    return out


def slice_metrics(
    frame: pl.DataFrame,
    by: str,
    *,
    label: str = "label",
    score: str = "risk",
    duty: str | None = None,
    shares: Sequence[float] = CAPACITY_SHARES,
    ranking: str | None = None,
) -> pl.DataFrame:
    """``capacity_metrics`` per value of column ``by`` (a crossing, an HS chapter), one row each.

    Each slice is ranked on its own, as if that crossing had its own capacity share.
    """
    rows = []
    for (key,), part in frame.group_by(by, maintain_order=True):
        metrics = capacity_metrics(
            part[label].to_numpy(),
            part[score].to_numpy(),
            duty=None if duty is None else part[duty].fill_null(0.0).to_numpy(),
            shares=shares,
            ranking=None if ranking is None else part[ranking].to_numpy(),
        )
        rows.append({"slice": by, "value": None if key is None else str(key), **metrics})
    if not rows:
        return pl.DataFrame(schema={"slice": pl.String, "value": pl.String})
    return pl.DataFrame(rows).sort("items", "value", descending=[True, False])
