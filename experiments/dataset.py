"""The training set: inputs read, labels from inspection outcomes, periods split by time.

Labels exist only for inspected items: an item is a violation when an outcome that applies to
it has a result other than "clean" (an outcome with ``item_no`` null applies to every item of
its declaration). Items never inspected stay in the data (they count in every entity's
history) but carry no label. The split is by ``declared_at`` (or, with two source files, by
file): training rows are from the past, validation and test from later periods, so the
evaluation sees what a model in service would see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from experiments.config import CANONICAL_PROFILE, SplitConfig, TrainJob
from risk.errors import InputError, RiskError
from risk.schemas import InspectionOutcome

KEYS = ["declaration_id", "item_no"]
SPLITS = ("train", "valid", "test")
# When one item has several outcomes, the selection that makes it part of the unbiased
# random sample wins, then the others in order of how deliberate the pick was.
_SELECTION_PRIORITY = {"random": 0, "rule": 1, "targeted": 2, "none": 3}
CANONICAL_FILES = ("declarations.parquet", "outcomes.parquet", "arrivals.parquet")


@dataclass(frozen=True)
class SourceData:
    """Canonical frames of one training job and where they came from."""

    declarations: pl.DataFrame
    outcomes: pl.DataFrame
    arrivals: pl.DataFrame | None
    profile: str
    files: tuple[Path, ...]
    quarantined: int
    # With two source files: the keys of the items read from the second (validation) file.
    second_file_keys: pl.DataFrame | None = None


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def load_source_data(job: TrainJob, default_dir: Path) -> SourceData:
    """Read the job's inputs: source files through an ingest profile, or a canonical folder."""
    if job.sources:
        return _load_profile_files(job.profile, job.sources)
    folder = job.data_dir or default_dir
    paths = [folder / name for name in CANONICAL_FILES]
    missing = [p for p in paths[:2] if not p.is_file()]
    if missing:
        raise InputError(
            f"no training data: {missing[0]} does not exist (run `risk generate`, or pass "
            "--data-dir, or --profile PROFILE FILE...)"
        )
    arrivals = _read_parquet(paths[2]) if paths[2].is_file() else None
    return SourceData(
        declarations=_read_parquet(paths[0]),
        outcomes=_read_parquet(paths[1]),
        arrivals=arrivals,
        profile=CANONICAL_PROFILE,
        files=tuple(p for p in paths if p.is_file()),
        quarantined=0,
    )


def _load_profile_files(profile: str, files: tuple[Path, ...]) -> SourceData:
    from pipelines.ingest import read_source

    for path in files:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    results = [read_source(path, profile) for path in files]
    if any(r.outcomes is None for r in results):
        raise InputError(
            f"profile {profile!r} maps no inspection outcomes, so its files hold no labels; "
            "ingest the outcomes and train on a canonical folder (--data-dir)"
        )
    declarations = pl.concat([r.declarations for r in results], how="diagonal_relaxed")
    outcomes = pl.concat([r.outcomes for r in results if r.outcomes is not None], how="vertical")
    duplicated = declarations.select(KEYS).is_duplicated()
    if duplicated.any():
        first = declarations.filter(duplicated).row(0, named=True)
        raise InputError(
            f"item {first['declaration_id']}/{first['item_no']} appears in more than one input "
            "file; a training and a validation file must not share declarations"
        )
    return SourceData(
        declarations=declarations,
        outcomes=outcomes,
        arrivals=None,
        profile=profile,
        files=files,
        quarantined=sum(r.rows_quarantined for r in results),
        second_file_keys=results[1].declarations.select(KEYS) if len(results) == 2 else None,
    )


def item_labels(declarations: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """One row per declared item: ``inspected``, ``selection``, ``label`` (1 violation, 0 clean,
    null when no result), ``duty_usd`` (extra duty assessed on it; 0 when none).

    A declaration-level outcome (``item_no`` null) applies to all its items; its extra duty is
    shared among them in proportion to customs value (equally when all values are 0).
    """
    outcomes = outcomes.select(InspectionOutcome.column_names()).with_columns(
        pl.col("selection").cast(pl.String),
        pl.col("result").cast(pl.String),
    )
    items = declarations.select(*KEYS, "customs_value_usd")
    per_item = outcomes.filter(pl.col("item_no").is_not_null()).join(
        items.select(KEYS), on=KEYS, how="inner"
    )
    whole = outcomes.filter(pl.col("item_no").is_null()).drop("item_no")
    value_share = (
        pl.when(pl.col("customs_value_usd").sum().over("declaration_id") > 0)
        .then(
            pl.col("customs_value_usd") / pl.col("customs_value_usd").sum().over("declaration_id")
        )
        .otherwise(1.0 / pl.len().over("declaration_id"))
    )
    spread = (
        items.with_columns(_share=value_share)
        .join(whole, on="declaration_id", how="inner")
        .with_columns(pl.col("extra_duty_usd") * pl.col("_share"))
        .select(per_item.columns)
    )
    applied = pl.concat([per_item, spread], how="vertical")
    priority = pl.col("selection").replace_strict(_SELECTION_PRIORITY, return_dtype=pl.Int8)
    violation = pl.col("result").is_not_null() & (pl.col("result") != "clean")
    summary = applied.group_by(KEYS).agg(
        pl.col("inspected").any(),
        pl.col("selection").sort_by(priority).first(),
        pl.when(violation.any())
        .then(1)
        .when(pl.col("result").is_not_null().any())
        .then(0)
        .otherwise(None)
        .cast(pl.Int8)
        .alias("label"),
        pl.col("extra_duty_usd").fill_null(0.0).sum().alias("duty_usd"),
    )
    return (
        items.select(KEYS)
        .join(summary, on=KEYS, how="left", maintain_order="left")
        .with_columns(
            pl.col("inspected").fill_null(False),
            pl.col("selection").fill_null("none"),
            pl.col("duty_usd").fill_null(0.0),
        )
    )


@dataclass(frozen=True)
class Periods:
    """The boundaries actually used, for the run's params and the data fingerprint."""

    valid_from: dt.datetime | None
    test_from: dt.datetime | None
    by_file: bool
    eval_split: str  # "test", or "valid" when there is no test period


def _midnight(moment: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(moment.date(), dt.time())


def resolve_periods(
    declared_at: pl.Series, split: SplitConfig, *, by_file: bool = False
) -> Periods:
    """Period boundaries from explicit dates or from fractions of the labelled time span."""
    if by_file and split.valid_from is None and split.test_from is None:
        return Periods(valid_from=None, test_from=None, by_file=True, eval_split="valid")
    start, end = declared_at.min(), declared_at.max()
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        raise RiskError("no labelled (inspected) items to train on")
    span = end - start
    test_from = split.test_from
    if test_from is None and split.test_fraction > 0:
        test_from = _midnight(end - span * split.test_fraction)
    valid_from = split.valid_from
    if valid_from is None:
        valid_end = test_from or end
        valid_from = _midnight(valid_end - span * split.valid_fraction)
    if test_from is not None and test_from <= valid_from:
        raise RiskError(
            f"test period starts {test_from} but validation starts {valid_from}; "
            "give --valid-from before --test-from"
        )
    return Periods(
        valid_from=valid_from,
        test_from=test_from,
        by_file=False,
        eval_split="test" if test_from is not None else "valid",
    )


def assign_split(
    labelled: pl.DataFrame, periods: Periods, second_file_keys: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Add ``split`` (train/valid/test) to labelled rows; refuse a period left empty."""
    if periods.by_file:
        if second_file_keys is None:
            raise ValueError("a split by file needs the keys of the second file")
        marked = second_file_keys.with_columns(_second=pl.lit(True))
        out = (
            labelled.join(marked, on=KEYS, how="left", maintain_order="left")
            .with_columns(
                split=pl.when(pl.col("_second")).then(pl.lit("valid")).otherwise(pl.lit("train"))
            )
            .drop("_second")
        )
    else:
        before_valid = pl.col("declared_at") < pl.lit(periods.valid_from, dtype=pl.Datetime("us"))
        split: pl.Expr
        if periods.test_from is not None:
            before_test = pl.col("declared_at") < pl.lit(periods.test_from, dtype=pl.Datetime("us"))
            split = (
                pl.when(before_valid)
                .then(pl.lit("train"))
                .when(before_test)
                .then(pl.lit("valid"))
                .otherwise(pl.lit("test"))
            )
        else:
            split = pl.when(before_valid).then(pl.lit("train")).otherwise(pl.lit("valid"))
        out = labelled.with_columns(split=split)
    counts = dict(out.group_by("split").len().iter_rows())
    needed = ("train", "valid", periods.eval_split)
    for name in needed:
        if counts.get(name, 0) == 0:
            raise RiskError(
                f"the {name} period holds no labelled items (periods: valid from "
                f"{periods.valid_from}, test from {periods.test_from}); change the split"
            )
        positives = out.filter((pl.col("split") == name) & (pl.col("label") == 1)).height
        if positives == 0 and name != "test":
            raise RiskError(f"the {name} period holds no violations to learn from")
    return out


def frame_hash(frame: pl.DataFrame) -> str:
    """Order-independent hash of a frame's rows (Polars row hashes, fixed seeds).

    Stable for one Polars version; across versions the file hashes are the reference.
    """
    if frame.height == 0:
        return "0" * 16
    hashed = frame.select(pl.all().exclude(pl.List(pl.String))).hash_rows(seed=11)
    total = int(hashed.cast(pl.Decimal(38, 0)).sum()) % (1 << 64)
    return f"{total:016x}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(data: SourceData, labelled: pl.DataFrame, periods: Periods) -> dict[str, Any]:
    """What the run was trained and evaluated on: periods, counts, content hashes."""
    per_split: dict[str, Any] = {}
    for name in SPLITS:
        part = labelled.filter(pl.col("split") == name)
        if part.height == 0:
            continue
        per_split[name] = {
            "from": part["declared_at"].min().isoformat(),  # type: ignore[union-attr]
            "to": part["declared_at"].max().isoformat(),  # type: ignore[union-attr]
            "labelled_items": part.height,
            "violations": int(part["label"].sum()),
            "random_items": part.filter(pl.col("selection") == "random").height,
        }
    return {
        "profile": data.profile,
        "files": {str(p): _file_sha256(p) for p in data.files},
        "declarations_rows": data.declarations.height,
        "outcomes_rows": data.outcomes.height,
        "quarantined_rows": data.quarantined,
        "declarations_hash": frame_hash(data.declarations),
        "outcomes_hash": frame_hash(data.outcomes),
        "periods": {
            "valid_from": periods.valid_from.isoformat() if periods.valid_from else None,
            "test_from": periods.test_from.isoformat() if periods.test_from else None,
            "by_file": periods.by_file,
            "eval_split": periods.eval_split,
        },
        "splits": per_split,
    }
