"""Route and origin signals: where the goods come from, how they travel, and the codes of both.

Country and route *risk* learned from outcomes lives in the entity history (entities
``origin``, ``route`` and ``hs_origin`` in ``features.history``); here are the facts of the row.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from features import row_kernels
from features.codes import country_code, hash_code_expr, hs_chapter_code, procedure_code
from risk.schemas import PROCEDURES

# Members of the Eurasian Economic Union: goods moving between them travel as internal trade,
# which is what re-export schemes (DOMAIN.md scheme 2) exploit.
EAEU = ("AM", "BY", "KG", "KZ", "RU")


def origin_differs_from_dispatch() -> pl.Expr:
    """Goods made in one country but shipped from another (a third-country leg)."""
    return (
        (
            pl.col("dispatch_country").is_not_null()
            & (pl.col("dispatch_country") != pl.col("origin_country"))
        )
        .cast(pl.Int8)
        .alias("origin_differs_from_dispatch")
    )


def chinese_goods_via_kazakhstan() -> pl.Expr:
    """Origin CN dispatched from KZ: the signature route of re-export through a third country."""
    return (
        ((pl.col("origin_country") == "CN") & (pl.col("dispatch_country") == "KZ"))
        .fill_null(False)
        .cast(pl.Int8)
        .alias("cn_origin_kz_dispatch")
    )


def procedure_is(procedure: str) -> pl.Expr:
    """1 when the item moves under ``procedure`` (transit: diversion risk; internal: re-export)."""
    # Compared as it is stored (an Enum compares to its category's name without making text).
    return (pl.col("procedure") == procedure).cast(pl.Int8).alias(f"is_{procedure}")


def dispatch_from_eaeu_member() -> pl.Expr:
    """1 when the goods were dispatched from an EAEU member other than their origin."""
    return (
        (
            pl.col("dispatch_country").is_in(EAEU)
            & (pl.col("dispatch_country") != pl.col("origin_country"))
        )
        .fill_null(False)
        .cast(pl.Int8)
        .alias("dispatch_from_eaeu_member")
    )


def route_signals() -> list[pl.Expr]:
    """All route facts and the stable codes of countries, procedure, chapter and crossing."""
    return [
        origin_differs_from_dispatch(),
        chinese_goods_via_kazakhstan(),
        procedure_is("transit"),
        procedure_is("eaeu_internal"),
        dispatch_from_eaeu_member(),
        country_code("origin_country").alias("origin_country_code"),
        country_code("dispatch_country").alias("dispatch_country_code"),
        country_code("destination_country").alias("destination_country_code"),
        procedure_code().alias("procedure_code"),
        hs_chapter_code().alias("hs_chapter_code"),
        hash_code_expr("crossing").alias("crossing_code"),
    ]


def route_columns(items: pl.DataFrame, crossing: row_kernels.Codes | None = None) -> pl.DataFrame:
    """``route_signals`` over a materialised batch: the three country columns numbered
    together once (``features.row_kernels.dense_codes``), every flag and code looked up from
    their few distinct values. Same columns, types and nulls as the expressions.
    ``crossing``: the crossings' codes when already at hand."""
    columns = [items.get_column(c) for c in ("origin_country", "dispatch_country")]
    columns.append(items.get_column("destination_country"))
    countries = row_kernels.dense_codes(columns)
    values = countries.values
    origin, dispatch, destination = (pl.Series(codes) for codes in countries.codes)
    two_letter = values.to_frame("v").select(country_code("v")).to_series()
    missing = values.is_null().to_numpy()
    o, d = countries.codes[0], countries.codes[1]
    o_missing, d_missing = missing[o], missing[d]
    differs = d != o

    def flag(values_: pl.Series) -> np.ndarray:
        return values_.fill_null(False).to_numpy()

    cn, kz, eaeu = flag(values == "CN"), flag(values == "KZ"), flag(values.is_in(EAEU))
    procedure = items.get_column("procedure")
    if procedure.dtype == pl.Enum(PROCEDURES):
        procedure_codes = procedure.to_physical().cast(pl.Int32).alias("procedure_code")
    else:
        procedure_codes = items.select(procedure_code().alias("procedure_code")).to_series()
    crossing = crossing or row_kernels.dense_codes([items.get_column("crossing")])
    crossing_hash = crossing.values.to_frame("v").select(hash_code_expr("v")).to_series()
    chapter = (
        items.get_column("hs_chapter")
        if "hs_chapter" in items.columns
        else items.get_column("hs_code").str.slice(0, 2)
    )
    return pl.DataFrame(
        [
            row_kernels.with_nulls(
                (differs & ~d_missing).astype(np.int8), d_missing | ~o_missing
            ).alias("origin_differs_from_dispatch"),
            pl.Series("cn_origin_kz_dispatch", (cn[o] & kz[d]).astype(np.int8)),
            *items.select(procedure_is("transit"), procedure_is("eaeu_internal")).get_columns(),
            pl.Series(
                "dispatch_from_eaeu_member", (eaeu[d] & ~o_missing & differs).astype(np.int8)
            ),
            two_letter.gather(origin).alias("origin_country_code"),
            two_letter.gather(dispatch).alias("dispatch_country_code"),
            two_letter.gather(destination).alias("destination_country_code"),
            procedure_codes,
            chapter.cast(pl.Int32, strict=False).alias("hs_chapter_code"),
            crossing_hash.gather(pl.Series(crossing.codes[0])).alias("crossing_code"),
        ]
    )
