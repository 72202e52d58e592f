"""The picture of the simulation: trucks not yet released over time, one line per policy."""

from __future__ import annotations

from pathlib import Path

from risk.atomic import atomic_path
from risk.simulation.policies import PolicyResult


def plot_queues(results: list[PolicyResult], target: str | Path, *, title: str = "") -> Path:
    """Write a PNG of queue length over time per policy (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for result in results:
        sim = result.simulation
        ax.step(sim.queue_time_min / 60, sim.queue_length, where="post", label=result.policy)
    ax.set_xlabel("hours since the queue was scored")
    ax.set_ylabel("trucks not yet released")
    ax.set_title(title or f"Standing queue of {results[0].trucks:,} trucks by selection policy")
    ax.set_xscale("symlog", linthresh=24)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    target = Path(target)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target
