"""Reading source files as they are: CSV and NDJSON as text, Parquet with its own types.

Whole-file problems (missing, unreadable, wrong encoding, empty, missing columns) raise one
``InputError`` that names the file and what to do; row problems are left to validation.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from pipelines.ingest.profile import SourceProfile
from risk.errors import InputError

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".ndjson": "ndjson", ".jsonl": "ndjson"}
UTF8 = {"utf-8", "utf8", "utf_8"}


def source_format(path: Path) -> str:
    """csv, parquet or ndjson, from the file's suffix."""
    try:
        return SUFFIXES[path.suffix.lower()]
    except KeyError:
        known = ", ".join(SUFFIXES)
        raise InputError(f"{path}: unsupported file type {path.suffix!r} (use {known})") from None


def _utf8_error(path: Path, encoding_hint: str) -> InputError:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        detail = ""
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        detail = f" (byte 0x{data[exc.start]:02x} at offset {exc.start}, line {line})"
    return InputError(
        f"{path}: not valid UTF-8{detail}; the file is in another encoding (cp1251 is common "
        f"for Cyrillic exports): pass --encoding cp1251, {encoding_hint}"
    )


def _text_bytes(path: Path, encoding: str, hint: str) -> bytes | Path:
    """The file as UTF-8 for Polars: the path itself if it is UTF-8, else re-encoded bytes."""
    if encoding.lower().replace("-", "_") in {e.replace("-", "_") for e in UTF8}:
        return path
    try:
        return path.read_bytes().decode(encoding).encode("utf-8")
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r} (try utf-8 or cp1251)") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: cannot decode as {encoding} at byte offset {exc.start}; pass the file's "
            f"encoding with --encoding, {hint}"
        ) from None


def read_raw(path: Path, profile: SourceProfile, encoding: str | None = None) -> pl.DataFrame:
    """The file's rows and columns with nothing parsed (CSV/NDJSON columns are all text)."""
    fmt = source_format(path)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    encoding = encoding or profile.encoding
    hint = f'or set encoding = "..." in the profile {profile.name!r}'
    try:
        if fmt == "parquet":
            frame = pl.read_parquet(path)
        else:
            source = _text_bytes(path, encoding, hint)
            if isinstance(source, bytes):
                source_io: Path | io.BytesIO = io.BytesIO(source)
            else:
                source_io = source
            if fmt == "csv":
                frame = pl.read_csv(
                    source_io,
                    infer_schema=False,
                    separator=profile.csv_separator,
                )
            else:
                frame = _read_ndjson(source_io)
    except InputError:
        raise
    except pl.exceptions.NoDataError:
        raise InputError(f"{path}: the file is empty") from None
    except pl.exceptions.ComputeError as exc:
        if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
            raise _utf8_error(path, hint) from None
        raise InputError(f"{path}: cannot read as {fmt}: {_first_line(exc)}") from None
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {_first_line(exc)}") from None
    return frame.rename({c: c.strip().lstrip("\ufeff") for c in frame.columns})


def _read_ndjson(source: Path | io.BytesIO) -> pl.DataFrame:
    """NDJSON as typed by JSON itself: text stays text (HS codes keep their zeros), numbers
    are numbers, and a field mixing both is read as text."""
    return pl.read_ndjson(source, infer_schema_length=None)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_columns(path: Path, frame: pl.DataFrame, profile: SourceProfile) -> None:
    """Refuse a file that lacks a column the profile requires."""
    present = set(frame.columns)
    missing = [
        name
        for name in profile.required_columns()
        if not any(alt in present for alt in name.split("|"))
    ]
    if missing:
        names = ", ".join(" or ".join(repr(alt) for alt in m.split("|")) for m in missing)
        raise InputError(
            f"{path}: missing required column(s) {names} for profile {profile.name!r} "
            f"(the file has {len(frame.columns)} columns: {_shown(frame.columns)})"
        )


def _shown(columns: list[str], limit: int = 30, width: int = 40) -> str:
    """Column names for a message: a garbled header (wrong encoding) must not flood it."""
    names = [c if len(c) <= width else c[: width - 1] + "…" for c in columns[:limit]]
    return ", ".join(names) + (", …" if len(columns) > limit else "")
