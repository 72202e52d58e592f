"""Hard rules: watch lists and priority controls that set a lane before the model is asked.

Customs runs rules beside the model: an importer on a watch list, an HS heading under a
priority control, goods from a sanctioned route go to the red lane whatever the score, and a
trusted trader may be waved through. A rule is stated as the reason, so the officer knows the
lane came from a rule and not from the model.

A rule matches an item when every criterion it names matches (importer AND HS prefix AND
country ...), each criterion being a list of alternatives. A truck is ruled red when any of its
items matches a red rule; it is ruled green only when every item matches a green rule and none
matches a red one, because one unexplained item is enough to keep the model in charge.
"""

from __future__ import annotations

import json
import tomllib
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from risk.errors import RiskError

RuleLane = Literal["red", "green"]


class HardRule(BaseModel):
    """One watch-list entry or priority control."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Short identifier shown in audits.")
    lane: RuleLane = Field(description="'red' always inspects; 'green' always releases.")
    reason_en: str = Field(min_length=1, description="What the officer reads (English).")
    reason_ru: str = Field("", description="What the officer reads (Russian); English if empty.")
    importer_ids: tuple[str, ...] = ()
    hs_prefixes: tuple[str, ...] = ()
    origin_countries: tuple[str, ...] = ()
    dispatch_countries: tuple[str, ...] = ()
    crossings: tuple[str, ...] = ()
    valid_from: date | None = Field(None, description="First day the rule applies.")
    valid_until: date | None = Field(None, description="Last day the rule applies.")

    @model_validator(mode="after")
    def _names_a_criterion(self) -> HardRule:
        if not (
            self.importer_ids
            or self.hs_prefixes
            or self.origin_countries
            or self.dispatch_countries
            or self.crossings
        ):
            # A rule without criteria would catch every truck: surely a typo in the file.
            raise ValueError(f"rule {self.name!r} names no criterion and would match everything")
        return self

    def reason(self, lang: str = "en") -> str:
        """The reason in the officer's language, prefixed so it reads as a rule."""
        text = self.reason_ru if lang == "ru" and self.reason_ru else self.reason_en
        prefix = "Правило" if lang == "ru" else "Rule"
        return f"{prefix} {self.name}: {text}"

    def matches(self) -> pl.Expr:
        """Boolean expression over canonical declaration item columns."""
        conditions: list[pl.Expr] = []
        if self.importer_ids:
            conditions.append(pl.col("importer_id").is_in(list(self.importer_ids)))
        if self.hs_prefixes:
            hs = pl.col("hs_code")
            prefix_hit = pl.lit(False)
            for prefix in self.hs_prefixes:
                prefix_hit = prefix_hit | hs.str.starts_with(prefix)
            conditions.append(prefix_hit)
        if self.origin_countries:
            conditions.append(pl.col("origin_country").is_in(list(self.origin_countries)))
        if self.dispatch_countries:
            conditions.append(pl.col("dispatch_country").is_in(list(self.dispatch_countries)))
        if self.crossings:
            conditions.append(pl.col("crossing").is_in(list(self.crossings)))
        day = pl.col("declared_at").dt.date()
        if self.valid_from is not None:
            conditions.append(day >= self.valid_from)
        if self.valid_until is not None:
            conditions.append(day <= self.valid_until)
        combined = conditions[0]
        for condition in conditions[1:]:
            combined = combined & condition
        return combined.fill_null(False)


class RuleSet(BaseModel):
    """The hard rules in force; red rules are checked before green ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[HardRule, ...] = ()

    def ordered(self) -> list[HardRule]:
        """Red rules first (an inspection order beats a release), then file order."""
        return [r for r in self.rules if r.lane == "red"] + [
            r for r in self.rules if r.lane == "green"
        ]


def default_rules_path() -> Path:
    return Path(str(files("risk.reference").joinpath("rules.toml")))


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Read a rules file (TOML, ``[[rule]]`` tables); the shipped default when ``path`` is None."""
    source = Path(path) if path is not None else default_rules_path()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RiskError(f"rules file not found: {source}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RiskError(f"rules file {source} is not valid TOML: {exc}") from exc
    try:
        return RuleSet(rules=tuple(HardRule(**entry) for entry in raw.get("rule", [])))
    except (ValidationError, TypeError) as exc:
        raise RiskError(f"rules file {source}: {_first_error(exc)}") from exc


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "rule"
        return f"{where}: {err['msg']}"
    return str(exc)


def item_rule_columns(rules: RuleSet, *, lang: str = "en") -> list[pl.Expr]:
    """``rule_lane`` and ``rule_reason`` per item: the first matching rule, red before green.

    Both are null when no rule matches. Columns needed: ``importer_id``, ``hs_code``,
    ``origin_country``, ``dispatch_country``, ``crossing``, ``declared_at``.
    """
    ordered = rules.ordered()
    if not ordered:
        return [
            pl.lit(None, dtype=pl.String).alias("rule_lane"),
            pl.lit(None, dtype=pl.String).alias("rule_reason"),
        ]
    # A when/then per rule is null where the rule does not match: the first non-null wins.
    lanes = [pl.when(rule.matches()).then(pl.lit(rule.lane)) for rule in ordered]
    reasons = [pl.when(rule.matches()).then(pl.lit(rule.reason(lang))) for rule in ordered]
    return [
        pl.coalesce(lanes).cast(pl.String).alias("rule_lane"),
        pl.coalesce(reasons).cast(pl.String).alias("rule_reason"),
    ]


def rule_translations(rules: RuleSet, lang: str = "en") -> dict[str, tuple[str, str]]:
    """Each rule's reason as ``item_rule_columns(rules, lang=lang)`` states it -> the same
    reason in Russian and in English (the first rule wins where two state the same text)."""
    texts: dict[str, tuple[str, str]] = {}
    for rule in rules.ordered():
        texts.setdefault(rule.reason(lang), (rule.reason("ru"), rule.reason("en")))
    return texts


def truck_rule_aggregations() -> list[pl.Expr]:
    """Aggregations from item ``rule_lane``/``rule_reason`` to one truck, for ``group_by``.

    Finish with :func:`truck_rule_columns`, which turns them into ``rule_lane`` and
    ``rule_reasons`` and drops the helpers.
    """
    return [
        (pl.col("rule_lane") == "red").any().alias("_rule_any_red"),
        (pl.col("rule_lane") == "green").fill_null(False).all().alias("_rule_all_green"),
        pl.col("rule_reason")
        .filter(pl.col("rule_lane") == "red")
        .unique(maintain_order=True)
        .alias("_rule_red_reasons"),
        pl.col("rule_reason")
        .filter(pl.col("rule_lane") == "green")
        .unique(maintain_order=True)
        .alias("_rule_green_reasons"),
    ]


RULE_HELPERS = ("_rule_any_red", "_rule_all_green", "_rule_red_reasons", "_rule_green_reasons")


def truck_rule_columns() -> list[pl.Expr]:
    """``rule_lane`` and ``rule_reasons`` of a truck from :func:`truck_rule_aggregations`.

    Red when any item is ruled red; green when every item is ruled green; otherwise null. The
    reasons are the distinct reasons of the rules that decided the truck (empty if none did).
    """
    any_red = pl.col("_rule_any_red")
    all_green = pl.col("_rule_all_green")
    return [
        pl.when(any_red)
        .then(pl.lit("red"))
        .when(all_green)
        .then(pl.lit("green"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("rule_lane"),
        pl.when(any_red)
        .then(pl.col("_rule_red_reasons"))
        .when(all_green)
        .then(pl.col("_rule_green_reasons"))
        .otherwise(pl.lit([], dtype=pl.List(pl.String)))
        .alias("rule_reasons"),
    ]


def merge_rules(*rule_sets: RuleSet) -> RuleSet:
    """One rule set holding every rule of ``rule_sets``, in the order given.

    The rules in force are the file's plus the supervisors' watch lists in the store; a rule
    named twice is kept twice (each states its own reason, and red still beats green).
    """
    return RuleSet(rules=tuple(rule for rule_set in rule_sets for rule in rule_set.rules))


_RULE_FIELDS = (
    "name",
    "lane",
    "reason_en",
    "reason_ru",
    "importer_ids",
    "hs_prefixes",
    "origin_countries",
    "dispatch_countries",
    "crossings",
    "valid_from",
    "valid_until",
)


def _toml_value(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()  # a TOML local date
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # JSON's string escapes are TOML's basic-string escapes; DEL is the one control character
    # JSON leaves raw and TOML refuses.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def dump_rules(rules: RuleSet, *, header: str = "") -> str:
    """``rules`` as a rules file (``[[rule]]`` tables) that :func:`load_rules` reads back."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for rule in rules.rules:
        lines += ["", "[[rule]]"]
        for field in _RULE_FIELDS:
            value = getattr(rule, field)
            if value in (None, "", ()):
                continue
            lines.append(f"{field} = {_toml_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def hard_rule(**values: object) -> HardRule:
    """A :class:`HardRule` from loose values, or a ``RiskError`` that says what is wrong."""
    try:
        return HardRule(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise RiskError(f"rule {values.get('name')!r}: {_rule_problem(exc)}") from exc


def _rule_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    if not err["loc"]:  # the model's own check: it names no criterion
        return (
            "names no criterion (importer, HS prefix, origin or dispatch country, crossing) "
            "and would match every truck"
        )
    return f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}"
