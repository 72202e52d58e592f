"""The hard rules' and the derived value's shortcuts change no result.

``validate.split`` decides by one pass of aggregates that every rule holds (then dataframely's
filter, which copies every column, is skipped); ``parse.parse_columns`` leaves out the
derived USD value where the source gives one in every row. Each is held equal to the path
it skips (forced by patching the proof to fail).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dataframely as dy
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pipelines.ingest import parse as parse_module
from pipelines.ingest import read_source, validate
from pipelines.ingest.parse import BAD
from pipelines.ingest.profile import FieldSpec
from pipelines.ingest.text_ends import all_in_codes, all_in_pairs, all_of_class
from pipelines.ingest.validate import ROW
from risk.schemas import DeclarationItem, iso_countries


def parsed_items(n: int = 50, seed: int = 3) -> pl.DataFrame:
    """Valid parsed-looking items: canonical columns, a row id, failure flags all False."""
    rng = np.random.default_rng(seed)
    overrides = {
        "origin_country": rng.choice(["CN", "KZ", "RU", "TR"], n).tolist(),
        "dispatch_country": rng.choice(np.array(["CN", "KZ", None], dtype=object), n).tolist(),
        "destination_country": rng.choice(["RU", "KZ", "BY"], n).tolist(),
        "hs_code": rng.choice(["8517120000", "0101", "847130"], n).tolist(),
        "currency": rng.choice(["USD", "CNY", "RUB", "KZT", "EUR"], n).tolist(),
    }
    frame = DeclarationItem.sample(n, generator=dy.random.Generator(seed=seed), overrides=overrides)
    return frame.with_columns(
        pl.when(pl.col(pl.String).str.len_bytes() > 0).then(pl.col(pl.String)).name.keep(),
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW),
        pl.lit(False).alias(BAD + "item_no"),
    )


def general_split(parsed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validate, "_all_rules_hold", lambda *args: False)
        return validate.split(parsed, DeclarationItem, ())


# One value per rule that breaks it (and only it, on an otherwise valid row).
BREAKS = [
    ("origin_country", "ZY"),
    ("dispatch_country", "ZY"),
    ("destination_country", "kz"),
    ("origin_country", "CNN"),
    ("dispatch_country", "C"),
    ("declaration_id", ""),
    ("crossing", None),
    ("importer_id", ""),
    ("item_no", 0),
    ("net_mass_kg", -1.0),
    ("gross_mass_kg", float("nan")),
    ("quantity", float("inf")),
    ("invoice_value", None),
    ("customs_value_usd", -0.5),
    ("duty_rate_pct", float("-inf")),
    ("hs_code", "12AB"),
]


def test_all_rules_hold_on_valid_items_and_split_keeps_every_row() -> None:
    parsed = parsed_items()
    checked = validate.checked_schema(DeclarationItem, ())
    frame = parsed.select(*DeclarationItem.columns(), ROW)
    assert validate._all_rules_hold(frame, checked.schema)
    valid, failures = validate.split(parsed, DeclarationItem, ())
    expected_valid, expected_failures = general_split(parsed)
    assert_frame_equal(valid, expected_valid)
    assert_frame_equal(failures, expected_failures)
    assert valid.height == parsed.height and failures.height == 0


@pytest.mark.parametrize(("column", "value"), BREAKS)
def test_one_broken_value_takes_the_general_path(column: str, value: object) -> None:
    parsed = parsed_items()
    dtype = parsed.schema[column]
    broken = parsed.with_columns(
        pl.when(pl.col(ROW) == 7).then(pl.lit(value, dtype)).otherwise(pl.col(column)).alias(column)
    )
    checked = validate.checked_schema(DeclarationItem, ())
    frame = broken.select(*DeclarationItem.columns(), ROW)
    # The key and the HS pattern are settled apart; every other rule is in the aggregate.
    assert validate._all_rules_hold(frame, checked.schema) == (column == "hs_code")
    valid, failures = validate.split(broken, DeclarationItem, ())
    expected_valid, expected_failures = general_split(broken)
    assert_frame_equal(valid, expected_valid)
    assert_frame_equal(failures, expected_failures)
    assert failures.get_column(ROW).unique().to_list() == [7]
    assert set(failures.get_column("field")) == {column}
    assert valid.height == parsed.height - 1


def test_a_column_of_another_type_is_left_to_dataframely() -> None:
    checked = validate.checked_schema(DeclarationItem, ())
    frame = parsed_items().select(*DeclarationItem.columns(), ROW)
    assert not validate._all_rules_hold(
        frame.with_columns(pl.col("item_no").cast(pl.Int64)), checked.schema
    )
    assert not validate._all_rules_hold(frame.drop("crossing"), checked.schema)


@pytest.mark.parametrize("usd_nulls", [0, 3])
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_usd_value_derived_only_where_it_can_change(
    tmp_path: Path, usd_nulls: int, suffix: str
) -> None:
    frame = parsed_items().drop(ROW, BAD + "item_no")
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < usd_nulls)
        .then(None)
        .otherwise(pl.col("customs_value_usd"))
        .alias("customs_value_usd")
    )
    path = tmp_path / f"items{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    fast = read_source(path, "canonical")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse_module, "_never_null", lambda raw, spec, dtype: False)
        general = read_source(path, "canonical")
    assert_frame_equal(fast.declarations, general.declarations)
    assert_frame_equal(fast.quarantine, general.quarantine)
    usd = fast.declarations.get_column("customs_value_usd")
    assert usd.null_count() == 0 and fast.rows_valid == frame.height
    if usd_nulls:  # derived from the invoice value at the reference rate
        rates = dict(parse_module.currency_rates())
        first = frame.row(0, named=True)
        assert usd[0] == pytest.approx(first["invoice_value"] * rates[first["currency"]])


def test_never_null_needs_a_numeric_float_source_without_nulls() -> None:
    spec = FieldSpec(source=["usd"])
    raw = pl.DataFrame({"usd": [1.0, 2.0], "text": ["1", "2"], "some": [1.0, None]})
    assert parse_module._never_null(raw, spec, pl.Float64())
    assert not parse_module._never_null(raw, spec, pl.Int32())
    assert not parse_module._never_null(raw, FieldSpec(source=["text"]), pl.Float64())
    assert not parse_module._never_null(raw, FieldSpec(source=["some"]), pl.Float64())
    assert not parse_module._never_null(raw, FieldSpec(source=["absent"]), pl.Float64())
    assert not parse_module._never_null(raw, None, pl.Float64())


def test_the_country_rules_are_proved_natively() -> None:
    pairs = validate.checked_schema(DeclarationItem, ()).pairs
    assert pairs == {
        f"{c}_is_iso": (c, iso_countries())
        for c in ("origin_country", "dispatch_country", "destination_country")
    }


CODES = frozenset({"CN", "KZ", "RU", "Ё"})  # "Ё": two bytes of UTF-8


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["CN", "KZ", "RU", "Ёx", "Ё", "cn", "C", "CNN", "", "KZ ", "RUB"]),
            st.text(max_size=3),
        ),
        max_size=30,
    ),
    cut=st.integers(0, 5),
)
def test_all_in_pairs_is_dataframelys_is_in(values: list[str | None], cut: int) -> None:
    column = pl.Series(values, dtype=pl.String)
    chunked = pl.concat([column, column.slice(cut)], rechunk=False).slice(cut)
    for series in (column, chunked):
        expected = series.is_in(sorted(CODES)).fill_null(True).all()
        assert all_in_pairs(series, CODES) == expected


def test_all_in_pairs_on_nulls_and_edges() -> None:
    assert all_in_pairs(pl.Series([None, None], dtype=pl.String), CODES)
    assert all_in_pairs(pl.Series([], dtype=pl.String), CODES)
    assert all_in_pairs(pl.Series(["KZ", None, "CN"]), CODES)
    assert not all_in_pairs(pl.Series(["KZ", None, "ZZ"]), CODES)
    assert not all_in_pairs(pl.Series(["KZ", "K"]), CODES)
    assert not all_in_pairs(pl.Series(["KZ", "KZZ"]), CODES)


def _truck_items(gross: list[float], invoice: list[float]) -> pl.DataFrame:
    n = len(gross)
    return (
        parsed_items(n)
        .drop(ROW, BAD + "item_no")
        .with_columns(
            crossing=pl.lit("A"),
            truck_id=pl.lit("T1"),
            declared_at=pl.lit(dt.datetime(2025, 10, 1)).cast(pl.Datetime("us")),
            gross_mass_kg=pl.Series(gross),
            net_mass_kg=pl.lit(1.0),
            invoice_value=pl.Series(invoice),
        )
    )


@pytest.mark.parametrize("with_arrivals", [True, False])
def test_soft_flags_beside_the_hard_rules_see_only_the_rows_kept(
    tmp_path: Path, with_arrivals: bool
) -> None:
    """One truck of three items weighed at 20 kg: with all three (30 kg declared) it is far
    off; with the third quarantined (20 kg declared) it is not."""
    arrivals = pl.DataFrame(
        {
            "crossing": ["A"],
            "truck_id": ["T1"],
            "arrived_at": [dt.datetime(2025, 10, 1, 6)],
            "weighbridge_kg": [20.0],
        }
    ).with_columns(pl.col("arrived_at").cast(pl.Datetime("us")))
    given_arrivals = arrivals if with_arrivals else None
    clean = _truck_items([10.0, 10.0, 10.0], [1.0, 1.0, 1.0])
    broken = _truck_items([10.0, 10.0, 10.0], [1.0, 1.0, -1.0])
    clean.write_parquet(tmp_path / "clean.parquet")
    broken.write_parquet(tmp_path / "broken.parquet")
    kept = read_source(tmp_path / "clean.parquet", "canonical", arrivals=given_arrivals)
    cut = read_source(tmp_path / "broken.parquet", "canonical", arrivals=given_arrivals)
    far = ["weight_far_from_weighbridge"] if with_arrivals else []
    assert kept.declarations["soft_flags"].to_list() == [far] * 3
    assert cut.rows_quarantined == 1
    assert cut.declarations["soft_flags"].to_list() == [[], []]


KEY = ("declaration_id", "item_no")


@pytest.mark.parametrize(
    ("ids", "items", "proved"),
    [
        (["A", "A", "B", "C", "C", "C"], [1, 2, 1, 1, 5, 9], True),
        (["A", "B"], [7, 1], True),  # a new run may start lower
        (["A", "A", "B", "A"], [1, 2, 1, 3], False),  # A comes back
        (["A", "A", "B"], [1, 1, 1], False),  # a repeated item
        (["A", "A", "B"], [2, 1, 1], False),  # items not in order
        (["A", "A", "B"], [1, None, 1], False),
        (["A", None, None], [1, 1, 2], True),  # nulls equal: one run of null
        (["A"], [1], False),
    ],
)
def test_distinct_by_runs(ids: list[str | None], items: list[int | None], proved: bool) -> None:
    frame = pl.DataFrame(
        {"declaration_id": ids, "item_no": items}, schema_overrides={"item_no": pl.Int32}
    )
    assert validate._distinct_by_runs(frame, KEY) == proved
    assert validate._distinct_by_runs(frame, KEY[::-1]) == proved
    expected = frame.select(pl.struct(*KEY).is_duplicated()).to_series()
    assert validate.duplicated(frame, KEY).to_list() == expected.to_list()
    if proved:
        assert not expected.any()


@settings(max_examples=40, deadline=None)
@given(
    runs=st.lists(
        st.tuples(
            st.sampled_from(["D1", "D2", "D3", "a much longer declaration id"]),
            st.lists(st.integers(0, 4), min_size=1, max_size=4),
        ),
        max_size=8,
    )
)
def test_duplicated_on_items_in_declaration_runs(runs: list[tuple[str, list[int]]]) -> None:
    ids = [d for d, items in runs for _ in items]
    numbers = [i for _, items in runs for i in items]
    frame = pl.DataFrame(
        {"declaration_id": ids, "item_no": numbers},
        schema={"declaration_id": pl.String, "item_no": pl.Int32},
    )
    expected = frame.select(pl.struct(*KEY).is_duplicated()).to_series()
    assert validate.duplicated(frame, KEY).to_list() == expected.to_list()


THREE = frozenset({"USD", "EUR", "KZT", "ЁB"})  # "ЁB": three bytes of UTF-8


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["USD", "EUR", "KZT", "ЁB", "Ё", "usd", "US", "USDD", "", " USD"]),
            st.text(max_size=4),
        ),
        max_size=30,
    ),
    cut=st.integers(0, 5),
)
def test_all_in_codes_is_is_in(values: list[str | None], cut: int) -> None:
    column = pl.Series(values, dtype=pl.String)
    chunked = pl.concat([column, column.slice(cut)], rechunk=False).slice(cut)
    for series in (column, chunked):
        expected = series.is_in(sorted(THREE)).fill_null(True).all()
        assert all_in_codes(series, THREE) == expected
        assert all_in_codes(series, CODES) == series.is_in(sorted(CODES)).fill_null(True).all()


def test_all_in_codes_refuses_codes_of_mixed_lengths() -> None:
    with pytest.raises(ValueError, match="one length"):
        all_in_codes(pl.Series(["US"]), frozenset({"US", "USD"}))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["0101", "8517120000", "123", "12345678901", "12a4", "１２３４", ""]),
            st.text(alphabet="0123456789a ", max_size=14),
        ),
        max_size=30,
    ),
    cut=st.integers(0, 5),
)
def test_digit_patterns_are_proved_as_the_regex_decides(values: list[str | None], cut: int) -> None:
    column = pl.Series(values, dtype=pl.String)
    chunked = pl.concat([column, column.slice(cut)], rechunk=False).slice(cut)
    for series in (column, chunked):
        for pattern in ("^[0-9]{4,10}$", "^[0-9]{1,20}$"):
            expected = ~series.str.contains(pattern).fill_null(True)
            assert validate.mismatched(series, pattern).to_list() == expected.to_list()
            shape = validate._class_shape(pattern)
            assert shape is not None
            assert all_of_class(series, *shape) == (not expected.any())


def test_class_shape_only_for_digit_ranges() -> None:
    assert validate._class_shape("^[0-9]{4,10}$") == (b"0123456789", 4, 10)
    assert validate._class_shape("^[A-Z]{3}$") is None
    assert validate._class_shape("[0-9]{4,10}") is None


@pytest.mark.parametrize(
    ("values", "kept"),
    [(["USD", "KZT", None], True), (["USD", "XYZ"], False), (["USD", "usd"], False)],
)
def test_currency_verbatim_by_its_codes(values: list[str | None], kept: bool) -> None:
    frame = pl.DataFrame({"currency": values}, schema={"currency": pl.String})
    assert parse_module._known_currencies(frame.get_column("currency")) == kept
    verbatim = parse_module.verbatim_fields(frame, {"currency": "currency"})
    assert ("currency" in verbatim) == kept


class Floats(dy.Schema):
    value = dy.Float64(nullable=False, min=0.0)
    count = dy.Int32(nullable=True, min=1)


FLOATS = [0.0, -0.0, 1.5, -1.0, float("nan"), float("inf"), float("-inf"), None]


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.sampled_from(FLOATS), max_size=8),
    counts=st.lists(st.one_of(st.none(), st.integers(-2, 3)), min_size=8, max_size=8),
)
def test_rule_aggregates_decide_as_the_rows(
    values: list[float | None], counts: list[int | None]
) -> None:
    frame = pl.DataFrame(
        {"value": values, "count": counts[: len(values)]},
        schema={"value": pl.Float64, "count": pl.Int32},
    )
    rules = Floats._validation_rules(with_cast=False)
    assert {"value|nullability", "value|min", "value|inf", "value|nan", "count|min"} <= set(rules)
    for name, rule in rules.items():
        by_rows = frame.select(rule.expr.fill_null(True).all()).item()
        aggregate = validate._aggregate(name, rule.expr, Floats.columns())
        decided = frame.select(aggregate).item()
        # Never a pass where a row fails; the same answer but for a column of NaN only
        # (no-infinity then says no, and the NaN rule fails anyway).
        assert decided <= by_rows, name
        if not frame.get_column("value").is_nan().all():
            assert decided == by_rows, name
    every = all(frame.select(r.expr.fill_null(True).all()).item() for r in rules.values())
    assert validate._all_rules_hold(frame, Floats) == every


@pytest.mark.parametrize(
    ("values", "kept"),
    [
        (["CN", "KZ", None], True),  # ISO codes: proved by the codes
        (["CN", "ZY"], True),  # not a code, but clean: proved by the ends
        (["CN", "cn"], False),
        (["CN", " KZ"], False),
        (["CN", ""], False),
    ],
)
def test_country_verbatim_by_its_codes_or_its_ends(values: list[str | None], kept: bool) -> None:
    frame = pl.DataFrame({"origin_country": values}, schema={"origin_country": pl.String})
    verbatim = parse_module.verbatim_fields(frame, {"origin_country": "origin_country"})
    assert ("origin_country" in verbatim) == kept
    column = frame.get_column("origin_country")
    assert parse_module._clean(column, "origin_country") == kept
    assert all_in_pairs(column, iso_countries()) == (kept and "ZY" not in values)
