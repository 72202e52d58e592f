"""Runs of equal keys in a batch, and the totals of each run in one native pass.

A queue file lists a truck's items together, and a declaration's items together, so the
groups that batch scoring forms (items per truck, items per declaration) are runs of equal
keys, in order of first appearance: exactly what a ``group_by(..., maintain_order=True)``
gives, without hashing a million keys. ``run_starts`` finds the runs and proves that no key
comes back after its run has ended (else the caller groups the general way);
``run_totals`` then sums, counts and takes extremes per run in one kernel (``risk.native``).

The totals are Polars' own, bit for bit: float sums are compensated (Kahan) sums in row order
as Polars' group-by sums them (a run of one row is that row's value; an infinite term or
total is added plainly), maxima keep the first of equal values, and texts compare as bytes.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from risk import native
from risk.native import F64, I1, I8, I32, I64, Kernel, compile_built, pointer


def run_starts(frame: pl.DataFrame, keys: Sequence[str]) -> np.ndarray | None:
    """The row where each run of equal ``keys`` starts (nulls equal), then ``frame.height``;
    None when a key that ended its run appears again later (the rows are not grouped).

    That no key comes back is checked on the runs' first rows: by 64-bit hashes, sorted (a
    repeated hash is compared by value, so a collision only costs time).
    """
    if frame.height == 0:
        return np.zeros(1, dtype=np.int64)
    texts = [frame.get_column(k) for k in keys]
    if all(c.dtype == pl.String and not c.null_count() for c in texts):
        starts, hashes = _text_runs(texts)
    else:
        first_row = pl.int_range(pl.len()) == 0
        change = pl.any_horizontal(
            first_row, *(pl.col(k).ne_missing(pl.col(k).shift()) for k in keys)
        )
        starts = np.flatnonzero(frame.select(change).to_series().to_numpy())
        hashes = frame.select(keys)[starts].select(pl.struct(*keys).hash()).to_series()
    ordered = hashes.sort(multithreaded=False)
    if (ordered == ordered.shift(1)).any() and frame.select(keys)[starts].is_duplicated().any():
        return None
    return np.append(starts, frame.height).astype(np.int64, copy=False)


def _text_runs(columns: list[pl.Series]) -> tuple[np.ndarray, pl.Series]:
    """Where the runs of equal texts (in every column, no nulls) start, and a 64-bit hash of
    each run's texts, by one native pass over the Arrow views."""
    held = [string_views(c) for c in columns]
    views = np.array([h[0] for h in held], dtype=np.int64)
    tables = np.array([pointer(h[1]) for h in held], dtype=np.int64)
    n = columns[0].len()
    starts = np.empty(n, dtype=np.int64)
    hashes = np.empty(n, dtype=np.uint64)
    count = _runs_kernel()(
        n, len(columns), pointer(views), pointer(tables), pointer(starts), pointer(hashes)
    )
    return starts[:count], pl.Series(hashes[:count])


@dataclass(frozen=True)
class RunTotals:
    """Per run (``run_totals``): the totals of its rows."""

    earliest: np.ndarray  # int64: the least of ``when``
    log_sum: np.ndarray  # float64: the sum of ``log_terms``
    duty_sum: np.ndarray  # float64: the sum of ``duty``
    max_risk: np.ndarray  # float64: the greatest ``risk``
    top_row: np.ndarray  # int64: the row of the greatest ``risk`` (the first of equals)
    n_parts: np.ndarray | None  # int64: rows that start a part (a run within the run)
    least_part_row: np.ndarray | None  # int64: the part start of the least text


def run_totals(
    starts: np.ndarray,
    *,
    risk: pl.Series,
    log_terms: pl.Series,
    duty: pl.Series,
    when: pl.Series,
    parts: np.ndarray | None = None,
    texts: pl.Series | None = None,
) -> RunTotals | None:
    """Totals per run of rows (``starts`` from ``run_starts``): the earliest ``when``, sums
    of ``log_terms`` and of ``duty``, the greatest ``risk`` and its row; with ``parts`` (the
    rows where a part starts, each run's first row among them) and ``texts``, the number of
    parts per run and the part whose text is least.

    None where the columns hold what the kernel does not take (nulls, NaN risks): the
    caller then groups the general way.
    """
    columns = [risk, log_terms, duty, when] + ([texts] if texts is not None else [])
    if any(column.null_count() for column in columns):
        return None
    risk_values = _contiguous(risk.cast(pl.Float64), np.float64)
    if np.isnan(risk_values).any():
        return None
    n_runs = len(starts) - 1
    out_i = np.empty((4, n_runs), dtype=np.int64)
    out_f = np.empty((3, n_runs), dtype=np.float64)
    flags = np.zeros(risk.len(), dtype=np.uint8)
    views, buffers, keep = 0, np.zeros(1, dtype=np.int64), None
    if parts is not None and texts is not None:
        flags[parts] = 1
        keep = string_views(texts)
        views, buffers = keep[0], keep[1]
    log_values = _contiguous(log_terms.cast(pl.Float64), np.float64)
    duty_values = _contiguous(duty.cast(pl.Float64), np.float64)
    when_values = _contiguous(when.to_physical().cast(pl.Int64), np.int64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    _kernel()(
        n_runs,
        pointer(starts),
        pointer(risk_values),
        pointer(log_values),
        pointer(duty_values),
        pointer(when_values),
        pointer(flags),
        views,
        pointer(buffers),
        int(keep is not None),
        pointer(out_i),
        pointer(out_f),
    )
    counted = keep is not None
    return RunTotals(
        earliest=out_i[0],
        log_sum=out_f[0],
        duty_sum=out_f[1],
        max_risk=out_f[2],
        top_row=out_i[1],
        n_parts=out_i[2] if counted else None,
        least_part_row=out_i[3] if counted else None,
    )


def _contiguous(series: pl.Series, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(series.to_numpy(), dtype=dtype)


def string_views(texts: pl.Series) -> tuple[int, np.ndarray, Any]:
    """The address of a text column's Arrow views (16 bytes a row), a table of its data
    buffers' addresses, and the Arrow array that owns them (keep it for the call)."""
    array: Any = texts.cast(pl.String).rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.string_view():
        array = array.cast(pa.string_view())
    buffers = array.buffers()
    views = buffers[1].address + 16 * array.offset
    table = np.array([b.address if b is not None else 0 for b in buffers[2:]] or [0], np.int64)
    return views, table, (array, table)


def cached_kernel(
    name: str, build: Callable[[], Kernel], argtypes: Sequence[Any], restype: Any = None
) -> Callable[..., Any]:
    """The kernel ``name`` that ``build`` writes, compiled through ``compile_built``: its IR
    is cached on disk under the source of ``build``'s module, this one and ``risk.native``,
    so a later process neither builds nor prints it (a few milliseconds a kernel)."""
    source = hashlib.sha256()
    for module in (build.__code__.co_filename, __file__, native.__file__):
        source.update(Path(module).read_bytes())
    (function,) = compile_built(
        f"{name} {source.hexdigest()}", [(name, argtypes, restype)], lambda: [build()]
    )
    return function


def kahan_add(k: Kernel, total: Any, error: Any, value: Any) -> None:
    """``total += value`` as Polars' compensated sum: finite terms into a finite total are
    compensated, anything else is added plainly."""
    b = k.b
    zero = Kernel.const(0.0, F64)
    current = total.get()
    finite = b.and_(
        b.fcmp_ordered("==", b.fsub(value, value), zero),
        b.fcmp_ordered("==", b.fsub(current, current), zero),
    )
    with b.if_else(finite) as (compensated, plain):
        with compensated:
            y = b.fsub(value, error.get())
            t = b.fadd(current, y)
            error.set(b.fsub(b.fsub(t, current), y))
            total.set(t)
        with plain:
            total.set(b.fadd(current, value))


def locate_text(k: Kernel, views: Any, buffers: Any, row: Any) -> tuple[Any, Any]:
    """(length, address of the bytes) of one row's text from its Arrow view: inline up to
    12 bytes, else in a data buffer at an offset."""
    b = k.b
    view = b.gep(views, [b.mul(row, k.const(16))])
    length = b.load(b.bitcast(view, I32.as_pointer()))
    inline = b.gep(view, [k.const(4)])
    buffer = b.load(b.bitcast(b.gep(view, [k.const(8)]), I32.as_pointer()))
    offset = b.load(b.bitcast(b.gep(view, [k.const(12)]), I32.as_pointer()))
    short = b.icmp_signed("<=", length, Kernel.const(12, I32))
    # An inline text's buffer field holds text bytes: index the table only for long texts.
    index = b.select(short, k.const(0), b.zext(buffer, I64))
    base = b.inttoptr(k.load(buffers, index), I8.as_pointer())
    outside = b.gep(base, [b.zext(offset, I64)])
    return b.zext(length, I64), b.select(short, inline, outside)


def _text_less(k: Kernel, views: Any, buffers: Any, i: Any, j: Any) -> Any:
    """Whether the text of row ``i`` is less than that of row ``j`` (bytes, then length)."""
    b = k.b
    length_i, data_i = locate_text(k, views, buffers, i)
    length_j, data_j = locate_text(k, views, buffers, j)
    common = b.select(b.icmp_signed("<", length_i, length_j), length_i, length_j)
    at = k.var(I64, 0)
    order = k.var(I32, 0)  # -1: i first, 1: j first, 0: equal so far
    i64p = I64.as_pointer()
    # 8 bytes at a time while they are equal (byte-swapped, a word compares as its bytes).
    with k.while_(
        lambda: b.and_(
            b.icmp_signed("<=", b.add(at.get(), k.const(8)), common),
            b.icmp_signed("==", order.get(), Kernel.const(0, I32)),
        )
    ):
        x = b.load(b.bitcast(b.gep(data_i, [at.get()]), i64p), align=1)
        y = b.load(b.bitcast(b.gep(data_j, [at.get()]), i64p), align=1)
        with b.if_else(b.icmp_unsigned("==", x, y)) as (same, different):
            with same:
                at.set(b.add(at.get(), k.const(8)))
            with different:
                less = b.icmp_unsigned("<", b.bswap(x), b.bswap(y))
                order.set(b.select(less, Kernel.const(-1, I32), Kernel.const(1, I32)))
    with k.while_(
        lambda: b.and_(
            b.icmp_signed("<", at.get(), common),
            b.icmp_signed("==", order.get(), Kernel.const(0, I32)),
        )
    ):
        x = b.load(b.gep(data_i, [at.get()]))
        y = b.load(b.gep(data_j, [at.get()]))
        with b.if_then(b.icmp_unsigned("<", x, y)):
            order.set(Kernel.const(-1, I32))
        with b.if_then(b.icmp_unsigned(">", x, y)):
            order.set(Kernel.const(1, I32))
        at.set(b.add(at.get(), k.const(1)))
    decided = b.icmp_signed("!=", order.get(), Kernel.const(0, I32))
    return b.select(
        decided,
        b.icmp_signed("<", order.get(), Kernel.const(0, I32)),
        b.icmp_signed("<", length_i, length_j),
    )


@cache
def _kernel() -> Any:
    pointers = [ctypes.c_void_p] * 8
    argtypes = [ctypes.c_int64, *pointers, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
    return cached_kernel("run_totals", _build_run_totals, argtypes)


def _build_run_totals() -> Kernel:
    """The per-run pass: out_i rows earliest, top row, parts, least part; out_f rows log
    sum, duty sum, greatest risk (each row ``n_runs`` long)."""
    f64p, i64p, i8p = F64.as_pointer(), I64.as_pointer(), I8.as_pointer()
    k = Kernel(
        "run_totals",
        [I64, i64p, f64p, f64p, f64p, i64p, i8p, i8p, i64p, I64, i64p, f64p],
    )
    n_runs, starts, risk, logs, duty, when, flags, views, buffers, texts, out_i, out_f = k.args
    b = k.b
    zero_f = Kernel.const(0.0, F64)
    with k.loop(k.const(0), n_runs) as run:
        first = k.load(starts, run)
        end = k.load(starts, b.add(run, k.const(1)))
        earliest = k.var(I64, k.load(when, first))
        best = k.var(F64, k.load(risk, first))
        top = k.var(I64, first)
        log_total, log_error = k.var(F64, zero_f), k.var(F64, zero_f)
        duty_total, duty_error = k.var(F64, zero_f), k.var(F64, zero_f)
        parts = k.var(I64, 0)
        least = k.var(I64, first)
        with k.loop(first, end) as row:
            moment = k.load(when, row)
            with b.if_then(b.icmp_signed("<", moment, earliest.get())):
                earliest.set(moment)
            value = k.load(risk, row)
            with b.if_then(b.fcmp_ordered(">", value, best.get())):
                best.set(value)
                top.set(row)
            kahan_add(k, log_total, log_error, k.load(logs, row))
            kahan_add(k, duty_total, duty_error, k.load(duty, row))
            counting = b.and_(
                b.icmp_signed("!=", texts, k.const(0)),
                b.icmp_signed("!=", k.load(flags, row), Kernel.const(0, I8)),
            )
            with b.if_then(counting):
                parts.set(b.add(parts.get(), k.const(1)))
                later = b.icmp_signed(">", row, first)
                with b.if_then(later), b.if_then(_text_less(k, views, buffers, row, least.get())):
                    least.set(row)
        single = b.icmp_signed("==", b.sub(end, first), k.const(1))
        # A run of one row totals to that row's value (its sign of zero included).
        log_sum = b.select(single, k.load(logs, first), log_total.get())
        duty_sum = b.select(single, k.load(duty, first), duty_total.get())
        for index, value in enumerate([earliest.get(), top.get(), parts.get(), least.get()]):
            k.store(value, out_i, b.add(b.mul(n_runs, k.const(index)), run))
        for index, value in enumerate([log_sum, duty_sum, best.get()]):
            k.store(value, out_f, b.add(b.mul(n_runs, k.const(index)), run))
    return k


_MIX = 0x9E3779B97F4A7C15


@cache
def _runs_kernel() -> Any:
    argtypes = [ctypes.c_int64, ctypes.c_int64, *[ctypes.c_void_p] * 4]
    return cached_kernel("text_runs", _build_text_runs, argtypes, ctypes.c_int64)


def _build_text_runs() -> Kernel:
    """Starts of runs of equal texts over ``n_columns`` text columns, and a hash per run.

    A row starts a run when any column's text differs from the row before: a view's first
    8 bytes (length and first 4 bytes) and, for texts of up to 12 bytes, its last 8 (the
    rest of the text, zero-padded) decide at once; longer texts compare their bytes.
    Returns the number of runs.
    """
    i64p = I64.as_pointer()
    k = Kernel("text_runs", [I64, I64, i64p, i64p, i64p, i64p], ret=I64)
    n, n_columns, view_table, buffer_table, starts, hashes = k.args
    b = k.b
    i8p = I8.as_pointer()
    count = k.var(I64, 0)
    with k.loop(k.const(0), n) as row:
        differs = k.var(I1, b.icmp_signed("==", row, k.const(0)))
        with k.loop(k.const(0), n_columns) as column:
            views = b.inttoptr(k.load(view_table, column), i8p)
            buffers = b.inttoptr(k.load(buffer_table, column), i64p)
            with b.if_then(b.not_(differs.get())):
                here = b.bitcast(b.gep(views, [b.mul(row, k.const(16))]), i64p)
                before = b.bitcast(b.gep(views, [b.mul(b.sub(row, k.const(1)), k.const(16))]), i64p)
                head_here, head_before = k.load(here, k.const(0)), k.load(before, k.const(0))
                tail_here, tail_before = k.load(here, k.const(1)), k.load(before, k.const(1))
                length = b.trunc(head_here, I32)
                short = b.icmp_signed("<=", length, Kernel.const(12, I32))
                heads_differ = b.icmp_signed("!=", head_here, head_before)
                with b.if_else(b.or_(heads_differ, short)) as (decided, long_texts):
                    with decided:
                        tails_differ = b.icmp_signed("!=", tail_here, tail_before)
                        differs.set(b.or_(heads_differ, b.and_(short, tails_differ)))
                    with long_texts:
                        same_place = b.icmp_signed("==", tail_here, tail_before)
                        with b.if_then(b.not_(same_place)):
                            _, data_here = locate_text(k, views, buffers, row)
                            _, data_before = locate_text(k, views, buffers, b.sub(row, k.const(1)))
                            at = k.var(I64, k.const(4))  # the first 4 bytes are equal
                            size = b.zext(length, I64)
                            with k.while_(  # 8 bytes at a time, the last 8 perhaps again
                                lambda: b.and_(
                                    b.icmp_signed("<", at.get(), size), b.not_(differs.get())
                                )
                            ):
                                word = b.select(
                                    b.icmp_signed(">", b.add(at.get(), k.const(8)), size),
                                    b.sub(size, k.const(8)),
                                    at.get(),
                                )
                                x = b.load(b.bitcast(b.gep(data_here, [word]), i64p), align=1)
                                y = b.load(b.bitcast(b.gep(data_before, [word]), i64p), align=1)
                                differs.set(b.icmp_signed("!=", x, y))
                                at.set(b.add(at.get(), k.const(8)))
        with b.if_then(differs.get()):
            digest = k.var(I64, k.const(0))
            with k.loop(k.const(0), n_columns) as column:
                views = b.inttoptr(k.load(view_table, column), i8p)
                buffers = b.inttoptr(k.load(buffer_table, column), i64p)
                view = b.bitcast(b.gep(views, [b.mul(row, k.const(16))]), i64p)
                head = k.load(view, k.const(0))
                digest.set(_mix(k, b.xor(digest.get(), head)))
                size, data = locate_text(k, views, buffers, row)
                short = b.icmp_signed("<=", size, k.const(12))
                with b.if_else(short) as (inline, outside):
                    with inline:  # the view holds the whole text, zero-padded
                        digest.set(_mix(k, b.xor(digest.get(), k.load(view, k.const(1)))))
                    with outside:  # the text's bytes 8 at a time, the last 8 overlapping
                        words = b.lshr(b.add(size, k.const(7)), k.const(3))
                        with k.loop(k.const(0), words) as word:
                            offset = b.shl(word, k.const(3))
                            last = b.sub(size, k.const(8))
                            offset = b.select(b.icmp_signed(">", offset, last), last, offset)
                            value = b.load(b.bitcast(b.gep(data, [offset]), i64p), align=1)
                            digest.set(_mix(k, b.xor(digest.get(), value)))
            k.store(row, starts, count.get())
            k.store(digest.get(), hashes, count.get())
            count.set(b.add(count.get(), k.const(1)))
    b.ret(count.get())
    return k


def _mix(k: Kernel, value: Any) -> Any:
    """One step of a multiplicative hash (multiply, then fold the high half down)."""
    b = k.b
    product = b.mul(value, k.const(_MIX - 2**64))
    return b.xor(product, b.lshr(product, k.const(29)))
