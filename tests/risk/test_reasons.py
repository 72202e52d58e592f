"""Reasons: strongest positive contributions, each feature once, in words with their values."""

from __future__ import annotations

import numpy as np
import pytest

from risk.reasons import (
    Contribution,
    ReasonTemplate,
    format_value,
    item_contributions,
    reason_texts,
    reason_texts_by_language,
    render,
    select,
    top_positive,
)


def test_top_positive_orders_and_drops_non_positive() -> None:
    contrib = np.array([[0.1, -0.5, 0.7, 0.0, 0.3], [-1.0, -2.0, -0.1, -0.3, -0.2]])
    index, values = top_positive(contrib, 4)
    assert index[0].tolist() == [2, 4, 0, -1]
    assert values[0, :3].tolist() == [0.7, 0.3, 0.1]
    assert index[1].tolist() == [-1, -1, -1, -1]


def test_top_positive_matches_a_full_sort() -> None:
    rng = np.random.default_rng(3)
    contrib = rng.normal(size=(200, 30))
    index, _ = top_positive(contrib, 5)
    for row in range(200):
        expected = [j for j in np.argsort(-contrib[row])[:5] if contrib[row, j] > 0]
        assert index[row, : len(expected)].tolist() == expected


def test_select_keeps_each_feature_once_with_its_strongest_item() -> None:
    chosen = select(
        [
            Contribution("value_gap", 0.4, 0.3),
            Contribution("value_gap", 0.9, 0.1),
            Contribution("importer_age", 0.5, 12),
            Contribution("weight_gap", 0.2, 1.5),
            Contribution("cheap", -0.8, 1),
        ]
    )
    assert [(c.feature, c.value) for c in chosen] == [
        ("value_gap", 0.1),
        ("importer_age", 12),
        ("weight_gap", 1.5),
    ]


def test_select_gives_three_to_five_and_drops_noise_beyond_three() -> None:
    many = [Contribution(f"f{i}", 1.0 / (i + 1) ** 3, i) for i in range(8)]
    chosen = select(many)
    # f0=1, f1=.125, f2=.037 kept as the minimum three; f3=.0156 below 10% of f0: dropped.
    assert [c.feature for c in chosen] == ["f0", "f1", "f2"]
    flat = [Contribution(f"f{i}", 1.0 - i / 100, i) for i in range(8)]
    assert len(select(flat)) == 5
    assert select([Contribution("f", -1.0, 0)]) == []


@pytest.mark.parametrize(
    ("value", "lang", "expected"),
    [
        (None, "en", "unknown"),
        (float("nan"), "ru", "нет данных"),
        (True, "en", "yes"),
        (12345, "en", "12\u202f345"),
        (0.123456, "en", "0.12"),
        (0.0123, "en", "0.012"),
        (42.0, "en", "42"),
        (57.25, "en", "57.2"),
        (3.14159, "en", "3.14"),
        ("CN", "en", "CN"),
    ],
)
def test_values_read_plainly(value: object, lang: str, expected: str) -> None:
    assert format_value(value, lang) == expected


def test_render_uses_the_catalogue_in_the_officers_language() -> None:
    template = ReasonTemplate(en="importer registered {value} days ago", ru="импортёр {value} дн.")
    assert render(template, "importer_age_days", 12, "en") == "importer registered 12 days ago"
    assert render(template, "importer_age_days", 12, "ru") == "импортёр 12 дн."
    assert render(None, "mystery", 0.5, "en") == "mystery = 0.50"


def test_item_contributions_carry_the_values_behind_them() -> None:
    contrib = np.array([[0.0, 0.6, 0.2], [0.5, -0.1, 0.0]])
    names = ["a", "b", "c"]
    values = {"a": [1.0, 2.0], "b": ["x", "y"], "c": [None, 7]}
    rows = item_contributions(contrib, names, values, k=3)
    assert rows[0] == [Contribution("b", 0.6, "x"), Contribution("c", 0.2, None)]
    assert rows[1] == [Contribution("a", 0.5, 2.0)]
    templates = {"b": ReasonTemplate(en="b is {value}")}
    assert reason_texts(rows[0], templates, "en") == ["b is x", "c = unknown"]


def test_texts_in_both_languages_are_each_languages_render() -> None:
    """Rendering once for both languages gives exactly ``reason_texts`` per language,
    including values whose words depend on the language (missing, NaN, yes/no)."""
    templates = {
        "a": ReasonTemplate(en="a is {value}", ru="а равно {value}"),
        "b": ReasonTemplate(en="only English {value}"),
    }
    values: list[object] = [None, float("nan"), True, False, 0, 12_345, 0.5, 1234.5, -0.0001]
    values += ["КZ", 3.0, 1e20]
    chosen = [
        Contribution(feature, 1.0, value)
        for value in values
        for feature in ("a", "b", "not_in_catalogue")
    ]
    both = reason_texts_by_language(chosen, templates, ("ru", "en"))
    assert both["ru"] == reason_texts(chosen, templates, "ru")
    assert both["en"] == reason_texts(chosen, templates, "en")
    assert both["ru"][0] != both["en"][0]  # "нет данных" / "unknown"
    assert reason_texts_by_language([], templates, ("ru", "en")) == {"ru": [], "en": []}
