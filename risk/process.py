"""Settings of the process every job runs in, made before the heavy libraries load.

- ``OMP_WAIT_POLICY=PASSIVE``: LightGBM's OpenMP threads spin while they wait; on a crossing's
  small shared machine that made training and scoring 3-12x slower. Sleeping waits cost
  little on an idle machine.
- ``_RJEM_MALLOC_CONF=dirty_decay_ms:10000``: Polars' allocator (jemalloc) hands memory it
  has freed back to the kernel within about a second, and a job that allocates again moments
  later pays a page fault (and the kernel's zeroing) for every 4 KiB once more. Held 10 s,
  jemalloc's own default, the memory is reused: scoring a million items took 670,000 page
  faults and 1.4 CPU-s in the kernel before, 520,000 and 1.0 CPU-s after. A long-running
  process (the console) still returns what it freed after 10 s idle.

Either is left alone when the environment sets it; both take effect only in a process that
has not loaded LightGBM or Polars yet (``risk`` sets them before any command runs).
"""

from __future__ import annotations

import os

SETTINGS = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:10000",
}


def tune_process() -> None:
    """Set ``SETTINGS`` in this process's environment, where not set already."""
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
