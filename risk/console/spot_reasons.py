"""Reasons of the one truck of an API call, without the batch's frames.

``pipelines.score_reasons.explain`` serves a queue: it selects, gathers and widens frames of
thousands of trucks, a dozen Polars steps that for one truck cost several times its SHAP row.
Here the same phase runs over Python values: the riskiest item (ties: the earlier one) gets
its SHAP contributions from the scorer (``contributions``, ``pred_contrib``), and the
catalogue turns the strongest into sentences through ``risk.reasons``, exactly as ``explain``
does; ``tests/console/test_console_scoring.py`` holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from pipelines.score_reasons import CATEGORICAL_SOURCES, RANDOM_REASON
from risk.reasons import (
    ReasonTemplate,
    item_contributions,
    reason_texts,
    select,
    top_positive,
)

if TYPE_CHECKING:
    from pipelines.score import ItemScores, Scorer


@dataclass(frozen=True)
class SpotReasons:
    """Reasons of the truck, of its declarations and of its items (only those that have)."""

    truck: list[str]
    declarations: dict[str, list[str]] = field(default_factory=dict)
    items: dict[tuple[str, int], list[str]] = field(default_factory=dict)


@cache
def _template(name: str) -> ReasonTemplate | None:
    from features.catalog import entry_for

    try:
        entry = entry_for(name)
    except KeyError:
        return None
    return ReasonTemplate(en=entry.reason_en, ru=entry.reason_ru)


def truck_reasons(
    scored: ItemScores,
    truck: dict[str, Any],
    scorer: Scorer,
    *,
    random_share: float,
    lang: str = "en",
) -> SpotReasons:
    """``explain`` for one truck (``truck``: its row of the lanes frame, with ``lane``,
    ``selection`` and ``rule_reasons``), explaining its riskiest item, every lane included."""
    lead = list(truck["rule_reasons"] or [])
    if truck["selection"] == "random":
        # A random pick's reason is its selection: its items get no SHAP row.
        template = RANDOM_REASON.get(lang, RANDOM_REASON["en"])
        lead.append(template.format(share=f"{random_share:.0%}"))
        return SpotReasons(truck=lead)
    risks = scored.items.get_column("risk").to_list()
    row = max(range(len(risks)), key=lambda i: (risks[i], -i))
    declaration_id = scored.items.get_column("declaration_id")[row]
    item_no = scored.items.get_column("item_no")[row]
    rule_reason = scored.items.get_column("rule_reason")[row]
    names = list(scorer.feature_names)
    features = scored.feature_frame(np.array([row]))
    by_name = dict(zip(features.columns, features.row(0), strict=True))
    values = [by_name[name] for name in names]
    # Float32 as ``feature_matrix`` casts: nulls are missing (NaN) to LightGBM.
    matrix = np.array([[np.nan if v is None else v for v in values]], dtype=np.float32)
    contrib = np.asarray(scorer.contributions(matrix))
    top, _ = top_positive(contrib)
    needed = [names[j] for j in np.unique(top[top >= 0])]
    position = {name: j for j, name in enumerate(names)}
    shown = {name: [_display_value(scored, row, name, values[position[name]])] for name in needed}
    (contributions,) = item_contributions(contrib, names, shown)
    templates = {name: t for name in needed if (t := _template(name)) is not None}
    chosen = select(contributions)
    texts = reason_texts(chosen, templates, lang)
    item = [rule_reason, *texts][:5] if rule_reason is not None else texts
    return SpotReasons(
        truck=[*lead, *texts][: max(5, len(lead))],
        declarations={declaration_id: reason_texts(select(contributions), templates, lang)},
        items={(declaration_id, item_no): item},
    )


def _display_value(scored: ItemScores, row: int, name: str, value: object) -> object:
    """What an officer reads behind a reason: a categorical's text, else the feature value."""
    if name in CATEGORICAL_SOURCES:
        return scored.raw[row : row + 1].select(CATEGORICAL_SOURCES[name]).item()
    source = name[: -len("_code")] if name.endswith("_code") else None
    if source is not None and source in scored.raw.columns:
        return scored.raw[row : row + 1].select(pl.col(source).cast(pl.String)).item()
    return value
