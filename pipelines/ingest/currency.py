"""The fixed reference rates that turn invoice values into US dollars."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import cast

RATES_FILE = "currency_rates.toml"


@cache
def currency_rates() -> MappingProxyType[str, float]:
    """USD per one unit of each known currency (``risk/reference/currency_rates.toml``)."""
    text = files("risk.reference").joinpath(RATES_FILE).read_text(encoding="utf-8")
    table = cast(dict[str, float], tomllib.loads(text)["usd_per_unit"])
    return MappingProxyType({code: float(rate) for code, rate in table.items()})
