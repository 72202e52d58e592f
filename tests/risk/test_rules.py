"""Hard rules: matching, red before green, truck aggregation, the rules file."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from risk.errors import RiskError
from risk.rules import (
    RULE_HELPERS,
    HardRule,
    RuleSet,
    item_rule_columns,
    load_rules,
    truck_rule_aggregations,
    truck_rule_columns,
)

ITEMS = pl.DataFrame(
    {
        "truck": ["a", "a", "b", "b", "c", "d"],
        "importer_id": ["I1", "I2", "I2", "I2", "I3", "I3"],
        "hs_code": ["8517120000", "6403", "6403", "6404", "8806", "8806"],
        "origin_country": ["CN", "CN", "TR", "TR", "CN", "CN"],
        "dispatch_country": ["KZ", "KZ", None, None, "KZ", "CN"],
        "crossing": ["A"] * 6,
        "declared_at": [datetime(2025, 10, 1)] * 5 + [datetime(2026, 8, 1)],
    }
)
RULES = RuleSet(
    rules=(
        HardRule(name="aeo", lane="green", reason_en="trusted trader", importer_ids=("I1", "I2")),
        HardRule(
            name="phones-drones",
            lane="red",
            reason_en="priority control",
            reason_ru="приоритетный контроль",
            hs_prefixes=("8517", "8806"),
            origin_countries=("CN",),
            valid_until=date(2026, 6, 30),
        ),
    )
)


def test_items_match_every_named_criterion_red_first() -> None:
    out = ITEMS.with_columns(item_rule_columns(RULES))
    # I1 is trusted but its phone is under a priority control: red wins.
    assert out["rule_lane"].to_list() == ["red", "green", "green", "green", "red", None]
    assert out["rule_reason"][0] == "Rule phones-drones: priority control"
    # The last item is past the rule's end date.
    assert out["rule_reason"][5] is None


def test_reasons_speak_the_officers_language() -> None:
    out = ITEMS.with_columns(item_rule_columns(RULES, lang="ru"))
    assert out["rule_reason"][0] == "Правило phones-drones: приоритетный контроль"


def test_truck_is_red_if_any_item_is_green_only_if_all_are() -> None:
    items = ITEMS.with_columns(item_rule_columns(RULES)).with_columns(
        pl.when(pl.col("truck") == "d").then(pl.lit("a")).otherwise(pl.col("truck")).alias("truck")
    )
    trucks = (
        items.group_by("truck", maintain_order=True)
        .agg(truck_rule_aggregations())
        .with_columns(truck_rule_columns())
        .drop(RULE_HELPERS)
    )
    assert trucks.rows() == [
        ("a", "red", ["Rule phones-drones: priority control"]),
        ("b", "green", ["Rule aeo: trusted trader"]),
        ("c", "red", ["Rule phones-drones: priority control"]),
    ]
    mixed = items.filter(pl.col("truck") == "b").with_columns(
        rule_lane=pl.Series(["green", None]), rule_reason=pl.Series(["Rule aeo: x", None])
    )
    one = mixed.group_by("truck").agg(truck_rule_aggregations()).with_columns(truck_rule_columns())
    assert one["rule_lane"].to_list() == [None]
    assert one["rule_reasons"].to_list() == [[]]


def test_no_rules_means_no_rule_lane() -> None:
    out = ITEMS.with_columns(item_rule_columns(RuleSet()))
    assert out["rule_lane"].null_count() == ITEMS.height


def test_a_rule_without_criteria_is_refused() -> None:
    with pytest.raises(ValidationError, match="names no criterion"):
        HardRule(name="everything", lane="red", reason_en="oops")


def test_rules_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rule]]\nname = "w"\nlane = "red"\nimporter_ids = ["I3"]\n'
        'reason_en = "watch list"\nvalid_from = 2025-01-01\n',
        encoding="utf-8",
    )
    rules = load_rules(path)
    assert rules.rules[0].importer_ids == ("I3",)
    assert rules.rules[0].valid_from == date(2025, 1, 1)
    out = ITEMS.with_columns(item_rule_columns(rules))
    assert out["rule_lane"].to_list() == [None, None, None, None, "red", "red"]


def test_shipped_rules_file_is_empty_so_the_model_decides() -> None:
    assert load_rules().rules == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nname = "w"\nlane = "blue"\nreason_en = "x"\nimporter_ids = ["I"]\n', "lane"),
        ('[[rule]]\nname = "w"\nlane = "red"\nreason_en = "x"\n', "no criterion"),
        ('[[rule]]\nname = "w"\nlane = "red"\nreason_en = "x"\nimporters = ["I"]\n', "importers"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_bad_rules_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RiskError, match=message):
        load_rules(path)


def test_missing_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RiskError, match="not found"):
        load_rules(tmp_path / "none.toml")
