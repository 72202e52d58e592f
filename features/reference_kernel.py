"""Native kernels of the price reference's snapshot look-up (``UnitValueReference`` of a profile).

Two passes over a scoring batch, each one kernel (``risk.native``), and one at profile load:

- ``pair_codes``: a dense code per distinct (HS code, origin) of the batch, read straight from the
  strings' Arrow views (a string of up to 12 bytes lies inside its 16-byte view), through an
  open-addressing hash table: the level of reference is then chosen once per distinct pair.
- ``bucket_tables`` (at load): per key of the snapshot, equal-width buckets of its sorted past
  values and where each bucket's values begin.
- ``positions``: per row and metric, the count of the chosen key's past values strictly below
  the row's value, searched for among the few values of the bucket the row's value falls in
  (rows grouped by pair, so that a key's tables stay in cache), with the log ratio to the key's
  median, the level and the number of past rows; validity as Arrow bitmaps.

They take NumPy arrays and raw Arrow buffers, C-contiguous and held by the caller for the call.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from llvmlite import ir

from features.row_kernels import room
from risk.native import F64, I1, I8, I32, I64, Kernel, pointer

# A view of at most this many bytes holds its string inline (Arrow's string_view layout).
INLINE = 12
# Buckets per distinct past value of a key: a row's value is searched for among about a
# quarter of a value on average, most often none or one (the table, int32, is 16 bytes a value).
BUCKETS = 4
_VOID = ctypes.c_void_p
_I64 = ctypes.c_int64


def _masked_words(k: Kernel, views: Any, row: Any) -> tuple[Any, Any]:
    """The two 64-bit words of a row's view (length, then up to 12 inline bytes), the bytes past
    the string's end zeroed: equal words, equal strings (of at most ``INLINE`` bytes)."""
    b = k.b
    first = k.load(views, b.mul(row, k.const(2)))
    second = k.load(views, b.add(b.mul(row, k.const(2)), k.const(1)))
    length = b.and_(first, k.const(0xFFFFFFFF))
    ones = k.const(-1)
    # Bits kept: 32 + 8 * length of the first word, 8 * (length - 4) of the second.
    short = b.icmp_signed("<", length, k.const(4))
    # Shift amounts kept under 64 in the branch a select drops as well (LLVM: no poison).
    first_bits = b.add(k.const(32), b.mul(b.and_(length, k.const(3)), k.const(8)))
    first_mask = b.select(short, b.sub(b.shl(k.const(1), first_bits), k.const(1)), ones)
    second_bits = b.mul(b.and_(b.sub(length, k.const(4)), k.const(7)), k.const(8))
    second_mask = b.select(
        short,
        k.const(0),
        b.select(
            b.icmp_signed(">=", length, k.const(INLINE)),
            ones,
            b.sub(b.shl(k.const(1), second_bits), k.const(1)),
        ),
    )
    return b.and_(first, first_mask), b.and_(second, second_mask)


@cache
def _pair_kernel() -> Callable[..., int]:
    """``pairs(n, views_a, views_b, mask, slots, keys, firsts, codes) -> count`` (see
    ``pair_codes``); -1 when the table (``mask + 1`` slots) would pass half full."""
    p64, p32 = I64.as_pointer(), I32.as_pointer()
    k = Kernel("reference_pairs", [I64, p64, p64, I64, p32, p64, p64, p32], I64)
    n, views_a, views_b, mask, slots, keys, firsts, codes = k.args
    b = k.b
    zero, one = k.const(0), k.const(1)
    count = k.var(I64, 0)
    full = k.var(I1, 0)
    limit = b.ashr(b.add(mask, one), one)
    previous = [k.var(I64, -1) for _ in range(4)]
    previous_code = k.var(I32, -1)
    with k.loop(zero, n) as row:
        words = [*_masked_words(k, views_a, row), *_masked_words(k, views_b, row)]
        same = b.and_(
            b.and_(
                b.icmp_signed("==", words[0], previous[0].get()),
                b.icmp_signed("==", words[1], previous[1].get()),
            ),
            b.and_(
                b.icmp_signed("==", words[2], previous[2].get()),
                b.icmp_signed("==", words[3], previous[3].get()),
            ),
        )
        code = k.var(I32, previous_code.get())
        with b.if_then(b.not_(same)):
            mixed = k.const(0)
            for word, factor in zip(
                words,
                (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93),
                strict=True,
            ):
                mixed = b.add(mixed, b.mul(word, ir.Constant(I64, factor - (1 << 64))))
            mixed = b.xor(mixed, b.lshr(mixed, k.const(29)))
            mixed = b.mul(mixed, ir.Constant(I64, 0xBF58476D1CE4E5B9 - (1 << 64)))
            mixed = b.xor(mixed, b.lshr(mixed, k.const(32)))
            slot = k.var(I64, b.and_(mixed, mask))
            searching = k.var(I1, 1)
            with k.while_(searching.get):
                held = k.load(slots, slot.get())
                with b.if_else(b.icmp_signed("<", held, ir.Constant(I32, 0))) as (empty, taken):
                    with empty:
                        searching.set(ir.Constant(I1, 0))
                        with b.if_else(b.icmp_signed("<", count.get(), limit)) as (room, no_room):
                            with room:
                                new = count.get()
                                code.set(b.trunc(new, I32))
                                k.store(code.get(), slots, slot.get())
                                k.store(row, firsts, new)
                                for j, word in enumerate(words):
                                    k.store(word, keys, b.add(b.mul(new, k.const(4)), k.const(j)))
                                count.set(b.add(new, one))
                            with no_room:
                                full.set(ir.Constant(I1, 1))
                                code.set(ir.Constant(I32, 0))
                    with taken:
                        base = b.mul(b.sext(held, I64), k.const(4))
                        equal = ir.Constant(I1, 1)
                        for j, word in enumerate(words):
                            stored = k.load(keys, b.add(base, k.const(j)))
                            equal = b.and_(equal, b.icmp_signed("==", stored, word))
                        with b.if_else(equal) as (found, other):
                            with found:
                                code.set(held)
                                searching.set(ir.Constant(I1, 0))
                            with other:
                                slot.set(b.and_(b.add(slot.get(), one), mask))
            for j, word in enumerate(words):
                previous[j].set(word)
            previous_code.set(code.get())
        k.store(code.get(), codes, row)
    k.b.ret(b.select(full.get(), k.const(-1), count.get()))
    return k.compile([_I64, _VOID, _VOID, _I64, _VOID, _VOID, _VOID, _VOID], _I64)


def _views(series: pl.Series) -> tuple[pa.Array, int] | None:
    """The Arrow string_view array of a string series and the address of its first view, or
    None when a view may not hold its string inline (a null, a string over ``INLINE`` bytes)."""
    if series.null_count() or (series.str.len_bytes() > INLINE).any():
        return None
    array = series.rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    if array.type != pa.string_view():  # Polars exports strings as views
        return None
    return array, array.buffers()[1].address + 16 * array.offset


def pair_codes(first: pl.Series, second: pl.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row, the index of its (``first``, ``second``) pair among the distinct pairs in order
    of first appearance (int32), and the first row of each pair (int64); None where the strings
    cannot be read from their views (nulls, long strings): the caller codes them another way."""
    a, b = _views(first), _views(second)
    if a is None or b is None:
        return None
    rows = len(first)
    # Large outputs in Polars' memory, faulted in at once (``row_kernels.room``): NumPy asks
    # for huge pages, whose compaction made the reference's system time vary 0.02-0.24 s.
    codes, firsts = room(rows, np.int32), room(rows, np.int64)
    kernel = _pair_kernel()
    size = 1 << 14  # room for 8,192 pairs; a batch with more starts again, eight times larger
    while True:
        slots = np.full(size, -1, dtype=np.int32)
        keys = np.empty(4 * min(rows, size // 2), dtype=np.int64)
        count = kernel(
            rows,
            a[1],
            b[1],
            size - 1,
            pointer(slots),
            pointer(keys),
            pointer(firsts),
            pointer(codes),
        )
        if count >= 0:
            return codes, firsts[:count]
        size *= 8


def _search(k: Kernel, past: Any, low: Any, high: Any, value: Any) -> Any:
    """The first index in ``low .. high - 1`` whose entry of ``past`` (sorted) is not below
    ``value``, ``high`` if none: branch-free halving."""
    b = k.b
    zero, one = k.const(0), k.const(1)
    first = k.var(I64, low)
    width = k.var(I64, b.sub(high, low))
    with k.while_(lambda: b.icmp_signed(">", width.get(), zero)):
        half = b.ashr(width.get(), one)
        middle = b.add(first.get(), half)
        below = b.fcmp_ordered("<", k.load(past, middle), value)
        first.set(b.select(below, b.add(middle, one), first.get()))
        width.set(b.select(below, b.sub(b.sub(width.get(), half), one), half))
    return first.get()


def _bucket(k: Kernel, value: Any, low: Any, scale: Any, buckets: Any) -> Any:
    """``bucket`` (below) in IR: the same operations, so the same bucket for every value."""
    b = k.b
    spread = b.fmul(b.fsub(value, low), scale)
    spread = b.select(
        b.fcmp_ordered(">", spread, ir.Constant(F64, 0.0)), spread, ir.Constant(F64, 0.0)
    )
    top = b.sitofp(b.sub(buckets, k.const(1)), F64)
    spread = b.select(b.fcmp_ordered("<", spread, top), spread, top)
    return b.fptosi(spread, I64)


@cache
def _table_kernel() -> Callable[..., None]:
    """``tables(keys, starts, sizes, buckets, values, lows, scales, table_at, table)``: see
    ``bucket_tables``."""
    p64, pf = I64.as_pointer(), F64.as_pointer()
    k = Kernel("reference_tables", [I64, p64, p64, p64, pf, pf, pf, p64, I32.as_pointer()])
    keys, starts, sizes, buckets, values, lows, scales, table_at, table = k.args
    b = k.b
    zero, one = k.const(0), k.const(1)
    with k.loop(zero, keys) as key:
        start, size, many = k.load(starts, key), k.load(sizes, key), k.load(buckets, key)
        low, scale, at = k.load(lows, key), k.load(scales, key), k.load(table_at, key)
        end = b.add(start, size)
        filled = k.var(I64, 0)  # the buckets whose first value is known
        with k.loop(start, end) as index:
            up_to = _bucket(k, k.load(values, index), low, scale, many)
            offset = b.trunc(b.sub(index, start), I32)
            with k.while_(lambda: b.icmp_signed("<=", filled.get(), up_to)):
                k.store(offset, table, b.add(at, filled.get()))
                filled.set(b.add(filled.get(), one))
        with k.while_(lambda: b.icmp_signed("<=", filled.get(), many)):
            k.store(b.trunc(size, I32), table, b.add(at, filled.get()))
            filled.set(b.add(filled.get(), one))
    return k.compile([_I64] + [_VOID] * 8)


def bucket_tables(
    values: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> dict[str, np.ndarray]:
    """For each key's slice ``starts .. starts + sizes - 1`` of ``values`` (sorted within it,
    distinct): ``buckets`` (``BUCKETS`` per value) equal-width buckets from its lowest value
    ``low`` (``scale`` buckets per unit), and in ``table`` from ``table_at``, where each
    bucket's first value is from the slice's start (int32), then the slice's size. A value's
    bucket is monotone in the value (every operation computing it
    is): past values in earlier buckets than a row's value are below it, in later ones are
    not, so a row's value is searched for among its bucket's few values alone."""
    low = values[starts] if len(values) else np.zeros(0)
    high = values[starts + sizes - 1] if len(values) else np.zeros(0)
    if len(sizes) and sizes.max() >= 2**31:
        raise ValueError("a key of the price reference has 2^31 distinct past values or more")
    buckets = sizes * BUCKETS
    with np.errstate(all="ignore"):
        scale = buckets / (high - low)
    scale[~np.isfinite(scale)] = 0.0  # one distinct value: everything in the first bucket
    table_at = np.cumsum(buckets + 1) - (buckets + 1)
    table = np.empty(int((buckets + 1).sum()), dtype=np.int32)
    arrays = {"low": low, "scale": scale, "table_at": table_at, "buckets": buckets}
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    starts, sizes = np.ascontiguousarray(starts), np.ascontiguousarray(sizes)
    _table_kernel()(
        len(starts),
        pointer(starts),
        pointer(sizes),
        pointer(arrays["buckets"]),
        pointer(values),
        pointer(arrays["low"]),
        pointer(arrays["scale"]),
        pointer(arrays["table_at"]),
        pointer(table),
    )
    return {**arrays, "table": table}


def _present(k: Kernel, level: Any, validity: Any, source: Any) -> Any:
    """Whether a row has a reference for a metric: a level was chosen and its value is not
    null (``validity``: the address of an Arrow bitmap, 0 when nothing is null)."""
    b = k.b
    present = k.var(I1, b.icmp_signed(">=", level, ir.Constant(I32, 0)))
    with b.if_then(b.icmp_signed("!=", validity, k.const(0))):
        byte = k.load(b.inttoptr(validity, I8.as_pointer()), b.lshr(source, k.const(3)))
        bit = b.and_(b.lshr(byte, b.trunc(b.and_(source, k.const(7)), I8)), ir.Constant(I8, 1))
        present.set(b.and_(present.get(), b.icmp_signed("!=", bit, ir.Constant(I8, 0))))
    return present.get()


@cache
def _position_kernel(metrics: int) -> Callable[..., None]:
    """``positions(n, pairs, codes, order, grouped, under, values, validity, offsets, levels,
    counts, medians, starts, lows, scales, buckets, tables, table, past_values, past_below,
    ratios, positions, out_levels, out_counts, bits)`` for ``metrics`` metrics: see
    ``positions``; per-metric arrays are passed as arrays of addresses; ``order`` (int32,
    ``pairs + 1 + n``), ``grouped`` (float64) and ``under`` (int32, both ``n * metrics``) are
    scratch space."""
    p64, p32, pf, p8 = I64.as_pointer(), I32.as_pointer(), F64.as_pointer(), I8.as_pointer()
    k = Kernel(
        "reference_positions",
        [I64, I64, p32, p32, pf, p32, p64, p64, p64, p32, p64, pf, p64, pf, pf, p64, p64, p32]
        + [pf, p64]
        + [p64] * 5,
    )
    n, pairs, codes, order, grouped, under, values, validity, offsets = k.args[:9]
    levels, counts, medians, starts, lows, scales, buckets, tables, table = k.args[9:18]
    past_values, past_below = k.args[18:20]
    ratios, positions, out_levels, out_counts, bits = k.args[20:]
    b = k.b
    zero, one = k.const(0), k.const(1)
    width = k.const(metrics)
    each = [k.const(metric) for metric in range(metrics)]
    columns = [b.inttoptr(k.load(values, metric), pf) for metric in each]
    shifts = [k.load(offsets, metric) for metric in each]
    # The rows' values grouped by pair (a counting sort), a row's side by side: a pair's rows
    # are searched one after another in its keys' tables and past values, which stay in cache,
    # where searches in row order would each walk cold memory. ``order[pair]`` ends as the end
    # of the pair's rows, ``order[pairs + 1 + row]`` is the row's place among them. A value
    # that is null is searched all the same (its count is never read).
    bucket = b.add(pairs, one)
    with k.loop(zero, bucket) as pair:
        k.store(ir.Constant(I32, 0), order, pair)
    with k.loop(zero, n) as row:
        at = b.add(b.sext(k.load(codes, row), I64), one)
        k.store(b.add(k.load(order, at), ir.Constant(I32, 1)), order, at)
    with k.loop(one, bucket) as pair:
        k.store(b.add(k.load(order, pair), k.load(order, b.sub(pair, one))), order, pair)
    with k.loop(zero, n) as row:
        at = b.sext(k.load(codes, row), I64)
        place = b.sext(k.load(order, at), I64)
        k.store(b.trunc(b.add(place, one), I32), order, at)
        k.store(b.trunc(place, I32), order, b.add(bucket, row))
        for metric, column, shift in zip(each, columns, shifts, strict=True):
            value = k.load(column, b.add(row, shift))
            k.store(value, grouped, b.add(b.mul(place, width), metric))
    with k.loop(zero, pairs) as pair:
        base = b.mul(pair, width)
        first = b.select(
            b.icmp_signed(">", pair, zero), b.sext(k.load(order, b.sub(pair, one)), I64), zero
        )
        for metric in each:
            at = b.add(base, metric)
            chosen = b.icmp_signed(">=", k.load(levels, at), ir.Constant(I32, 0))
            start, low, scale = k.load(starts, at), k.load(lows, at), k.load(scales, at)
            size, offset = k.load(buckets, at), k.load(tables, at)
            with b.if_then(chosen), k.loop(first, b.sext(k.load(order, pair), I64)) as place:
                spot = b.add(b.mul(place, width), metric)
                value = k.load(grouped, spot)
                slot = b.add(offset, _bucket(k, value, low, scale, size))
                low_end, high_end = (
                    b.add(start, b.sext(k.load(table, at), I64)) for at in (slot, b.add(slot, one))
                )
                found = _search(k, past_values, low_end, high_end, value)
                some = b.icmp_signed(">", found, start)
                previous = k.load(past_below, b.select(some, b.sub(found, one), start))
                k.store(b.trunc(b.select(some, previous, zero), I32), under, spot)
    with k.loop(zero, n) as row:
        base = b.mul(b.sext(k.load(codes, row), I64), width)
        spot = b.mul(b.sext(k.load(order, b.add(bucket, row)), I64), width)
        for metric, column, shift in zip(each, columns, shifts, strict=True):
            at = b.add(base, metric)
            level = k.load(levels, at)
            source = b.add(row, shift)
            ratio_out = b.inttoptr(k.load(ratios, metric), pf)
            position_out = b.inttoptr(k.load(positions, metric), pf)
            level_out = b.inttoptr(k.load(out_levels, metric), p32)
            count_out = b.inttoptr(k.load(out_counts, metric), p64)
            present = _present(k, level, k.load(validity, metric), source)
            with b.if_else(present) as (known, unknown):
                with known:
                    value = k.load(column, source)
                    below = b.sext(k.load(under, b.add(spot, metric)), I64)
                    rows = k.load(counts, at)
                    k.store(b.fsub(value, k.load(medians, at)), ratio_out, row)
                    k.store(b.fdiv(b.sitofp(below, F64), b.sitofp(rows, F64)), position_out, row)
                    k.store(level, level_out, row)
                    k.store(rows, count_out, row)
                    bits_out = b.inttoptr(k.load(bits, metric), p8)
                    slot = b.lshr(row, k.const(3))
                    flag = b.shl(ir.Constant(I8, 1), b.trunc(b.and_(row, k.const(7)), I8))
                    k.store(b.or_(k.load(bits_out, slot), flag), bits_out, slot)
                with unknown:
                    k.store(ir.Constant(F64, 0.0), ratio_out, row)
                    k.store(ir.Constant(F64, 0.0), position_out, row)
                    k.store(ir.Constant(I32, 0), level_out, row)
                    k.store(zero, count_out, row)
    return k.compile([_I64, _I64] + [_VOID] * 23)


def warm(metrics: int) -> None:
    """Compile (or load from the cache) the kernels a batch of ``metrics`` metrics uses."""
    _pair_kernel()
    _table_kernel()
    _position_kernel(metrics)


def _float_parts(series: pl.Series) -> tuple[pa.Array, int, int, int]:
    """A float64 series as Arrow: the array (held for the call), its values' and validity's
    addresses (0: no nulls) and its offset."""
    array = series.cast(pl.Float64).rechunk().to_arrow()
    validity, data = array.buffers()[:2]
    valid_at = 0 if validity is None or array.null_count == 0 else validity.address
    return array, data.address, valid_at, array.offset


def _nullable(dtype: pa.DataType, values: np.ndarray, bits: np.ndarray) -> pl.Series:
    """A Polars series of ``values`` where the bitmap ``bits`` is set, null elsewhere."""
    array = pa.Array.from_buffers(
        dtype, len(values), [pa.py_buffer(bits), pa.py_buffer(values)], null_count=-1
    )
    return pl.Series(array)


def positions(
    codes: np.ndarray,
    values: list[pl.Series],
    choice: dict[str, np.ndarray],
    table: np.ndarray,
    past_values: np.ndarray,
    past_below: np.ndarray,
) -> list[tuple[pl.Series, pl.Series, pl.Series, pl.Series]]:
    """Per metric (``values``, one series per metric, rows coded by ``codes``), the rows'
    log ratio to the median, quantile position, level and number of past rows of the key
    ``choice`` holds for their pair and metric. ``choice``'s arrays are indexed pair * metrics
    + metric: ``level`` (int32, -1 for none), ``rows`` and ``median`` of the key, ``start`` of
    its slice of ``past_values`` (a key's distinct past values, sorted; ``past_below``: how
    many of the key's past values are at or below each) and its ``bucket_tables`` (``low``,
    ``scale``, ``buckets``, ``table_at``, in ``table``). A row's position is the count of its
    key's past values strictly below its value, over the key's rows. Null where the row's
    value is null or its pair has no reference for the metric."""
    rows, metrics = len(codes), len(values)
    if not len(past_values):  # an empty slice's start is read, and ignored
        past_values, past_below = np.zeros(1), np.zeros(1, dtype=np.int64)
    parts = [_float_parts(series) for series in values]
    out = [
        (
            room(rows, np.float64),
            room(rows, np.float64),
            room(rows, np.int32),
            room(rows, np.int64),
            np.zeros((rows + 7) // 8, dtype=np.uint8),
        )
        for _ in values
    ]

    def addresses(arrays: list[np.ndarray] | list[int]) -> np.ndarray:
        return np.array([a if isinstance(a, int) else pointer(a) for a in arrays], dtype=np.int64)

    arguments = [
        addresses([part[1] for part in parts]),
        addresses([part[2] for part in parts]),
        np.array([part[3] for part in parts], dtype=np.int64),
    ]
    outputs = [addresses([o[j] for o in out]) for j in range(5)]
    pairs = len(choice["level"]) // max(metrics, 1)
    if rows >= 2**31 or (len(choice["rows"]) and choice["rows"].max() >= 2**31):
        raise ValueError("the price reference's kernels count rows in 32 bits")
    order = room(pairs + 1 + rows, np.int32)
    grouped = room(rows * metrics, np.float64)
    under = room(rows * metrics, np.int32)
    _position_kernel(metrics)(
        rows,
        pairs,
        pointer(codes),
        pointer(order),
        pointer(grouped),
        pointer(under),
        *(pointer(a) for a in arguments),
        pointer(choice["level"]),
        pointer(choice["rows"]),
        pointer(choice["median"]),
        pointer(choice["start"]),
        pointer(choice["low"]),
        pointer(choice["scale"]),
        pointer(choice["buckets"]),
        pointer(choice["table_at"]),
        pointer(table),
        pointer(past_values),
        pointer(past_below),
        *(pointer(a) for a in outputs),
    )
    return [
        (
            _nullable(pa.float64(), ratio, bits),
            _nullable(pa.float64(), position, bits),
            _nullable(pa.int32(), level, bits),
            _nullable(pa.int64(), count, bits),
        )
        for ratio, position, level, count, bits in out
    ]
