"""Soft rules: odd but possible declarations. They keep the row and mark it, never drop it.

An odd declaration is exactly what the model must see, so these rules only add rule names to
a ``soft_flags`` list column (``with_soft_flags``). Hard rules, which send a row to
quarantine, live in ``risk.schemas``.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

SOFT_FLAGS = "soft_flags"
# A weighbridge and a declaration disagree beyond this share of the weighbridge reading.
WEIGHBRIDGE_TOLERANCE = 0.10
# Declarations and the weighbridge reading of one truck visit lie within this window.
VISIT_WINDOW = "3d"


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
    row = "__soft_row__"
    keys = ["crossing", "truck_id"]
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
    flags = [pl.when(rule()).then(pl.lit(name)) for name, rule in ITEM_RULES.items()]
    if arrivals is not None:
        frame = weight_far_from_weighbridge(frame, arrivals, tolerance=tolerance)
        flags.append(pl.when(pl.col(WEIGHBRIDGE_RULE)).then(pl.lit(WEIGHBRIDGE_RULE)))
    # Joined into one string and split again: ~15x faster than concat_list + drop_nulls.
    joined = pl.concat_str(flags, separator=",", ignore_nulls=True)
    names = joined.str.split(",").list.filter(pl.element() != "")
    frame = frame.with_columns(names.alias(SOFT_FLAGS))
    return frame.drop(WEIGHBRIDGE_RULE) if arrivals is not None else frame
