"""The small world the synthetic traffic lives in: HS codes, countries, currencies, crossings.

The HS reference (``risk/reference/hs_reference.csv``) holds the codes grey imports hit, each
with a plausible customs value per kg, a typical mass per unit, the EAEU tariff rate and, where
goods are commonly hidden under another code, that lower-duty "cover" code. Currency rates are
the fixed ones ingest uses (``risk/reference/currency_rates.toml``), so that ingesting the
generated files gives back the same ``customs_value_usd``.
"""

from __future__ import annotations

import io
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np
import polars as pl

# Groups of goods, in the order of the reference's "group" column codes.
GROUPS = (
    "electronics",
    "dual_use",
    "appliances",
    "tools",
    "machine_tools",
    "machinery",
    "cars",
    "car_parts",
    "clothing",
    "footwear",
    "textiles",
    "cosmetics",
    "toys",
    "furniture",
    "household",
    "food",
    "metals",
)
# Goods that "cargo" operators consolidate for marketplace sellers.
CARGO_GROUPS = ("electronics", "clothing", "footwear", "cosmetics", "toys", "household")

COUNTRIES = (
    "CN", "KZ", "TR", "UZ", "DE", "KR", "JP", "IT", "PL", "IN",
    "VN", "US", "BY", "KG", "AE", "TW", "RU", "GE", "AZ", "MN",
    "IR", "AF", "AM", "BD", "FR",
)  # fmt: skip
COUNTRY_INDEX = {code: i for i, code in enumerate(COUNTRIES)}
EAEU = ("KZ", "BY", "KG", "AM", "RU")
# Origins whose goods pay no import duty in the EAEU (members, and the CIS free-trade zone).
DUTY_FREE_ORIGINS = (*EAEU, "UZ")
# Tariff preferences: share of the full rate paid (developing and least developed countries).
PREFERENCE_FACTOR: dict[str, float] = {"IN": 0.75, "VN": 0.75, "BD": 0.0}
# Price level of an origin relative to the HS reference (customs keeps references per HS x
# origin: a German lathe costs more per kg than a Chinese one).
PRICE_FACTOR: dict[str, float] = {
    "CN": 1.0, "KZ": 0.95, "TR": 1.05, "UZ": 0.85, "DE": 1.6, "KR": 1.25, "JP": 1.4,
    "IT": 1.5, "PL": 1.2, "IN": 0.9, "VN": 0.95, "US": 1.5, "BY": 0.95, "KG": 0.85,
    "AE": 1.1, "TW": 1.2, "FR": 1.5,
}  # fmt: skip

# Where goods of each group come from (origin weights); unlisted groups use DEFAULT_ORIGINS.
DEFAULT_ORIGINS: dict[str, float] = {
    "CN": 60,
    "KZ": 8,
    "TR": 8,
    "UZ": 4,
    "DE": 5,
    "KR": 5,
    "JP": 2,
    "IN": 3,
    "VN": 3,
    "AE": 2,
}
GROUP_ORIGINS: dict[str, dict[str, float]] = {
    "electronics": {"CN": 75, "KR": 7, "VN": 5, "TW": 4, "JP": 2, "AE": 3, "KZ": 2, "US": 2},
    "dual_use": {"CN": 80, "TW": 6, "US": 4, "JP": 3, "DE": 3, "AE": 4},
    "appliances": {"CN": 70, "TR": 10, "KR": 8, "DE": 5, "PL": 4, "KZ": 3},
    "tools": {"CN": 70, "DE": 12, "JP": 5, "TW": 5, "TR": 4, "US": 4},
    "machine_tools": {"CN": 55, "DE": 15, "TW": 12, "JP": 8, "IT": 6, "KR": 4},
    "machinery": {"CN": 55, "DE": 15, "IT": 8, "TR": 7, "KR": 5, "JP": 5, "KZ": 5},
    "cars": {"CN": 60, "KR": 12, "JP": 10, "DE": 10, "US": 3, "AE": 5},
    "car_parts": {"CN": 65, "KR": 8, "JP": 7, "DE": 10, "TR": 6, "PL": 4},
    "clothing": {"CN": 55, "TR": 15, "UZ": 10, "KG": 8, "BD": 4, "VN": 4, "IT": 2, "IN": 2},
    "footwear": {"CN": 65, "TR": 12, "VN": 10, "IT": 4, "KG": 4, "IN": 5},
    "textiles": {"CN": 55, "UZ": 15, "TR": 15, "IN": 8, "BY": 7},
    "cosmetics": {"KR": 35, "CN": 30, "FR": 10, "TR": 8, "JP": 7, "PL": 5, "IT": 5},
    "toys": {"CN": 90, "TR": 4, "VN": 3, "DE": 3},
    "furniture": {"CN": 50, "TR": 15, "BY": 12, "PL": 8, "IT": 8, "KZ": 7},
    "household": {"CN": 65, "TR": 15, "KZ": 8, "PL": 6, "IN": 6},
    "food": {"UZ": 35, "TR": 25, "KZ": 20, "KG": 10, "IR": 5, "IN": 5},
    "metals": {"KZ": 50, "CN": 30, "TR": 10, "UZ": 10},
}
# Where a consignment is dispatched from, given its origin; unlisted origins ship from home.
DISPATCH_BY_ORIGIN: dict[str, dict[str, float]] = {
    "CN": {"KZ": 50, "CN": 50},
    "UZ": {"UZ": 80, "KZ": 20},
    "TR": {"TR": 65, "KZ": 20, "GE": 15},
    "DE": {"DE": 55, "KZ": 25, "AE": 10, "TR": 10},
    "IT": {"IT": 55, "KZ": 25, "AE": 10, "TR": 10},
    "FR": {"FR": 55, "KZ": 25, "AE": 10, "TR": 10},
    "JP": {"JP": 40, "KZ": 30, "AE": 30},
    "KR": {"KR": 55, "KZ": 35, "AE": 10},
    "US": {"US": 40, "KZ": 30, "AE": 30},
    "TW": {"TW": 50, "CN": 20, "KZ": 30},
    "IN": {"IN": 60, "KZ": 20, "AE": 20},
    "VN": {"VN": 60, "CN": 20, "KZ": 20},
    "IR": {"IR": 70, "KZ": 30},
}
# Legitimate transit destinations through Russia, and the ones diverted transit declares.
TRANSIT_DESTINATIONS: dict[str, float] = {"BY": 50, "AZ": 12, "GE": 12, "MN": 10, "TR": 10, "IR": 6}
DIVERSION_DESTINATIONS: dict[str, float] = {
    "GE": 30,
    "AZ": 25,
    "MN": 20,
    "TR": 10,
    "IR": 10,
    "AF": 5,
}
# False-origin schemes claim an origin that pays less duty.
FALSE_ORIGINS: dict[str, float] = {"UZ": 35, "KG": 25, "VN": 15, "BD": 10, "KZ": 15}
# Invoice currency given the seller's (dispatch) country.
CURRENCIES = ("USD", "CNY", "KZT", "RUB", "EUR")
CURRENCY_BY_DISPATCH: dict[str, dict[str, float]] = {
    "CN": {"USD": 55, "CNY": 45},
    "KZ": {"KZT": 50, "RUB": 25, "USD": 25},
    "KG": {"USD": 40, "RUB": 40, "KZT": 20},
    "UZ": {"USD": 60, "RUB": 40},
    "BY": {"RUB": 80, "USD": 20},
    "DE": {"EUR": 85, "USD": 15},
    "IT": {"EUR": 85, "USD": 15},
    "FR": {"EUR": 85, "USD": 15},
    "PL": {"EUR": 80, "USD": 20},
    "TR": {"USD": 60, "EUR": 40},
}
DEFAULT_CURRENCY: dict[str, float] = {"USD": 90, "EUR": 10}
# Import VAT in Russia: part of the customs payments every scheme evades along with duty.
VAT_RATE = 0.20


@dataclass(frozen=True)
class HsReference:
    """The HS reference as column arrays, row i = code i."""

    frame: pl.DataFrame
    hs_code: pl.Series
    group: np.ndarray  # int index into GROUPS
    usd_per_kg: np.ndarray
    kg_per_unit: np.ndarray
    unit_is_kg: np.ndarray
    duty_rate_pct: np.ndarray
    sensitive: np.ndarray
    weight: np.ndarray
    cover: np.ndarray  # index of the lower-duty cover code, -1 if none

    @property
    def size(self) -> int:
        return len(self.usd_per_kg)


@cache
def hs_reference() -> HsReference:
    """The embedded HS reference (``risk/reference/hs_reference.csv``)."""
    text = files("risk.reference").joinpath("hs_reference.csv").read_text(encoding="utf-8")
    frame = pl.read_csv(
        io.StringIO(text),
        schema_overrides={"hs_code": pl.String, "cover_hs_code": pl.String},
    )
    codes = frame["hs_code"].to_list()
    position = {code: i for i, code in enumerate(codes)}
    unknown_groups = set(frame["group"]) - set(GROUPS)
    if unknown_groups:
        raise ValueError(f"hs_reference.csv: unknown groups {sorted(unknown_groups)}")
    covers = [position[c] if c else -1 for c in frame["cover_hs_code"].fill_null("").to_list()]
    group_index = {g: i for i, g in enumerate(GROUPS)}
    return HsReference(
        frame=frame,
        hs_code=frame["hs_code"],
        group=np.array([group_index[g] for g in frame["group"]], dtype=np.int64),
        usd_per_kg=frame["usd_per_kg"].cast(pl.Float64).to_numpy(),
        kg_per_unit=frame["kg_per_unit"].cast(pl.Float64).to_numpy(),
        unit_is_kg=(frame["unit"] == "kg").to_numpy(),
        duty_rate_pct=frame["duty_rate_pct"].cast(pl.Float64).to_numpy(),
        sensitive=frame["sensitive"].to_numpy(),
        weight=frame["weight"].cast(pl.Float64).to_numpy(),
        cover=np.array(covers, dtype=np.int64),
    )


@cache
def usd_per_unit() -> np.ndarray:
    """USD per unit of each of ``CURRENCIES``, from the rates ingest uses."""
    text = files("risk.reference").joinpath("currency_rates.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)["usd_per_unit"]
    return np.array([float(table[code]) for code in CURRENCIES])


def country_vector(weights: Mapping[str, float]) -> np.ndarray:
    """A probability vector over ``COUNTRIES``."""
    vector = np.zeros(len(COUNTRIES))
    for code, weight in weights.items():
        vector[COUNTRY_INDEX[code]] = weight
    return vector / vector.sum()


def country_matrix(table: Mapping[str, Mapping[str, float]], default: str | None) -> np.ndarray:
    """Row c: a probability vector over COUNTRIES given country c (default: stay at home)."""
    matrix = np.zeros((len(COUNTRIES), len(COUNTRIES)))
    for code in COUNTRIES:
        if code in table:
            matrix[COUNTRY_INDEX[code]] = country_vector(table[code])
        else:
            matrix[COUNTRY_INDEX[code], COUNTRY_INDEX[default or code]] = 1.0
    return matrix


def currency_matrix() -> np.ndarray:
    """Row c: a probability vector over CURRENCIES given the dispatch country c."""
    matrix = np.zeros((len(COUNTRIES), len(CURRENCIES)))
    for code in COUNTRIES:
        weights = CURRENCY_BY_DISPATCH.get(code, DEFAULT_CURRENCY)
        row = np.array([weights.get(cur, 0.0) for cur in CURRENCIES])
        matrix[COUNTRY_INDEX[code]] = row / row.sum()
    return matrix


def origin_matrix() -> np.ndarray:
    """Row g: a probability vector over COUNTRIES for the origin of goods of group g."""
    return np.stack([country_vector(GROUP_ORIGINS.get(g, DEFAULT_ORIGINS)) for g in GROUPS])


def price_factor() -> np.ndarray:
    """Price level of each country's goods relative to the HS reference."""
    return np.array([PRICE_FACTOR.get(code, 1.0) for code in COUNTRIES])


def duty_factor() -> np.ndarray:
    """Share of the full tariff rate goods of each origin pay (0 for EAEU and FTA origins)."""
    factor = np.ones(len(COUNTRIES))
    for code in DUTY_FREE_ORIGINS:
        factor[COUNTRY_INDEX[code]] = 0.0
    for code, share in PREFERENCE_FACTOR.items():
        factor[COUNTRY_INDEX[code]] = share
    return factor


def customs_payments(value_usd: np.ndarray, duty_rate_pct: np.ndarray) -> np.ndarray:
    """Import duty plus import VAT on a customs value (VAT is charged on value + duty)."""
    duty = value_usd * duty_rate_pct / 100.0
    return duty + VAT_RATE * (value_usd + duty)
