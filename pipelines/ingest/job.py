"""Read foreign files through a profile into canonical frames, and write them atomically."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import dataframely as dy
import polars as pl

from pipelines.ingest.parse import BAD, parse_columns
from pipelines.ingest.profile import FieldSpec, SourceProfile, load_profile
from pipelines.ingest.quarantine import RawFile, build_quarantine
from pipelines.ingest.sources import check_columns, read_raw
from pipelines.ingest.validate import ROW, drop_consequences, split
from risk.atomic import atomic_path
from risk.schemas import DeclarationItem, InspectionOutcome
from risk.soft_rules import with_soft_flags

OUTCOME_PREFIX = "outcome."
DECLARATIONS_FILE = "declarations.parquet"
OUTCOMES_FILE = "outcomes.parquet"
QUARANTINE_FILE = "quarantine.parquet"

PathLike = str | Path


@dataclass(frozen=True)
class IngestResult:
    """Canonical rows that passed the hard rules, and the quarantined rest.

    ``declarations``: ``DeclarationItem`` columns, then the profile's ``src_*`` text columns,
    then ``soft_flags``. ``outcomes``: ``InspectionOutcome`` rows of the same items (plus
    ``src_*``), or None when the profile maps no outcomes. ``quarantine``: one row per bad
    source row (``source_file``, ``source_row``, ``field``, ``rule``, ``reason``, raw values).
    """

    declarations: pl.DataFrame
    outcomes: pl.DataFrame | None
    quarantine: pl.DataFrame
    rows_in: int
    failure_counts: dict[str, int]
    profile: str
    sources: list[Path]
    outputs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The ingest contract: no row is ever lost.
        assert self.rows_in == self.rows_valid + self.rows_quarantined, (
            f"rows in {self.rows_in} != valid {self.rows_valid} + "
            f"quarantined {self.rows_quarantined}"
        )

    @property
    def rows_valid(self) -> int:
        return self.declarations.height

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine.height


def _as_paths(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _extras(profile: SourceProfile, files: list[RawFile]) -> list[tuple[str, str]]:
    """(output name, source column) of the text columns kept beside the canonical ones."""
    extras = list(profile.extra_columns.items())
    if profile.passthrough_prefix:
        prefix = profile.passthrough_prefix
        seen = dict.fromkeys(c for f in files for c in f.frame.columns if c.startswith(prefix))
        extras += [(c, c) for c in seen if c not in profile.extra_columns]
    return extras


def _parse(
    file: RawFile,
    specs: Mapping[str, FieldSpec],
    schema: type[dy.Schema],
    profile: SourceProfile,
    extras: list[tuple[str, str]],
) -> pl.LazyFrame:
    present = set(file.frame.columns)
    text = [
        (pl.col(src).cast(pl.String) if src in present else pl.lit(None, pl.String)).alias(name)
        for name, src in extras
    ]
    parsed = parse_columns(file.frame, specs, schema, profile)
    return parsed.select(*schema.columns(), pl.col(f"^{BAD}.*$"), pl.col(ROW), *text)


def _parse_all(
    files: list[RawFile],
    specs: Mapping[str, FieldSpec],
    schema: type[dy.Schema],
    profile: SourceProfile,
    extras: list[tuple[str, str]],
) -> pl.DataFrame:
    frames = pl.collect_all([_parse(f, specs, schema, profile, extras) for f in files])
    # A file without an optional column has no failure flag for it.
    flags = pl.col(f"^{BAD}.*$")
    return pl.concat(frames, how="diagonal").with_columns(flags.fill_null(False))


def _with_soft_flags(declarations: pl.DataFrame, arrivals: pl.DataFrame | None) -> pl.DataFrame:
    """The rows with their ``soft_flags``, without the row id."""
    return (
        with_soft_flags(declarations.lazy(), None if arrivals is None else arrivals.lazy())
        .drop(ROW)
        .collect()
    )


def read_source(
    paths: PathLike | Sequence[PathLike],
    profile: str | Path | SourceProfile,
    *,
    arrivals: pl.DataFrame | None = None,
    encoding: str | None = None,
) -> IngestResult:
    """Read and validate one or more files through a profile; writes nothing.

    Files are validated together (a key repeated across files is a duplicate). ``arrivals``
    (``TruckArrival`` rows) enables the weighbridge soft rule; ``encoding`` overrides the
    profile's text encoding.
    """
    profile = load_profile(profile)
    sources = _as_paths(paths)
    files: list[RawFile] = []
    offset = 0
    for path in sources:
        frame = read_raw(path, profile, encoding)
        check_columns(path, frame, profile)
        frame = frame.with_columns(
            pl.int_range(offset, offset + frame.height, dtype=pl.Int64).alias(ROW)
        )
        files.append(RawFile(path=path, frame=frame, first_row=offset))
        offset += frame.height
    rows_in = offset

    extras = _extras(profile, files)
    parsed = _parse_all(files, profile.declarations, DeclarationItem, profile, extras)
    names = tuple(n for n, _ in extras)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The soft rules on every parsed row, on a second thread beside the hard rules (the
        # kernels and Polars release the GIL): the result when no row fails.
        every_row = parsed.select(*DeclarationItem.columns(), ROW, *names)
        flagged = pool.submit(_with_soft_flags, every_row, arrivals)
        declarations, failures = split(parsed, DeclarationItem, names)
        derived = [f for f in DeclarationItem.columns() if f not in profile.declarations]
        failures = drop_consequences(failures, derived)
        if failures.height:
            flagged.cancel()
    sections: dict[str, tuple[Mapping[str, FieldSpec], type[dy.Schema]]] = {
        "": (profile.declarations, DeclarationItem)
    }

    outcomes = None
    if profile.outcomes is not None:
        outcome_extras = list(profile.outcome_extra_columns.items())
        parsed_outcomes = _parse_all(
            files, profile.outcomes, InspectionOutcome, profile, outcome_extras
        )
        outcomes, outcome_failures = split(
            parsed_outcomes,
            InspectionOutcome,
            tuple(n for n, _ in outcome_extras),
            prefix=OUTCOME_PREFIX,
        )
        failures = pl.concat([failures, outcome_failures])
        sections[OUTCOME_PREFIX] = (profile.outcomes, InspectionOutcome)

    quarantine = build_quarantine(failures, files, sections)
    bad = failures.get_column(ROW).unique().implode()
    if failures.height:
        declarations = _with_soft_flags(declarations.filter(~pl.col(ROW).is_in(bad)), arrivals)
    else:  # every row kept: flagged beside the hard rules
        declarations = flagged.result()
    if outcomes is not None:
        if failures.height:
            outcomes = outcomes.filter(~pl.col(ROW).is_in(bad))
        outcomes = outcomes.drop(ROW)

    counts = (
        quarantine.select(pl.col("field").str.split("; "), pl.col("rule").str.split("; "))
        .explode("field", "rule")
        .group_by("field", "rule")
        .len()
        .sort("len", "field", descending=[True, False])
    )
    failure_counts = {f"{f}: {r}": n for f, r, n in counts.rows()}
    return IngestResult(
        declarations=declarations,
        outcomes=outcomes,
        quarantine=quarantine,
        rows_in=rows_in,
        failure_counts=failure_counts,
        profile=profile.name,
        sources=sources,
    )


# Batch scoring reads a queue the same way; the name says what it is for.
read_declarations = read_source


def ingest(
    paths: PathLike | Sequence[PathLike],
    profile: str | Path | SourceProfile,
    out_dir: PathLike,
    *,
    arrivals: pl.DataFrame | None = None,
    encoding: str | None = None,
) -> IngestResult:
    """``read_source``, then write ``declarations``, ``outcomes`` (if mapped) and
    ``quarantine`` Parquet files into ``out_dir``, all or none."""
    result = read_source(paths, profile, arrivals=arrivals, encoding=encoding)
    out = Path(out_dir)
    frames = {DECLARATIONS_FILE: result.declarations, QUARANTINE_FILE: result.quarantine}
    if result.outcomes is not None:
        frames[OUTCOMES_FILE] = result.outcomes
    outputs = {name.removesuffix(".parquet"): out / name for name in frames}
    # Every file is written to its temporary name first; only when all are complete are
    # they renamed into place, so a failure leaves none of them behind.
    with contextlib.ExitStack() as stack:
        for name, frame in frames.items():
            tmp = stack.enter_context(atomic_path(out / name))
            frame.write_parquet(tmp, statistics=True)
    if result.outcomes is None:
        # A stale outcomes file from an earlier run would not belong to these declarations.
        (out / OUTCOMES_FILE).unlink(missing_ok=True)
    return IngestResult(**{**result.__dict__, "outputs": outputs})
