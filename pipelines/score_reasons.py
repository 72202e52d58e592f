"""Reasons of a scoring batch: SHAP contributions of the trucks officers will see, in words.

Exact SHAP (LightGBM's ``pred_contrib`` values, through ``experiments.shap`` by way of
``Scorer.contributions``) still costs tens of predictions per row, so it runs only for the
items of trucks that end red or yellow, and per truck only for its riskiest items (one by
default: it dominates the truck's risk). The contributions become sentences through the
feature catalogue (``risk.reasons``), in Russian and in English (``reasons_ru``, ``reasons_en``;
``reasons`` is the one ``lang`` names); a truck's hard rule or random selection is stated first.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.score_features import KEYS, TRUCK, ItemScores, Scorer, feature_matrix
from risk.lanes import CapacityConfig
from risk.reasons import (
    Contribution,
    ReasonTemplate,
    reason_texts_by_language,
    select,
    top_positive,
)

REASON_LANES = ("red", "yellow")
# The languages every reason is written in (``reasons_ru``, ``reasons_en``), in this order.
LANGS = ("ru", "en")
# The row (in the batch's items) of each truck's riskiest item, kept by ``aggregate_trucks``:
# the item a truck explains, found without matching a million items against the trucks.
TOP_ITEM = "top_item_row"
# SHAP for the riskiest item of each red or yellow truck: it dominates the truck's risk, and
# one explained row per truck keeps a 7,000-truck queue's reasons within seconds.
MAX_ITEMS_EXPLAINED = 1
RANDOM_REASON = {
    "en": "Random selection: the mandatory {share} share inspected whatever the score",
    "ru": "Случайный отбор: обязательная доля {share} проверяется независимо от оценки",
}
# Categorical features reach the model as integer codes; an officer reads the value itself.
CATEGORICAL_SOURCES = {
    "origin_country_code": pl.col("origin_country"),
    "dispatch_country_code": pl.col("dispatch_country"),
    "destination_country_code": pl.col("destination_country"),
    "procedure_code": pl.col("procedure").cast(pl.String),
    "hs_chapter_code": pl.col("hs_code").str.slice(0, 2),
    "crossing_code": pl.col("crossing"),
}
CATEGORICAL_SOURCE_COLUMNS = (
    "origin_country",
    "dispatch_country",
    "destination_country",
    "procedure",
    "hs_code",
    "crossing",
)


def explain(
    scored: ItemScores,
    trucks: pl.DataFrame,
    scorer: Scorer,
    *,
    reasons_for: Collection[str] = REASON_LANES,
    max_items_explained: int = MAX_ITEMS_EXPLAINED,
    random_share: Mapping[str | None, float] | None = None,
    lang: str = "en",
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Phase 4: reasons per item, declaration and truck for trucks in ``reasons_for`` lanes.

    ``trucks`` carries the lanes (``truck_key``, ``crossing``, ``lane``, ``selection``,
    ``rule_reasons``). Returns three frames keyed by (``declaration_id``, ``item_no``),
    ``declaration_id`` and (``truck_key``, ``crossing``), each with ``reasons`` (in
    ``lang``), ``reasons_ru``, ``reasons_en`` and ``reason_features``; only rows that have
    reasons appear. SHAP runs once; only the texts are written twice.

    A random pick's reason is its selection: the model did not choose it, and the random
    share grows with the queue (3% of a million-item day is thousands of trucks), so its
    items get no SHAP row.
    """
    flagged = trucks.filter(pl.col("lane").is_in(list(reasons_for)))
    targets = flagged.filter(pl.col("selection") != "random")
    explained = _explained_items(scored.items, targets, max_items_explained)
    rows = explained.get_column("_row").to_numpy()
    names = list(scorer.feature_names)
    if len(rows):
        matrix = feature_matrix(scored.feature_frame(rows), names)
        contrib = np.asarray(scorer.contributions(matrix))
    else:
        contrib = np.empty((0, len(names)))
    top, amount = top_positive(contrib)
    needed = [names[j] for j in np.unique(top[top >= 0])]
    values = _display_values(scored, rows, needed)
    # ``risk.reasons.item_contributions`` from the ranking already made, read as Python
    # numbers once (a NumPy scalar per cell costs more than the SHAP rows' reasons).
    per_item = [
        [
            Contribution(names[column], weight, values[names[column]][row])
            for column, weight in zip(columns, weights, strict=True)
            if column >= 0
        ]
        for row, (columns, weights) in enumerate(zip(top.tolist(), amount.tolist(), strict=True))
    ]
    templates = _templates(needed)
    # Every text in both languages (officers read either; ``reasons`` keeps ``lang``'s):
    # rule reasons through the scored batch's translations, the rest rendered twice.
    translated = scored.rule_texts

    def both(rule_reason: str) -> tuple[str, str]:
        return translated.get(rule_reason, (rule_reason, rule_reason))

    # Each item's reasons are rendered once, in both languages; a declaration or truck with
    # one explained item (the usual case: one per truck) has that item's reasons.
    rendered: list[tuple[list[Contribution], dict[str, list[str]]]] = []
    item_texts: dict[str, list[list[str]]] = {"ru": [], "en": []}
    item_features: list[list[str]] = []
    by_declaration: dict[str, list[int]] = {}
    by_truck: dict[tuple[str, str], list[int]] = {}
    for index, ((declaration_id, key, crossing, rule_reason), contributions) in enumerate(
        zip(
            explained.select("declaration_id", *TRUCK, "rule_reason").iter_rows(),
            per_item,
            strict=True,
        )
    ):
        chosen = select(contributions)
        texts = reason_texts_by_language(chosen, templates, LANGS)
        rendered.append((chosen, texts))
        rule_pair = both(rule_reason) if rule_reason is not None else None
        for position, language in enumerate(LANGS):
            item_texts[language].append(
                [rule_pair[position], *texts[language]][:5]
                if rule_pair is not None
                else texts[language]
            )
        item_features.append([c.feature for c in chosen])
        by_declaration.setdefault(declaration_id, []).append(index)
        by_truck.setdefault((key, crossing), []).append(index)

    def combined(indices: list[int]) -> tuple[list[Contribution], dict[str, list[str]]]:
        """The reasons over these items: the strongest contributions, each feature once."""
        if len(indices) == 1:
            return rendered[indices[0]]
        chosen = select([c for i in indices for c in per_item[i]])
        return chosen, reason_texts_by_language(chosen, templates, LANGS)

    declaration_texts: dict[str, list[list[str]]] = {"ru": [], "en": []}
    declaration_features: list[list[str]] = []
    for indices in by_declaration.values():
        chosen, texts = combined(indices)
        for language in LANGS:
            declaration_texts[language].append(texts[language])
        declaration_features.append([c.feature for c in chosen])

    share = random_share or {}
    random_texts: dict[str | None, list[str]] = {}
    no_texts: dict[str, list[str]] = {language: [] for language in LANGS}
    truck_texts: dict[str, list[list[str]]] = {"ru": [], "en": []}
    truck_features: list[list[str]] = []
    for key, crossing, selection, rule_reasons in flagged.select(
        *TRUCK, "selection", "rule_reasons"
    ).iter_rows():
        explained_here = by_truck.get((key, crossing))
        chosen, texts = combined(explained_here) if explained_here else ([], no_texts)
        pairs = [both(reason) for reason in rule_reasons or []]
        if selection == "random" and crossing not in random_texts:
            random_texts[crossing] = [
                _random_reason(share.get(crossing, 0.03), language) for language in LANGS
            ]
        for position, language in enumerate(LANGS):
            lead = [pair[position] for pair in pairs]
            if selection == "random":
                lead.append(random_texts[crossing][position])
            truck_texts[language].append([*lead, *texts[language]][: max(5, len(lead))])
        truck_features.append([c.feature for c in chosen])

    shown = "ru" if lang == "ru" else "en"  # other languages read English, as ``render`` does

    def reasons(
        frame: pl.DataFrame, texts: dict[str, list[list[str]]], names: list[list[str]]
    ) -> pl.DataFrame:
        return frame.with_columns(
            _string_lists("reasons", texts[shown]),
            _string_lists("reasons_ru", texts["ru"]),
            _string_lists("reasons_en", texts["en"]),
            _string_lists("reason_features", names),
        )

    declaration_ids = pl.DataFrame(
        {"declaration_id": list(by_declaration)}, schema={"declaration_id": pl.String}
    )
    return (
        reasons(explained.select(KEYS), item_texts, item_features),
        reasons(declaration_ids, declaration_texts, declaration_features),
        reasons(flagged.select(TRUCK), truck_texts, truck_features),
    )


_EXPLAINED_COLUMNS = ["declaration_id", "item_no", *TRUCK, "rule_reason"]


def _explained_items(items: pl.DataFrame, targets: pl.DataFrame, per_truck: int) -> pl.DataFrame:
    """``_row`` and the keys of the items to explain: each target truck's ``per_truck``
    riskiest items (ties: the earlier row), in the batch's row order.

    With one item per truck the trucks carry its row (``TOP_ITEM``); the rows are checked
    against the trucks' keys, and a frame whose rows do not match (trucks aggregated from
    another batch) is matched by key instead.
    """
    if per_truck == 1 and TOP_ITEM in targets.columns:
        rows = targets.get_column(TOP_ITEM).cast(pl.Int64).to_numpy()
        if not len(rows):
            return items.select(_EXPLAINED_COLUMNS).clear().with_row_index("_row")
        if rows.min() >= 0 and rows.max() < items.height:
            picked = items.select(_EXPLAINED_COLUMNS)[rows]
            if picked.select(TRUCK).equals(targets.select(TRUCK)):
                order = np.argsort(rows, kind="stable")
                return picked[order].select(
                    pl.Series("_row", rows[order], dtype=pl.UInt32), *_EXPLAINED_COLUMNS
                )
    return (
        items.select(*_EXPLAINED_COLUMNS, "risk")
        .with_row_index("_row")
        .join(targets.select(TRUCK), on=TRUCK, how="semi")
        .sort([*TRUCK, "risk", "_row"], descending=[False, False, True, False])
        .filter(pl.int_range(pl.len()).over(TRUCK) < per_truck)
        .sort("_row")
        .drop("risk")
    )


def _string_lists(name: str, lists: list[list[str]]) -> pl.Series:
    """A List(String) column from Python lists, built in one pass through Arrow (Polars
    builds a Series per inner list otherwise: seconds for a queue's trucks)."""
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum([len(inner) for inner in lists], out=offsets[1:])
    flat = pa.array(list(itertools.chain.from_iterable(lists)), type=pa.string())
    array = pa.ListArray.from_arrays(pa.array(offsets), flat)
    series = pl.Series(name, array)
    return series.cast(pl.List(pl.String)) if series.dtype != pl.List(pl.String) else series


def _random_reason(share: float, lang: str) -> str:
    return RANDOM_REASON.get(lang, RANDOM_REASON["en"]).format(share=f"{share:.0%}")


def _templates(names: Sequence[str]) -> dict[str, ReasonTemplate]:
    from features.catalog import entry_for

    templates = {}
    for name in names:
        try:
            entry = entry_for(name)
        except KeyError:
            continue
        templates[name] = ReasonTemplate(en=entry.reason_en, ru=entry.reason_ru)
    return templates


def _display_values(
    scored: ItemScores, rows: np.ndarray, names: Sequence[str]
) -> dict[str, list[object]]:
    """The values an officer reads behind each reason: categoricals decoded to their text."""
    if not len(rows) or not names:
        return {}
    picked = scored.feature_frame(rows).select(names)
    raw = scored.raw[rows]
    values: dict[str, list[object]] = {}
    for name in names:
        if name in CATEGORICAL_SOURCES:
            values[name] = raw.select(CATEGORICAL_SOURCES[name]).to_series().to_list()
        elif name.endswith("_code") and name[: -len("_code")] in raw.columns:
            values[name] = raw.get_column(name[: -len("_code")]).cast(pl.String).to_list()
        else:
            values[name] = picked.get_column(name).to_list()
    return values


def random_shares(
    capacity: CapacityConfig, crossings: Sequence[str | None]
) -> dict[str | None, float]:
    """The random share in force at each crossing, for the reason text."""
    return {name: capacity.for_crossing(name).random_share for name in crossings}
