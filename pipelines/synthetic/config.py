"""The typed settings of the synthetic traffic generator."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from risk.schemas import VIOLATION_TYPES

# Every grey-import scheme of DOMAIN.md; "other" is a result officers record, not a scheme.
SCHEMES = tuple(v for v in VIOLATION_TYPES if v != "other")

# Share of items under each scheme. About one item in eight is fraudulent, concentrated on
# risky importers, brokers and carriers.
DEFAULT_SCHEME_RATES: dict[str, float] = {
    "undervaluation": 0.035,
    "reexport": 0.015,
    "cargo_consolidation": 0.02,
    "transit_diversion": 0.008,
    "misclassification": 0.015,
    "false_origin": 0.01,
    "one_day_firm": 0.01,
    "weight_misdeclaration": 0.012,
    "splitting": 0.008,
}
# Chance that a physical (red-lane) inspection finds the scheme on an item that has it.
DEFAULT_DETECTION_RATES: dict[str, float] = {
    "undervaluation": 0.85,
    "reexport": 0.65,
    "cargo_consolidation": 0.9,
    "transit_diversion": 0.45,
    "misclassification": 0.75,
    "false_origin": 0.55,
    "one_day_firm": 0.7,
    "weight_misdeclaration": 0.95,
    "splitting": 0.8,
}


class Crossing(BaseModel):
    """A Kazakhstan–Russia road crossing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Crossing id written in every frame, e.g. 'KZRU-ZHS'.")
    name: str = Field(description="Kazakh side – Russian side, as officers call it.")
    share: float = Field(gt=0, description="Relative share of the traffic crossing here.")
    customs_post: str = Field(
        pattern=r"^[0-9]{8}$", description="Customs post code that opens declaration numbers."
    )
    has_weighbridge: bool = Field(default=True, description="Whether arriving trucks are weighed.")


DEFAULT_CROSSINGS: tuple[Crossing, ...] = (
    Crossing(id="KZRU-ZHS", name="Zhaysan–Sagarchin", share=0.24, customs_post="10609050"),
    Crossing(id="KZRU-SYR", name="Syrym–Mashtakovo", share=0.12, customs_post="10609070"),
    Crossing(id="KZRU-ZHZ", name="Zhana Zhol–Petukhovo", share=0.16, customs_post="10503060"),
    Crossing(id="KZRU-KRG", name="Karakoga–Isilkul", share=0.18, customs_post="10610020"),
    Crossing(
        id="KZRU-SHB",
        name="Sharbakty–Kulunda",
        share=0.14,
        customs_post="10605030",
        has_weighbridge=False,
    ),
    Crossing(id="KZRU-AUL", name="Aul–Veseloyarsk", share=0.16, customs_post="10605040"),
)


def _merge(defaults: dict[str, float], given: Any, what: str) -> dict[str, float]:
    if given is None:
        return dict(defaults)
    if not isinstance(given, dict):
        raise ValueError(f"{what} must be a mapping of scheme name to a number")
    unknown = sorted(set(given) - set(SCHEMES))
    if unknown:
        raise ValueError(f"unknown scheme(s) in {what}: {unknown}; known: {list(SCHEMES)}")
    return {**defaults, **{k: float(v) for k, v in given.items()}}


class TrafficConfig(BaseModel):
    """Everything that shapes a synthetic traffic set; the same config gives the same bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=7, ge=0, description="Seed of every random draw.")
    as_of: dt.date = Field(
        default=dt.date(2026, 11, 2),
        description="'Today': the standing queue ends here and history before it. Fixed, "
        "never the real date, so that the same seed gives the same bytes.",
    )
    history_days: int = Field(default=120, ge=14, le=3650, description="Days of past traffic.")
    queue_days: int = Field(
        default=6, ge=1, le=60, description="Days over which the trucks of today's queue arrived."
    )
    history_items: int = Field(
        default=200_000,
        ge=500,
        le=50_000_000,
        description="Goods items of past traffic (the scale).",
    )
    queue_trucks: int = Field(
        default=7000, ge=10, le=1_000_000, description="Trucks standing in today's queue."
    )
    crossings: tuple[Crossing, ...] = Field(
        default=DEFAULT_CROSSINGS,
        min_length=1,
        description="Road crossings and their traffic shares.",
    )
    scheme_rates: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SCHEME_RATES),
        description="Share of items under each grey-import scheme; unnamed schemes keep "
        "their defaults.",
    )
    detection_rates: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_DETECTION_RATES),
        description="Chance a physical inspection finds each scheme (officers miss some).",
    )
    document_check_factor: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Detection of a yellow-lane document check relative to a physical one.",
    )
    random_inspection_share: float = Field(
        default=0.03, ge=0, le=0.5, description="Share of declarations inspected at random."
    )
    rule_inspection_share: float = Field(
        default=0.08, ge=0, le=0.9, description="Share of declarations the old hard rules select."
    )
    targeted_inspection_share: float = Field(
        default=0.05, ge=0, le=0.9, description="Share selected by the old importer-profile score."
    )
    red_lane_share: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Share of rule/targeted selections sent red (else yellow).",
    )
    rule_hs_chapters: tuple[str, ...] = Field(
        default=("84", "85", "87", "61", "62", "64"),
        description="HS chapters the old rules watch.",
    )
    rule_origins: tuple[str, ...] = Field(
        default=("CN",), description="Origins the old rules watch."
    )
    rule_noise: float = Field(
        default=1.0,
        ge=0,
        description="Spread of the officers' judgement added to the old rule score.",
    )
    splitting_threshold_usd: float = Field(
        default=10_000.0,
        gt=0,
        description="Declared value above which old rules check more; split shipments stay "
        "just below it.",
    )

    @field_validator("scheme_rates", mode="before")
    @classmethod
    def _scheme_rates(cls, value: Any) -> dict[str, float]:
        rates = _merge(DEFAULT_SCHEME_RATES, value, "scheme_rates")
        if any(not 0 <= r <= 0.3 for r in rates.values()):
            raise ValueError("each scheme rate must lie between 0 and 0.3")
        if sum(rates.values()) > 0.6:
            raise ValueError("scheme rates must sum to at most 0.6")
        return rates

    @field_validator("detection_rates", mode="before")
    @classmethod
    def _detection_rates(cls, value: Any) -> dict[str, float]:
        rates = _merge(DEFAULT_DETECTION_RATES, value, "detection_rates")
        if any(not 0 <= r <= 1 for r in rates.values()):
            raise ValueError("each detection rate must lie between 0 and 1")
        return rates

    @model_validator(mode="after")
    def _consistent(self) -> TrafficConfig:
        if self.history_days <= self.queue_days + 3:
            raise ValueError("history_days must exceed queue_days by more than 3 days")
        shares = self.random_inspection_share + self.rule_inspection_share
        if shares + self.targeted_inspection_share >= 1:
            raise ValueError("inspection shares must sum to less than 1")
        ids = [c.id for c in self.crossings]
        if len(set(ids)) != len(ids):
            raise ValueError(f"crossing ids must be unique: {ids}")
        return self
