"""LightGBM boosters compiled to machine code (lleaves), for batch scoring.

A model's trees, compiled by LLVM into one native function, predict a million rows several
times faster than LightGBM's interpreter, with the same numbers (the same thresholds and
leaf values in double precision; sums may differ in the last bit, about 1e-16). Compiling
takes seconds for a small model and minutes for a deep one, so it is paid once per model
and machine: the object code is cached on disk, keyed by the SHA-256 of the booster's text,
the lleaves and llvmlite versions and the host's target triple, CPU and CPU features (object
code for one CPU may not run on another). The cache folder is ``RISK_CACHE_DIR`` (default: the
user's cache folder, ``$XDG_CACHE_HOME/grey-import-risk`` or ``~/.cache/grey-import-risk``),
never the installed package.

When compiling happens (``CompilePolicy``), decided from measurements on 2 cores:

- a cached object is always used, whatever the batch size: loading it takes milliseconds
  (about 0.02 s for both of the project's boosters);
- otherwise a batch of at least ``min_rows`` rows (default 100,000) compiles the booster
  first, in the foreground, and stores it; smaller batches (the console's one truck, a test,
  a queue of a few thousand trucks) use LightGBM and never pay the compile. The project's
  model (88 trees x 31 leaves) compiles in about 2 s, and LightGBM's predict of 100k rows
  costs about 0.2 s, so the first large batch pays once per model and machine and every
  later batch gains (1M rows: 0.27 s compiled against 1.9 s in LightGBM);
- compile time and memory grow faster than the model when the trees are inlined (100 trees
  x 255 leaves: 200 CPU-s and 1.6 GB, then predicts 3x faster than LightGBM; 400 x 255 ran
  past 8 CPU-minutes and 17 GB without finishing); without inlining 100 x 255 compiles in
  7 CPU-s and 0.5 GB and predicts 1.5x faster. So models up to ``inline_max_leaves``
  leaves over all trees (default 10,000) are inlined, larger ones up to ``max_leaves``
  (default 60,000) are not, and beyond that LightGBM predicts (a warning says so);
  ``Scorer.warm_compiled(force=True)`` compiles such a model anyway, e.g. once on a scoring
  server after promotion, where the cache then serves every later process;
- ``Scorer.warm_compiled()`` compiles (or loads) ahead of time, e.g. right after a model is
  loaded for service, so that no batch waits;
- ``RISK_COMPILED_MODEL=false`` turns it off; a failed compile or load logs a warning once and
  falls back to LightGBM for that booster.

Batch scoring hands the boosters a frame's columns (``predict_columns``: each block of rows
gathered from the columns on the predicting threads, no float32 matrix built first); a
ready matrix goes through ``predict_together``. Both give the numbers of the float32 matrix.

lleaves predicts only: SHAP contributions come from ``experiments.shap`` (exact TreeSHAP in its
own small kernel, LightGBM's ``pred_contrib`` numbers) or, failing that, from LightGBM.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from risk.native import default_cache_dir, read_checked, write_checked

if TYPE_CHECKING:
    import lightgbm as lgb

    from risk.settings import Settings

log = logging.getLogger(__name__)

COMPILE_MIN_ROWS = 100_000
# Compile time and memory grow faster than the model when lleaves inlines the trees into one
# function: 88 trees x 31 leaves (2,728 leaves) compile in about 2 s, 100 x 255 (25,500) in
# 200 CPU-s and 1.6 GB, 400 x 255 (102,000) ran past 8 CPU-minutes and 17 GB without
# finishing. Without inlining 100 x 255 compiles in 7 CPU-s and 0.5 GB and still predicts
# 1.5x faster than LightGBM (3x with inlining). So: inlined up to INLINE_MAX_LEAVES, not
# inlined up to COMPILE_MAX_LEAVES, beyond that only when asked (``warm(force=True)``).
INLINE_MAX_LEAVES = 10_000
COMPILE_MAX_LEAVES = 60_000
# Below this many rows one thread beats starting a pool of them.
PARALLEL_MIN_ROWS = 20_000
# Rows widened to float64 at a time (about 3 MB of a 99-feature matrix: stays in cache).
BLOCK_ROWS = 4_096
CACHE_SUBDIR = "compiled-models"
_OBJECT_SUFFIX = ".o"


@dataclass(frozen=True)
class CompilePolicy:
    """Whether and when boosters are compiled, and where the object code is kept."""

    enabled: bool = True
    cache_dir: Path = field(default_factory=default_cache_dir)
    min_rows: int = COMPILE_MIN_ROWS
    max_leaves: int = COMPILE_MAX_LEAVES
    inline_max_leaves: int = INLINE_MAX_LEAVES

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> CompilePolicy:
        """``RISK_COMPILED_MODEL`` and ``RISK_CACHE_DIR`` (through ``risk.settings``)."""
        if settings is None:
            from risk.settings import get_settings

            settings = get_settings()
        cache_dir = settings.cache_dir if settings.cache_dir is not None else default_cache_dir()
        return cls(enabled=settings.compiled_model, cache_dir=cache_dir)

    @property
    def object_dir(self) -> Path:
        return self.cache_dir / CACHE_SUBDIR


@cache
def _target() -> str:
    """What object code depends on besides the model: versions, triple, CPU and features."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot detect them everywhere; lleaves then uses none either
        features = ""
    return "\n".join(
        [
            f"lleaves {version('lleaves')}",
            f"llvmlite {version('llvmlite')}",
            llvm.get_process_triple(),
            llvm.get_host_cpu_name(),
            features,
            "fp64 blocksize=34 codemodel=large",  # lleaves' defaults, used below
        ]
    )


def total_leaves(model_text: str) -> int:
    """Leaves over all trees of a LightGBM model text (what compile time grows with)."""
    return sum(int(n) for n in re.findall(r"^num_leaves=(\d+)$", model_text, flags=re.M))


def cache_key(model_text: str, *, inline: bool = True) -> str:
    """SHA-256 of the booster's text, the compile target (``_target``) and inlining."""
    digest = hashlib.sha256()
    digest.update(_target().encode())
    digest.update(b"\0inline\0" if inline else b"\0outline\0")
    digest.update(model_text.encode())
    return digest.hexdigest()


class CompiledBooster:
    """One booster's predict as native code: a matrix in, the booster's output out."""

    def __init__(self, model: Any, key: str, compile_s: float, from_cache: bool) -> None:
        self._model = model
        self.key = key
        self.compile_s = compile_s  # seconds spent compiling or loading
        self.from_cache = from_cache

    @property
    def num_feature(self) -> int:
        return int(self._model.num_feature())

    def predict(self, matrix: npt.NDArray[np.floating], num_threads: int = 0) -> np.ndarray:
        """Predictions for a float32 or float64 matrix, row- or column-major (see
        ``predict_together``)."""
        return predict_together([self], matrix, num_threads)[0]


def predict_together(
    boosters: list[CompiledBooster], matrix: npt.NDArray[np.floating], num_threads: int = 0
) -> list[np.ndarray]:
    """Each compiled booster's predictions for one matrix, read once.

    The native code reads float64 rows. A float32 matrix (what LightGBM reads, half the
    memory) is widened block by block into a small buffer per thread, and every booster
    predicts the block while it is in cache, so a million rows never need a second,
    double-width copy; a column-major matrix (cheaper to build from a frame) is transposed
    in the same pass.
    """
    rows = matrix.shape[0]
    outs = [np.empty(rows, dtype=np.float64) for _ in boosters]
    if rows == 0:
        return outs
    threads = _threads_for(rows, num_threads)
    if matrix.dtype == np.float64 and matrix.flags.c_contiguous:
        return [np.asarray(b._model.predict(matrix, n_jobs=threads)) for b in boosters]
    contiguous = matrix.flags.c_contiguous or matrix.flags.f_contiguous
    source = matrix if contiguous else np.ascontiguousarray(matrix)

    def worker() -> Callable[[int, int], None]:
        buffer = np.empty((min(BLOCK_ROWS, rows), source.shape[1]), dtype=np.float64)

        def predict(first: int, last: int) -> None:
            block = buffer[: last - first]
            block[...] = source[first:last]
            for booster, out in zip(boosters, outs, strict=True):
                out[first:last] = booster._model.predict(block, n_jobs=1)

        return predict

    _over_blocks(worker, rows, threads)
    return outs


def _threads_for(rows: int, num_threads: int) -> int:
    threads = num_threads if num_threads > 0 else os.cpu_count() or 1
    return 1 if rows < PARALLEL_MIN_ROWS else threads


def _over_blocks(worker: Callable[[], Callable[[int, int], None]], rows: int, threads: int) -> None:
    """Every block of ``BLOCK_ROWS`` rows once, ``(first, last)``, on up to ``threads``
    threads; ``worker()`` gives each thread its function (with its own buffers).

    Threads take the next block as they finish one, so a thread that the machine holds back
    (other processes on the cores) does not leave the others waiting at the end. The native
    functions and NumPy's copies release the GIL.
    """
    blocks = iter(range(0, rows, BLOCK_ROWS))

    def run() -> None:
        predict = worker()
        for first in blocks:  # (next() of a range iterator holds the GIL: each block once)
            predict(first, min(first + BLOCK_ROWS, rows))

    threads = min(threads, -(-rows // BLOCK_ROWS))
    if threads <= 1:
        run()
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(run) for _ in range(threads)]:
            future.result()


@dataclass(frozen=True)
class Column:
    """One feature column as the boosters read it: ``values`` (any real or integer dtype,
    one per row) with ``missing`` (True where the row has no value, read as NaN) or None.

    With ``lookup`` the values are integer codes read through that table: code ``c`` in
    ``0 .. len(lookup) - 3`` reads ``lookup[c]``, any other code NaN (the table ends with
    two NaN: codes past its end are clipped onto the first, negative ones onto the last),
    so a categorical code becomes its dense index on the predicting threads.
    """

    values: np.ndarray
    missing: np.ndarray | None = None
    lookup: np.ndarray | None = None


def predict_columns(
    boosters: list[CompiledBooster],
    columns: Sequence[Column],
    num_threads: int = 0,
    *,
    then: Sequence[Callable[[np.ndarray], np.ndarray] | None] = (),
) -> list[np.ndarray]:
    """Each compiled booster's predictions for the matrix whose columns are ``columns``,
    without building that matrix; ``then[i]`` (elementwise, e.g. a calibration) applied to
    booster ``i``'s predictions as they come.

    The same numbers as ``predict_together`` of the float32 matrix of these columns (what
    LightGBM reads): each block of rows is gathered column by column into the float64 rows
    the native code reads, every value rounded to float32 on the way as that matrix would
    hold it, and predicted by every booster while it is in cache. The gathering runs on the
    predicting threads, so a frame's columns reach the boosters in one pass instead of
    three (frame to matrix, matrix to blocks, blocks to predictions). Copying a column into
    the rows (a strided write) costs half of NumPy's transposing copy of a column-major
    block, which is why no such block is built.
    """
    rows = len(columns[0].values) if columns else 0
    outs = [np.empty(rows, dtype=np.float64) for _ in boosters]
    if rows == 0:
        return outs
    width = len(columns)
    after = (list(then) + [None] * len(boosters))[: len(boosters)]
    layout = _Layout(columns)

    def worker() -> Callable[[int, int], None]:
        wide = np.empty((min(BLOCK_ROWS, rows), width), dtype=np.float64)

        def predict(first: int, last: int) -> None:
            n = last - first
            layout.gather(first, n, wide)
            block = wide[:n]
            for booster, out, finish in zip(boosters, outs, after, strict=True):
                raw = booster._model.predict(block, n_jobs=1)
                out[first:last] = raw if finish is None else finish(raw)

        return predict

    _over_blocks(worker, rows, _threads_for(rows, num_threads))
    return outs


# The value types a ``Column`` may hold, as the gather kernel numbers them.
_KINDS: dict[str, int] = {
    "float64": 0,
    "float32": 1,
    "int64": 2,
    "int32": 3,
    "int16": 4,
    "int8": 5,
    "uint64": 6,
    "uint32": 7,
    "uint16": 8,
    "uint8": 9,
}


class _Layout:
    """The columns of ``predict_columns`` as the gather kernel reads them: per column its value
    type, and the addresses of its values, missing flags and lookup table (0: none). Holds
    the arrays it points into for as long as it lives."""

    def __init__(self, columns: Sequence[Column]) -> None:
        kept: list[np.ndarray] = []

        def address(array: np.ndarray | None, dtype: Any = None) -> int:
            if array is None:
                return 0
            array = np.ascontiguousarray(array, dtype=dtype)
            kept.append(array)
            return int(array.ctypes.data)

        width = len(columns)
        self.kinds = np.empty(width, dtype=np.int8)
        self.values = np.empty(width, dtype=np.int64)
        self.missing = np.empty(width, dtype=np.int64)
        self.lookups = np.empty(width, dtype=np.int64)
        self.lookup_sizes = np.zeros(width, dtype=np.int64)
        # Columns without a table point at this one and never use what they read from it.
        nowhere = address(np.zeros(1, dtype=np.float32))
        for j, column in enumerate(columns):
            values = column.values
            if values.dtype == np.bool_:
                values = values.view(np.uint8)
            kind = _KINDS.get(values.dtype.name)
            if kind is None:  # (any other real type: as float64, as NumPy would cast it)
                values, kind = values.astype(np.float64), _KINDS["float64"]
            if column.lookup is not None and kind not in (2, 3, 4, 5):
                raise ValueError("a lookup column holds signed integer codes")
            self.kinds[j] = kind
            self.values[j] = address(values)
            self.missing[j] = address(column.missing, np.bool_)
            self.lookups[j] = address(column.lookup, np.float32) or nowhere
            self.lookup_sizes[j] = 0 if column.lookup is None else len(column.lookup)
        self._kept = kept
        self._gather = _gather_kernel()

    def gather(self, first: int, count: int, out: np.ndarray) -> None:
        """Rows ``first .. first + count - 1`` into ``out`` (C-contiguous float64, at least
        ``count`` rows of one column per feature), each value rounded to float32."""
        assert out.flags.c_contiguous and out.dtype == np.float64
        self._gather(
            first,
            count,
            len(self.kinds),
            self.kinds.ctypes.data,
            self.values.ctypes.data,
            self.missing.ctypes.data,
            self.lookups.ctypes.data,
            self.lookup_sizes.ctypes.data,
            out.ctypes.data,
        )


@cache
def _gather_kernel() -> Callable[..., None]:
    """The kernel of ``_Layout.gather``: each row's value as float32 widened to float64 (what
    the float32 matrix LightGBM reads holds: the same rounding as NumPy's cast), a code read
    through its lookup table (codes clipped onto ``-1 .. size - 2``, -1 reading the last
    entry, as ``np.take`` does), NaN where the row is missing; written row-major into the
    block, column by column (the value type chosen once per column). Reading the features
    is what costs here (about 2 ns a value, near the memory's bandwidth: a million rows of
    99 columns are 0.8 GB); tiling the rows measured no better."""
    import ctypes

    from llvmlite import ir

    from risk.native import F32, F64, I8, I64, Kernel

    p64 = I64.as_pointer()
    k = Kernel("gather", [I64, I64, I64, I8.as_pointer(), p64, p64, p64, p64, F64.as_pointer()])
    first, count, width, kinds, values, missing, lookups, sizes, out = k.args
    b = k.b
    zero, one = k.const(0), k.const(1)
    nan = ir.Constant(F64, float("nan"))
    types = {
        0: ir.DoubleType(),
        1: ir.FloatType(),
        2: I64,
        3: ir.IntType(32),
        4: ir.IntType(16),
        5: I8,
        6: I64,
        7: ir.IntType(32),
        8: ir.IntType(16),
        9: I8,
    }
    with k.loop(zero, width) as j:
        kind = k.load(kinds, j)
        base = k.load(values, j)
        missing_at = k.load(missing, j)
        has_missing = b.icmp_signed("!=", missing_at, zero)
        flags = b.inttoptr(b.select(has_missing, missing_at, base), I8.as_pointer())
        table = b.inttoptr(k.load(lookups, j), F32.as_pointer())
        size = k.load(sizes, j)
        has_lookup = b.icmp_signed("!=", size, zero)
        for code, element in types.items():
            with b.if_then(b.icmp_signed("==", kind, ir.Constant(I8, code))):
                column = b.inttoptr(base, element.as_pointer())
                with k.loop(zero, count) as r:
                    row = b.add(first, r)
                    raw = k.load(column, row)
                    if code == 0:
                        value = b.fpext(b.fptrunc(raw, F32), F64)
                    elif code == 1:
                        value = b.fpext(raw, F64)
                    elif code <= 5:
                        narrow = b.fpext(b.sitofp(raw, F32), F64)
                        # Through the table: clip onto -1 .. size - 2, -1 reads the last.
                        wide = b.sext(raw, I64) if code != 2 else raw
                        top = b.sub(size, ir.Constant(I64, 2))
                        clipped = b.select(b.icmp_signed(">", wide, top), top, wide)
                        clipped = b.select(
                            b.icmp_signed("<", clipped, zero), b.sub(size, one), clipped
                        )
                        safe = b.select(has_lookup, clipped, zero)
                        looked = b.fpext(k.load(table, safe), F64)
                        value = b.select(has_lookup, looked, narrow)
                    else:
                        value = b.fpext(b.uitofp(raw, F32), F64)
                    at = b.select(has_missing, row, zero)
                    absent = b.icmp_signed("!=", k.load(flags, at), ir.Constant(I8, 0))
                    value = b.select(b.and_(has_missing, absent), nan, value)
                    k.store(value, out, b.add(b.mul(r, width), j))
    return k.compile([ctypes.c_int64] * 3 + [ctypes.c_void_p] * 6)


def _object_path(policy: CompilePolicy, key: str) -> Path:
    return policy.object_dir / f"{key}{_OBJECT_SUFFIX}"


def _lleaves_model(model_text: str, folder: str) -> Any:
    import lleaves

    # lleaves reads the model's header from a file; it reads the trees again only to compile.
    model_file = Path(folder) / "model.txt"
    model_file.write_text(model_text, encoding="utf-8")
    return lleaves.Model(model_file=str(model_file))


def compile_booster(
    model_text: str, policy: CompilePolicy, *, allow_compile: bool = True
) -> CompiledBooster | None:
    """The compiled booster from the cache, or freshly compiled and stored there.

    Trees are inlined into one function up to the policy's ``inline_max_leaves``. Returns
    None when there is nothing cached and ``allow_compile`` is false. Raises what lleaves or
    LLVM raise when compiling fails.
    """
    inline = total_leaves(model_text) <= policy.inline_max_leaves
    key = cache_key(model_text, inline=inline)
    target = _object_path(policy, key)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="risk-lleaves-") as folder:
        model = _lleaves_model(model_text, folder)
        if target.is_file():
            # (LLVM aborts the whole process on a damaged object instead of raising, so
            # nothing unchecked reaches it.)
            if read_checked(target) is not None:
                model.compile(cache=str(target))
                return CompiledBooster(model, key, time.perf_counter() - start, from_cache=True)
            log.warning("compiled model %s is damaged; compiling it again", target)
        if not allow_compile:
            return None
        # lleaves writes the object where it is told: a temporary file, then stored with its
        # checksum, each renamed into place when complete, so that no reader sees half a file.
        partial = Path(folder) / "model.o"
        model.compile(cache=str(partial), finline=inline)
        write_checked(target, partial.read_bytes())
    return CompiledBooster(model, key, time.perf_counter() - start, from_cache=False)


class FastBooster:
    """A LightGBM booster that predicts through its compiled twin where the policy allows.

    ``predict`` takes the dense matrix LightGBM reads (float32 or float64, row-major).
    """

    def __init__(self, booster: lgb.Booster, policy: CompilePolicy) -> None:
        self.booster = booster
        self.policy = policy
        self._compiled: CompiledBooster | None = None
        self._failed = not policy.enabled
        self._looked_in_cache = False
        self._too_large = False
        self._lock = threading.Lock()

    @property
    def compiled(self) -> CompiledBooster | None:
        return self._compiled

    def __getstate__(self) -> dict[str, Any]:
        # Native code and locks stay in their process; another one looks in the cache again.
        return {"booster": self.booster, "policy": self.policy}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["booster"], state["policy"])  # type: ignore[misc]

    def _model_text(self) -> str:
        # The text of exactly the trees ``booster.predict`` uses by default.
        return str(self.booster.model_to_string(num_iteration=None))

    def compiled_for(self, rows: int, *, force: bool = False) -> CompiledBooster | None:
        """The compiled booster for a batch of ``rows`` rows, compiling it if the policy
        says so (``force``: whatever the model's size); None means LightGBM predicts."""
        if self._compiled is not None or self._failed:
            return self._compiled
        large = rows >= self.policy.min_rows and (force or not self._too_large)
        if self._looked_in_cache and not large:
            return None
        with self._lock:
            if self._compiled is None and not self._failed:
                text = self._model_text()
                leaves = total_leaves(text)
                if large and not force and leaves > self.policy.max_leaves:
                    large = False
                    if not self._too_large:
                        log.warning(
                            "the model has %d leaves (more than %d): compiling it would take "
                            "minutes and gigabytes, so LightGBM predicts; compile it ahead "
                            "with Scorer.warm_compiled(force=True) if that is worth it",
                            leaves,
                            self.policy.max_leaves,
                        )
                    self._too_large = True
                try:
                    self._compiled = compile_booster(text, self.policy, allow_compile=large)
                except Exception as exc:
                    self._failed = True
                    log.warning("compiling the LightGBM model failed (%s); using LightGBM", exc)
                self._looked_in_cache = True
        return self._compiled

    def warm(self, *, force: bool = False) -> CompiledBooster | None:
        """Compile now (or load from the cache), whatever the batch size; ``force``: also a
        model larger than the policy's ``max_leaves``."""
        return self.compiled_for(max(self.policy.min_rows, 1), force=force)

    def predict(self, matrix: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """The booster's predictions (its objective applied, as ``Booster.predict``)."""
        if matrix.shape[0] == 0:
            return np.zeros(0)
        compiled = self.compiled_for(matrix.shape[0])
        if compiled is not None:
            return compiled.predict(matrix, num_threads)
        return np.asarray(self.booster.predict(matrix, num_threads=num_threads), dtype=np.float64)
