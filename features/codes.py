"""Integer codes for categorical features, stable across runs, machines and Polars versions.

LightGBM takes categoricals as non-negative integers; Polars ``Categorical``/``Enum`` physical
codes depend on the order values were first seen, and ``Expr.hash`` may change between Polars
releases, so neither may reach a model. Codes here come from fixed rules instead.
"""

from __future__ import annotations

import string
import zlib
from collections.abc import Callable
from functools import cache

import polars as pl

from risk.schemas import PROCEDURES

# Open vocabularies (crossings, source-specific columns) are hashed into this many buckets:
# small enough for LightGBM's category maps, large enough that a collision among the few dozen
# values of a low-cardinality column is unlikely (about n^2 / 2^21).
HASH_BUCKETS = 1 << 20


@cache
def _two_letter_codes() -> dict[str, int]:
    letters = string.ascii_uppercase
    return {a + b: i * 26 + j for i, a in enumerate(letters) for j, b in enumerate(letters)}


def per_run(column: str, code: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """``code`` of a column's values, computed once per run of equal consecutive values and
    repeated over the run: the same result as ``code(pl.col(column))`` for any elementwise
    ``code``, with the string work done on the runs (a declaration's items mostly share their
    countries, procedure and crossing)."""
    return code(pl.col(column).rle().struct.field("value")).gather(pl.col(column).rle_id())


def country_code(column: str) -> pl.Expr:
    """An ISO alpha-2 country as 26 * letter1 + letter2 (0..675); anything else is null."""
    return per_run(
        column,
        lambda values: values.replace_strict(
            _two_letter_codes(), default=None, return_dtype=pl.Int32
        ),
    )


def procedure_code(column: str = "procedure") -> pl.Expr:
    """The customs procedure as its position in ``risk.schemas.PROCEDURES``."""
    mapping = {name: i for i, name in enumerate(PROCEDURES)}
    return per_run(
        column,
        lambda values: values.cast(pl.String).replace_strict(
            mapping, default=None, return_dtype=pl.Int32
        ),
    )


def hs_chapter_code(column: str = "hs_code") -> pl.Expr:
    """The HS chapter (first two digits) as an integer 1..99."""
    return pl.col(column).str.slice(0, 2).cast(pl.Int32, strict=False)


def stable_hash(value: str) -> int:
    """CRC-32 of the UTF-8 text folded into ``HASH_BUCKETS``: the same on every platform."""
    return zlib.crc32(value.encode("utf-8")) % HASH_BUCKETS


def _hash_series(series: pl.Series) -> pl.Series:
    distinct = series.drop_nulls().unique().to_list()
    mapping = {value: stable_hash(value) for value in distinct}
    return series.replace_strict(mapping, default=None, return_dtype=pl.Int32)


def hash_code_expr(column: str) -> pl.Expr:
    """Any low-cardinality column as a stable hashed code (Python hashes only distinct values)."""
    return per_run(
        column,
        lambda values: values.cast(pl.String).map_batches(
            _hash_series, return_dtype=pl.Int32, is_elementwise=True
        ),
    )
