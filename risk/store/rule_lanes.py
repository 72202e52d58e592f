"""Watch lists applied to trucks as they are published into the store.

Batch scoring ran with the rules file it was given; the supervisors' watch lists live in the
store and may have changed since (or the batch ran offline). Publishing is the one door into
the queue, so it applies the active entries once more, the way ``risk.rules`` does: a truck
with any item on a red entry goes red (whatever the capacity: a watch list is an order), a
truck whose every item is on a green entry is released unless a red rule already holds it.
The entry's reason leads the truck's reasons and those of the items it matched.
"""

from __future__ import annotations

import re

import polars as pl

from risk.rules import (
    RULE_HELPERS,
    RuleSet,
    item_rule_columns,
    truck_rule_aggregations,
    truck_rule_columns,
)

TRUCK = ["crossing", "truck_id"]
MAX_REASONS = 5
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def reasons_language(trucks: pl.DataFrame) -> str:
    """The language the scores' reasons were written in (``risk score --lang``): Russian
    when any reason is in Cyrillic, English when they are in Latin script, Russian (the
    console's default) when there are none to judge by."""
    texts = trucks.get_column("reasons").explode().drop_nulls()
    if texts.is_empty():
        return "ru"
    return "ru" if texts.str.contains(_CYRILLIC.pattern).any() else "en"


def apply_watch_lists(
    *,
    trucks: pl.DataFrame,
    declarations: pl.DataFrame,
    items: pl.DataFrame,
    rules: RuleSet,
    lang: str,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """``trucks`` and ``items`` (the store's ``Published*`` frames) with ``rules`` applied;
    and how many trucks a rule decided."""
    if not rules.rules or trucks.is_empty():
        return trucks, items, 0
    matched = items.select(
        "declaration_id", "item_no", "hs_code", "origin_country", "dispatch_country"
    ).join(
        declarations.select("declaration_id", *TRUCK, "declared_at", "importer_id"),
        on="declaration_id",
        how="left",
    )
    matched = matched.with_columns(item_rule_columns(rules, lang=lang))
    if matched.get_column("rule_lane").null_count() == matched.height:
        return trucks, items, 0
    ruled = (
        matched.group_by(TRUCK)
        .agg(truck_rule_aggregations())
        .with_columns(truck_rule_columns())
        .drop(RULE_HELPERS)
        .filter(pl.col("rule_lane").is_not_null())
        .rename({"rule_lane": "_rule_lane", "rule_reasons": "_rule_reasons"})
    )
    lane = pl.col("lane").cast(pl.String)
    # Red beats green: a truck already ruled red (by the rules file) stays red.
    held_red = (lane == "red") & (pl.col("decided_by").cast(pl.String) == "rule")
    red = pl.col("_rule_lane") == "red"
    green = (pl.col("_rule_lane") == "green") & ~held_red
    decided = red | green
    lead = pl.col("_rule_reasons")
    updated = (
        trucks.join(ruled, on=TRUCK, how="left", maintain_order="left")
        .with_columns(pl.col("_rule_lane").fill_null(""))
        .with_columns(
            lane=pl.when(red).then(pl.lit("red")).when(green).then(pl.lit("green")).otherwise(lane),
            selection=pl.when(red)
            .then(pl.lit("rule"))
            .when(green)
            .then(pl.lit("none"))
            .otherwise(pl.col("selection").cast(pl.String)),
            decided_by=pl.when(decided)
            .then(pl.lit("rule"))
            .otherwise(pl.col("decided_by").cast(pl.String)),
            reasons=pl.when(red)
            .then(
                pl.concat_list(lead, pl.col("reasons"))
                .list.unique(maintain_order=True)
                .list.head(pl.max_horizontal(pl.lit(MAX_REASONS), lead.list.len()))
            )
            .when(green)
            .then(lead)
            .otherwise(pl.col("reasons")),
        )
    )
    count = int(updated.select(decided.sum()).item())
    trucks_out = updated.select(trucks.columns).cast(dict(trucks.schema))  # type: ignore[arg-type]

    item_reasons = matched.join(
        updated.filter(decided).select(*TRUCK, "_rule_lane"), on=TRUCK, how="inner"
    ).filter(pl.col("rule_lane") == pl.col("_rule_lane"))
    items_out = (
        items.join(
            item_reasons.select("declaration_id", "item_no", "rule_reason"),
            on=["declaration_id", "item_no"],
            how="left",
            maintain_order="left",
        )
        .with_columns(
            reasons=pl.when(pl.col("rule_reason").is_not_null())
            .then(
                pl.concat_list(pl.col("rule_reason"), pl.col("reasons"))
                .list.unique(maintain_order=True)
                .list.head(MAX_REASONS)
            )
            .otherwise(pl.col("reasons"))
        )
        .select(items.columns)
        .cast(dict(items.schema))  # type: ignore[arg-type]
    )
    return trucks_out, items_out, count
