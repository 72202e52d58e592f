"""Split parsed rows into valid ones and failures, by the schemas' hard rules.

The schema's own rules run through dataframely's ``filter`` on a copy of the schema that
carries a row id (and the profile's extra text columns) beside the canonical columns, so that
every failure can be traced back to its source row; the primary key (by the rows' runs or
by hashes, ``duplicated``) and text patterns (natively or on distinct values,
``mismatched``) are checked apart. A frame whose every row passes (``_all_rules_hold``: one
pass of aggregates, the country rules natively) skips dataframely, which would copy every
column to keep every row.
Failures come out in long form: one row per (row id, field, code), in dataframely's order of
rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import dataframely as dy
import polars as pl
from dataframely._rule import Rule

from pipelines.ingest.currency import currency_rates
from pipelines.ingest.parse import BAD, failure_code
from pipelines.ingest.text_ends import all_in_pairs, all_of_class
from risk.runs import run_starts
from risk.schemas import iso_countries

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


@dataclass(frozen=True)
class CheckedSchema:
    """A schema's rules as ``split`` applies them: through dataframely, or settled apart."""

    schema: type[dy.Schema]  # the schema plus row id and extras, less the rules settled apart
    order: dict[str, int]  # every rule's place in dataframely's order
    key: tuple[str, ...]  # the primary key, checked by ``duplicated`` ('primary_key')
    patterns: dict[str, str]  # column -> regex, tried once per distinct value ('column|regex')
    # rule -> (column, codes of two bytes): rules that are ``is_in(codes)`` (nulls passing),
    # proved for a whole frame by ``text_ends.all_in_pairs``
    pairs: dict[str, tuple[str, frozenset[str]]]


@cache
def checked_schema(schema: type[dy.Schema], extras: tuple[str, ...]) -> CheckedSchema:
    """``schema`` plus a row id and the given extra text columns, with the same rules; those
    that ``split`` settles faster are taken out of the dataframely schema.

    The primary key (of text and integer columns) is checked by ``duplicated``, text patterns
    on distinct values (``mismatched``). The currency pattern cannot fail on a parsed frame:
    every parsed currency has a rate (or is null), and every code in the rates file fits it.
    """
    columns = dict(schema.columns())
    columns[ROW] = dy.Int64(nullable=False)
    columns |= {name: dy.String(nullable=True) for name in extras}
    rules = {name: getattr(schema, name) for name in schema._schema_validation_rules()}
    every: type[dy.Schema] = type(f"Traced{schema.__name__}", (dy.Schema,), {**columns, **rules})
    order = {rule: place for place, rule in enumerate(every._validation_rules(with_cast=False))}

    key = tuple(schema.primary_key())
    if key and all(columns[k].dtype == pl.String or columns[k].dtype.is_integer() for k in key):
        columns |= {k: columns[k].with_primary_key(False) for k in key}
    else:
        key = ()
    patterns = {}
    for name, column in columns.items():
        if isinstance(column, dy.String) and column.regex is not None:
            columns[name] = column.with_properties(regex=None)
            if name == "currency":
                codes = pl.Series(sorted(currency_rates()), dtype=pl.String)
                if codes.str.contains(column.regex).all():
                    continue
            patterns[name] = column.regex
    checked = type(f"Checked{schema.__name__}", (dy.Schema,), {**columns, **rules})
    pairs = {
        name: found
        for name, rule in schema._schema_validation_rules().items()
        if (found := _country_rule(rule.expr, columns)) is not None
    }
    return CheckedSchema(checked, order, key, patterns, pairs)


def _country_rule(
    expr: pl.Expr, columns: Mapping[str, dy.Column]
) -> tuple[str, frozenset[str]] | None:
    """(column, codes) when ``expr`` is ``risk.schemas``' country rule over a text column
    (``is_in`` the ISO codes, or that or null), else None."""
    codes = iso_countries()
    if not all(len(code.encode()) == 2 for code in codes):
        return None
    roots = expr.meta.root_names()
    for name in set(roots):
        column = columns.get(name)
        if column is None or column.dtype != pl.String:
            continue
        inside = pl.col(name).is_in(sorted(codes))
        if expr.meta.eq(inside) or expr.meta.eq(inside | pl.col(name).is_null()):
            return name, codes
    return None


def mismatched(column: pl.Series, pattern: str) -> pl.Series:
    """Whether each value does not contain ``pattern`` (null: no, as in dataframely's rule),
    tried once per distinct value (or, for a pattern of a length and a class of bytes, proved
    of every value by one native pass)."""
    shape = _class_shape(pattern)
    if shape is not None and all_of_class(column, *shape):
        return pl.repeat(False, column.len(), dtype=pl.Boolean, eager=True)
    distinct = column.drop_nulls().unique()
    bad = distinct.filter(~distinct.str.contains(pattern))
    if bad.is_empty():
        return pl.repeat(False, column.len(), dtype=pl.Boolean, eager=True)
    return column.is_in(bad.implode()).fill_null(False)


DIGITS_PATTERN = re.compile(r"\^\[0-9\]\{(\d+),(\d+)\}\$")


def _class_shape(pattern: str) -> tuple[bytes, int, int] | None:
    """(allowed bytes, shortest, longest) of a pattern ``^[0-9]{m,n}$``, else None."""
    found = DIGITS_PATTERN.fullmatch(pattern)
    if found is None:
        return None
    return b"0123456789", int(found.group(1)), int(found.group(2))


def duplicated(frame: pl.DataFrame, key: Sequence[str]) -> pl.Series:
    """Whether each row's ``key`` occurs in another row too (nulls equal, as in dataframely's
    primary key rule).

    Rows whose 64-bit hash of the key is unique are unique (sorting the hashes finds the
    repeated ones, much faster than hashing them again); only rows of a repeated hash are
    compared by value.
    """
    if _distinct_by_runs(frame, key):
        return pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
    whole = pl.struct(*key)
    hashes = frame.select(_key_hash(key)).to_series()
    ordered = hashes.sort(multithreaded=False)
    repeated = ordered.filter(ordered == ordered.shift(1))
    if repeated.is_empty():
        return pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
    maybe = hashes.is_in(repeated.unique().implode())
    exact = frame.filter(maybe).select(whole.is_duplicated()).to_series()
    return maybe.scatter(maybe.arg_true(), exact)


def _distinct_by_runs(frame: pl.DataFrame, key: Sequence[str]) -> bool:
    """Whether a key of a text and an integer column is proved distinct in every row by the
    rows' order: the text in runs that never come back (``risk.runs.run_starts``) and the
    integer, without nulls, rising within each run (a declaration's items in order). False
    proves nothing."""
    if len(key) != 2 or frame.height < 2:
        return False
    dtypes = [frame.schema[k] for k in key]
    text, number = key if dtypes[0] == pl.String else key[::-1]
    if frame.schema[text] != pl.String or not frame.schema[number].is_integer():
        return False
    numbers = frame.get_column(number)
    if numbers.null_count():
        return False
    starts = run_starts(frame, [text])
    if starts is None:
        return False
    values = numbers.to_numpy()
    rising = values[1:] > values[:-1]
    rising[starts[1:-1] - 1] = True  # a run's first row follows another run
    return bool(rising.all())


def _key_hash(key: Sequence[str]) -> pl.Expr:
    return pl.struct(*key).hash()


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

    checked = checked_schema(schema, extras)
    frame = parsed.select(*fields, ROW, *extras)
    if _all_rules_hold(frame, checked.schema, checked.pairs):
        # dataframely's filter would copy every column to keep every row.
        valid, details, rule_columns = frame, None, []
    else:
        valid, failure = checked.schema.filter(frame)
        details = failure.details()
        rule_columns = [c for c in details.columns if c not in checked.schema.columns()]
    broken = {
        **({"primary_key": duplicated(frame, checked.key)} if checked.key else {}),
        **{
            f"{column}|regex": mismatched(frame.get_column(column), pattern)
            for column, pattern in checked.patterns.items()
        },
    }
    pieces = [_invalid(details, rule_columns)] + [
        frame.filter(rows).select(ROW, pl.lit(rule).alias("rule")) for rule, rows in broken.items()
    ]
    found = [p for p in pieces if p is not None and p.height]
    # Failures rule by rule in dataframely's order, rows in order within a rule.
    long = (
        pl.concat(found).sort(pl.col("rule").replace_strict(checked.order), maintain_order=True)
        if found
        else pl.DataFrame(schema={ROW: pl.Int64, "rule": pl.String})
    )
    schema_failures = pl.DataFrame(schema=FAILURES_SCHEMA)
    if long.height:
        rules = long.get_column("rule").unique().to_list()
        mapping = {rule: _rule_to_failure(schema, rule) for rule in rules}
        schema_failures = long.select(
            pl.col(ROW),
            pl.col("rule").replace_strict({r: f for r, (f, _) in mapping.items()}).alias("field"),
            pl.col("rule").replace_strict({r: c for r, (_, c) in mapping.items()}).alias("code"),
        ).join(parse_failures.select(ROW, "field"), on=[ROW, "field"], how="anti")

    failures = pl.concat([parse_failures, schema_failures]).with_columns(
        pl.concat_str(pl.lit(prefix), pl.col("field")).alias("field")
    )
    if not failures.height:
        return valid, failures
    bad_rows = failures.get_column(ROW).unique()
    return valid.filter(~pl.col(ROW).is_in(bad_rows.implode())), failures


def _all_rules_hold(
    frame: pl.DataFrame,
    schema: type[dy.Schema],
    pairs: Mapping[str, tuple[str, frozenset[str]]] | None = None,
) -> bool:
    """Whether every row of ``frame`` passes every rule of ``schema`` (a rule's null is a
    pass, as in dataframely), in one pass of aggregates, the rules of ``pairs`` (rule ->
    column, codes) by a native pass each; False also where dataframely must decide: a column
    missing or of another type, or a rule over groups of rows."""
    columns = schema.columns()
    if any(name not in frame.schema for name in columns) or not all(
        column.validate_dtype(frame.schema[name]) for name, column in columns.items()
    ):
        return False
    rules = schema._validation_rules(with_cast=False)
    if any(type(rule) is not Rule for rule in rules.values()):
        return False
    pairs = pairs or {}
    for column, codes in pairs.values():
        if not all_in_pairs(frame.get_column(column), codes):
            return False
    rest = [
        _aggregate(name, rule.expr, columns) for name, rule in rules.items() if name not in pairs
    ]
    if not rest:
        return True
    return bool(frame.select(pl.all_horizontal(rest)).item())


def _aggregate(name: str, expr: pl.Expr, columns: Mapping[str, dy.Column]) -> pl.Expr:
    """Whether every row passes the rule ``expr`` (null: a pass), as one aggregate: a column
    rule that is exactly dataframely's nullability, minimum or no-infinity rule by the
    column's null count, least or greatest value (Polars orders NaN above every number, in
    comparisons and in ``min``/``max``, so NaN decides alike), any other by each row."""
    field, _, kind = name.partition("|")
    column = columns.get(field)
    this = pl.col(field)
    if column is not None and kind == "nullability" and expr.meta.eq(this.is_not_null()):
        return this.null_count() == 0
    if column is not None and kind == "inf" and expr.meta.eq(this.is_infinite().not_()):
        return ((this.max() < float("inf")) & (this.min() > float("-inf"))).fill_null(True)
    minimum = getattr(column, "min", None)
    if kind == "min" and minimum is not None and expr.meta.eq(this >= minimum):
        return (this.min() >= minimum).fill_null(True)
    return expr.fill_null(True).all()


def _invalid(details: pl.DataFrame | None, rules: list[str]) -> pl.DataFrame | None:
    """(row id, rule) of each rule a row of ``details`` breaks, rule by rule."""
    if details is None or not rules or not details.height:
        return None
    return (
        details.select(ROW, *rules)
        .unpivot(index=ROW, variable_name="rule")
        .filter(pl.col("value") == "invalid")
        .select(ROW, "rule")
    )


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
