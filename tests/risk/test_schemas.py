"""The canonical schemas' hard rules: each accepts what it should and rejects what it should."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dataframely as dy
import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from risk.schemas import (
    HS_CODE_PATTERN,
    DeclarationItem,
    GroundTruth,
    InspectionOutcome,
    TruckArrival,
    empty,
    iso_countries,
)
from risk.soft_rules import RULE_NAMES, with_soft_flags


def items(n: int = 8, seed: int = 11) -> pl.DataFrame:
    """Valid declaration items sampled from the schema (countries drawn from the ISO list)."""
    rng = np.random.default_rng(seed)
    overrides = {
        "origin_country": rng.choice(["CN", "KZ", "TR"], n).tolist(),
        "dispatch_country": rng.choice(["KZ", "CN"], n).tolist(),
        "destination_country": rng.choice(["RU", "BY"], n).tolist(),
        "hs_code": rng.choice(["8517120000", "847130"], n).tolist(),
        "currency": rng.choice(["USD", "CNY"], n).tolist(),
    }
    return DeclarationItem.sample(n, generator=dy.random.Generator(seed=seed), overrides=overrides)


def with_value(frame: pl.DataFrame, column: str, value: Any, row: int = 0) -> pl.DataFrame:
    dtype = frame.schema[column]
    new = pl.lit(value, dtype=dtype) if value is not None else pl.lit(None, dtype=dtype)
    index = pl.int_range(pl.len())
    return frame.with_columns(
        pl.when(index == row).then(new).otherwise(pl.col(column)).alias(column)
    )


def schema_of(schema: type[dy.Schema]) -> pl.Schema:
    return pl.Schema({name: column.dtype for name, column in schema.columns().items()})


def failed_rules(frame: pl.DataFrame) -> dict[str, int]:
    return DeclarationItem.filter(frame).failure.counts()


def test_sampled_items_are_valid() -> None:
    assert DeclarationItem.is_valid(items())


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("declaration_id", None, "declaration_id|nullability"),
        ("declaration_id", "", "declaration_id|min_length"),
        ("item_no", 0, "item_no|min"),
        ("declared_at", None, "declared_at|nullability"),
        ("crossing", None, "crossing|nullability"),
        ("importer_id", None, "importer_id|nullability"),
        ("hs_code", "85.17", "hs_code|regex"),
        ("hs_code", "851", "hs_code|regex"),
        ("hs_code", "85171200001", "hs_code|regex"),
        ("hs_code", None, "hs_code|nullability"),
        ("origin_country", "CHN", "origin_country_is_iso"),
        ("origin_country", "cn", "origin_country_is_iso"),
        ("origin_country", None, "origin_country|nullability"),
        ("dispatch_country", "UK", "dispatch_country_is_iso"),
        ("destination_country", "SU", "destination_country_is_iso"),
        ("net_mass_kg", -0.5, "net_mass_kg|min"),
        ("gross_mass_kg", -1.0, "gross_mass_kg|min"),
        ("quantity", -3.0, "quantity|min"),
        ("invoice_value", -10.0, "invoice_value|min"),
        ("invoice_value", float("nan"), "invoice_value|nan"),
        ("customs_value_usd", float("inf"), "customs_value_usd|inf"),
        ("duty_rate_pct", -5.0, "duty_rate_pct|min"),
        ("currency", "usd", "currency|regex"),
    ],
)
def test_each_hard_rule_rejects(column: str, value: Any, rule: str) -> None:
    assert failed_rules(with_value(items(), column, value)) == {rule: 1}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("hs_code", "0101"),  # 4 digits: a heading
        ("hs_code", "010121"),
        ("hs_code", "8517120000"),  # EAEU 10-digit
        ("dispatch_country", None),
        ("destination_country", None),
        ("net_mass_kg", 0.0),  # zero is a soft rule, not a hard one
        ("invoice_value", 0.0),
        ("truck_id", None),
        ("duty_rate_pct", None),
    ],
)
def test_valid_edge_values_are_accepted(column: str, value: Any) -> None:
    assert failed_rules(with_value(items(), column, value)) == {}


@pytest.mark.parametrize("code", ["ZZ", "AA", "QM", "QZ", "XA", "XK", "XZ"])
def test_user_assigned_unknown_country_codes_are_valid(code: str) -> None:
    frame = with_value(with_value(items(), "origin_country", code), "dispatch_country", code)
    assert code in iso_countries()
    assert failed_rules(frame) == {}


@pytest.mark.parametrize("code", ["QL", "XX ", "ZY", "EU", "UK", "A1", ""])
def test_non_iso_codes_are_rejected(code: str) -> None:
    assert code not in iso_countries()
    assert failed_rules(with_value(items(), "origin_country", code)) == {"origin_country_is_iso": 1}


def test_iso_list_holds_every_assigned_code() -> None:
    codes = iso_countries()
    assert {"CN", "KZ", "RU", "BY", "KG", "AM", "UZ", "TR", "KR", "DE"} <= codes
    assert len([c for c in codes if c.isalpha() and len(c) == 2]) == len(codes)
    assert len(codes) == 249 + 1 + 1 + 14 + 26  # ISO + AA + ZZ + QM..QZ + XA..XZ


@given(st.from_regex(r"\A[0-9]{4,10}\Z"))
def test_any_4_to_10_digit_code_is_a_valid_hs_code(code: str) -> None:
    assert failed_rules(with_value(items(2), "hs_code", code)) == {}


@given(st.text(min_size=1, max_size=12).filter(lambda s: not s.isascii() or not s.isdigit()))
def test_non_digit_hs_codes_are_rejected(code: str) -> None:
    assert failed_rules(with_value(items(2), "hs_code", code)) == {"hs_code|regex": 1}


def test_hs_code_pattern_keeps_leading_zeros() -> None:
    assert pl.Series(["0101"]).str.contains(HS_CODE_PATTERN).all()


def test_duplicate_item_key_rejects_both_copies() -> None:
    frame = items()
    frame = pl.concat([frame, frame[:1]])
    assert failed_rules(frame) == {"primary_key": 2}


def test_same_declaration_different_items_is_fine() -> None:
    frame = items(2).with_columns(
        declaration_id=pl.lit("D1"), item_no=pl.Series([1, 2], dtype=pl.Int32)
    )
    assert failed_rules(frame) == {}


def _outcome(**changes: Any) -> pl.DataFrame:
    row = {
        "declaration_id": "D1",
        "item_no": 1,
        "truck_id": "T1",
        "crossing": "A",
        "lane": "red",
        "inspected": True,
        "selection": "random",
        "result": "clean",
        "extra_duty_usd": None,
        "officer_id": "O1",
        "recorded_at": dt.datetime(2025, 10, 2),
    } | changes
    return pl.DataFrame([row]).cast(schema_of(InspectionOutcome))


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({}, None),
        ({"inspected": False, "selection": "none", "result": None, "lane": "green"}, None),
        ({"item_no": None}, None),  # the result applies to the whole declaration
        ({"result": None}, "result_only_when_inspected"),
        ({"inspected": False, "selection": "none"}, "result_only_when_inspected"),
        ({"inspected": False, "result": None}, "not_inspected_means_no_selection"),
        ({"extra_duty_usd": -1.0}, "extra_duty_usd|min"),
        ({"declaration_id": None}, "declaration_id|nullability"),
    ],
)
def test_inspection_outcome_rules(changes: dict[str, Any], rule: str | None) -> None:
    counts = InspectionOutcome.filter(_outcome(**changes)).failure.counts()
    assert counts == ({} if rule is None else {rule: 1})


def test_truck_arrival_and_ground_truth_rules() -> None:
    arrival = pl.DataFrame(
        {
            "crossing": ["A", "A"],
            "truck_id": ["T1", "T2"],
            "arrived_at": [dt.datetime(2025, 10, 1)] * 2,
            "weighbridge_kg": [None, -1.0],
        }
    ).cast({"arrived_at": pl.Datetime("us")})
    assert TruckArrival.filter(arrival).failure.counts() == {"weighbridge_kg|min": 1}
    truth = pl.DataFrame(
        {"declaration_id": ["D"], "item_no": [1], "scheme": ["smuggling"], "duty_evaded_usd": [0.0]}
    ).cast({"item_no": pl.Int32})
    assert not GroundTruth.is_valid(truth, cast=True)  # 'smuggling' is no scheme


def test_empty_frames_have_the_schema() -> None:
    assert empty(DeclarationItem).schema == schema_of(DeclarationItem)
    assert empty(DeclarationItem).height == 0


def test_soft_rules_keep_and_mark_rows() -> None:
    frame = items(4).with_columns(
        net_mass_kg=pl.Series([0.0, 10.0, 10.0, None]),
        gross_mass_kg=pl.Series([5.0, 9.0, 11.0, None]),
        invoice_value=pl.Series([1.0, 1.0, 0.0, 1.0]),
        customs_value_usd=pl.Series([1.0, 1.0, 0.0, 1.0]),
    )
    flagged = with_soft_flags(frame.lazy()).collect()
    assert flagged.height == frame.height
    assert flagged["soft_flags"].to_list() == [
        ["zero_mass"],
        ["gross_below_net"],
        ["zero_value"],
        [],
    ]
    assert set(RULE_NAMES) == {
        "zero_mass",
        "zero_value",
        "gross_below_net",
        "weight_far_from_weighbridge",
    }
