"""Split parsed rows into valid ones and failures, by the schemas' hard rules.

The schema's own rules run through dataframely's ``filter`` on a subclass that carries a row
id (and the profile's extra text columns) beside the canonical columns, so that every failure
can be traced back to its source row. Failures come out in long form: one row per
(row id, field, code).
"""

from __future__ import annotations

from functools import cache

import dataframely as dy
import polars as pl

from pipelines.ingest.parse import BAD, failure_code

ROW = "ingest_row_id"
FAILURES_SCHEMA = {ROW: pl.Int64, "field": pl.String, "code": pl.String}

# dataframely's rule names for the schemas' own rules -> (field, failure code).
NAMED_RULES = {
    "origin_country_is_iso": ("origin_country", "not_iso"),
    "dispatch_country_is_iso": ("dispatch_country", "not_iso"),
    "destination_country_is_iso": ("destination_country", "not_iso"),
    "primary_key": ("declaration_id", "duplicate_key"),
    "result_only_when_inspected": ("result", "inconsistent"),
    "not_inspected_means_no_selection": ("selection", "inconsistent"),
}
COLUMN_RULE_CODES = {
    "nullability": "missing",
    "min_length": "missing",
    "regex": "malformed",
    "nan": "not_finite",
    "inf": "not_finite",
}


@cache
def traced_schema(schema: type[dy.Schema], extras: tuple[str, ...]) -> type[dy.Schema]:
    """``schema`` plus a row id and the given extra text columns, with the same rules."""
    columns: dict[str, dy.Column] = {ROW: dy.Int64(nullable=False)}
    columns |= {name: dy.String(nullable=True) for name in extras}
    return type(f"Traced{schema.__name__}", (schema,), columns)


def _rule_to_failure(schema: type[dy.Schema], rule: str) -> tuple[str, str]:
    if rule in NAMED_RULES:
        return NAMED_RULES[rule]
    field, _, kind = rule.partition("|")
    if kind == "min":
        minimum = getattr(schema.columns()[field], "min", None)
        return field, "negative" if minimum == 0 else "below_minimum"
    return field, COLUMN_RULE_CODES.get(kind, f"rule_{kind or rule}")


def split(
    parsed: pl.DataFrame, schema: type[dy.Schema], extras: tuple[str, ...], prefix: str = ""
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows passing every hard rule, failures in long form) of one parsed frame.

    A field that failed to parse is not also reported for the null it left behind.
    ``prefix`` is put before field names in the failures (``outcome.`` for outcomes).
    """
    fields = list(schema.columns())
    flags = [c for c in parsed.columns if c.startswith(BAD)]
    parse_failures = _parse_failures(parsed, schema, flags)

    traced = traced_schema(schema, extras)
    valid, failure = traced.filter(parsed.select(*fields, ROW, *extras))
    details = failure.details()
    rule_columns = [c for c in details.columns if c not in traced.columns()]
    schema_failures = pl.DataFrame(schema=FAILURES_SCHEMA)
    if details.height and rule_columns:
        long = (
            details.select(ROW, *rule_columns)
            .unpivot(index=ROW, variable_name="rule")
            .filter(pl.col("value") == "invalid")
        )
        mapping = {rule: _rule_to_failure(schema, rule) for rule in rule_columns}
        schema_failures = long.select(
            pl.col(ROW),
            pl.col("rule").replace_strict({r: f for r, (f, _) in mapping.items()}).alias("field"),
            pl.col("rule").replace_strict({r: c for r, (_, c) in mapping.items()}).alias("code"),
        ).join(parse_failures.select(ROW, "field"), on=[ROW, "field"], how="anti")

    failures = pl.concat([parse_failures, schema_failures]).with_columns(
        pl.concat_str(pl.lit(prefix), pl.col("field")).alias("field")
    )
    bad_rows = failures.get_column(ROW).unique()
    return valid.filter(~pl.col(ROW).is_in(bad_rows.implode())), failures


def _parse_failures(
    parsed: pl.DataFrame, schema: type[dy.Schema], flags: list[str]
) -> pl.DataFrame:
    if not flags:
        return pl.DataFrame(schema=FAILURES_SCHEMA)
    flagged = parsed.filter(pl.any_horizontal(flags)).select(ROW, *flags)
    columns = schema.columns()
    codes = {
        f: failure_code(f.removeprefix(BAD), columns[f.removeprefix(BAD)].dtype) for f in flags
    }
    return (
        flagged.unpivot(index=ROW, variable_name="flag")
        .filter(pl.col("value"))
        .select(
            pl.col(ROW),
            pl.col("flag").str.strip_prefix(BAD).alias("field"),
            pl.col("flag").replace_strict(codes, return_dtype=pl.String).alias("code"),
        )
        .sort(ROW, "field")
    )


def drop_consequences(failures: pl.DataFrame, derived: list[str]) -> pl.DataFrame:
    """Drop failures of derived fields on rows that fail for their inputs anyway.

    ``customs_value_usd`` computed from a negative invoice value is negative too; the reason
    the person must fix is the invoice value.
    """
    is_derived = pl.col("field").is_in(derived)
    others = pl.len().over(ROW) > is_derived.sum().over(ROW)
    return failures.filter(~(is_derived & others))
