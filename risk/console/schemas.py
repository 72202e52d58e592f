"""Request and response models of the console and its JSON API (apart from the tables)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from risk.schemas import HS_CODE_PATTERN, LANES, PROCEDURES, RESULTS, SELECTIONS, iso_countries

Lane = Literal["green", "yellow", "red", "blue"]
Result = Literal[RESULTS]  # type: ignore[valid-type]
assert set(LANES) == {"green", "yellow", "red", "blue"}


class QueueEntry(BaseModel):
    """One truck of a crossing's queue, as officers see it."""

    id: int = Field(description="The store's id of the truck (used in page URLs).")
    truck_id: str = Field(description="Truck id, or `decl:<declaration>` for one without.")
    crossing: str
    vehicle_plate: str | None
    lane: Lane = Field(description="The lane in force (after any override).")
    model_lane: Lane = Field(description="The lane scoring assigned.")
    decided_by: Literal["model", "rule", "random", "override"]
    selection: Literal[SELECTIONS]  # type: ignore[valid-type]
    random_pick: bool = Field(description="Picked by the mandatory random share.")
    risk: float = Field(ge=0, le=1, description="Chance anything on the truck is wrong.")
    duty_at_risk_usd: float = Field(ge=0, description="Expected duty an inspection recovers.")
    n_items: int
    arrived_at: datetime | None = Field(description="Naive UTC.")
    waiting_minutes: float | None = Field(description="Minutes since arrival, now.")
    status: Literal["waiting", "inspected", "departed"]
    model_version: str
    reasons: list[str]
    version: int = Field(description="Send back with changes: guards against lost updates.")


class QueuePage(BaseModel):
    crossing: str | None
    lane: Lane | None
    generated_at: datetime
    counts: dict[str, int] = Field(description="Waiting trucks per lane.")
    trucks: list[QueueEntry]


class TrackRecordView(BaseModel):
    importer_id: str
    inspected: int
    violations: int
    hit_rate: float | None
    extra_duty_usd: float
    last_violation_at: datetime | None


class ItemView(BaseModel):
    item_no: int
    hs_code: str
    goods_description: str | None
    origin_country: str
    dispatch_country: str | None
    net_mass_kg: float | None
    gross_mass_kg: float | None
    customs_value_usd: float
    usd_per_kg: float | None
    duty_rate_pct: float | None
    risk: float
    duty_at_risk_usd: float
    reasons: list[str]


class DeclarationView(BaseModel):
    declaration_id: str
    declared_at: datetime
    importer_id: str
    importer_registered_on: date | None
    declarant_id: str | None
    procedure: str
    risk: float
    duty_at_risk_usd: float
    reasons: list[str]
    track_record: TrackRecordView
    items: list[ItemView]


class InspectionView(BaseModel):
    officer: str
    result: str
    declaration_id: str | None
    extra_duty_usd: float
    notes: str
    recorded_at: datetime


class AuditView(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    crossing: str | None
    truck_id: str | None
    truck_pk: int | None
    lane_before: str | None
    lane_after: str | None
    details: dict[str, Any]


class TruckView(QueueEntry):
    run_id: str
    lane_set_at: datetime
    declarations: list[DeclarationView]
    inspection: InspectionView | None
    history: list[AuditView]


class ResultForm(BaseModel):
    """An officer's inspection result, as the truck page posts it."""

    model_config = ConfigDict(extra="ignore")

    version: int = Field(ge=1)
    result: Result
    extra_duty_usd: float = Field(0.0, ge=0, allow_inf_nan=False)
    declaration_id: str = Field("", description="Empty: the whole truck.")
    notes: str = Field("", max_length=2000)

    @field_validator("extra_duty_usd", mode="before")
    @classmethod
    def _blank_is_zero(cls, value: object) -> object:
        return 0.0 if value in ("", None) else value


class OverrideForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int = Field(ge=1)
    lane: Lane
    reason: str = Field(min_length=1, max_length=500)


class WatchListForm(BaseModel):
    """A watch-list entry as the supervisor's form posts it; the store checks the rule.

    List fields are free text (codes separated by commas or spaces); ``reason`` is why the
    entry is added or changed, for the audit log (the store requires it).
    """

    model_config = ConfigDict(extra="ignore")

    version: int = Field(0, ge=0, description="The entry's version when the form was loaded.")
    name: str = Field("", max_length=64)
    lane: Literal["red", "green"]
    reason_en: str = Field("", max_length=500)
    reason_ru: str = Field("", max_length=500)
    importer_ids: str = Field("", max_length=4000)
    hs_prefixes: str = Field("", max_length=2000)
    origin_countries: str = Field("", max_length=1000)
    dispatch_countries: str = Field("", max_length=1000)
    crossings: str = Field("", max_length=2000)
    valid_from: date | None = None
    valid_until: date | None = None
    reason: str = Field("", max_length=500)

    @field_validator("valid_from", "valid_until", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    def rule_values(self) -> dict[str, Any]:
        """The rule's fields, for ``risk.store.add_entry`` / ``change_entry``."""
        return self.model_dump(exclude={"version", "reason"})


class RetireForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int = Field(ge=1)
    reason: str = Field("", max_length=500)


class WatchListView(BaseModel):
    """One watch-list entry as the console shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    lane: Literal["red", "green"]
    reason_en: str
    reason_ru: str
    importer_ids: list[str]
    hs_prefixes: list[str]
    origin_countries: list[str]
    dispatch_countries: list[str]
    crossings: list[str]
    valid_from: date | None
    valid_until: date | None
    created_at: datetime
    created_by: str
    changed_at: datetime
    changed_by: str
    retired_at: datetime | None
    retired_by: str | None
    version: int

    def reason(self, lang: str) -> str:
        return self.reason_ru if lang == "ru" and self.reason_ru else self.reason_en

    def form_values(self) -> dict[str, str]:
        """The entry as its edit form shows it (lists as comma-separated text)."""
        return {
            "name": self.name,
            "lane": self.lane,
            "reason_en": self.reason_en,
            "reason_ru": self.reason_ru,
            "importer_ids": ", ".join(self.importer_ids),
            "hs_prefixes": ", ".join(self.hs_prefixes),
            "origin_countries": ", ".join(self.origin_countries),
            "dispatch_countries": ", ".join(self.dispatch_countries),
            "crossings": ", ".join(self.crossings),
            "valid_from": self.valid_from.isoformat() if self.valid_from else "",
            "valid_until": self.valid_until.isoformat() if self.valid_until else "",
        }


# --- the scoring API -------------------------------------------------------------------


def _country(value: str | None) -> str | None:
    if value is not None and value not in iso_countries():
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


class DeclarationItemIn(BaseModel):
    """One goods item in the canonical form (``risk.schemas.DeclarationItem``)."""

    model_config = ConfigDict(extra="forbid")

    declaration_id: str = Field(min_length=1)
    item_no: int = Field(ge=1, le=2**31 - 1)
    declared_at: datetime = Field(description="Naive UTC (an offset is converted to UTC).")
    crossing: str = Field(min_length=1)
    truck_id: str | None = None
    vehicle_plate: str | None = None
    carrier_id: str | None = None
    importer_id: str = Field(min_length=1)
    importer_registered_on: date | None = None
    declarant_id: str | None = None
    consignor_id: str | None = None
    hs_code: str = Field(pattern=HS_CODE_PATTERN)
    goods_description: str | None = None
    origin_country: str
    dispatch_country: str | None = None
    destination_country: str | None = None
    procedure: Literal[PROCEDURES]  # type: ignore[valid-type]
    net_mass_kg: float | None = Field(None, ge=0, allow_inf_nan=False)
    gross_mass_kg: float | None = Field(None, ge=0, allow_inf_nan=False)
    quantity: float | None = Field(None, ge=0, allow_inf_nan=False)
    quantity_unit: str | None = None
    invoice_value: float = Field(ge=0, allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    customs_value_usd: float = Field(ge=0, allow_inf_nan=False)
    duty_rate_pct: float | None = Field(None, ge=0, allow_inf_nan=False)

    _countries = field_validator("origin_country", "dispatch_country", "destination_country")(
        _country
    )

    @field_validator("declared_at")
    @classmethod
    def _naive_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            from datetime import UTC

            value = value.astimezone(UTC).replace(tzinfo=None)
        return value


EXAMPLE_ITEM: dict[str, Any] = {
    "declaration_id": "10605040/251102/0001234",
    "item_no": 1,
    "declared_at": "2026-11-02T08:15:00",
    "crossing": "KZRU-ZHS",
    "truck_id": "KZRU-ZHS-0001234",
    "vehicle_plate": "123ABC02",
    "carrier_id": "CAR-0042",
    "importer_id": "IMP-000917",
    "importer_registered_on": "2026-09-20",
    "declarant_id": "BRK-0007",
    "consignor_id": "CNS-0311",
    "hs_code": "8517130000",
    "goods_description": "Smartphones",
    "origin_country": "CN",
    "dispatch_country": "KZ",
    "destination_country": "RU",
    "procedure": "eaeu_internal",
    "net_mass_kg": 820.0,
    "gross_mass_kg": 905.0,
    "quantity": 2000.0,
    "quantity_unit": "pcs",
    "invoice_value": 60000.0,
    "currency": "USD",
    "customs_value_usd": 60000.0,
    "duty_rate_pct": 0.0,
}


class TruckScoreRequest(BaseModel):
    """One truck's declaration items; all on the same truck and crossing."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"items": [EXAMPLE_ITEM]}]}
    )

    items: Annotated[list[DeclarationItemIn], Field(min_length=1, max_length=2000)]

    @model_validator(mode="after")
    def _one_truck(self) -> TruckScoreRequest:
        crossings = {item.crossing for item in self.items}
        trucks = {item.truck_id for item in self.items}
        if len(crossings) > 1:
            raise ValueError(f"items of one truck must share a crossing, got {sorted(crossings)}")
        if len(trucks) > 1:
            raise ValueError("items of one truck must share truck_id")
        if None in trucks and len({i.declaration_id for i in self.items}) > 1:
            raise ValueError("items without truck_id must belong to one declaration")
        keys = [(i.declaration_id, i.item_no) for i in self.items]
        if len(set(keys)) != len(keys):
            raise ValueError("(declaration_id, item_no) must be unique")
        return self


class ItemScore(BaseModel):
    item_no: int
    risk: float
    duty_at_risk_usd: float
    reasons: list[str]


class DeclarationScore(BaseModel):
    declaration_id: str
    risk: float
    duty_at_risk_usd: float
    reasons: list[str]
    items: list[ItemScore]


class TruckScoreResponse(BaseModel):
    """The truck's score and the lane it gets if it joins its crossing's queue now."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "truck_id": "KZRU-ZHS-0001234",
                    "crossing": "KZRU-ZHS",
                    "risk": 0.41,
                    "duty_at_risk_usd": 5230.0,
                    "lane": "red",
                    "selection": "targeted",
                    "decided_by": "model",
                    "reasons": ["Importer registered 43 days before the declaration"],
                    "model_version": "grey-import-risk-canonical/3",
                    "model_run_id": "9d1c…",
                    "published": False,
                    "declarations": [],
                }
            ]
        }
    )

    truck_id: str
    crossing: str
    risk: float = Field(ge=0, le=1)
    duty_at_risk_usd: float = Field(ge=0)
    lane: Lane
    selection: Literal[SELECTIONS]  # type: ignore[valid-type]
    decided_by: Literal["model", "rule", "random"]
    reasons: list[str]
    model_version: str
    model_run_id: str
    published: bool = Field(description="Whether the truck was put into the queue.")
    declarations: list[DeclarationScore]


class ApiError(BaseModel):
    detail: str
