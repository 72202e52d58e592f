"""Synthetic border traffic: months of history with inspection outcomes, and today's queue.

Real customs data is confidential, so the engine is built and tested on traffic that behaves
like a Kazakhstan–Russia road crossing in the autumn of the great queues: stable importers,
brokers, carriers and trucks with track records; HS codes from a small embedded reference;
every grey-import scheme of DOMAIN.md at configurable rates; an inspection history picked by
old rules plus a random share, so labels exist only where officers looked. The same config
gives the same bytes. The parts live in ``pipelines.synthetic``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipelines.synthetic.config import (
    DEFAULT_CROSSINGS,
    DEFAULT_SCHEME_RATES,
    SCHEMES,
    Crossing,
    TrafficConfig,
)
from pipelines.synthetic.entities import US_PER_DAY, build_entities
from pipelines.synthetic.frames import declarations_frame, ground_truth_frame, outcomes_frame
from pipelines.synthetic.period import MEAN_ITEMS, NORMAL
from pipelines.synthetic.schemes import apply_schemes
from pipelines.synthetic.selectivity import inspect
from pipelines.synthetic.structure import build_period, weighbridge_readings
from risk.atomic import atomic_path, write_frame

__all__ = [
    "DEFAULT_CROSSINGS",
    "DEFAULT_SCHEME_RATES",
    "SCHEMES",
    "Crossing",
    "Traffic",
    "TrafficConfig",
    "generate_traffic",
    "realised_scheme_rates",
    "write_traffic",
]

# Relative paths of the files ``write_traffic`` writes (docs/architecture.md, "Files on disk").
LAYOUT = {
    "declarations": "history/declarations.parquet",
    "arrivals": "history/arrivals.parquet",
    "outcomes": "history/outcomes.parquet",
    "queue_declarations": "queue/declarations.parquet",
    "queue_arrivals": "queue/arrivals.parquet",
    "ground_truth": "truth/ground_truth.parquet",
}
MANIFEST = "manifest.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Traffic:
    """Generated traffic as canonical frames (``risk.schemas``).

    ``ground_truth`` covers the history items first, then the queue items, in frame order.
    """

    config: TrafficConfig
    declarations: pl.DataFrame  # DeclarationItem, history
    arrivals: pl.DataFrame  # TruckArrival, history
    outcomes: pl.DataFrame  # InspectionOutcome, one per history item
    ground_truth: pl.DataFrame  # GroundTruth, history and queue
    queue_declarations: pl.DataFrame  # DeclarationItem, today's standing queue
    queue_arrivals: pl.DataFrame  # TruckArrival, today's standing queue

    @property
    def history_truth(self) -> pl.DataFrame:
        return self.ground_truth.head(self.declarations.height)

    @property
    def queue_truth(self) -> pl.DataFrame:
        return self.ground_truth.tail(self.queue_declarations.height)


def _epoch_us(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * US_PER_DAY


class _Stages:
    """Logs the seconds each stage took (``logging`` at INFO; the benchmark shows them)."""

    def __init__(self) -> None:
        self.mark = time.perf_counter()

    def done(self, stage: str, **counts: int) -> None:
        now = time.perf_counter()
        details = " ".join(f"{k}={v:,}" for k, v in counts.items())
        log.info("generate: %-24s %6.2f s %s", stage, now - self.mark, details)
        self.mark = now


def generate_traffic(config: TrafficConfig | None = None) -> Traffic:
    """Generate history (with outcomes), today's queue and the ground truth of both."""
    cfg = config or TrafficConfig()
    stages = _Stages()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(8)]
    as_of = _epoch_us(cfg.as_of)
    queue_start = as_of - cfg.queue_days * US_PER_DAY
    history_start = as_of - cfg.history_days * US_PER_DAY

    entities = build_entities(
        streams[0],
        history_items=cfg.history_items,
        history_trips=int(cfg.history_items / MEAN_ITEMS[NORMAL]),
        queue_trucks=cfg.queue_trucks,
        start_us=history_start,
        end_us=as_of,
        crossing_shares=np.array([c.share for c in cfg.crossings]),
    )
    stages.done("entities", importers=len(entities.imp_kind), vehicles=len(entities.veh_carrier))
    history = build_period(
        streams[1],
        cfg,
        entities,
        start_us=history_start,
        end_us=queue_start,
        items=cfg.history_items,
    )
    history_evaded = apply_schemes(streams[2], cfg, entities, history)
    stages.done("history traffic", items=history.n_items, trucks=len(history.t_kind))
    queue = build_period(
        streams[3], cfg, entities, start_us=queue_start, end_us=as_of, trucks=cfg.queue_trucks
    )
    queue_evaded = apply_schemes(streams[4], cfg, entities, queue)
    stages.done("queue traffic", items=queue.n_items, trucks=len(queue.t_kind))
    history_weighbridge = weighbridge_readings(streams[6], cfg, history)
    inspections = inspect(streams[5], cfg, entities, history, history_evaded, history_weighbridge)
    stages.done("inspections", inspected=int(inspections.inspected.sum()))

    declarations, arrivals = declarations_frame(
        cfg, entities, history, history_weighbridge, first_declaration=0
    )
    queue_declarations, queue_arrivals = declarations_frame(
        cfg,
        entities,
        queue,
        weighbridge_readings(streams[7], cfg, queue),
        first_declaration=len(history.d_trip),
    )
    stages.done("declaration frames")
    truth = pl.concat(
        [
            ground_truth_frame(history, history_evaded, declarations),
            ground_truth_frame(queue, queue_evaded, queue_declarations),
        ]
    )
    outcomes = outcomes_frame(cfg, history, inspections, declarations)
    stages.done("outcome and truth frames")
    return Traffic(
        config=cfg,
        declarations=declarations,
        arrivals=arrivals,
        outcomes=outcomes,
        ground_truth=truth,
        queue_declarations=queue_declarations,
        queue_arrivals=queue_arrivals,
    )


def realised_scheme_rates(ground_truth: pl.DataFrame) -> dict[str, float]:
    """Share of items under each scheme (and "clean"), rounded to 5 decimals."""
    n = max(ground_truth.height, 1)
    counts = dict(ground_truth["scheme"].value_counts().iter_rows())
    return {name: round(counts.get(name, 0) / n, 5) for name in ("clean", *SCHEMES)}


def _share(flags: pl.Series) -> float:
    return round(int(flags.sum()) / max(flags.len(), 1), 5)


def manifest(traffic: Traffic) -> dict[str, Any]:
    """What was generated: seed, config, row counts, realised scheme and inspection rates."""
    outcomes = traffic.outcomes
    inspected = outcomes.filter(pl.col("inspected"))
    per_declaration = outcomes.unique("declaration_id", keep="first", maintain_order=True)
    return {
        "seed": traffic.config.seed,
        "as_of": traffic.config.as_of.isoformat(),
        "config": traffic.config.model_dump(mode="json"),
        "counts": {LAYOUT[name]: getattr(traffic, name).height for name in LAYOUT},
        "realised_scheme_rates": {
            "history": realised_scheme_rates(traffic.history_truth),
            "queue": realised_scheme_rates(traffic.queue_truth),
        },
        "inspection": {
            "inspected_item_share": round(inspected.height / max(outcomes.height, 1), 5),
            "random_declaration_share": _share(per_declaration["selection"] == "random"),
            "violation_found_share_of_inspected": _share(inspected["result"] != "clean"),
        },
    }


def write_traffic(traffic: Traffic, out_dir: str | Path) -> dict[str, Path]:
    """Write the layout of docs/architecture.md atomically; return name -> path."""
    out = Path(out_dir)
    written = {name: write_frame(getattr(traffic, name), out / rel) for name, rel in LAYOUT.items()}
    target = out / MANIFEST
    with atomic_path(target) as tmp:
        text = json.dumps(manifest(traffic), indent=2, ensure_ascii=False) + "\n"
        tmp.write_text(text, encoding="utf-8")
    written["manifest"] = target
    return written
