"""Atomic outputs: a job that fails leaves no half-written file behind.

Everything is written to a hidden temporary file beside the target and renamed into place
only when complete; ``os.replace`` is atomic on one file system.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_frame(frame: pl.DataFrame, target: str | Path) -> Path:
    """Write a frame atomically as Parquet, CSV or NDJSON, chosen by the target's suffix."""
    target = Path(target)
    suffix = target.suffix.lower()
    with atomic_path(target) as tmp:
        if suffix == ".parquet":
            frame.write_parquet(tmp, statistics=True)
        elif suffix == ".csv":
            frame.write_csv(tmp)
        elif suffix in {".ndjson", ".jsonl"}:
            frame.write_ndjson(tmp)
        else:
            raise ValueError(f"unsupported output format {suffix!r} for {target}")
    return target
