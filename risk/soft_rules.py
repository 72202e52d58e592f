"""Soft rules: odd but possible declarations. They keep the row and mark it, never drop it.

An odd declaration is exactly what the model must see, so these rules only add rule names to
a ``soft_flags`` list column (``with_soft_flags``). Hard rules, which send a row to
quarantine, live in ``risk.schemas``.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from risk.native import F64, I8, I64, Kernel, pointer
from risk.runs import cached_kernel, kahan_add, run_starts

SOFT_FLAGS = "soft_flags"
# A weighbridge and a declaration disagree beyond this share of the weighbridge reading.
WEIGHBRIDGE_TOLERANCE = 0.10
# Declarations and the weighbridge reading of one truck visit lie within this window.
VISIT_WINDOW = "3d"
# A window of fixed length (no months or years), which adding to a timestamp gives exactly.
FIXED_WINDOW = re.compile(r"(\d+(ns|us|ms|s|m|h|d|w))+")
TRUCK_KEYS = ("crossing", "truck_id")


def zero_mass() -> pl.Expr:
    """Net or gross mass declared as exactly zero (a mass that cannot be true for goods)."""
    return (pl.col("net_mass_kg") == 0) | (pl.col("gross_mass_kg") == 0)


def zero_value() -> pl.Expr:
    """Invoice value of exactly zero: free goods are rare, undervaluation is not."""
    return (pl.col("invoice_value") == 0) | (pl.col("customs_value_usd") == 0)


def gross_below_net() -> pl.Expr:
    """Gross mass below net mass: packaging cannot weigh less than nothing."""
    return pl.col("gross_mass_kg") < pl.col("net_mass_kg")


ITEM_RULES: dict[str, Callable[[], pl.Expr]] = {
    "zero_mass": zero_mass,
    "zero_value": zero_value,
    "gross_below_net": gross_below_net,
}
WEIGHBRIDGE_RULE = "weight_far_from_weighbridge"
RULE_NAMES = (*ITEM_RULES, WEIGHBRIDGE_RULE)


def weight_far_from_weighbridge(
    declarations: pl.LazyFrame,
    arrivals: pl.LazyFrame,
    *,
    tolerance: float = WEIGHBRIDGE_TOLERANCE,
    window: str = VISIT_WINDOW,
) -> pl.LazyFrame:
    """``declarations`` with a Boolean column ``weight_far_from_weighbridge``, rows in order.

    A truck-level check: ``weighbridge_kg`` is the weight of the load (tare deducted). Each
    item is matched to the first arrival of its truck at its crossing at or after its
    ``declared_at``, within ``window`` (declarations are lodged before the truck arrives:
    EAEU pre-arrival information). The declared gross mass of all items matched to one arrival
    is summed and compared with the reading; beyond ``tolerance`` (a share of the reading)
    every item of that visit is flagged. Null where there is no truck id, no matching
    arrival or no reading.
    """
    items = declarations.collect()
    visits = arrivals.collect()
    flags = _flags_one_weighing_per_truck(items, visits, tolerance, window)
    if flags is not None:
        return items.lazy().with_columns(flags)
    return _flags_by_asof(items.lazy(), visits.lazy(), tolerance=tolerance, window=window)


def truck_at_crossing() -> pl.Expr:
    """A truck at a crossing as one 64-bit hash; null without a truck. A join key only: a
    caller either checks the pairs it joins or accepts a collision's odds (about 1e-9 among a
    few hundred thousand trucks)."""
    return pl.when(pl.col("truck_id").is_not_null()).then(pl.struct("truck_id", "crossing").hash())


def _flags_one_weighing_per_truck(
    items: pl.DataFrame, arrivals: pl.DataFrame, tolerance: float, window: str
) -> pl.Series | None:
    """The weighbridge flags by a hash join, where each truck is weighed at most once per
    crossing (a day's queue), else None.

    With one reading per truck, "the first arrival at or after the declaration within the
    window" is that reading if it lies in the window: no sort and no as-of join. The join is
    on a hash of (crossing, truck); the hashes of the readings must be distinct and every
    joined truck must be the item's own (compared as text), so a hash collision can never
    change a flag: it sends the frame down the general path. Nulls in the keys and times, and
    keys or times of other types, go there too. A visit's gross masses are summed in row order
    (the as-of path sums them in order of declaration time).
    """
    plain = arrivals.select(*TRUCK_KEYS, "arrived_at", "weighbridge_kg")
    if (
        not FIXED_WINDOW.fullmatch(window)
        or any(items.schema[k] != pl.String or plain.schema[k] != pl.String for k in TRUCK_KEYS)
        or plain.schema["arrived_at"] != items.schema["declared_at"]
        or items.get_column("crossing").null_count()
        or items.get_column("declared_at").null_count()
        or plain.select(
            (_usable() & pl.col(c).is_null()).any().alias(c) for c in ("crossing", "arrived_at")
        )
        .row(0)
        .count(True)
    ):
        return None
    runs = run_starts(items, TRUCK_KEYS)
    if runs is not None and items.schema["gross_mass_kg"] == pl.Float64:
        # Readings matched by position need no hash; the others are checked there.
        return _flags_by_truck_runs(items, plain, runs, tolerance, window)
    readings = plain.lazy().with_columns(truck_at_crossing().alias("key"))
    visits = readings.filter(_usable()).collect()
    if visits.get_column("key").n_unique() < visits.height:
        return None
    visit = (
        items.lazy()
        .select(truck_at_crossing().alias("key"))
        .join(
            visits.lazy().select("key").with_row_index("visit"),
            on="key",
            how="left",
            maintain_order="left",
        )
        .collect()
        .get_column("visit")
    )
    found = visits.select(pl.col(*TRUCK_KEYS, "arrived_at", "weighbridge_kg").gather(visit))
    other_truck = visit.is_not_null() & (
        found.get_column("crossing").ne_missing(items.get_column("crossing"))
        | found.get_column("truck_id").ne_missing(items.get_column("truck_id"))
    )
    if other_truck.any():
        return None
    declared_at = pl.col("declared_at")
    arrived_at = pl.col("arrived_at")
    in_window = (arrived_at >= declared_at) & (arrived_at <= declared_at.dt.offset_by(window))
    declared = pl.col("gross_mass_kg").sum().over("visit")
    missed = (declared - pl.col("weighbridge_kg")).abs() > tolerance * pl.col("weighbridge_kg")
    return (
        pl.DataFrame(
            [
                items.get_column("declared_at"),
                items.get_column("gross_mass_kg"),
                found.get_column("arrived_at"),
                found.get_column("weighbridge_kg"),
                visit,
            ]
        )
        .lazy()
        .with_columns(pl.when(in_window).then(pl.col("visit")).alias("visit"))
        .select(pl.when(pl.col("visit").is_not_null()).then(missed).alias(WEIGHBRIDGE_RULE))
        .collect()
        .get_column(WEIGHBRIDGE_RULE)
    )


def _usable() -> pl.Expr:
    """A reading that can flag: of a truck, with a weight."""
    return pl.col("truck_id").is_not_null() & pl.col("weighbridge_kg").is_not_null()


def _flags_by_truck_runs(
    items: pl.DataFrame, readings: pl.DataFrame, runs: np.ndarray, tolerance: float, window: str
) -> pl.Series | None:
    """``_flags_one_weighing_per_truck`` for items that come truck by truck (``runs``: where
    each truck's run starts, ``risk.runs.run_starts``), None where a hash joined another truck.

    ``readings``: the arrivals as ``_flags_one_weighing_per_truck`` selects them, before
    unusable ones (no truck, no weight) are left out (with or without their hash, ``key``).
    Each run, not each item, is matched to its reading: by position when the arrivals list the
    queue's trucks in its order (a queue is its trucks in order of arrival), else by the same
    hash join, for which the usable readings' hashes must be distinct (else None: a truck
    weighed twice, or two trucks of one hash). One native pass then sums each visit's gross
    masses (compensated, in row order, as Polars' group sum) and compares them with the
    reading.
    """
    heads = items.select(list(TRUCK_KEYS))[runs[:-1]]
    index = pl.int_range(pl.len(), dtype=pl.get_index_type())
    if heads.equals(readings.select(list(TRUCK_KEYS))):
        # Keys in runs are distinct, so no other reading has a run's key.
        visit = readings.select(pl.when(_usable()).then(index)).to_series()
    else:
        if "key" not in readings.columns:
            readings = readings.with_columns(truck_at_crossing().alias("key"))
        visits = readings.with_columns(index.alias("visit")).filter(_usable())
        if visits.get_column("key").n_unique() < visits.height:
            return None
        visit = (
            heads.lazy()
            .select(truck_at_crossing().alias("key"))
            .join(visits.lazy().select("key", "visit"), on="key", how="left", maintain_order="left")
            .collect()
            .get_column("visit")
        )
        found = readings.select(list(TRUCK_KEYS))[visit]
        other_truck = visit.is_not_null() & (
            found.get_column("crossing").ne_missing(heads.get_column("crossing"))
            | found.get_column("truck_id").ne_missing(heads.get_column("truck_id"))
        )
        if other_truck.any():
            return None
    zero = pl.Series([0], dtype=pl.Int64).cast(items.schema["declared_at"])
    window_units = zero.dt.offset_by(window).to_physical().item()
    weighed = visit.is_not_null().cast(pl.UInt8).to_numpy()
    arrived = readings.get_column("arrived_at").gather(visit).to_physical().fill_null(0)
    reading = readings.get_column("weighbridge_kg").gather(visit).fill_null(0.0)
    declared = items.get_column("declared_at").to_physical()
    gross = items.get_column("gross_mass_kg")
    codes = np.empty(items.height, dtype=np.uint8)
    arrays = [
        np.ascontiguousarray(runs, dtype=np.int64),
        np.ascontiguousarray(weighed),
        np.ascontiguousarray(arrived.to_numpy(), dtype=np.int64),
        np.ascontiguousarray(reading.to_numpy(), dtype=np.float64),
        np.ascontiguousarray(declared.to_numpy(), dtype=np.int64),
        np.ascontiguousarray(gross.fill_null(0.0).to_numpy(), dtype=np.float64),
        np.ascontiguousarray(gross.is_not_null().cast(pl.UInt8).to_numpy()),
    ]
    _visit_kernel()(
        len(runs) - 1,
        *(pointer(a) for a in arrays[:5]),
        window_units,
        *(pointer(a) for a in arrays[5:]),
        tolerance,
        pointer(codes),
    )
    code = pl.Series(codes)
    return pl.select(
        pl.when(pl.lit(code) < 2).then(pl.lit(code) == 1).alias(WEIGHBRIDGE_RULE)
    ).to_series()


@cache
def _visit_kernel() -> Any:
    pointers = [ctypes.c_void_p] * 5
    argtypes = [ctypes.c_int64, *pointers, ctypes.c_int64, ctypes.c_void_p]
    argtypes += [ctypes.c_void_p, ctypes.c_double, ctypes.c_void_p]
    return cached_kernel("weighbridge_flags", _build_visit_kernel, argtypes)


def _build_visit_kernel() -> Kernel:
    """Per run: each row in its visit's window or not; the visit's gross masses summed (a
    visit of one row: that row's mass; null masses left out, as Polars' sum leaves them);
    each row's code: 1 missed, 0 not, 2 no visit (null)."""
    i64p, f64p, u8p = I64.as_pointer(), F64.as_pointer(), I8.as_pointer()
    k = Kernel("weighbridge_flags", [I64, i64p, u8p, i64p, f64p, i64p, I64, f64p, u8p, F64, u8p])
    (
        n_runs,
        starts,
        weighed,
        arrived,
        reading,
        declared,
        window,
        gross,
        has_gross,
        tolerance,
        out,
    ) = k.args
    b = k.b
    zero = Kernel.const(0.0, F64)

    def inside(row: Any, at: Any) -> Any:
        moment = k.load(declared, row)
        return b.and_(
            b.icmp_signed(">=", at, moment), b.icmp_signed("<=", at, b.add(moment, window))
        )

    with k.loop(k.const(0), n_runs) as run:
        first = k.load(starts, run)
        end = k.load(starts, b.add(run, k.const(1)))
        none = Kernel.const(2, I8)
        with b.if_else(b.icmp_unsigned("==", k.load(weighed, run), Kernel.const(0, I8))) as (
            unweighed,
            visited,
        ):
            with unweighed, k.loop(first, end) as row:
                k.store(none, out, row)
            with visited:
                at = k.load(arrived, run)
                total, error = k.var(F64, zero), k.var(F64, zero)
                count = k.var(I64, 0)
                only = k.var(F64, zero)
                with k.loop(first, end) as row:
                    counted = b.icmp_unsigned("!=", k.load(has_gross, row), Kernel.const(0, I8))
                    with b.if_then(b.and_(inside(row, at), counted)):
                        mass = k.load(gross, row)
                        kahan_add(k, total, error, mass)
                        count.set(b.add(count.get(), k.const(1)))
                        only.set(mass)
                one = b.icmp_signed("==", count.get(), k.const(1))
                declared_mass = b.select(one, only.get(), total.get())
                weight = k.load(reading, run)
                difference = b.fsub(declared_mass, weight)
                negative = b.fcmp_ordered("<", difference, zero)
                size = b.select(negative, b.fsub(Kernel.const(-0.0, F64), difference), difference)
                missed = b.fcmp_ordered(">", size, b.fmul(tolerance, weight))
                code = b.zext(missed, I8)
                with k.loop(first, end) as row:
                    k.store(b.select(inside(row, at), code, none), out, row)
    return k


def _flags_by_asof(
    declarations: pl.LazyFrame, arrivals: pl.LazyFrame, *, tolerance: float, window: str
) -> pl.LazyFrame:
    """``weight_far_from_weighbridge`` for any arrivals, by an as-of join per truck."""
    row = "__soft_row__"
    keys = list(TRUCK_KEYS)
    frame = declarations.with_row_index(row)
    items = (
        frame.select(row, *keys, "declared_at", "gross_mass_kg")
        .filter(pl.col("truck_id").is_not_null())
        .sort("declared_at")
    )
    visits = (
        arrivals.select(*keys, "arrived_at", "weighbridge_kg")
        .filter(pl.col("weighbridge_kg").is_not_null())
        .sort("arrived_at")
    )
    matched = items.join_asof(
        visits,
        left_on="declared_at",
        right_on="arrived_at",
        by=keys,
        strategy="forward",
        tolerance=window,
        check_sortedness=False,  # both sides are sorted above; 'by' groups defeat the check
    )
    declared = pl.col("gross_mass_kg").sum().over(*keys, "arrived_at")
    missed = (declared - pl.col("weighbridge_kg")).abs() > tolerance * pl.col("weighbridge_kg")
    flags = matched.select(
        row, pl.when(pl.col("arrived_at").is_not_null()).then(missed).alias(WEIGHBRIDGE_RULE)
    )
    # Only the row index is joined (cheap); the flag is then put beside the untouched frame.
    aligned = frame.select(row).join(flags, on=row, how="left", maintain_order="left")
    return pl.concat([declarations, aligned.drop(row)], how="horizontal")


def with_soft_flags(
    declarations: pl.LazyFrame,
    arrivals: pl.LazyFrame | None = None,
    *,
    tolerance: float = WEIGHBRIDGE_TOLERANCE,
) -> pl.LazyFrame:
    """``declarations`` with a ``soft_flags`` list of the names of the soft rules each row breaks.

    The weighbridge rule runs only when ``arrivals`` (``TruckArrival`` rows) are given. Row
    order is kept.
    """
    frame = declarations
    rules = {name: rule() for name, rule in ITEM_RULES.items()}
    if arrivals is not None:
        frame = weight_far_from_weighbridge(frame, arrivals, tolerance=tolerance)
        rules[WEIGHBRIDGE_RULE] = pl.col(WEIGHBRIDGE_RULE)
    # Each row's set of broken rules as a number (bit i: rule i), which picks its list from a
    # table of every combination: one gather instead of building a list per row.
    names = list(rules)
    combination = pl.sum_horizontal(
        pl.when(rule).then(pl.lit(1 << bit, pl.UInt32)).otherwise(pl.lit(0, pl.UInt32))
        for bit, rule in enumerate(rules.values())
    )
    table = pl.Series(
        [[n for bit, n in enumerate(names) if code >> bit & 1] for code in range(1 << len(names))],
        dtype=pl.List(pl.String),
    )
    frame = frame.with_columns(pl.lit(table).gather(combination).alias(SOFT_FLAGS))
    return frame.drop(WEIGHBRIDGE_RULE) if arrivals is not None else frame
