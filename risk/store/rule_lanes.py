"""Watch lists applied to trucks as they are published into the store.

Batch scoring ran with the rules file it was given; the supervisors' watch lists live in the
store and may have changed since (or the batch ran offline). Publishing is the one door into
the queue, so it applies the active entries once more, the way ``risk.rules`` does: a truck
with any item on a red entry goes red (whatever the capacity: a watch list is an order), a
truck whose every item is on a green entry is released unless a red rule already holds it.
The entry's reason leads the truck's reasons and those of the items it matched, in each
language the store keeps (``reasons`` as scored, ``reasons_ru``, ``reasons_en``).
"""

from __future__ import annotations

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
LANGS = ("ru", "en")  # the store's ``reasons_ru`` and ``reasons_en``


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
    matched = matched.with_columns(
        *item_rule_columns(rules, lang=lang),
        *(
            item_rule_columns(rules, lang=language)[1].alias(f"rule_reason_{language}")
            for language in LANGS
        ),
    )
    if matched.get_column("rule_lane").null_count() == matched.height:
        return trucks, items, 0
    ruled = _ruled(matched, "rule_reason").rename(
        {"rule_lane": "_rule_lane", "rule_reasons": "_rule_reasons"}
    )
    for language in LANGS:
        ruled = ruled.join(
            _ruled(matched, f"rule_reason_{language}").select(
                *TRUCK, pl.col("rule_reasons").alias(f"_rule_reasons_{language}")
            ),
            on=TRUCK,
            how="left",
            maintain_order="left",
        )
    lane = pl.col("lane").cast(pl.String)
    # Red beats green: a truck already ruled red (by the rules file) stays red.
    held_red = (lane == "red") & (pl.col("decided_by").cast(pl.String) == "rule")
    red = pl.col("_rule_lane") == "red"
    green = (pl.col("_rule_lane") == "green") & ~held_red
    decided = red | green

    def led(column: str, lead_column: str) -> pl.Expr:
        """``column``'s reasons with the rules' (``lead_column``) first where they decided."""
        lead = pl.col(lead_column)
        return (
            pl.when(red)
            .then(
                pl.concat_list(lead, _or_scored(column))
                .list.unique(maintain_order=True)
                .list.head(pl.max_horizontal(pl.lit(MAX_REASONS), lead.list.len()))
            )
            .when(green)
            .then(lead)
            .otherwise(pl.col(column))
            .alias(column)
        )

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
        )
        .with_columns(
            led("reasons", "_rule_reasons"),
            *(led(f"reasons_{language}", f"_rule_reasons_{language}") for language in LANGS),
        )
    )
    count = int(updated.select(decided.sum()).item())
    trucks_out = updated.select(trucks.columns).cast(dict(trucks.schema))  # type: ignore[arg-type]

    item_reasons = matched.join(
        updated.filter(decided).select(*TRUCK, "_rule_lane"), on=TRUCK, how="inner"
    ).filter(pl.col("rule_lane") == pl.col("_rule_lane"))

    def item_led(column: str, reason_column: str) -> pl.Expr:
        reason = pl.col(reason_column)
        return (
            pl.when(reason.is_not_null())
            .then(
                pl.concat_list(reason, _or_scored(column))
                .list.unique(maintain_order=True)
                .list.head(MAX_REASONS)
            )
            .otherwise(pl.col(column))
            .alias(column)
        )

    items_out = (
        items.join(
            item_reasons.select(
                "declaration_id",
                "item_no",
                "rule_reason",
                *(f"rule_reason_{language}" for language in LANGS),
            ),
            on=["declaration_id", "item_no"],
            how="left",
            maintain_order="left",
        )
        .with_columns(
            item_led("reasons", "rule_reason"),
            *(item_led(f"reasons_{language}", f"rule_reason_{language}") for language in LANGS),
        )
        .select(items.columns)
        .cast(dict(items.schema))  # type: ignore[arg-type]
    )
    return trucks_out, items_out, count


def _ruled(matched: pl.DataFrame, reason_column: str) -> pl.DataFrame:
    """``rule_lane`` and ``rule_reasons`` (from ``reason_column``) of each truck a rule
    decided."""
    return (
        matched.with_columns(pl.col(reason_column).alias("rule_reason"))
        .group_by(TRUCK)
        .agg(truck_rule_aggregations())
        .with_columns(truck_rule_columns())
        .drop(RULE_HELPERS)
        .filter(pl.col("rule_lane").is_not_null())
    )


def _or_scored(column: str) -> pl.Expr:
    """A language's reasons; the scored ones (``reasons``) where it has none: a queue scored
    in one language gets the rule's reason in each, followed by what the model found."""
    if column == "reasons":
        return pl.col(column)
    return pl.when(pl.col(column).list.len() > 0).then(pl.col(column)).otherwise(pl.col("reasons"))
