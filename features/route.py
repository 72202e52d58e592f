"""Route and origin signals: where the goods come from, how they travel, and the codes of both.

Country and route *risk* learned from outcomes lives in the entity history (entities
``origin``, ``route`` and ``hs_origin`` in ``features.history``); here are the facts of the row.
"""

from __future__ import annotations

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


def country_columns(items: pl.DataFrame) -> pl.DataFrame:
    """The country part of ``route_signals`` over a materialised batch: the three country
    columns numbered together once (``features.row_kernels.dense_codes``), the flags and the
    codes looked up from their few distinct values."""
    columns = [items.get_column(c) for c in ("origin_country", "dispatch_country")]
    columns.append(items.get_column("destination_country"))
    countries = row_kernels.dense_codes(columns)
    origin, dispatch, destination = countries.codes
    two_letter = countries.values.to_frame("v").select(country_code("v")).to_series()
    differs, cn_kz, from_eaeu = row_kernels.route_flags(origin, dispatch, countries.values, EAEU)
    return pl.DataFrame(
        [
            differs.alias("origin_differs_from_dispatch"),
            cn_kz.alias("cn_origin_kz_dispatch"),
            from_eaeu.alias("dispatch_from_eaeu_member"),
            row_kernels.lookup(origin, two_letter).alias("origin_country_code"),
            row_kernels.lookup(dispatch, two_letter).alias("dispatch_country_code"),
            row_kernels.lookup(destination, two_letter).alias("destination_country_code"),
        ]
    )


def route_columns(
    items: pl.DataFrame,
    crossing: row_kernels.Codes | None = None,
    chapter: row_kernels.Codes | None = None,
    countries: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``route_signals`` over a materialised batch: same columns, types and nulls as the
    expressions, every code looked up from the few distinct values of its column.
    ``crossing``, ``chapter``: the codes of the crossings and of the HS chapters (the first
    two characters of ``hs_code``), ``countries``: ``country_columns``, when already at
    hand."""
    if countries is None:
        countries = country_columns(items)
    procedure = items.get_column("procedure")
    if procedure.dtype == pl.Enum(PROCEDURES):
        procedure_codes = procedure.to_physical().cast(pl.Int32).alias("procedure_code")
    else:
        procedure_codes = items.select(procedure_code().alias("procedure_code")).to_series()
    crossing = crossing or row_kernels.dense_codes([items.get_column("crossing")])
    crossing_hash = crossing.values.to_frame("v").select(hash_code_expr("v")).to_series()
    if chapter is None:
        chapter = row_kernels.dense_codes([items.get_column("hs_code").str.slice(0, 2)])
    chapter_number = chapter.values.cast(pl.Int32, strict=False)
    return pl.DataFrame(
        [
            countries.get_column("origin_differs_from_dispatch"),
            countries.get_column("cn_origin_kz_dispatch"),
            *items.select(procedure_is("transit"), procedure_is("eaeu_internal")).get_columns(),
            *countries.select(
                "dispatch_from_eaeu_member",
                "origin_country_code",
                "dispatch_country_code",
                "destination_country_code",
            ).get_columns(),
            procedure_codes,
            row_kernels.lookup(chapter.codes[0], chapter_number).alias("hs_chapter_code"),
            row_kernels.lookup(crossing.codes[0], crossing_hash).alias("crossing_code"),
        ]
    )
