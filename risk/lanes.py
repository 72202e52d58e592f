"""Lanes: inspection capacity goes where the expected duty found per officer minute is highest.

Per crossing, over a planning horizon, officers have a fixed number of minutes for physical
inspections (red) and for document checks (yellow). The order of filling is the customs one:

1. hard rules (``risk.rules``) decide first; ruled-red trucks take red minutes, ruled-green
   trucks are released;
2. a mandatory random share of the remaining trucks is inspected (red) whatever the score and
   marked ``random``: it measures fraud among the trucks the model would release and gives the
   next model labels outside its own picks; the draw is a hash of the truck key and a seed,
   so it is deterministic and independent of how a queue is split into batches;
3. red minutes left are filled with the trucks of highest expected duty at risk per minute of
   physical inspection, then yellow minutes the same way per minute of document check;
4. the rest is green.

Inspection minutes grow with the number of items on a truck, which is why the ranking is per
minute and not per truck. Capacity lives in a TOML file, ``[default]`` plus
``[crossing.NAME]`` overrides; the shipped one is ``risk/reference/capacity.toml``.
"""

from __future__ import annotations

import math
import tomllib
from importlib.resources import files
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from risk.errors import RiskError

_HASH_SCALE = float(2**64)
_CAPACITY_COLUMNS = (
    "_red_budget",
    "_yellow_budget",
    "_random_share",
    "_min_risk_red",
    "_min_risk_yellow",
    "_m_red",
    "_m_red_item",
    "_m_yellow",
    "_m_yellow_item",
)


class LaneCapacity(BaseModel):
    """Capacity of one crossing; physical/document rates are for a one-item truck."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    physical_per_hour: float = Field(6.0, ge=0, description="Physical inspections per hour.")
    document_per_hour: float = Field(20.0, ge=0, description="Document checks per hour.")
    minutes_physical: float = Field(60.0, gt=0, description="Minutes of a physical inspection.")
    minutes_physical_per_item: float = Field(10.0, ge=0, description="Extra minutes per item.")
    minutes_document: float = Field(15.0, gt=0, description="Minutes of a document check.")
    minutes_document_per_item: float = Field(3.0, ge=0, description="Extra minutes per item.")
    horizon_hours: float = Field(24.0, gt=0, description="Hours the lanes are planned for.")
    random_share: float = Field(0.03, ge=0, le=1, description="Mandatory random inspections.")
    min_risk_red: float = Field(0.0, ge=0, le=1, description="No targeted red below this risk.")
    min_risk_yellow: float = Field(0.0, ge=0, le=1, description="No yellow below this risk.")
    # The crossing itself, for the queue simulation: booths every truck passes (primary
    # control, the whole of a green truck's stop) and how many trucks may stand past the barrier.
    booths: int = Field(4, ge=1, description="Primary control booths.")
    minutes_green: float = Field(3.0, gt=0, description="Minutes at a booth.")
    zone_capacity: int = Field(60, ge=1, description="Trucks allowed past the barrier at once.")

    @property
    def red_minutes(self) -> float:
        """Officer minutes for physical inspection over the horizon."""
        return self.physical_per_hour * self.minutes_physical * self.horizon_hours

    @property
    def yellow_minutes(self) -> float:
        """Officer minutes for document checks over the horizon."""
        return self.document_per_hour * self.minutes_document * self.horizon_hours

    @property
    def physical_bays(self) -> int:
        """Parallel inspection teams that deliver ``physical_per_hour``."""
        return max(1, math.ceil(self.physical_per_hour * self.minutes_physical / 60 - 1e-9))

    @property
    def document_officers(self) -> int:
        """Parallel document officers that deliver ``document_per_hour``."""
        return max(1, math.ceil(self.document_per_hour * self.minutes_document / 60 - 1e-9))


class CapacityConfig(BaseModel):
    """Capacity per crossing: a default and per-crossing overrides, plus the random seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, ge=0, description="Seed of the random-share draw.")
    default: LaneCapacity = LaneCapacity()
    crossing: dict[str, LaneCapacity] = Field(default_factory=dict)

    def for_crossing(self, name: str | None) -> LaneCapacity:
        return self.crossing.get(name or "", self.default)

    def frame(self, crossings: list[str | None]) -> pl.DataFrame:
        """One row per crossing with the numbers lane assignment needs."""
        rows = []
        for name in crossings:
            cap = self.for_crossing(name)
            rows.append(
                {
                    "crossing": name,
                    "_red_budget": cap.red_minutes,
                    "_yellow_budget": cap.yellow_minutes,
                    "_random_share": cap.random_share,
                    "_min_risk_red": cap.min_risk_red,
                    "_min_risk_yellow": cap.min_risk_yellow,
                    "_m_red": cap.minutes_physical,
                    "_m_red_item": cap.minutes_physical_per_item,
                    "_m_yellow": cap.minutes_document,
                    "_m_yellow_item": cap.minutes_document_per_item,
                }
            )
        schema = {"crossing": pl.String} | {column: pl.Float64 for column in _CAPACITY_COLUMNS}
        return pl.DataFrame(rows, schema=schema)


def default_capacity_path() -> Path:
    return Path(str(files("risk.reference").joinpath("capacity.toml")))


def load_capacity(path: str | Path | None = None) -> CapacityConfig:
    """Read a capacity file; the shipped default when ``path`` is None.

    Per-crossing tables override only the fields they name; the rest comes from ``[default]``.
    """
    source = Path(path) if path is not None else default_capacity_path()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RiskError(f"capacity file not found: {source}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RiskError(f"capacity file {source} is not valid TOML: {exc}") from exc
    try:
        default = LaneCapacity(**raw.get("default", {}))
        crossings = {
            name: LaneCapacity(**(default.model_dump() | dict(overrides)))
            for name, overrides in raw.get("crossing", {}).items()
        }
        return CapacityConfig(seed=raw.get("seed", 0), default=default, crossing=crossings)
    except (ValidationError, TypeError) as exc:
        raise RiskError(f"capacity file {source}: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)


def truck_key() -> pl.Expr:
    """The truck an item travels on; a declaration with no truck (KCS, post) is its own truck.

    The same rule as ``features.truck``: coalesce(truck_id, declaration_id).
    """
    return pl.coalesce(pl.col("truck_id"), pl.col("declaration_id")).alias("truck_key")


LANE_COLUMNS = ("lane", "selection", "decided_by", "officer_minutes", "duty_per_minute_usd")


def assign_lanes(
    trucks: pl.DataFrame, capacity: CapacityConfig, *, draw_key: str = "truck_key"
) -> pl.DataFrame:
    """Add ``lane``, ``selection``, ``decided_by``, ``officer_minutes``, ``duty_per_minute_usd``.

    ``trucks`` needs ``truck_key``, ``crossing``, ``n_items``, ``risk``, ``duty_at_risk_usd``
    and ``rule_lane`` (null where no rule decided), plus ``draw_key`` for the random draw. Row
    order is kept. ``selection`` follows ``InspectionOutcome`` (targeted/random/rule/none);
    ``decided_by`` says who set the lane (rule/random/model).
    """
    crossings = trucks.get_column("crossing").unique(maintain_order=True).to_list()
    caps = capacity.frame(crossings).with_row_index("_crossing")
    frame = (
        trucks.join(caps, on="crossing", how="left", nulls_equal=True, maintain_order="left")
        .with_columns(
            _m_red=pl.col("_m_red") + pl.col("_m_red_item") * (pl.col("n_items") - 1),
            _m_yellow=pl.col("_m_yellow") + pl.col("_m_yellow_item") * (pl.col("n_items") - 1),
            _u=pl.col(draw_key).hash(seed=capacity.seed).cast(pl.Float64) / _HASH_SCALE,
        )
        .with_columns(
            _rule_red=(pl.col("rule_lane") == "red").fill_null(False),
            _rule_green=(pl.col("rule_lane") == "green").fill_null(False),
        )
        .with_columns(
            _random=pl.col("rule_lane").is_null() & (pl.col("_u") < pl.col("_random_share")),
        )
        .with_columns(
            _candidate=pl.col("rule_lane").is_null() & ~pl.col("_random"),
            _red_left=pl.col("_red_budget")
            - (pl.col("_m_red") * (pl.col("_rule_red") | pl.col("_random"))).sum().over("crossing"),
        )
    )
    frame = _fill(
        frame,
        eligible=pl.col("_candidate") & (pl.col("risk") >= pl.col("_min_risk_red")),
        minutes="_m_red",
        budget="_red_left",
        out="_targeted_red",
    )
    frame = _fill(
        frame,
        eligible=pl.col("_candidate")
        & ~pl.col("_targeted_red")
        & (pl.col("risk") >= pl.col("_min_risk_yellow")),
        minutes="_m_yellow",
        budget="_yellow_budget",
        out="_targeted_yellow",
    )
    red = pl.col("_rule_red") | pl.col("_random") | pl.col("_targeted_red")
    yellow = pl.col("_targeted_yellow")
    return frame.with_columns(
        lane=pl.when(red)
        .then(pl.lit("red"))
        .when(yellow)
        .then(pl.lit("yellow"))
        # Ruled-green and unselected trucks are released.
        .otherwise(pl.lit("green")),
        selection=pl.when(pl.col("_rule_red"))
        .then(pl.lit("rule"))
        .when(pl.col("_random"))
        .then(pl.lit("random"))
        .when(pl.col("_targeted_red") | yellow)
        .then(pl.lit("targeted"))
        .otherwise(pl.lit("none")),
        decided_by=pl.when(pl.col("_rule_red") | pl.col("_rule_green"))
        .then(pl.lit("rule"))
        .when(pl.col("_random"))
        .then(pl.lit("random"))
        .otherwise(pl.lit("model")),
        officer_minutes=pl.when(red)
        .then(pl.col("_m_red"))
        .when(yellow)
        .then(pl.col("_m_yellow"))
        .otherwise(pl.lit(0.0)),
        duty_per_minute_usd=pl.col("duty_at_risk_usd") / pl.col("_m_red"),
    ).select(*trucks.columns, *LANE_COLUMNS)


def _fill(
    frame: pl.DataFrame, *, eligible: pl.Expr, minutes: str, budget: str, out: str
) -> pl.DataFrame:
    """Mark the best-value eligible trucks of each crossing whose minutes fit the budget.

    Trucks are taken in order of duty at risk per minute (ties: higher risk, then truck key,
    so the order is total and the result deterministic) while the running total of minutes
    stays within the budget: a prefix of the ranking, so a lower-ranked truck is never
    preferred to a higher-ranked one. The frame keeps its order.

    A budget holds a few hundred trucks of the tens of thousands a crossing may queue, and
    minutes are positive, so only the trucks that can rank within ``budget / fewest minutes``
    of the top are ranked (``_best_first``); ``_fill_by_sorting`` ranks them all (the
    definition, and the way for data the shortcut does not cover: nulls, NaN, no minutes).
    """
    data = frame.select(
        pl.col("_crossing"),
        eligible.alias("_eligible"),
        (pl.col("duty_at_risk_usd") / pl.col(minutes)).alias("_value"),
        pl.col("risk").cast(pl.Float64),
        pl.col(minutes).cast(pl.Float64).alias("_minutes"),
        pl.col(budget).cast(pl.Float64).alias("_budget"),
    )
    if any(data.null_count().row(0)):
        return _fill_by_sorting(frame, eligible=eligible, minutes=minutes, budget=budget, out=out)
    value = data.get_column("_value").to_numpy()
    risk = data.get_column("risk").to_numpy()
    spent = data.get_column("_minutes").to_numpy()
    if np.isnan(value).any() or np.isnan(risk).any() or not (spent > 0).all():
        return _fill_by_sorting(frame, eligible=eligible, minutes=minutes, budget=budget, out=out)
    limit = data.get_column("_budget").to_numpy()
    crossing = data.get_column("_crossing").to_numpy()
    rows = np.flatnonzero(data.get_column("_eligible").to_numpy())
    mask = np.zeros(frame.height, dtype=bool)
    keys = frame.get_column("truck_key")
    # Rows grouped by crossing, in row order within one: crossings are few, and NumPy's
    # stable sort of 16-bit integers is a radix sort.
    of_row = crossing[rows]
    if len(rows) and of_row.max() < 1 << 16:
        of_row = of_row.astype(np.uint16)
    rows = rows[np.argsort(of_row, kind="stable")]
    starts = np.flatnonzero(np.diff(crossing[rows], prepend=-1))
    for mine in np.split(rows, starts[1:]) if len(rows) else []:
        ranked = _best_first(mine, value, risk, spent, limit, keys)
        used = np.cumsum(spent[ranked])
        mask[ranked[used <= limit[ranked] + 1e-9]] = True
    return frame.with_columns(pl.Series(out, mask))


def _best_first(
    rows: np.ndarray,
    value: np.ndarray,
    risk: np.ndarray,
    spent: np.ndarray,
    limit: np.ndarray,
    keys: pl.Series,
) -> np.ndarray:
    """Of one crossing's eligible ``rows``, those that may fit the budget, best first.

    With every truck taking at least ``fewest`` minutes, no more than ``budget / fewest``
    trucks fit, so only trucks valued at least the ``top``-th best value are ranked (all
    the trucks tied with it included: ties are broken by risk and truck key below).
    """
    top = int(np.floor(limit[rows].max() / spent[rows].min())) + 2
    if top <= 0:  # the budget is spent already (rules and random picks took it)
        return rows[:0]
    if top < len(rows):
        threshold = np.partition(value[rows], len(rows) - top)[len(rows) - top]
        rows = rows[value[rows] >= threshold]
    mine_value, mine_risk = value[rows].tolist(), risk[rows].tolist()
    mine_key = keys.gather(rows).to_list()
    order = sorted(range(len(rows)), key=lambda i: (-mine_value[i], -mine_risk[i], mine_key[i]))
    return rows[np.asarray(order, dtype=np.int64)]


def _fill_by_sorting(
    frame: pl.DataFrame, *, eligible: pl.Expr, minutes: str, budget: str, out: str
) -> pl.DataFrame:
    """``_fill`` by sorting every truck of the frame: the definition."""
    ranked = (
        frame.select(
            "crossing",
            eligible.alias("_eligible"),
            (pl.col("duty_at_risk_usd") / pl.col(minutes)).alias("_value"),
            "risk",
            "truck_key",
            pl.col(minutes).alias("_minutes"),
            pl.col(budget).alias("_budget"),
        )
        .with_row_index("_position")
        .sort(
            ["crossing", "_eligible", "_value", "risk", "truck_key"],
            descending=[False, True, True, True, False],
            nulls_last=True,
        )
    )
    used = pl.when(pl.col("_eligible")).then(pl.col("_minutes")).otherwise(0.0)
    chosen = ranked.select(
        "_position",
        pl.col("_eligible") & (used.cum_sum().over("crossing") <= pl.col("_budget") + 1e-9),
    )
    mask = np.zeros(frame.height, dtype=bool)
    mask[chosen.get_column("_position").to_numpy()] = chosen.get_column("_eligible").to_numpy()
    return frame.with_columns(pl.Series(out, mask))
