"""Ingest's fast paths give exactly what the general paths give, on clean and hostile input.

Each fast path skips work only where it can prove the work would change nothing; these tests
hold its results equal to the general path's (forced by patching the proof to fail).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dataframely as dy
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pipelines.ingest import IngestResult, read_source
from pipelines.ingest import parse as parse_module
from pipelines.ingest.parse import verbatim_fields
from risk.schemas import DeclarationItem

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


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_clean_typed_file_takes_the_fast_path_with_the_same_result(
    tmp_path: Path, suffix: str
) -> None:
    frame = items()
    path = tmp_path / f"items{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    fast = read_source(path, "canonical")
    with general_text_path():
        general = read_source(path, "canonical")
    assert_same_result(fast, general)
    assert fast.rows_quarantined == 0


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
    path = tmp_path / f"hostile{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    fast = read_source(path, "canonical")
    with general_text_path():
        general = read_source(path, "canonical")
    assert_same_result(fast, general)
