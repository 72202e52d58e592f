"""Training presets per source profile: defaults that suit one data source, kept as data.

``experiments/presets/<profile>.toml`` may hold a ``[params]`` table (LightGBM
hyperparameters) and a ``[job]`` table with ``exclude_features``. They are the defaults of a
run on that profile; options given on the command line win. Each
preset says in comments why its values suit its source; the run logs the values it used.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from typing import Any

PRESET_PACKAGE = "experiments.presets"
JOB_KEYS = {"exclude_features"}


def load_preset(profile: str) -> dict[str, dict[str, Any]]:
    """``{"params": {...}, "job": {...}}`` for ``profile`` (empty tables when none)."""
    resource = files(PRESET_PACKAGE).joinpath(f"{profile}.toml")
    if not resource.is_file():
        return {"params": {}, "job": {}}
    data = tomllib.loads(resource.read_text(encoding="utf-8"))
    unknown = (set(data) - {"params", "job"}) | (set(data.get("job", {})) - JOB_KEYS)
    if unknown:
        raise ValueError(f"preset {profile}: unknown key(s) {sorted(unknown)}")
    return {"params": dict(data.get("params", {})), "job": dict(data.get("job", {}))}
