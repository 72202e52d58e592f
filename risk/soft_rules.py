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
    """Per item: does its truck's summed declared gross mass miss the weighbridge reading?

    ``weighbridge_kg`` is taken as the weight of the load (tare already subtracted). Each item
    is matched to the nearest arrival of its truck at its crossing within ``window``; the
    declared gross mass of every item matched to one arrival is summed and compared with the
    reading. Returns ``declaration_id``, ``item_no`` and a Boolean column named after the rule
    (null where there is no truck, no arrival or no reading).
    """
    keys = ["crossing", "truck_id"]
    items = (
        declarations.select("declaration_id", "item_no", *keys, "declared_at", "gross_mass_kg")
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
        strategy="nearest",
        tolerance=window,
    )
    visit = [*keys, "arrived_at"]
    declared = pl.col("gross_mass_kg").sum().over(visit)
    missed = (declared - pl.col("weighbridge_kg")).abs() > tolerance * pl.col("weighbridge_kg")
    return matched.select(
        "declaration_id",
        "item_no",
        pl.when(pl.col("arrived_at").is_not_null()).then(missed).alias(WEIGHBRIDGE_RULE),
    )


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
        truck_level = weight_far_from_weighbridge(declarations, arrivals, tolerance=tolerance)
        frame = frame.join(
            truck_level, on=["declaration_id", "item_no"], how="left", maintain_order="left"
        )
        flags.append(pl.when(pl.col(WEIGHBRIDGE_RULE)).then(pl.lit(WEIGHBRIDGE_RULE)))
    frame = frame.with_columns(pl.concat_list(flags).list.drop_nulls().alias(SOFT_FLAGS))
    return frame.drop(WEIGHBRIDGE_RULE) if arrivals is not None else frame
