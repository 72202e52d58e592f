"""Entity profiles: the past up to a cut-off, materialised once, joined to new declarations.

A profile is the history event tables with everything old collapsed into one synthetic event
per key (``features.history.compact_events``), the items of recent declarations whose outcomes
may still arrive, and the price reference of the cut-off's period with its look-up snapshot
(saved since format 2, so loading is a read). Scoring new declarations adds the batch's own
events to the profile's totals (``features.history.profile_entity_features``); the parity
tests hold the numbers equal to history mode's.

What a profile refuses: declarations before its cut-off (their past is already partly inside
it), and declarations in a later reference period than the cut-off's (their price reference
would include rows the profile never saw). Materialise a fresh profile at least once a period.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from features import history
from features.config import WINDOWS_DAYS, FeatureConfig
from features.history import ENTITIES, EVERYONE
from features.reference import UnitValueReference

FORMAT_VERSION = 2
# Format 1 lacks the price reference's snapshot, which is then prepared on first use.
READABLE_FORMATS = (1, 2)
SNAPSHOT_FILES = ("reference_keys.parquet", "reference_ranks.parquet")
# Settings that shape what a profile holds; scoring with other values would break parity.
PROFILE_SETTINGS = (
    "outcome_horizon_days",
    "reference_period",
    "reference_min_rows",
)


def pending_item_columns() -> list[str]:
    """Columns kept of recent items: enough to credit a late outcome to the right entities."""
    return ["declaration_id", "item_no", "declared_at", *history.keyed_columns()]


@dataclass
class EntityProfiles:
    """The state of every entity as of ``cutoff`` (see the module docstring)."""

    cutoff: datetime
    config: FeatureConfig
    events: dict[str, pl.DataFrame]
    pending_items: pl.DataFrame
    reference: UnitValueReference

    def check_config(self, config: FeatureConfig) -> None:
        """Refuse a feature config whose profile-shaping settings differ from this profile's."""
        for name in PROFILE_SETTINGS:
            mine, theirs = getattr(self.config, name), getattr(config, name)
            if mine != theirs:
                raise ValueError(
                    f"feature config {name}={theirs!r} differs from the entity profile's "
                    f"{mine!r}; materialise the profile with the same config"
                )

    def refuse_before_cutoff(self, column: str) -> pl.Expr:
        """An expression that passes ``column`` through, failing if any value is before the
        cut-off (such a declaration's past is partly folded into the profile already)."""
        cutoff = self.cutoff

        def check(values: pl.Series) -> pl.Series:
            early = values.filter(values < cutoff)
            if len(early):
                raise ValueError(
                    f"{len(early)} declaration item(s) have {column} before the entity "
                    f"profile's cut-off {cutoff} (first: {early.min()!s}); score them in history "
                    f"mode or with an earlier profile"
                )
            return values

        return pl.col(column).map_batches(check, return_dtype=pl.Datetime("us"))

    def save(self, directory: str | Path) -> Path:
        """Write the profile as a folder of Parquet files and ``meta.json``, atomically."""
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            for name, frame in self.events.items():
                frame.write_parquet(staging / f"events_{name}.parquet")
            self.pending_items.write_parquet(staging / "pending_items.parquet")
            self.reference.rows_.write_parquet(staging / "reference.parquet")
            # The look-up tables scoring reads the price reference through: a read on load
            # instead of a sort of every past value.
            for name, table in zip(SNAPSHOT_FILES, self.reference.snapshot(), strict=True):
                table.write_parquet(staging / name)
            meta = {
                "format_version": FORMAT_VERSION,
                "polars_version": pl.__version__,
                "cutoff": self.cutoff.isoformat(),
                "reference_period_start": _isoformat(self.reference.valid_from_),
                "config": self.config.model_dump(mode="json"),
            }
            (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            _replace_directory(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    @classmethod
    def load(cls, directory: str | Path) -> EntityProfiles:
        """Read a profile written by ``save``."""
        source = Path(directory)
        meta_path = source / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{source} is not an entity profile (no meta.json)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format_version") not in READABLE_FORMATS:
            raise ValueError(
                f"entity profile {source} has format {meta.get('format_version')}, "
                f"this code reads {FORMAT_VERSION}; materialise it again"
            )
        if meta.get("polars_version") != pl.__version__:
            # Entity keys are Polars hashes, which may change between Polars releases.
            raise ValueError(
                f"entity profile {source} was made with Polars {meta.get('polars_version')}, "
                f"this is Polars {pl.__version__}; materialise the profile again"
            )
        config = FeatureConfig.model_validate(meta["config"])
        reference = _reference(config)
        reference.rows_ = pl.read_parquet(source / "reference.parquet")
        reference.valid_from_ = datetime.fromisoformat(meta["reference_period_start"])
        reference.periods_ = [reference.valid_from_]
        if all((source / name).is_file() for name in SNAPSHOT_FILES):
            keys, ranks = (pl.read_parquet(source / name) for name in SNAPSHOT_FILES)
            reference.use_snapshot(keys, ranks)
        return cls(
            cutoff=datetime.fromisoformat(meta["cutoff"]),
            config=config,
            events={
                e.name: pl.read_parquet(source / f"events_{e.name}.parquet")
                for e in (*ENTITIES, EVERYONE)
            },
            pending_items=pl.read_parquet(source / "pending_items.parquet"),
            reference=reference,
        )


def materialize_profiles(
    declarations: pl.LazyFrame,
    outcomes: pl.LazyFrame,
    cutoff: datetime,
    *,
    config: FeatureConfig | None = None,
) -> EntityProfiles:
    """The state of every entity from declarations before ``cutoff`` and outcomes recorded
    before it; feed it to ``build_features(..., profiles=...)`` for declarations from
    ``cutoff`` on."""
    config = config or FeatureConfig()
    past = history.with_entity_columns(declarations.filter(pl.col("declared_at") < cutoff)).cache()
    judged = history.outcome_items(
        outcomes.filter(pl.col("recorded_at") < cutoff), past, config
    ).cache()
    window_start = cutoff - timedelta(days=max(WINDOWS_DAYS))
    entities = (*ENTITIES, EVERYONE)
    event_plans = [
        history.compact_events(
            history.entity_events(past, judged, entity),
            window_start if entity.windows else cutoff,
        )
        for entity in entities
    ]
    horizon_start = cutoff - timedelta(days=config.outcome_horizon_days)
    pending_plan = past.filter(pl.col("declared_at") >= horizon_start).select(
        pending_item_columns()
    )
    frames = pl.collect_all([*event_plans, pending_plan])
    reference = _reference(config).fit(declarations.filter(pl.col("declared_at") < cutoff))
    period_start = pl.select(
        pl.lit(cutoff, dtype=pl.Datetime("us")).dt.truncate(config.reference_period)
    ).item()
    return EntityProfiles(
        cutoff=cutoff,
        config=config,
        events={e.name: frames[i] for i, e in enumerate(entities)},
        pending_items=frames[-1],
        reference=reference.compact(period_start),
    )


def _reference(config: FeatureConfig) -> UnitValueReference:
    return UnitValueReference(
        period=config.reference_period,
        min_rows=config.reference_min_rows,
    )


def _isoformat(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _replace_directory(staging: Path, target: Path) -> None:
    """Swap a fully written folder into place; a reader never sees a half-written profile."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, retired / target.name)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
