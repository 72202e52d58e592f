"""Reasons an officer reads: the features that pushed a score up, in plain words, with values.

The contributions are SHAP values (LightGBM ``pred_contrib=True``, in log-odds); the words
come from the feature catalogue, whose reason texts hold a ``{value}`` placeholder for the
value behind the reason. Only positive contributions are reasons: a feature that lowered the
risk is no reason to inspect. A truck's (or a declaration's) reasons are the strongest
contributions over its items, each feature once, with the value from the item where it
weighed most.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

MAX_REASONS = 5
MIN_REASONS = 3
# A contribution below this share of the strongest one is noise next to it, unless needed to
# reach MIN_REASONS.
RELATIVE_FLOOR = 0.1


@dataclass(frozen=True)
class ReasonTemplate:
    """The reason text of one feature, with ``{value}`` where its value goes."""

    en: str
    ru: str = ""

    def text(self, lang: str) -> str:
        return self.ru if lang == "ru" and self.ru else self.en


@dataclass(frozen=True)
class Contribution:
    """One feature's push on one item's score, and the value it had there."""

    feature: str
    contribution: float
    value: object


def top_positive(contributions: np.ndarray, k: int = MAX_REASONS) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``k`` largest contributions per row, largest first.

    ``contributions`` is rows x features (no bias column). Entries that are not positive come
    back as index -1.
    """
    n, width = contributions.shape
    k = min(k, width)
    if n == 0 or k == 0:
        return np.empty((n, 0), dtype=np.int64), np.empty((n, 0))
    part = np.argpartition(-contributions, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(contributions, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    index = np.take_along_axis(part, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    index = np.where(values > 0, index, -1)
    return index, values


def select(contributions: Sequence[Contribution]) -> list[Contribution]:
    """3 to 5 reasons from candidate contributions: positive, strongest first, each feature once.

    Fewer than 3 only when fewer features pushed the score up at all.
    """
    best: dict[str, Contribution] = {}
    for c in contributions:
        if c.contribution > 0 and (
            c.feature not in best or c.contribution > best[c.feature].contribution
        ):
            best[c.feature] = c
    ranked = sorted(best.values(), key=lambda c: (-c.contribution, c.feature))[:MAX_REASONS]
    if not ranked:
        return []
    floor = ranked[0].contribution * RELATIVE_FLOOR
    return [c for i, c in enumerate(ranked) if i < MIN_REASONS or c.contribution >= floor]


def format_value(value: object, lang: str = "en") -> str:
    """A value as an officer reads it: few digits, thousands grouped, no float noise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "нет данных" if lang == "ru" else "unknown"
    if isinstance(value, bool):
        return ("да" if value else "нет") if lang == "ru" else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}".replace(",", "\u202f")
        magnitude = abs(value)
        digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 0.1 else 3
        return f"{value:,.{digits}f}".replace(",", "\u202f")
    return str(value)


def _worded(value: object) -> bool:
    """Whether ``format_value`` words the value in the officer's language (missing, yes/no)
    rather than writing it in digits or as it is."""
    return (
        value is None or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value))
    )


def render(template: ReasonTemplate | None, feature: str, value: object, lang: str) -> str:
    """The reason sentence; a feature missing from the catalogue still reads sensibly."""
    return _sentence(template, feature, format_value(value, lang), lang)


def _sentence(template: ReasonTemplate | None, feature: str, shown: str, lang: str) -> str:
    if template is None:
        return f"{feature} = {shown}"
    return template.text(lang).replace("{value}", shown)


def reason_texts(
    chosen: Sequence[Contribution], templates: Mapping[str, ReasonTemplate], lang: str
) -> list[str]:
    return [render(templates.get(c.feature), c.feature, c.value, lang) for c in chosen]


def reason_texts_by_language(
    chosen: Sequence[Contribution],
    templates: Mapping[str, ReasonTemplate],
    langs: Sequence[str],
) -> dict[str, list[str]]:
    """``reason_texts`` in each of ``langs``, the same strings; each value is formatted once
    where its text does not depend on the language (numbers and strings)."""
    out: dict[str, list[str]] = {lang: [] for lang in langs}
    for c in chosen:
        template = templates.get(c.feature)
        per_language = _worded(c.value)
        shared = "" if per_language else format_value(c.value)
        for lang in langs:
            shown = format_value(c.value, lang) if per_language else shared
            out[lang].append(_sentence(template, c.feature, shown, lang))
    return out


def item_contributions(
    contributions: np.ndarray,
    feature_names: Sequence[str],
    values: Mapping[str, Sequence[object]],
    *,
    k: int = MAX_REASONS,
) -> list[list[Contribution]]:
    """Per row, the ``k`` strongest positive contributions with the feature's value there.

    ``values`` maps a feature name to its column of display values (same row order).
    """
    index, amount = top_positive(contributions, k)
    out: list[list[Contribution]] = []
    for row in range(index.shape[0]):
        picks = []
        for j in range(index.shape[1]):
            column = int(index[row, j])
            if column < 0:
                break
            name = feature_names[column]
            picks.append(Contribution(name, float(amount[row, j]), values[name][row]))
        out.append(picks)
    return out
