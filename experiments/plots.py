"""PNG plots of a run (matplotlib, Agg backend: no display needed), logged as artifacts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from experiments.calibration import calibration_table
from experiments.metrics import precision_curve

if TYPE_CHECKING:
    import lightgbm as lgb
    from matplotlib.figure import Figure

Curves = Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]]  # name -> (labels, probabilities)


def _figure(width: float = 6.4, height: float = 4.8) -> Figure:
    from matplotlib.figure import Figure

    # A bare Figure draws with the Agg canvas and never touches pyplot's global state.
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def pr_curve(curves: Curves) -> Figure:
    """Precision against recall, one line per evaluated set."""
    from sklearn.metrics import precision_recall_curve

    fig = _figure()
    ax = fig.add_subplot()
    for name, (y, p) in curves.items():
        y_arr = np.asarray(y)
        if y_arr.sum() == 0 or y_arr.sum() == len(y_arr):
            continue
        precision, recall, _ = precision_recall_curve(y_arr, np.asarray(p))
        ax.step(recall, precision, where="post", label=f"{name} (base {y_arr.mean():.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("Precision-recall")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def calibration_curve(curves: Curves, bins: int = 10) -> Figure:
    """Observed violation rate against mean calibrated probability per bin."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    for name, (y, p) in curves.items():
        mean_p, rate, counts = calibration_table(y, p, bins=bins)
        ax.plot(mean_p, rate, marker="o", label=f"{name} ({int(counts.sum())} items)")
    ax.set(xlabel="mean predicted probability", ylabel="observed violation rate")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Calibration")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def precision_at_curve(curves: Curves, shares: Sequence[float] | None = None) -> Figure:
    """precision@n% for n from 0.5% to 50%: what each inspection capacity would find."""
    grid = np.asarray(shares if shares is not None else np.linspace(0.005, 0.5, 100))
    fig = _figure()
    ax = fig.add_subplot()
    for name, (y, p) in curves.items():
        ax.plot(grid * 100, precision_curve(y, p, grid.tolist()), label=name)
        ax.axhline(float(np.mean(np.asarray(y))), linestyle=":", color="grey")
    ax.set(xlabel="inspection capacity (% of items)", ylabel="precision", ylim=(0, 1.02))
    ax.set_title("Precision at inspection capacity (dotted: base rate)")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def feature_importance(booster: lgb.Booster, top: int = 25) -> Figure:
    """Total gain of the ``top`` most important features."""
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    names = np.asarray(booster.feature_name())
    order = np.argsort(-gain, kind="stable")[:top][::-1]
    fig = _figure(7.5, max(3.0, 0.28 * len(order) + 1.0))
    ax = fig.add_subplot()
    ax.barh(names[order], gain[order])
    ax.set(xlabel="total gain")
    ax.set_title(f"Feature importance (top {len(order)})")
    return fig
