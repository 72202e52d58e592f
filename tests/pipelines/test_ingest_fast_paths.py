"""Ingest's fast paths give exactly what the general paths give, on clean and hostile input.

Each fast path skips work only where it can prove the work would change nothing; these tests
hold its results equal to the general path's (forced by patching the proof to fail).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dataframely as dy
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

from pipelines.ingest import IngestResult, currency_rates, read_source, validate
from pipelines.ingest import parse as parse_module
from pipelines.ingest.parse import BAD, verbatim_fields
from pipelines.ingest.validate import ROW
from risk import soft_rules
from risk.schemas import HS_CODE_PATTERN, DeclarationItem

# Text that cleaning must change (white space at an end, empty, lower-case codes) or keep.
TRICKY_TEXT = [
    "ABC",
    "Ёлочные игрушки",
    "ТОО «Астана»",
    " lead",
    "trail ",
    "\ttab",
    "nl\n",
    "\u00a0nbsp",
    "ideographic\u3000",
    "\u2003em",
    "У598АМ63",
    "«кавычки»",
    "Ёлка\u00a0",
    "конец\u2028",
    "\u1680ogham",
    "\u205fmath",
    "многоточие…",
    "\u200bzero width is not white space",
    "\u0085next line",
    "",
    "   ",
    "\x01control",
    "mid dle",
    "ß",
    "cn",
    "Kz",
    "usd",
]


def items(n: int = 40, seed: int = 5) -> pl.DataFrame:
    """Valid canonical items sampled from the schema (no empty strings: those read as null)."""
    rng = np.random.default_rng(seed)
    overrides = {
        "origin_country": rng.choice(["CN", "KZ", "RU", "TR", "ZZ"], n).tolist(),
        "dispatch_country": rng.choice(np.array(["CN", "KZ", None], dtype=object), n).tolist(),
        "destination_country": rng.choice(["RU", "KZ", "BY"], n).tolist(),
        "hs_code": rng.choice(["8517120000", "0101", "847130"], n).tolist(),
        "currency": rng.choice(["USD", "CNY", "RUB", "KZT", "EUR"], n).tolist(),
        "goods_description": rng.choice(
            np.array(["Телевизоры ЖК", "запчасти; б/у", "Toys", None], dtype=object), n
        ).tolist(),
    }
    frame = DeclarationItem.sample(n, generator=dy.random.Generator(seed=seed), overrides=overrides)
    return frame.with_columns(
        pl.when(pl.col(pl.String).str.len_bytes() > 0).then(pl.col(pl.String)).name.keep()
    )


@contextmanager
def general_text_path() -> Iterator[None]:
    """Every text column cleaned in full, as before the fast path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse_module, "verbatim_fields", lambda frame, sources: frozenset())
        yield


def assert_same_result(fast: IngestResult, general: IngestResult) -> None:
    assert_frame_equal(fast.declarations, general.declarations)
    assert_frame_equal(fast.quarantine, general.quarantine)
    assert fast.failure_counts == general.failure_counts
    assert (fast.rows_in, fast.rows_valid) == (general.rows_in, general.rows_valid)


@pytest.mark.parametrize(
    ("field", "values", "kept"),
    [
        ("goods_description", ["plain text", "Ёлочные игрушки", "«кавычки»"], True),
        ("goods_description", ["x", None], True),
        ("goods_description", [None, None], True),
        ("goods_description", ["\x01control chars are not white space\x7f"], True),
        ("goods_description", ["ok", " lead"], False),
        ("goods_description", ["trail\t"], False),
        ("goods_description", ["\u00a0nbsp"], False),
        ("goods_description", ["Ёлка\u3000"], False),
        ("goods_description", ["У598АМ63", "ТОО «Астана»", "Ёлка"], True),
        ("goods_description", ["Ёлка", "Ёлка\u00a0"], False),
        ("goods_description", ["Ёлка", "\u2028Ёлка"], False),
        ("goods_description", ["Ёлка", "Ёлка\u205f"], False),
        ("goods_description", ["Ёлка", "\u1680Ёлка"], False),
        ("goods_description", ["Ёлка", "Ёлка\u0085"], False),
        ("goods_description", ["Ёлка", "многоточие…", "\u200bzero width"], True),
        ("goods_description", ["ok", ""], False),
        ("goods_description", ["   "], False),
        ("origin_country", ["CN", "ZZ"], True),
        ("origin_country", ["CN", "cn"], False),
        ("origin_country", ["CN", " KZ"], False),
        ("origin_country", ["ß"], False),
        ("currency", ["USD", "KZT"], True),
        ("currency", ["USD", "XYZ"], False),
        ("currency", ["usd"], False),
        ("currency", [""], False),
    ],
)
def test_verbatim_fields_keep_only_columns_cleaning_would_not_change(
    field: str, values: list[str | None], kept: bool
) -> None:
    frame = pl.DataFrame({"raw": values}, schema={"raw": pl.String})
    assert verbatim_fields(frame, {field: "raw"}) == (frozenset({field}) if kept else frozenset())


def test_every_character_strip_removes_is_seen_at_either_end() -> None:
    every = pl.Series([chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000])
    stripped = every.filter(every.str.strip_chars() == "").to_list()
    assert {" ", "\t", "\u00a0", "\u3000", "\u2028"} <= set(stripped)
    for char in stripped:
        for text in [f"{char}Ёлка", f"Ёлка{char}", f"{char}x", f"x{char}", char]:
            frame = pl.DataFrame({"raw": ["Ёлка", "x", text]})
            assert verbatim_fields(frame, {"goods_description": "raw"}) == frozenset(), text


def _read_both_ways(frame: pl.DataFrame, path: Path) -> IngestResult:
    """``frame`` written to ``path`` (CSV or Parquet by its suffix), read with the fast text
    path and with the general one; the two results must be equal. Returns the fast one."""
    if path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    fast = read_source(path, "canonical")
    with general_text_path():
        general = read_source(path, "canonical")
    assert_same_result(fast, general)
    return fast


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_clean_typed_file_takes_the_fast_path_with_the_same_result(
    tmp_path: Path, suffix: str
) -> None:
    frame = items()
    fast = _read_both_ways(frame, tmp_path / f"items{suffix}")
    assert fast.rows_quarantined == 0
    sources = {f: f for f in ["goods_description", "hs_code", "origin_country", "currency"]}
    assert verbatim_fields(frame, sources) == frozenset(sources)  # the fast path was taken


COLUMNS = [
    "declaration_id",
    "truck_id",
    "importer_id",
    "hs_code",
    "goods_description",
    "origin_country",
    "dispatch_country",
    "currency",
    "quantity_unit",
]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(
        st.tuples(
            st.integers(0, 39),
            st.sampled_from(COLUMNS),
            st.one_of(st.sampled_from(TRICKY_TEXT), st.none()),
        ),
        max_size=12,
    ),
    suffix=st.sampled_from([".parquet", ".csv"]),
)
def test_hostile_text_gives_the_same_result_on_both_paths(
    tmp_path: Path, cells: list[tuple[int, str, str | None]], suffix: str
) -> None:
    frame = items()
    index = pl.int_range(pl.len())
    for row, column, value in cells:
        cell = pl.lit(value, pl.String)
        frame = frame.with_columns(
            pl.when(index == row).then(cell).otherwise(pl.col(column)).alias(column)
        )
    _read_both_ways(frame, tmp_path / f"hostile{suffix}")


# ---------------------------------------------------------------- the weighbridge soft rule

START = dt.datetime(2025, 10, 1)


def weighings(seed: int, trucks: int, weighed_twice: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Items of ``trucks`` trucks at two crossings and their arrivals: some trucks unweighed,
    some readings missing, some far from the declared mass, some arrivals outside the window
    or exactly on its edges; ``weighed_twice``: some trucks come twice to one crossing."""
    rng = np.random.default_rng(seed)
    truck_ids = [f"T{i}" for i in range(trucks)]
    crossing_of = rng.choice(["A", "B"], trucks)
    items = []
    arrivals = []
    for i, truck in enumerate(truck_ids):
        declared = START + dt.timedelta(hours=int(rng.integers(0, 96)))
        n = int(rng.integers(1, 5))
        masses = rng.choice([100.0, 250.5, 1e16, 1.0, 0.1], n).tolist()
        for k in range(n):
            later = dt.timedelta(minutes=int(rng.choice([0, 0, 30])) * k)
            items.append((str(crossing_of[i]), truck, declared + later, masses[k]))
        gaps = [
            dt.timedelta(0),
            dt.timedelta(hours=5),
            dt.timedelta(days=3),
            dt.timedelta(days=3, microseconds=1),
            -dt.timedelta(hours=1),
        ]
        visits = int(rng.integers(0, 3 if weighed_twice else 2))
        for _ in range(visits):
            reading = float(sum(masses) * rng.choice([1.0, 1.05, 1.5, 0.5]))
            arrivals.append(
                (
                    str(crossing_of[i] if rng.random() < 0.9 else "B"),
                    truck,
                    declared + gaps[int(rng.integers(0, len(gaps)))],
                    None if rng.random() < 0.1 else reading,
                )
            )
    item_frame = pl.DataFrame(
        items,
        schema={
            "crossing": pl.String,
            "truck_id": pl.String,
            "declared_at": pl.Datetime("us"),
            "gross_mass_kg": pl.Float64,
        },
        orient="row",
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 11 == 3)
        .then(None)
        .otherwise(pl.col("truck_id"))
        .alias("truck_id")
    )
    arrival_frame = pl.DataFrame(
        arrivals,
        schema={
            "crossing": pl.String,
            "truck_id": pl.String,
            "arrived_at": pl.Datetime("us"),
            "weighbridge_kg": pl.Float64,
        },
        orient="row",
    )
    return item_frame, arrival_frame


def general_flags(items: pl.DataFrame, arrivals: pl.DataFrame) -> pl.Series:
    return (
        soft_rules._flags_by_asof(
            items.lazy(),
            arrivals.lazy(),
            tolerance=soft_rules.WEIGHBRIDGE_TOLERANCE,
            window=soft_rules.VISIT_WINDOW,
        )
        .collect()
        .get_column(soft_rules.WEIGHBRIDGE_RULE)
    )


def flags(items: pl.DataFrame, arrivals: pl.DataFrame) -> pl.Series:
    frame = soft_rules.weight_far_from_weighbridge(items.lazy(), arrivals.lazy()).collect()
    assert_frame_equal(frame.drop(soft_rules.WEIGHBRIDGE_RULE), items)
    return frame.get_column(soft_rules.WEIGHBRIDGE_RULE)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), trucks=st.integers(0, 30))
def test_one_weighing_per_truck_gives_the_as_of_flags(seed: int, trucks: int) -> None:
    items, arrivals = weighings(seed, trucks, weighed_twice=False)
    arrivals = arrivals.unique(["crossing", "truck_id"], keep="first", maintain_order=True)
    fast = soft_rules._flags_one_weighing_per_truck(
        items, arrivals, soft_rules.WEIGHBRIDGE_TOLERANCE, soft_rules.VISIT_WINDOW
    )
    assert fast is not None  # the fast path applies
    assert_series_equal(fast, general_flags(items, arrivals))
    assert_series_equal(flags(items, arrivals), general_flags(items, arrivals))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), trucks=st.integers(1, 30))
def test_trucks_weighed_twice_give_the_as_of_flags(seed: int, trucks: int) -> None:
    items, arrivals = weighings(seed, trucks, weighed_twice=True)
    assert_series_equal(flags(items, arrivals), general_flags(items, arrivals))


def test_weighbridge_window_edges() -> None:
    items = pl.DataFrame(
        {
            "crossing": ["A"] * 4,
            "truck_id": ["T1", "T2", "T3", "T4"],
            "declared_at": [START] * 4,
            "gross_mass_kg": [100.0] * 4,
        }
    ).with_columns(pl.col("declared_at").cast(pl.Datetime("us")))
    arrivals = pl.DataFrame(
        {
            "crossing": ["A"] * 4,
            "truck_id": ["T1", "T2", "T3", "T4"],
            "arrived_at": [
                START,
                START + dt.timedelta(days=3),
                START + dt.timedelta(days=3, microseconds=1),
                START - dt.timedelta(microseconds=1),
            ],
            "weighbridge_kg": [500.0] * 4,
        }
    ).with_columns(pl.col("arrived_at").cast(pl.Datetime("us")))
    assert flags(items, arrivals).to_list() == [True, True, None, None]
    assert general_flags(items, arrivals).to_list() == [True, True, None, None]


def test_a_hash_collision_cannot_change_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trucks hashed by the length of their id: T1 and T2 collide; T2 was never weighed."""
    items = pl.DataFrame(
        {
            "crossing": ["A", "A", "A"],
            "truck_id": ["T1", "T2", "T33"],
            "declared_at": [START] * 3,
            "gross_mass_kg": [100.0, 900.0, 100.0],
        }
    ).with_columns(pl.col("declared_at").cast(pl.Datetime("us")))
    arrivals = pl.DataFrame(
        {
            "crossing": ["A", "A"],
            "truck_id": ["T1", "T33"],
            "arrived_at": [START + dt.timedelta(hours=2)] * 2,
            "weighbridge_kg": [100.0, 300.0],
        }
    ).with_columns(pl.col("arrived_at").cast(pl.Datetime("us")))
    monkeypatch.setattr(
        soft_rules, "truck_at_crossing", lambda: pl.col("truck_id").str.len_bytes().cast(pl.UInt64)
    )
    assert (
        soft_rules._flags_one_weighing_per_truck(
            items, arrivals, soft_rules.WEIGHBRIDGE_TOLERANCE, soft_rules.VISIT_WINDOW
        )
        is None
    )
    assert flags(items, arrivals).to_list() == [False, None, True]
    # Two weighed trucks of one hash: the general path too.
    twins = arrivals.with_columns(pl.Series("truck_id", ["T1", "T2"]))
    assert flags(items, twins).to_list() == [False, True, None]


def test_soft_flags_list_every_combination_in_rule_order() -> None:
    frame = pl.DataFrame(
        {
            "net_mass_kg": [0.0, 10.0, 10.0, 0.0, None],
            "gross_mass_kg": [5.0, 5.0, 12.0, 0.0, None],
            "invoice_value": [0.0, 1.0, 1.0, 0.0, None],
            "customs_value_usd": [1.0, 1.0, 1.0, 0.0, None],
        }
    )
    flagged = soft_rules.with_soft_flags(frame.lazy()).collect()
    assert flagged.schema[soft_rules.SOFT_FLAGS] == pl.List(pl.String)
    assert flagged[soft_rules.SOFT_FLAGS].to_list() == [
        ["zero_mass", "zero_value"],
        ["gross_below_net"],
        [],
        ["zero_mass", "zero_value"],
        [],
    ]


# ---------------------------------------------------------------- hard rules


def reference_split(
    parsed: pl.DataFrame, schema: type[dy.Schema]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``validate.split`` as it was: every rule, the primary key too, through dataframely."""
    traced = type("Traced", (schema,), {ROW: dy.Int64(nullable=False)})
    fields = list(schema.columns())
    flags = [c for c in parsed.columns if c.startswith(BAD)]
    parse_failures = validate._parse_failures(parsed, schema, flags)
    valid, failure = traced.filter(parsed.select(*fields, ROW))
    details = failure.details()
    rule_columns = [c for c in details.columns if c not in traced.columns()]
    schema_failures = pl.DataFrame(schema=validate.FAILURES_SCHEMA)
    if details.height and rule_columns:
        long = (
            details.select(ROW, *rule_columns)
            .unpivot(index=ROW, variable_name="rule")
            .filter(pl.col("value") == "invalid")
        )
        mapping = {rule: validate._rule_to_failure(schema, rule) for rule in rule_columns}
        schema_failures = long.select(
            pl.col(ROW),
            pl.col("rule").replace_strict({r: f for r, (f, _) in mapping.items()}).alias("field"),
            pl.col("rule").replace_strict({r: c for r, (_, c) in mapping.items()}).alias("code"),
        ).join(parse_failures.select(ROW, "field"), on=[ROW, "field"], how="anti")
    failures = pl.concat([parse_failures, schema_failures])
    bad_rows = failures.get_column(ROW).unique()
    return valid.filter(~pl.col(ROW).is_in(bad_rows.implode())), failures


def parsed_items(seed: int, n: int = 60) -> pl.DataFrame:
    """Parsed-looking items (rows ids, failure flags) with repeated keys, nulls in the keys
    and broken values, several per row."""
    rng = np.random.default_rng(seed)
    frame = items(n, seed=seed % 1000).with_columns(
        pl.Series("declaration_id", rng.choice(["D1", "D2", "D3", None], n).tolist()),
        pl.Series("item_no", rng.choice([1, 2, 3, 0, None], n).tolist(), dtype=pl.Int32),
        pl.Series("hs_code", rng.choice(["0101", "85A7", "8517120000", None], n).tolist()),
        pl.Series("origin_country", rng.choice(["CN", "ZY", None], n).tolist()),
        pl.Series("invoice_value", rng.choice([1.0, -1.0, float("inf"), None], n).tolist()),
        pl.Series(ROW, np.arange(n), dtype=pl.Int64),
    )
    return frame.with_columns(
        pl.Series(BAD + "item_no", rng.random(n) < 0.1),
        pl.Series(BAD + "declared_at", rng.random(n) < 0.1),
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_split_gives_the_failures_of_every_rule_in_order(seed: int) -> None:
    parsed = parsed_items(seed)
    valid, failures = validate.split(parsed, DeclarationItem, ())
    expected_valid, expected_failures = reference_split(parsed, DeclarationItem)
    assert_frame_equal(valid, expected_valid)
    assert_frame_equal(failures, expected_failures)
    assert failures.filter(pl.col("code") == "duplicate_key").height > 0


def test_duplicated_is_exact_whatever_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame(
        {
            "declaration_id": ["A", "B", "A", None, None, "C", "D", "E"],
            "item_no": [1, 1, 1, 2, 2, None, 3, 3],
        }
    )
    expected = frame.select(pl.struct("declaration_id", "item_no").is_duplicated()).to_series()
    key = ("declaration_id", "item_no")
    assert_series_equal(validate.duplicated(frame, key), expected, check_names=False)
    assert expected.to_list() == [True, False, True, True, True, False, False, False]
    # Every key one hash: the values decide.
    monkeypatch.setattr(validate, "_key_hash", lambda key: pl.int_range(pl.len()) * 0)
    assert_series_equal(validate.duplicated(frame, key), expected, check_names=False)
    unique = frame.unique(maintain_order=True)
    assert not validate.duplicated(unique, key).any()


def test_the_currency_pattern_cannot_fail_after_parsing() -> None:
    """``split`` leaves the currency pattern out because every code with a rate fits it."""
    pattern = DeclarationItem.columns()["currency"].regex
    assert pattern is not None
    assert pl.Series(sorted(currency_rates())).str.contains(pattern).all()
    checked = validate.checked_schema(DeclarationItem, ())
    rules = checked.schema._validation_rules(with_cast=False)
    assert "currency|regex" not in rules and "currency|regex" in checked.order
    assert "currency" not in checked.patterns
    assert checked.patterns == {"hs_code": HS_CODE_PATTERN}
    assert checked.key == ("declaration_id", "item_no")


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        (["0101", "85A7", None, "0101", "851", "8517120000"], HS_CODE_PATTERN),
        (["USD", "usd", None, "US"], r"^[A-Z]{3}$"),
        ([None, None], HS_CODE_PATTERN),
        (["a1", "b"], r"\d"),  # unanchored: contained
    ],
)
def test_mismatched_matches_dataframelys_regex_rule(values: list[str | None], pattern: str) -> None:
    column = pl.Series("c", values, dtype=pl.String)
    expected = (~column.str.contains(pattern)).fill_null(False)
    assert_series_equal(validate.mismatched(column, pattern), expected, check_names=False)


def test_keys_or_times_of_other_types_take_the_general_path() -> None:
    items, arrivals = weighings(seed=1, trucks=10, weighed_twice=False)
    arrivals = arrivals.unique(["crossing", "truck_id"], keep="first", maintain_order=True)
    args = (soft_rules.WEIGHBRIDGE_TOLERANCE, soft_rules.VISIT_WINDOW)
    assert soft_rules._flags_one_weighing_per_truck(items, arrivals, *args) is not None
    for other in [
        arrivals.with_columns(pl.col("arrived_at").cast(pl.Datetime("ms"))),
        arrivals.with_columns(pl.col("truck_id").cast(pl.Categorical)),
    ]:
        assert soft_rules._flags_one_weighing_per_truck(items, other, *args) is None
    assert soft_rules._flags_one_weighing_per_truck(items, arrivals, 0.1, "1mo") is None
