"""Raw source columns -> typed canonical columns, with a failure flag per row and field.

Every value is parsed leniently (``strict=False``) and vectorised; a field whose raw cell is
present but whose parsed value is null has failed, and gets a flag column ``BAD + field``.
The reason text is written later, only for the rows that go to quarantine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dataframely as dy
import polars as pl

from pipelines.ingest.currency import currency_rates
from pipelines.ingest.profile import FieldSpec, SourceProfile
from pipelines.ingest.text_ends import all_in_codes, all_in_pairs, clean_ends
from risk.errors import InputError
from risk.schemas import TIMESTAMP, DeclarationItem, InspectionOutcome, iso_countries

BAD = "__bad__"
TEXT = "__text__"
COUNTRY_FIELDS = frozenset({"origin_country", "dispatch_country", "destination_country"})
TEXT_CODE_FIELDS = COUNTRY_FIELDS | {"currency"}
# ISO 8601 without and with an offset ('Z', '+05:00'); offsets are converted to naive UTC.
DEFAULT_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
)
DEFAULT_DATE_FORMATS = ("%Y-%m-%d",)
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def failure_code(field: str, dtype: pl.DataType) -> str:
    """The kind of parse failure a field can have, given its canonical type."""
    if field == "currency":
        return "unknown_currency"
    if isinstance(dtype, pl.Enum):
        return "unknown_value"
    if isinstance(dtype, pl.Datetime | pl.Date):
        return "unparseable_date"
    if dtype == pl.Boolean:
        return "unparseable_bool"
    if dtype.is_integer():
        return "unparseable_integer"
    if dtype.is_float():
        return "unparseable_number"
    return "unparseable_text"


def resolve_source(spec: FieldSpec, columns: Mapping[str, pl.DataType]) -> str | None:
    """The first of the spec's source names present in the file, if any."""
    return next((name for name in spec.source if name in columns), None)


def _text(raw: pl.Expr, spec: FieldSpec, field: str) -> pl.Expr:
    text = raw.cast(pl.String).str.strip_chars()
    text = pl.when(text.str.len_bytes() > 0).then(text)
    if spec.values:
        text = text.replace(spec.values)
    if field in TEXT_CODE_FIELDS:
        text = text.str.to_uppercase()
    return text


def _from_text(
    text: pl.Expr, field: str, dtype: pl.DataType, spec: FieldSpec, decimal_comma: bool
) -> pl.Expr:
    if field == "currency":
        return pl.when(text.is_in(sorted(currency_rates()))).then(text)
    if isinstance(dtype, pl.Enum):
        lowered = text.str.to_lowercase()
        return pl.when(lowered.is_in(list(dtype.categories))).then(lowered).cast(dtype)
    if dtype == pl.Boolean:
        lowered = text.str.to_lowercase()
        return (
            pl.when(lowered.is_in(TRUE_WORDS))
            .then(pl.lit(True))
            .when(lowered.is_in(FALSE_WORDS))
            .then(pl.lit(False))
        )
    if dtype.is_numeric():
        number = text.str.replace(",", ".", literal=True) if decimal_comma else text
        return number.cast(dtype, strict=False)
    if isinstance(dtype, pl.Datetime):
        formats: Sequence[str] = spec.formats or DEFAULT_DATETIME_FORMATS
        return pl.coalesce([_to_utc_datetime(text, f) for f in formats])
    if isinstance(dtype, pl.Date):
        formats = spec.formats or list(DEFAULT_DATE_FORMATS)
        return pl.coalesce([text.str.to_date(f, strict=False) for f in formats])
    return text


def _to_utc_datetime(text: pl.Expr, fmt: str) -> pl.Expr:
    parsed = text.str.to_datetime(fmt, strict=False, time_unit="us")
    if "%z" in fmt or "%#z" in fmt or "%:z" in fmt:
        return parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return parsed


def _from_typed(raw: pl.Expr, raw_dtype: pl.DataType, dtype: pl.DataType) -> pl.Expr | None:
    """A direct cast for typed sources (Parquet, NDJSON numbers), or None to go through text."""
    if dtype.is_numeric() and raw_dtype.is_numeric():
        return raw.cast(dtype, strict=False)
    if isinstance(raw_dtype, pl.Datetime) and isinstance(dtype, pl.Datetime | pl.Date):
        if raw_dtype.time_zone is not None:  # the project keeps naive UTC timestamps
            raw = raw.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return raw.cast(TIMESTAMP).cast(dtype)
    if raw_dtype == pl.Date and isinstance(dtype, pl.Datetime | pl.Date):
        return raw.cast(dtype)
    if raw_dtype == pl.Boolean and dtype == pl.Boolean:
        return raw
    if raw_dtype == dtype and isinstance(dtype, pl.Enum):  # the same categories
        return raw
    if isinstance(raw_dtype, pl.Enum | pl.Categorical) and isinstance(dtype, pl.Enum):
        return raw.cast(pl.String).cast(dtype, strict=False)
    return None


def _constant_text(value: bool | int | float | str) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class FieldPlan:
    """How one canonical field is computed, in stages (so each raw column is cleaned once)."""

    field: str
    text: pl.Expr | None  # stage 1: cleaned text, as column TEXT + field
    value: pl.Expr  # stage 2: the parsed value (null where parsing failed)
    present: pl.Expr | None  # stage 3: the raw cell was there (None: the field cannot fail)
    finish: pl.Expr  # stage 4: unit factor, offset, default, final type


def plan_field(
    field: str,
    dtype: pl.DataType,
    spec: FieldSpec | None,
    columns: Mapping[str, pl.DataType],
    decimal_comma: bool,
    verbatim: bool = False,
) -> FieldPlan:
    """The staged expressions that parse one canonical field from a raw frame's columns.

    ``verbatim``: the field's text stage is known to give back its raw text column unchanged
    (``verbatim_fields``), so the raw column is taken as it is.
    """
    this = pl.col(field)
    if spec is None:  # no counterpart in the source: null
        return FieldPlan(field, None, pl.lit(None, dtype=dtype).alias(field), None, this)
    source = resolve_source(spec, columns)
    if spec.constant is not None or source is None:
        literal = spec.constant if spec.constant is not None else spec.default
        if literal is None:
            value = pl.lit(None, dtype=dtype)
        else:
            text = _text(pl.lit(_constant_text(literal), dtype=pl.String), spec, field)
            value = _from_text(text, field, dtype, spec, decimal_comma).cast(dtype)
        return FieldPlan(field, None, value.alias(field), None, this)

    raw = pl.col(source)
    typed = None if spec.values else _from_typed(raw, columns[source], dtype)
    if typed is not None:
        text_expr, value, present = None, typed, raw.is_not_null()
    elif verbatim:
        text_expr, value, present = None, raw, None
    else:
        text_expr = _text(raw, spec, field).alias(TEXT + field)
        cleaned = pl.col(TEXT + field)
        value = _from_text(cleaned, field, dtype, spec, decimal_comma)
        present = cleaned.is_not_null()
    can_fail = (field == "currency" and not verbatim) or dtype != pl.String
    finish = this
    if spec.factor is not None:
        finish = finish * spec.factor
    if spec.offset is not None:
        finish = finish.dt.offset_by(spec.offset)
    if spec.default is not None:
        fallback = pl.lit(_constant_text(spec.default), dtype=pl.String)
        finish = pl.coalesce(finish, _from_text(fallback, field, dtype, spec, decimal_comma))
    return FieldPlan(
        field,
        text_expr,
        value.alias(field),
        present if can_fail and present is not None else None,
        finish.cast(dtype).alias(field),
    )


def _text_sources(
    specs: Mapping[str, FieldSpec], schema: type[dy.Schema], columns: Mapping[str, pl.DataType]
) -> dict[str, str]:
    """Field -> source column, for the String fields read from a String column as text."""
    sources = {}
    for field, column in schema.columns().items():
        spec = specs.get(field)
        if spec is None or spec.constant is not None or spec.values or column.dtype != pl.String:
            continue
        source = resolve_source(spec, columns)
        if source is not None and columns[source] == pl.String:
            sources[field] = source
    return sources


def _distinct(frame: pl.DataFrame, columns: list[str]) -> pl.LazyFrame:
    """One row: the distinct values of each column, as a list."""
    return frame.lazy().select(pl.col(c).drop_nulls().unique().implode() for c in columns)


def _unchanged(values: pl.Series, field: str) -> bool:
    """Whether ``_text`` (and, for currency, the rate check) keeps every one of ``values``."""
    cleaned = values.str.strip_chars()
    if field in TEXT_CODE_FIELDS:
        cleaned = cleaned.str.to_uppercase()
    kept = (cleaned == values) & (values.str.len_bytes() > 0)
    if field == "currency":
        kept &= values.is_in(sorted(currency_rates()))
    return bool(kept.all())


def _clean(column: pl.Series, field: str) -> bool:
    """Whether ``_text`` keeps every value of a text column: a country column of ISO codes
    only (``text_ends.all_in_pairs``, the codes being clean), else by ``clean_ends``."""
    codes = iso_countries()
    if field in COUNTRY_FIELDS and _plain_codes(codes, 2) and all_in_pairs(column, codes):
        return True
    return clean_ends(column, code=field in TEXT_CODE_FIELDS)


def _plain_codes(codes: frozenset[str], width: int) -> bool:
    """Whether ``codes`` are ASCII without white space or lower case, ``width`` bytes each."""
    return all(c.isascii() and c == c.strip().upper() and len(c) == width for c in codes)


def _known_currencies(column: pl.Series) -> bool:
    """Whether every non-null currency is a code of the rates file (so ``_text`` keeps it),
    by one native pass (``text_ends.all_in_codes``) where the codes allow it."""
    codes = frozenset(dict(currency_rates()))
    plain = all(c and c.isascii() and c == c.strip().upper() for c in codes)
    lengths = {len(c.encode()) for c in codes}
    if not plain or len(lengths) != 1 or not 1 <= min(lengths) <= 3:
        return False
    return all_in_codes(column, codes)


def verbatim_fields(frame: pl.DataFrame, sources: Mapping[str, str]) -> frozenset[str]:
    """The fields (of ``sources``: field -> String column) whose text stage would give back
    the raw column unchanged in every row.

    Cleaning rewrites every cell of a column; a typed file of earlier ingests (the queue that
    batch scoring reads) has nothing to clean, and proving that costs a fraction of it. A
    column passes when one native pass (``text_ends.clean_ends``) finds no empty cell and no
    first or last byte that can belong to white space (other scripts judged by their UTF-8
    lead and last two bytes), and for code fields only ASCII without lower case; currency
    passes when every value is a code of the rates file (``text_ends.all_in_codes``); the
    rest is checked exactly on its distinct values.
    """
    # One native pass per column first (``text_ends.clean_ends``), on two threads (the
    # passes release the GIL): what it passes is kept.
    asked = [(f, s) for f, s in sources.items() if f != "currency"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        passed = pool.map(lambda pair: _clean(frame.get_column(pair[1]), pair[0]), asked)
        kept = {field for (field, _), clean in zip(asked, passed, strict=True) if clean}
    if "currency" in sources and _known_currencies(frame.get_column(sources["currency"])):
        kept.add("currency")
    # The rest is judged on its distinct values.
    rest = sorted({source for field, source in sources.items() if field not in kept})
    if not rest:
        return frozenset(kept)
    distinct = _distinct(frame, rest).collect()
    values = {c: distinct.get_column(c)[0] for c in distinct.columns}
    return frozenset(
        kept
        | {f for f, source in sources.items() if f not in kept and _unchanged(values[source], f)}
    )


def parse_columns(
    raw: pl.DataFrame,
    specs: Mapping[str, FieldSpec],
    schema: type[dy.Schema],
    profile: SourceProfile,
) -> pl.LazyFrame:
    """Every column of ``schema`` parsed from ``raw``, plus a failure flag ``BAD + field`` for
    each field that can fail to parse."""
    columns = raw.schema
    verbatim = verbatim_fields(raw, _text_sources(specs, schema, columns))
    plans = []
    for field, column in schema.columns().items():
        spec = specs.get(field)
        plans.append(
            plan_field(field, column.dtype, spec, columns, profile.decimal_comma, field in verbatim)
        )
    texts = [p.text for p in plans if p.text is not None]
    parsed = (
        raw.lazy()
        .with_columns(texts)
        .with_columns(p.value for p in plans)
        .with_columns(
            (p.present & pl.col(p.field).is_null()).alias(BAD + p.field)
            for p in plans
            if p.present is not None
        )
        .with_columns(p.finish for p in plans)
        .drop(TEXT + p.field for p in plans if p.text is not None)
    )
    usd = specs.get("customs_value_usd")
    if schema is DeclarationItem and not _never_null(raw, usd, pl.Float64()):
        parsed = parsed.with_columns(_derived_customs_value())
    return parsed


def _never_null(raw: pl.DataFrame, spec: FieldSpec | None, dtype: pl.DataType) -> bool:
    """Whether a Float64 field parses to a value in every row: read by a direct cast from a
    numeric column without nulls (a cast of a number to Float64 never fails; a unit factor
    or a default keeps a value a value). Then ``_derived_customs_value`` changes nothing."""
    if dtype != pl.Float64 or spec is None or spec.constant is not None or spec.values:
        return False
    source = resolve_source(spec, raw.schema)
    if source is None or not raw.schema[source].is_numeric():
        return False
    return raw.get_column(source).null_count() == 0


def _derived_customs_value() -> pl.Expr:
    """Invoice value at the fixed reference rate, where the source gives no USD value."""
    rates = dict(currency_rates())
    rate = pl.col("currency").replace_strict(rates, default=None, return_dtype=pl.Float64)
    return pl.coalesce(pl.col("customs_value_usd"), pl.col("invoice_value") * rate).alias(
        "customs_value_usd"
    )


def check_constants(profile: SourceProfile) -> None:
    """Refuse a profile whose constants or defaults would not parse (e.g. a typo'd procedure)."""
    sections: list[tuple[dict[str, FieldSpec], type[dy.Schema]]] = [
        (profile.declarations, DeclarationItem)
    ]
    if profile.outcomes is not None:
        sections.append((profile.outcomes, InspectionOutcome))
    probe = pl.LazyFrame({"__probe__": [""]})
    for specs, schema in sections:
        for field, spec in specs.items():
            literal = spec.constant if spec.constant is not None else spec.default
            if literal is None:
                continue
            constant_spec = spec.model_copy(update={"source": [], "constant": literal})
            dtype = schema.columns()[field].dtype
            plan = plan_field(field, dtype, constant_spec, {}, profile.decimal_comma)
            if probe.select(plan.value).collect().item() is None:
                raise InputError(
                    f"profile {profile.name!r}: {field} = {literal!r} is not a valid "
                    f"{failure_code(field, dtype).removeprefix('unparseable_')} value"
                )
