"""Source profiles: how a foreign export format maps onto the canonical frames.

A profile is data (a TOML file in ``pipelines/profiles/``, or any path), never code. For each
canonical field it names the source column (or a constant), the date formats, a unit factor,
a value mapping and a default for empty cells. ``docs/schema.md`` lists the shipped profiles.
"""

from __future__ import annotations

import re
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import dataframely as dy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from risk.errors import InputError
from risk.schemas import DeclarationItem, InspectionOutcome

Constant = bool | int | float | str

EXTRA_COLUMN_PATTERN = r"^src_[a-z0-9_]+$"
# Canonical fields that ingest can derive when a source leaves them out or empty.
DERIVED_FIELDS = frozenset({"customs_value_usd"})


class FieldSpec(BaseModel):
    """Where one canonical field comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: list[str] = Field(
        default_factory=list,
        description="Source column name; a list gives alternative names, the first present wins.",
    )
    constant: Constant | None = Field(
        None, description="A fixed value for every row, for a field the source has no column for."
    )
    default: Constant | None = Field(None, description="Used where the source cell is empty.")
    formats: list[str] = Field(
        default_factory=list, description="strftime formats for dates, tried in order."
    )
    factor: float | None = Field(
        None, gt=0, description="Multiplier into the canonical unit (tonnes -> kg: 1000)."
    )
    values: dict[str, str] = Field(
        default_factory=dict, description="Source code -> canonical value (e.g. '1' -> 'other')."
    )
    offset: str | None = Field(
        None, description="Polars duration added to a date (e.g. '1d' for an outcome's delay)."
    )
    optional: bool = Field(
        False, description="The source column may be absent: the field is then null/default."
    )

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _source_or_constant(self) -> FieldSpec:
        if bool(self.source) == (self.constant is not None):
            raise ValueError("give exactly one of 'source' or 'constant'")
        return self


class SourceProfile(BaseModel):
    """A foreign format mapped onto ``DeclarationItem`` (and optionally ``InspectionOutcome``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    encoding: str = Field("utf-8", description="Text encoding of CSV and NDJSON sources.")
    csv_separator: str = Field(",", min_length=1, max_length=1)
    decimal_comma: bool = Field(False, description="Numbers are written as 1234,5.")
    declarations: dict[str, FieldSpec]
    extra_columns: dict[str, str] = Field(
        default_factory=dict,
        description="Output name (src_*) -> source column kept as text beside the canonical ones.",
    )
    passthrough_prefix: str | None = Field(
        None, description="Source columns starting with this prefix are kept as text as they are."
    )
    outcomes: dict[str, FieldSpec] | None = None
    outcome_extra_columns: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fits_the_schemas(self) -> SourceProfile:
        _check_mapping("declarations", self.declarations, DeclarationItem)
        if self.outcomes is not None:
            _check_mapping("outcomes", self.outcomes, InspectionOutcome)
        elif self.outcome_extra_columns:
            raise ValueError("outcome_extra_columns given but no [outcomes] mapping")
        for name in [*self.extra_columns, *self.outcome_extra_columns]:
            if not re.match(EXTRA_COLUMN_PATTERN, name):
                raise ValueError(f"extra column {name!r} must match {EXTRA_COLUMN_PATTERN}")
        return self

    def required_columns(self) -> list[str]:
        """Source columns a file must have (alternatives shown as 'A|B')."""
        specs = [*self.declarations.values(), *(self.outcomes or {}).values()]
        names = ["|".join(s.source) for s in specs if s.source and not s.optional]
        names += [*self.extra_columns.values(), *self.outcome_extra_columns.values()]
        return list(dict.fromkeys(names))


def _check_mapping(section: str, mapping: dict[str, FieldSpec], schema: type[dy.Schema]) -> None:
    columns = schema.columns()
    unknown = sorted(set(mapping) - set(columns))
    if unknown:
        raise ValueError(f"[{section}] maps unknown canonical field(s): {', '.join(unknown)}")
    unmapped = sorted(
        name
        for name, column in columns.items()
        if not column.nullable and name not in mapping and name not in DERIVED_FIELDS
    )
    if unmapped:
        raise ValueError(f"[{section}] leaves required field(s) unmapped: {', '.join(unmapped)}")


def profiles_dir() -> Path:
    """The folder of the shipped profiles."""
    return Path(str(files("pipelines").joinpath("profiles")))


def available_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def load_profile(name_or_path: str | Path | SourceProfile) -> SourceProfile:
    """A shipped profile by name (``kcs``, ``canonical``) or a profile TOML file by path."""
    if isinstance(name_or_path, SourceProfile):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
    else:
        path = profiles_dir() / f"{text}.toml"
        if not path.is_file():
            known = ", ".join(available_profiles())
            raise InputError(f"unknown profile {text!r}: give a TOML path or one of {known}")
    if not path.is_file():
        raise InputError(f"profile file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        data.setdefault("name", path.stem)
        profile = SourceProfile.model_validate(data)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"profile {path} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'profile'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"profile {path} is invalid: {problems}") from exc
    from pipelines.ingest.parse import check_constants

    check_constants(profile)
    return profile
