"""The quarantine file: every bad row with its source, the failed fields, reasons and raw values.

Reasons are human-readable and name the raw value, e.g.
``declared_at: cannot parse '2020-13-45' as a date (formats: %Y-%m-%d)``. They are written
only for the rows that failed, so the valid path stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dataframely as dy
import polars as pl

from pipelines.ingest.parse import DEFAULT_DATE_FORMATS, DEFAULT_DATETIME_FORMATS, resolve_source
from pipelines.ingest.profile import FieldSpec
from pipelines.ingest.validate import ROW
from risk.schemas import HS_CODE_PATTERN

META_COLUMNS = ("source_file", "source_row", "field", "rule", "reason")
QUARANTINE_SCHEMA = {
    "source_file": pl.String,
    "source_row": pl.Int64,
    "field": pl.String,
    "rule": pl.String,
    "reason": pl.String,
}


@dataclass(frozen=True)
class RawFile:
    """One source file as read, with the global row id of each of its rows."""

    path: Path
    frame: pl.DataFrame  # raw columns plus ROW
    first_row: int  # ROW of the file's first data row


def _message(field: str, code: str, dtype: pl.DataType, spec: FieldSpec | None) -> str:
    """Reason template for one (field, code); '{raw}' stands for the raw value."""
    if code == "unparseable_date":
        default = DEFAULT_DATE_FORMATS if dtype == pl.Date else DEFAULT_DATETIME_FORMATS
        formats = ", ".join((spec.formats if spec else None) or default)
        return f"cannot parse '{{raw}}' as a date (formats: {formats})"
    if code == "unknown_value":
        if spec is not None and spec.values:
            expected = ", ".join(spec.values)
        else:
            expected = ", ".join(dtype.categories) if isinstance(dtype, pl.Enum) else "?"
        return f"unknown value '{{raw}}' (expected one of: {expected})"
    fixed = {
        "unparseable_number": "cannot parse '{raw}' as a number",
        "unparseable_integer": "cannot parse '{raw}' as an integer",
        "unparseable_bool": "cannot parse '{raw}' as true/false",
        "unknown_currency": "unknown currency '{raw}' (no rate in risk/reference/"
        "currency_rates.toml)",
        "missing": "missing value (required)",
        "negative": "negative value '{raw}'",
        "below_minimum": "value '{raw}' is below the minimum",
        "not_finite": "'{raw}' is not a finite number",
        "not_iso": "'{raw}' is not an ISO 3166-1 alpha-2 country code",
        "duplicate_key": "duplicate item key: declaration_id '{raw}' with this item_no "
        "occurs more than once (every copy is quarantined)",
        "inconsistent": "value '{raw}' contradicts the 'inspected' flag",
    }
    if code == "malformed" and field == "hs_code":
        return f"malformed HS code '{{raw}}' (expected {HS_CODE_PATTERN}: 4 to 10 digits)"
    if code == "malformed":
        return "malformed value '{raw}'"
    return fixed.get(code, f"breaks rule {code} (value '{{raw}}')")


def build_quarantine(
    failures: pl.DataFrame,
    files: list[RawFile],
    sections: Mapping[str, tuple[Mapping[str, FieldSpec], type[dy.Schema]]],
) -> pl.DataFrame:
    """One row per bad source row; ``sections`` maps a field prefix ('' or 'outcome.') to
    its profile mapping and schema, to find each field's source column and type."""
    if failures.height == 0:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    bad_ids = failures.get_column(ROW).unique().implode()
    located = []
    raw_rows = []
    for file in files:
        rows = file.frame.filter(pl.col(ROW).is_in(bad_ids))
        if rows.height == 0:
            continue
        columns = [c for c in rows.columns if c != ROW]
        text = rows.select(
            pl.col(ROW),
            pl.lit(str(file.path)).alias("source_file"),
            (pl.col(ROW) - file.first_row + 1).alias("source_row"),
            *[pl.col(c).cast(pl.String).alias(_raw_name(c)) for c in columns],
        )
        raw_rows.append(text)
        located.append(_with_raw_values(failures, text, file, sections))
    located_failures = pl.concat(located).sort(ROW, "order")
    per_row = located_failures.group_by(ROW, maintain_order=True).agg(
        pl.col("field").str.join("; "),
        pl.col("code").str.join("; ").alias("rule"),
        pl.col("reason").str.join("; "),
    )
    raw = pl.concat(raw_rows, how="diagonal")
    return (
        per_row.join(raw, on=ROW, how="left", maintain_order="left")
        .sort(ROW)
        .select(*META_COLUMNS, pl.exclude(*META_COLUMNS, ROW))
    )


def _raw_name(column: str) -> str:
    """A raw column's name in the quarantine file (renamed only if it clashes)."""
    return f"raw:{column}" if column in META_COLUMNS else column


def _with_raw_values(
    failures: pl.DataFrame,
    text: pl.DataFrame,
    file: RawFile,
    sections: Mapping[str, tuple[Mapping[str, FieldSpec], type[dy.Schema]]],
) -> pl.DataFrame:
    """Failures of one file's rows with the raw value of the failed field and the reason."""
    available: dict[str, pl.DataType] = {c: pl.String() for c in file.frame.columns}
    lookup: list[dict[str, str | int | None]] = []
    for prefix, (specs, schema) in sections.items():
        for field in schema.columns():
            spec = specs.get(field)
            source = resolve_source(spec, available) if spec else None
            source = None if source is None else _raw_name(source)
            constant = None if spec is None or spec.constant is None else str(spec.constant)
            lookup.append(
                {
                    "field": prefix + field,
                    "source_column": source,
                    "constant": constant,
                    "order": len(lookup),
                }
            )
    table = pl.DataFrame(
        lookup,
        schema={
            "field": pl.String,
            "source_column": pl.String,
            "constant": pl.String,
            "order": pl.Int64,
        },
    )
    mine = failures.filter(pl.col(ROW).is_in(text.get_column(ROW).implode())).join(
        table, on="field", how="left"
    )
    # The raw value of each failure's source column, looked up in long form.
    long = text.drop("source_file", "source_row").unpivot(
        index=ROW, variable_name="source_column", value_name="raw"
    )
    mine = mine.join(long, on=[ROW, "source_column"], how="left")
    # One cause, one reason: an outcome field read from the same column as a declaration field
    # (the date, the id) repeats that failure.
    first_of_cause = pl.int_range(pl.len()).over(ROW, "source_column", "code") == 0
    mine = mine.sort(ROW, "order").filter(pl.col("source_column").is_null() | first_of_cause)
    templates = {
        (f, c): _template(f, c, sections) for f, c in mine.select("field", "code").unique().rows()
    }
    keyed = pl.concat_str(pl.col("field"), pl.lit("\x00"), pl.col("code"))
    template = keyed.replace_strict({f"{f}\x00{c}": t for (f, c), t in templates.items()})
    raw = pl.coalesce(pl.col("raw"), pl.col("constant"), pl.lit(""))
    return mine.select(
        ROW,
        "order",
        "field",
        "code",
        pl.concat_str(
            pl.col("field"), pl.lit(": "), template.str.replace_all("{raw}", raw, literal=True)
        ).alias("reason"),
    )


def _template(
    field: str,
    code: str,
    sections: Mapping[str, tuple[Mapping[str, FieldSpec], type[dy.Schema]]],
) -> str:
    for prefix, (specs, schema) in sorted(sections.items(), key=lambda s: -len(s[0])):
        if field.startswith(prefix) and field.removeprefix(prefix) in schema.columns():
            name = field.removeprefix(prefix)
            return _message(name, code, schema.columns()[name].dtype, specs.get(name))
    return _message(field, code, pl.String(), None)
