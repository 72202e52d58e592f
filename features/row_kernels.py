"""The native passes behind the row-level signals (``features.behaviour``, ``features.route``).

Eight kernels (``risk.native``), compiled together once per process (their IR cached on disk
under the hash of this module's and ``risk.native``'s source, ``risk.native.compile_built``):

``dense_codes`` numbers the distinct values of columns (0, 1, ... in order of first
appearance, null one value of its own). Text whose strings fit in their Arrow views (12 bytes
or less: countries, crossings, trucks, importers, chapters) is keyed by the views themselves
(``row_short_codes``: exact). Other columns go through a table on 64-bit hashes
(``row_dense_codes``), and every row is checked against the first row of its code; on a
collision (never yet seen) the values are numbered by Polars instead. Either way codes are
exact: equal values <=> equal codes.

``trip_codes`` numbers trips (``features.behaviour.trip_id``: truck or declaration, crossing,
calendar day) keyed exactly by the codes of truck and crossing, the declaration's code and the
day; rows without a trip text share one trip, as a null key does in a group-by.

``trip_totals`` counts items, distinct declarations, importers and chapters and sums value and
gross mass per trip, and items and value per declaration, and hands every row its totals.
Sums run in row order (Polars' window sums over a text key add in an order of its own, so a
total may differ from theirs in the last bit).

``nearest_readings`` finds, per row, the weighbridge reading of its truck at its crossing
nearest in time within a tolerance, as ``join_asof(strategy="nearest")`` does: readings in
time order per key, the later one on a tie, and gives the gap of the trip's gross mass to it.

``local_signals`` computes the row-local signals (threshold gaps, roundness, gross/net,
importer age, burst ratio) with Polars' own arithmetic (a division by a constant is a product
with its reciprocal; a float modulo is x - m * floor(x * (1 / m))): bit for bit the same.
``lookup`` and ``route_flags`` hand rows the codes and flags of their values.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from llvmlite import ir

from risk import native
from risk.native import F64, I8, I32, I64, Kernel, compile_built, pointer

U64P = I64.as_pointer()
I32P = I32.as_pointer()
I8P = I8.as_pointer()
F64P = F64.as_pointer()
I1 = ir.IntType(1)
# Golden-ratio multiplier spreading keys over a table (Fibonacci hashing).
_MIX = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX2 = 0xC2B2AE3D27D4EB4F - (1 << 64)
FULL = -1  # a kernel's answer when its table is too small: the caller doubles it
LONG = -2  # ``row_short_codes``' answer when a string does not fit in its view
MAX_THRESHOLDS = 4  # value thresholds ``row_local_signals`` compares with (unrolled)

_LOCK = threading.Lock()
_KERNELS: dict[str, Callable[..., Any]] = {}
P = ctypes.c_void_p
L = ctypes.c_int64


def _true(k: Kernel) -> Any:
    return ir.Constant(I1, 1)


def _false(k: Kernel) -> Any:
    return ir.Constant(I1, 0)


def _probe(
    k: Kernel,
    start: Any,
    mask: Any,
    table_codes: Any,
    same: Callable[[Any], Any],
) -> tuple[Any, Any]:
    """Linear probing from ``start``: the slot holding the key (``same(slot)``, an i1) or the
    first free one, and the code found there (-1: free)."""
    b = k.b
    slot = k.var(I64, start)
    code = k.var(I32, ir.Constant(I32, -1))
    searching = k.var(I1, _true(k))
    with k.while_(lambda: searching.get()):
        taken = k.load(table_codes, slot.get())
        code.set(taken)
        with b.if_else(b.icmp_signed("<", taken, ir.Constant(I32, 0))) as (free, used):
            with free:
                searching.set(_false(k))
            with used, b.if_else(same(slot.get())) as (found, other):
                with found:
                    searching.set(_false(k))
                with other:
                    slot.set(b.and_(b.add(slot.get(), k.const(1)), mask))
    return slot.get(), code.get()


def _code_of_pair(
    k: Kernel,
    key: tuple[Any, Any],
    tables: tuple[Any, Any, Any],
    shift: Any,
    mask: Any,
    take_code: Callable[[], Any],
) -> Any:
    """The code (i32) of a key of two 64-bit words in a table (``tables``: its first words,
    second words and codes; ``shift``, ``mask``: its size), the key added with
    ``take_code()`` when it is not there yet."""
    b = k.b
    first, second = key
    table_first, table_second, table_codes = tables
    mixed = b.xor(b.mul(first, k.const(_MIX2)), second)
    start = b.lshr(b.mul(mixed, k.const(_MIX)), shift)

    def same_key(slot: Any) -> Any:
        return b.and_(
            b.icmp_unsigned("==", k.load(table_first, slot), first),
            b.icmp_unsigned("==", k.load(table_second, slot), second),
        )

    slot, found = _probe(k, start, mask, table_codes, same_key)
    code = k.var(I32, found)
    with b.if_then(b.icmp_signed("<", found, ir.Constant(I32, 0))):
        new = take_code()
        k.store(first, table_first, slot)
        k.store(second, table_second, slot)
        k.store(new, table_codes, slot)
        code.set(new)
    return code.get()


DAY_US = 86_400_000_000


def _calendar_day(k: Kernel, t: Any) -> Any:
    """floor(t / one day) of a time in microseconds (a constant divisor: no division)."""
    b = k.b
    day = k.const(DAY_US)
    days = b.sdiv(t, day)
    below = b.and_(
        b.icmp_signed("<", t, k.const(0)), b.icmp_signed("!=", b.srem(t, day), k.const(0))
    )
    return b.sub(days, b.zext(below, I64))


def _dense_codes_kernel() -> Kernel:
    """``row_dense_codes(n, hashes, valid, shift, table_keys, table_codes, state, offset,
    codes, firsts) -> 0 or FULL``: each row's code in ``codes``; a new value takes the next
    code (``state[0]``) and its row + ``offset`` goes to ``firsts``; null rows share the code
    in ``state[1]`` (-1: none yet). ``state[2]``: the most codes the table takes."""
    k = Kernel("row_dense_codes", [I64, U64P, I8P, I64, U64P, I32P, U64P, I64, I32P, U64P], I64)
    n, hashes, valid, shift, table_keys, table_codes, state, offset, codes, firsts = k.args
    b = k.b
    mask = b.sub(b.shl(k.const(1), b.sub(k.const(64), shift)), k.const(1))
    following = k.var(I64, k.load(state, k.const(0)))
    null_code = k.var(I64, k.load(state, k.const(1)))
    limit = k.load(state, k.const(2))
    previous = k.var(I64, k.const(0))
    previous_code = k.var(I32, ir.Constant(I32, -1))
    full = k.var(I1, _false(k))

    def take_code(row: Any) -> Any:
        """The next code, its first row recorded (marks the table full at the limit)."""
        new = following.get()
        with b.if_then(b.icmp_signed(">=", new, limit)):
            full.set(_true(k))
        with b.if_then(b.icmp_signed("<", new, limit)):
            k.store(b.add(row, offset), firsts, new)
        following.set(b.add(new, k.const(1)))
        return b.trunc(new, I32)

    with k.loop(k.const(0), n) as i:
        code = k.var(I32, ir.Constant(I32, 0))
        with b.if_else(b.icmp_signed("==", k.load(valid, i), ir.Constant(I8, 0))) as (null, value):
            with null:
                with b.if_then(b.icmp_signed("<", null_code.get(), k.const(0))):
                    null_code.set(b.zext(take_code(i), I64))
                code.set(b.trunc(null_code.get(), I32))
            with value:
                h = k.load(hashes, i)
                repeat = b.and_(
                    b.icmp_signed(">=", previous_code.get(), ir.Constant(I32, 0)),
                    b.icmp_unsigned("==", h, previous.get()),
                )
                with b.if_else(repeat) as (same, other):
                    with same:
                        code.set(previous_code.get())
                    with other:
                        start = b.lshr(b.mul(h, k.const(_MIX)), shift)
                        slot, found = _probe(
                            k,
                            start,
                            mask,
                            table_codes,
                            lambda s: b.icmp_unsigned("==", k.load(table_keys, s), h),
                        )
                        code.set(found)
                        with b.if_then(b.icmp_signed("<", found, ir.Constant(I32, 0))):
                            new = take_code(i)
                            k.store(h, table_keys, slot)
                            k.store(new, table_codes, slot)
                            code.set(new)
                previous.set(h)
                previous_code.set(code.get())
        k.store(code.get(), codes, i)
        with b.if_then(full.get()):
            b.ret(k.const(FULL))
    k.store(following.get(), state, k.const(0))
    k.store(null_code.get(), state, k.const(1))
    b.ret(k.const(0))
    return k


def _short_codes_kernel() -> Kernel:
    """``row_short_codes(n, views, validity, offset, shift, table_w0, table_w1, table_codes,
    state, base, codes, firsts, masks) -> 0, FULL or LONG``: ``row_dense_codes`` for an
    Arrow string-view column whose strings all fit in their view (12 bytes or less), keyed
    exactly by the view's two words (length and bytes, the bytes past the length masked off
    with ``masks``: ``VIEW_MASKS``); LONG when a longer string turns up. ``validity``: the
    Arrow validity bitmap, or 0 for none (``offset``: the array's offset, in views and
    bits)."""
    k = Kernel(
        "row_short_codes",
        [I64, U64P, I8P, I64, I64, U64P, U64P, I32P, U64P, I64, I32P, U64P, U64P],
        I64,
    )
    n, views, validity, offset, shift, table_w0, table_w1, table_codes = k.args[:8]
    state, base, codes, firsts, masks = k.args[8:]
    b = k.b
    zero, one = k.const(0), k.const(1)
    mask = b.sub(b.shl(one, b.sub(k.const(64), shift)), one)
    following = k.var(I64, k.load(state, zero))
    null_code = k.var(I64, k.load(state, one))
    limit = k.load(state, k.const(2))
    # No view has this first word (its length would be 2^32 - 1): the first row is new.
    last0, last1 = k.var(I64, k.const(0xFFFFFFFF)), k.var(I64, zero)
    last_code = k.var(I32, ir.Constant(I32, -1))
    full = k.var(I1, _false(k))

    def take_code(row: Any) -> Any:
        new = following.get()
        with b.if_then(b.icmp_signed(">=", new, limit)):
            full.set(_true(k))
        with b.if_then(b.icmp_signed("<", new, limit)):
            k.store(b.add(row, base), firsts, new)
        following.set(b.add(new, one))
        return b.trunc(new, I32)

    def value_code(i: Any, at: Any) -> Any:
        """The code of row ``i`` (view ``at``), a value."""
        word0 = k.load(views, b.shl(at, one))
        word1 = k.load(views, b.add(b.shl(at, one), one))
        length = b.and_(word0, k.const(0xFFFFFFFF))
        with b.if_then(b.icmp_unsigned(">", length, k.const(12))):
            b.ret(k.const(LONG))
        # Bytes 0-3: the length; 4-7: the first four bytes; 8-15: the next eight.
        w0 = b.and_(word0, k.load(masks, length))
        w1 = b.and_(word1, k.load(masks, b.add(length, k.const(16))))
        code = k.var(I32, last_code.get())
        repeat = b.and_(
            b.icmp_unsigned("==", w0, last0.get()), b.icmp_unsigned("==", w1, last1.get())
        )
        with b.if_then(b.not_(repeat)):
            tables = (table_w0, table_w1, table_codes)
            code.set(_code_of_pair(k, (w0, w1), tables, shift, mask, lambda: take_code(i)))
            last0.set(w0)
            last1.set(w1)
            last_code.set(code.get())
        return code.get()

    def rows(checked: bool) -> None:
        """The pass over the rows, reading the validity bitmap or not (two loops)."""
        with k.loop(zero, n) as i:
            at = b.add(i, offset)
            if not checked:
                k.store(value_code(i, at), codes, i)
            else:
                byte = k.load(validity, b.lshr(at, k.const(3)))
                bit = b.trunc(b.and_(at, k.const(7)), I8)
                code = k.var(I32, ir.Constant(I32, 0))
                with b.if_else(b.trunc(b.lshr(byte, bit), I1)) as (value, null):
                    with value:
                        code.set(value_code(i, at))
                    with null:
                        with b.if_then(b.icmp_signed("<", null_code.get(), zero)):
                            null_code.set(b.zext(take_code(i), I64))
                        code.set(b.trunc(null_code.get(), I32))
                k.store(code.get(), codes, i)
            with b.if_then(full.get()):
                b.ret(k.const(FULL))

    has_validity = b.icmp_unsigned("!=", b.ptrtoint(validity, I64), zero)
    with b.if_else(has_validity) as (checked, unchecked):
        with checked:
            rows(True)
        with unchecked:
            rows(False)
    k.store(following.get(), state, zero)
    k.store(null_code.get(), state, one)
    b.ret(zero)
    return k


# The bits of a string view's two words that ``row_short_codes`` keys on, by the string's
# length: [0:16] the first word (the length itself and up to four bytes), [16:32] the second
# (the next eight bytes).
VIEW_MASKS = np.array(
    [(1 << 8 * min(4 + length, 8)) - 1 for length in range(16)]
    + [(1 << 8 * min(max(length - 4, 0), 8)) - 1 for length in range(16)],
    dtype=np.uint64,
)


def _trip_codes_kernel() -> Kernel:
    """``row_trip_codes(n, truck, truck_valid, declaration, at, crossing, trip_valid,
    shift, table_ab, table_c, table_codes, limit, trips, firsts) -> count or FULL``: the trip
    of each row, keyed by (truck code, else declaration code; crossing code; 2 * the calendar
    day of ``at`` (microseconds) + has truck), all exact; rows without a trip
    (``trip_valid`` 0) share one code. A table takes at most ``limit`` trips."""
    k = Kernel(
        "row_trip_codes",
        [I64, I32P, I8P, I32P, U64P, I32P, I8P, I64, U64P, U64P, I32P, I64, I32P, U64P],
        I64,
    )
    (
        n, truck, truck_valid, declaration, at, crossing, trip_valid,
        shift, table_ab, table_c, table_codes, limit, trips, firsts,
    ) = k.args  # fmt: skip
    b = k.b
    zero, one = k.const(0), k.const(1)
    mask = b.sub(b.shl(one, b.sub(k.const(64), shift)), one)
    following = k.var(I64, zero)
    null_code = k.var(I64, k.const(-1))
    last_ab, last_c = k.var(I64, zero), k.var(I64, zero)
    last_code = k.var(I32, ir.Constant(I32, -1))
    full = k.var(I1, _false(k))

    def take_code(row: Any) -> Any:
        new = following.get()
        with b.if_then(b.icmp_signed(">=", new, limit)):
            full.set(_true(k))
        with b.if_then(b.icmp_signed("<", new, limit)):
            k.store(row, firsts, new)
        following.set(b.add(new, one))
        return b.trunc(new, I32)

    with k.loop(zero, n) as i:
        code = k.var(I32, ir.Constant(I32, 0))
        no_trip = b.icmp_signed("==", k.load(trip_valid, i), ir.Constant(I8, 0))
        with b.if_else(no_trip) as (none, trip):
            with none:
                with b.if_then(b.icmp_signed("<", null_code.get(), zero)):
                    null_code.set(b.zext(take_code(i), I64))
                code.set(b.trunc(null_code.get(), I32))
            with trip:
                has_truck = b.icmp_signed("!=", k.load(truck_valid, i), ir.Constant(I8, 0))
                a = b.select(has_truck, k.load(truck, i), k.load(declaration, i))
                ab = b.or_(b.shl(b.zext(a, I64), k.const(32)), b.zext(k.load(crossing, i), I64))
                days = _calendar_day(k, k.load(at, i))
                c = b.add(b.shl(days, one), b.zext(has_truck, I64))
                repeat = b.and_(
                    b.icmp_signed(">=", last_code.get(), ir.Constant(I32, 0)),
                    b.and_(
                        b.icmp_unsigned("==", ab, last_ab.get()),
                        b.icmp_unsigned("==", c, last_c.get()),
                    ),
                )
                with b.if_else(repeat) as (same, other):
                    with same:
                        code.set(last_code.get())
                    with other:
                        tables = (table_ab, table_c, table_codes)
                        code.set(
                            _code_of_pair(k, (ab, c), tables, shift, mask, lambda: take_code(i))
                        )
                last_ab.set(ab)
                last_c.set(c)
                last_code.set(code.get())
        k.store(code.get(), trips, i)
        with b.if_then(full.get()):
            b.ret(k.const(FULL))
    b.ret(following.get())
    return k


def _trip_totals_kernel() -> Kernel:
    """``row_trip_totals``: see ``trip_totals``, whose arguments it takes in order."""
    args = [
        I64, I32P, I64, I32P, I64, I32P, I64, I32P, I64,  # n; trips, declarations, importers ..
        F64P, I8P, F64P, I8P,  # value and its validity, gross mass and its validity
        U64P, U64P, U64P, F64P, F64P, U64P, U64P, U64P,  # scratch per trip: starts, cursor, ..
        I32P, I32P, I32P, U64P, F64P,  # scratch: marks per declaration, importer, chapter; ..
        U64P, U64P, F64P, U64P, U64P, U64P, U64P, F64P,  # per row: order, out ...
    ]  # fmt: skip
    k = Kernel("row_trip_totals", args)
    (
        n, trips, nt, declarations, nd, importers, ni, chapters, nc,
        value, value_valid, gross, gross_valid,
        starts, cursor, items, value_sum, gross_sum, n_declarations, n_importers, n_chapters,
        mark_d, mark_i, mark_c, d_items, d_value,
        order, o_d_items, o_d_value, o_t_decl, o_t_items, o_t_imp, o_t_chap, o_t_value,
    ) = k.args  # fmt: skip
    b = k.b
    zero, one = k.const(0), k.const(1)
    fzero = ir.Constant(F64, 0.0)
    minus = ir.Constant(I32, -1)

    add_to = k.add_to

    with k.loop(zero, b.add(nt, one)) as t:
        k.store(zero, starts, t)
    with k.loop(zero, nt) as t:
        k.store(fzero, value_sum, t)
        k.store(fzero, gross_sum, t)
    with k.loop(zero, nd) as d:
        k.store(zero, d_items, d)
        k.store(fzero, d_value, d)
        k.store(minus, mark_d, d)
    with k.loop(zero, ni) as j:
        k.store(minus, mark_i, j)
    with k.loop(zero, nc) as j:
        k.store(minus, mark_c, j)
    # Counts and sums, in row order.
    with k.loop(zero, n) as i:
        t = b.sext(k.load(trips, i), I64)
        d = b.sext(k.load(declarations, i), I64)
        add_to(starts, b.add(t, one), one)
        add_to(d_items, d, one)
        with b.if_then(b.icmp_signed("!=", k.load(value_valid, i), ir.Constant(I8, 0))):
            v = k.load(value, i)
            add_to(value_sum, t, v)
            add_to(d_value, d, v)
        with b.if_then(b.icmp_signed("!=", k.load(gross_valid, i), ir.Constant(I8, 0))):
            add_to(gross_sum, t, k.load(gross, i))
    # Rows grouped by trip (a stable counting sort), then the distinct values of each trip.
    with k.loop(zero, nt) as t:
        following = b.add(t, one)
        k.store(b.add(k.load(starts, following), k.load(starts, t)), starts, following)
        k.store(k.load(starts, t), cursor, t)
    with k.loop(zero, n) as i:
        t = b.sext(k.load(trips, i), I64)
        place = k.load(cursor, t)
        k.store(i, order, place)
        k.store(b.add(place, one), cursor, t)
    with k.loop(zero, nt) as t:
        t32 = b.trunc(t, I32)
        counts = [k.var(I64, zero) for _ in range(3)]
        with k.loop(k.load(starts, t), k.load(starts, b.add(t, one))) as j:
            row = k.load(order, j)
            for count, codes, marks in zip(
                counts, (declarations, importers, chapters), (mark_d, mark_i, mark_c), strict=True
            ):
                code = b.sext(k.load(codes, row), I64)
                with b.if_then(b.icmp_signed("!=", k.load(marks, code), t32)):
                    k.store(t32, marks, code)
                    count.set(b.add(count.get(), one))
        k.store(b.sub(k.load(starts, b.add(t, one)), k.load(starts, t)), items, t)
        k.store(counts[0].get(), n_declarations, t)
        k.store(counts[1].get(), n_importers, t)
        k.store(counts[2].get(), n_chapters, t)
    # Every row its totals.
    with k.loop(zero, n) as i:
        t = b.sext(k.load(trips, i), I64)
        d = b.sext(k.load(declarations, i), I64)
        k.store(k.load(d_items, d), o_d_items, i)
        k.store(k.load(d_value, d), o_d_value, i)
        k.store(k.load(n_declarations, t), o_t_decl, i)
        k.store(k.load(items, t), o_t_items, i)
        k.store(k.load(n_importers, t), o_t_imp, i)
        k.store(k.load(n_chapters, t), o_t_chap, i)
        k.store(k.load(value_sum, t), o_t_value, i)
    return k


def _nearest_readings_kernel() -> Kernel:
    """``row_nearest_readings``: see ``nearest_readings``, whose arguments it takes in order."""
    args = [
        I64, U64P, U64P, F64P,  # readings (in time order): count, keys, times, weights
        I64, U64P, I32P, U64P, U64P, I32P,  # table: shift, keys, codes; group starts, order, group
        I64, U64P, I8P, I32P,  # keys: count, keys, has key; scratch: group of each key
        I64, I32P, U64P, I32P, F64P, I64,  # rows: n, key index, at, trip; trip gross, tolerance
        F64P, I8P,  # out: gap ratio and its validity
    ]  # fmt: skip
    k = Kernel("row_nearest_readings", args, I64)
    (
        m, r_keys, r_times, r_weights,
        shift, table_keys, table_codes, starts, order, group,
        nk, keys, key_valid, group_of_key,
        n, key_of_row, at, trip_of_row, trip_gross, tolerance,
        out, out_valid,
    ) = k.args  # fmt: skip
    b = k.b
    zero, one = k.const(0), k.const(1)
    mask = b.sub(b.shl(one, b.sub(k.const(64), shift)), one)
    groups = k.var(I64, zero)

    def lookup(key: Any) -> tuple[Any, Any]:
        start = b.lshr(b.mul(key, k.const(_MIX)), shift)
        return _probe(
            k, start, mask, table_codes, lambda s: b.icmp_unsigned("==", k.load(table_keys, s), key)
        )

    # Each reading's key group, counted; then readings grouped by key, in time order.
    with k.loop(zero, m) as r:
        key = k.load(r_keys, r)
        slot, found = lookup(key)
        code = k.var(I32, found)
        with b.if_then(b.icmp_signed("<", found, ir.Constant(I32, 0))):
            new = b.trunc(groups.get(), I32)
            k.store(key, table_keys, slot)
            k.store(new, table_codes, slot)
            k.store(zero, starts, b.add(groups.get(), one))
            groups.set(b.add(groups.get(), one))
            code.set(new)
        k.store(code.get(), group, r)
        g = b.add(b.sext(code.get(), I64), one)
        k.store(b.add(k.load(starts, g), one), starts, g)
    k.store(zero, starts, zero)
    with k.loop(zero, groups.get()) as g:
        following = b.add(g, one)
        k.store(b.add(k.load(starts, following), k.load(starts, g)), starts, following)
    with k.loop(zero, m) as r:  # starts[g] serves as group g's cursor ...
        g = b.sext(k.load(group, r), I64)
        place = k.load(starts, g)
        k.store(r, order, place)
        k.store(b.add(place, one), starts, g)
    with k.loop(groups.get(), zero, step=-1) as g:  # ... and ends as its end: moved up one
        k.store(k.load(starts, b.sub(g, one)), starts, g)
    k.store(zero, starts, zero)
    # The group of each key (-1: no key, or no reading of it).
    with k.loop(zero, nk) as j:
        k.store(ir.Constant(I32, -1), group_of_key, j)
        with b.if_then(b.icmp_signed("!=", k.load(key_valid, j), ir.Constant(I8, 0))):
            _, code = lookup(k.load(keys, j))
            k.store(code, group_of_key, j)
    matched = k.var(I64, zero)
    last_group = k.var(I64, k.const(-1))
    last_at = k.var(I64, zero)
    best = k.var(I64, k.const(-1))  # the reading chosen for (last_group, last_at), -1: none
    with k.loop(zero, n) as i:
        k.store(ir.Constant(I8, 0), out_valid, i)
        k.store(ir.Constant(F64, 0.0), out, i)
        g = b.sext(k.load(group_of_key, b.sext(k.load(key_of_row, i), I64)), I64)
        x = k.load(at, i)
        with b.if_then(b.icmp_signed(">=", g, zero)):
            again = b.and_(
                b.icmp_signed("==", g, last_group.get()), b.icmp_signed("==", x, last_at.get())
            )
            with b.if_then(b.not_(again)):
                last_group.set(g)
                last_at.set(x)
                best.set(k.const(-1))
                low = k.load(starts, g)
                high = k.load(starts, b.add(g, one))
                # The first reading of the group later than x (binary search).
                lo, hi = k.var(I64, low), k.var(I64, high)
                with k.while_(lambda: b.icmp_signed("<", lo.get(), hi.get())):
                    mid = b.lshr(b.add(lo.get(), hi.get()), one)
                    later = b.icmp_signed(">", k.load(r_times, k.load(order, mid)), x)
                    with b.if_else(later) as (yes, no):
                        with yes:
                            hi.set(mid)
                        with no:
                            lo.set(b.add(mid, one))
                after = lo.get()
                distance = k.var(I64, zero)
                with b.if_then(b.icmp_signed(">", after, low)):
                    best.set(b.sub(after, one))
                    distance.set(b.sub(x, k.load(r_times, k.load(order, best.get()))))
                with b.if_then(b.icmp_signed("<", after, high)):
                    later_time = k.load(r_times, k.load(order, after))
                    gap = b.sub(later_time, x)
                    nearer = b.or_(
                        b.icmp_signed("<", best.get(), zero),
                        b.icmp_signed("<=", gap, distance.get()),
                    )
                    with b.if_then(nearer):
                        # The last of the readings at that time.
                        last = k.var(I64, after)
                        with k.while_(
                            lambda: b.and_(
                                b.icmp_signed("<", b.add(last.get(), one), high),
                                b.icmp_signed(
                                    "==",
                                    k.load(r_times, k.load(order, b.add(last.get(), one))),
                                    later_time,
                                ),
                            )
                        ):
                            last.set(b.add(last.get(), one))
                        best.set(last.get())
                        distance.set(gap)
                far = b.icmp_signed(">", distance.get(), tolerance)
                with b.if_then(far):
                    best.set(k.const(-1))
            with b.if_then(b.icmp_signed(">=", best.get(), zero)):
                weight = k.load(r_weights, k.load(order, best.get()))
                total = k.load(trip_gross, b.sext(k.load(trip_of_row, i), I64))
                with b.if_then(b.fcmp_ordered(">", total, ir.Constant(F64, 0.0))):
                    k.store(b.fdiv(b.fsub(weight, total), total), out, i)
                    k.store(ir.Constant(I8, 1), out_valid, i)
                matched.set(b.add(matched.get(), one))
    b.ret(matched.get())
    return k


def _row_signals_kernel() -> Kernel:
    """``row_local_signals``: see ``local_signals``, whose arguments it takes in order."""
    args = [
        I64, F64P, F64P, I64, F64,  # n; thresholds, their reciprocals, their count, margin
        F64P, I8P, F64P,  # item value and its validity, declaration value
        F64P, I8P, F64P, I8P, F64P, I8P,  # invoice, net and gross mass, with validity
        U64P, I32P, I8P,  # declared at (microseconds); registered on, validity
        U64P, I8P, U64P, I8P,  # importer declarations in 1 and 30 days, validity
        F64P, I8P, I8P, F64P, I8P, I8P, I8P,  # out: gaps and their flags; roundness
        F64P, I8P, F64P, I8P, F64P, I8P,  # out: gross/net, importer age, burst ratio
    ]  # fmt: skip
    k = Kernel("row_local_signals", args)
    (
        n, thresholds, reciprocals, nt, margin,
        value, value_valid, declared,
        invoice, invoice_valid, net, net_valid, gross, gross_valid,
        at, registered, registered_valid,
        d1, d1_valid, d30, d30_valid,
        o_gap, o_gap_valid, o_flag, o_dgap, o_dgap_valid, o_dflag, o_round,
        o_ratio, o_ratio_valid, o_age, o_age_valid, o_burst, o_burst_valid,
    ) = k.args  # fmt: skip
    b = k.b
    zero, one = k.const(0), k.const(1)
    fzero = ir.Constant(F64, 0.0)
    no = ir.Constant(I8, 0)
    floor = k.module.declare_intrinsic("llvm.floor", [F64])

    def given(validity: Any, i: Any) -> Any:
        return b.icmp_signed("!=", k.load(validity, i), no)

    def gap(amount: Any, has: Any, out: Any, out_valid: Any, flag: Any, i: Any) -> None:
        """The smallest (T - v) / T over thresholds T above v (null: none), and its flag;
        without branches (which way a value falls is a coin toss)."""
        best = k.var(F64, fzero)
        found = k.var(I1, _false(k))
        for place in range(MAX_THRESHOLDS):  # unrolled; unused places hold NaN
            j = k.const(place)
            limit = k.load(thresholds, j)
            below = b.and_(has, b.fcmp_ordered("<", amount, limit))
            # Polars divides by a constant as a product with its reciprocal.
            candidate = b.fmul(b.fsub(limit, amount), k.load(reciprocals, j))
            better = b.and_(
                below, b.or_(b.not_(found.get()), b.fcmp_ordered("<", candidate, best.get()))
            )
            best.set(b.select(better, candidate, best.get()))
            found.set(b.or_(found.get(), below))
        k.store(best.get(), out, i)
        k.store(b.zext(found.get(), I8), out_valid, i)
        close = b.and_(found.get(), b.fcmp_ordered("<=", best.get(), margin))
        k.store(b.zext(close, I8), flag, i)

    with k.loop(zero, n) as i:
        amount = k.load(value, i)
        gap(amount, given(value_valid, i), o_gap, o_gap_valid, o_flag, i)
        gap(k.load(declared, i), _true(k), o_dgap, o_dgap_valid, o_dflag, i)
        # Trailing zeros of a whole positive invoice amount (up to six).
        figure = k.load(invoice, i)
        zeros = k.var(I8, no)
        whole = b.and_(
            given(invoice_valid, i),
            b.and_(
                b.fcmp_ordered("==", figure, b.call(floor, [figure])),
                b.fcmp_ordered(">", figure, fzero),
            ),
        )
        with b.if_then(whole):
            # As Polars takes a float modulo: x - m * floor(x * (1 / m)).
            for power in range(1, 7):
                modulus = ir.Constant(F64, float(10**power))
                share = b.fmul(figure, ir.Constant(F64, 1.0 / 10**power))
                rest = b.fsub(figure, b.fmul(modulus, b.call(floor, [share])))
                divides = b.fcmp_ordered("==", rest, fzero)
                zeros.set(b.add(zeros.get(), b.zext(divides, I8)))
        k.store(zeros.get(), o_round, i)
        # Gross over net mass where the net mass is above zero.
        mass = k.load(net, i)
        ratio = b.and_(
            b.and_(given(net_valid, i), given(gross_valid, i)),
            b.fcmp_ordered(">", mass, fzero),
        )
        k.store(b.fdiv(k.load(gross, i), mass), o_ratio, i)
        k.store(b.zext(ratio, I8), o_ratio_valid, i)
        # Days from the importer's registration to the declaration's calendar day.
        age = b.sub(_calendar_day(k, k.load(at, i)), b.sext(k.load(registered, i), I64))
        k.store(b.sitofp(age, F64), o_age, i)
        k.store(k.load(registered_valid, i), o_age_valid, i)
        # Declarations of the last day against the daily mean of the last 30.
        mean = b.fmul(b.sitofp(b.add(k.load(d30, i), one), F64), ir.Constant(F64, 1.0 / 30.0))
        k.store(b.fdiv(b.sitofp(k.load(d1, i), F64), mean), o_burst, i)
        k.store(b.and_(k.load(d1_valid, i), k.load(d30_valid, i)), o_burst_valid, i)
    return k


def _lookup_kernel() -> Kernel:
    """``row_lookup(n, codes, table, table_valid, out, out_valid)``: each row's entry of a
    table indexed by its code (an int32 value and whether it is there)."""
    k = Kernel("row_lookup", [I64, I32P, I32P, I8P, I32P, I8P])
    n, codes, table, table_valid, out, out_valid = k.args
    with k.loop(k.const(0), n) as i:
        code = k.b.sext(k.load(codes, i), I64)
        k.store(k.load(table, code), out, i)
        k.store(k.load(table_valid, code), out_valid, i)
    return k


def _route_flags_kernel() -> Kernel:
    """``row_route_flags``: see ``route_flags``, whose arguments it takes in order."""
    args = [I64, I32P, I32P, I8P, I8P, I8P, I8P, I8P, I8P, I8P, I8P]
    k = Kernel("row_route_flags", args)
    n, origin, dispatch, missing, cn, kz, eaeu, differs, differs_valid, cn_kz, from_eaeu = k.args
    b = k.b
    no = ir.Constant(I8, 0)
    with k.loop(k.const(0), n) as i:
        o = b.sext(k.load(origin, i), I64)
        d = b.sext(k.load(dispatch, i), I64)
        o_there = b.icmp_signed("==", k.load(missing, o), no)
        d_there = b.icmp_signed("==", k.load(missing, d), no)
        other = b.icmp_signed("!=", o, d)
        # dispatch present and != origin; null when only the origin is missing.
        k.store(b.zext(b.and_(d_there, other), I8), differs, i)
        k.store(b.zext(b.or_(b.not_(d_there), o_there), I8), differs_valid, i)
        both = b.and_(
            b.icmp_signed("!=", k.load(cn, o), no), b.icmp_signed("!=", k.load(kz, d), no)
        )
        k.store(b.zext(both, I8), cn_kz, i)
        member = b.icmp_signed("!=", k.load(eaeu, d), no)
        k.store(b.zext(b.and_(member, b.and_(o_there, other)), I8), from_eaeu, i)
    return k


# Each kernel's name, builder, ctypes argument types and return type.
_SIGNATURES: list[tuple[str, Callable[[], Kernel], list[Any], Any]] = [
    ("row_dense_codes", _dense_codes_kernel, [L, P, P, L, P, P, P, L, P, P], L),
    ("row_trip_codes", _trip_codes_kernel, [L, P, P, P, P, P, P, L, P, P, P, L, P, P], L),
    ("row_trip_totals", _trip_totals_kernel, [L, P, L, P, L, P, L, P, L, *[P] * 25], None),
    (
        "row_nearest_readings",
        _nearest_readings_kernel,
        [L, P, P, P, L, *[P] * 5, L, P, P, P, L, *[P] * 4, L, P, P],
        L,
    ),
    ("row_short_codes", _short_codes_kernel, [L, P, P, L, L, P, P, P, P, L, P, P, P], L),
    ("row_lookup", _lookup_kernel, [L, P, P, P, P, P], None),
    ("row_route_flags", _route_flags_kernel, [L, *[P] * 10], None),
    ("row_local_signals", _row_signals_kernel, [L, P, P, L, ctypes.c_double, *[P] * 29], None),
]


def _kernels() -> dict[str, Callable[..., Any]]:
    """The kernels, compiled together on first use (once per process). Their IR is a
    function of this module's and ``risk.native``'s source, which key its cache on disk."""
    with _LOCK:
        if not _KERNELS:
            source = hashlib.sha256()
            for module in (__file__, native.__file__):
                source.update(Path(module).read_bytes())
            signatures = [(name, argtypes, restype) for name, _, argtypes, restype in _SIGNATURES]
            functions = compile_built(
                f"features.row_kernels {source.hexdigest()}",
                signatures,
                lambda: [builder() for _, builder, _, _ in _SIGNATURES],
            )
            _KERNELS.update(
                {name: f for (name, _, _), f in zip(signatures, functions, strict=True)}
            )
        return _KERNELS


room = native.room  # (the name other modules of features know it by)


def _shift(capacity: int) -> int:
    """The shift of a table of at least twice ``capacity`` slots (a power of two)."""
    bits = max(4, int(capacity * 2 - 1).bit_length())
    return 64 - bits


def _free_table(shift: int) -> tuple[np.ndarray, np.ndarray]:
    size = 1 << (64 - shift)
    return room(size, np.uint64), room(size, np.int32, -1)


def _hashes(series: pl.Series) -> np.ndarray:
    """64-bit hashes of a column's values (equal values, equal hashes), C-contiguous."""
    return np.ascontiguousarray(series.hash().to_numpy())


def present(series: pl.Series) -> np.ndarray:
    """1 where a column has a value, 0 where it is null (int8)."""
    if series.null_count() == 0:
        return room(series.len(), np.int8, 1)
    return series.is_not_null().to_numpy().view(np.int8)


@dataclass(frozen=True)
class Codes:
    """Dense codes of one or more columns in one numbering (``dense_codes``): ``codes[j]``
    the code of each row of column j; ``values`` the value of each code."""

    codes: list[np.ndarray]
    values: pl.Series

    @property
    def count(self) -> int:
        return self.values.len()


def dense_codes(columns: Sequence[pl.Series], *, guess: int | None = None) -> Codes:
    """Numbers the distinct values of ``columns`` (one numbering for all, null a value of its
    own), 0, 1, ... in order of first appearance (column by column). Exact: a hash collision
    between two values is caught and numbered with Polars instead."""
    n = columns[0].len() if columns else 0
    short = _short_codes(columns, guess or n // 16)
    if short is not None:
        return short
    hashes = [_hashes(column) for column in columns]
    valid = [present(column) for column in columns]
    dense = _kernels()["row_dense_codes"]
    capacity = max(guess or n // 16, 8)
    while True:
        shift = _shift(capacity)
        table_keys, table_codes = _free_table(shift)
        state = np.array([0, -1, capacity], dtype=np.int64)
        firsts = room(capacity, np.int64)
        codes = [room(n, np.int32) for _ in columns]
        for j, (h, v, out) in enumerate(zip(hashes, valid, codes, strict=True)):
            status = dense(
                n, pointer(h), pointer(v), shift, pointer(table_keys), pointer(table_codes),
                pointer(state), j * n, pointer(out), pointer(firsts),
            )  # fmt: skip
            if status == FULL:
                break
        else:
            break
        capacity *= 8
    count = int(state[0])
    where = firsts[:count]
    values = _values_at(columns, where // max(n, 1), where % max(n, 1))
    checked = all(
        bool(values.gather(code).eq_missing(column).all())
        for code, column in zip(codes, columns, strict=True)
    )
    return Codes(codes, values) if checked else exact_codes(columns)


def _short_codes(columns: Sequence[pl.Series], guess: int) -> Codes | None:
    """``dense_codes`` of text columns whose strings all fit in their Arrow views (codes
    keyed by the views themselves: exact, nothing to check); None for other columns."""
    if not all(column.dtype == pl.String for column in columns):
        return None
    n = columns[0].len()
    arrays = [column.to_arrow(compat_level=pl.CompatLevel.newest()) for column in columns]
    if not all(isinstance(array, pa.StringViewArray) for array in arrays):
        return None
    kernel = _kernels()["row_short_codes"]
    capacity = max(guess, 8)
    while True:
        shift = _shift(capacity)
        size = 1 << (64 - shift)
        table_w0, table_w1 = room(size, np.uint64), room(size, np.uint64)
        table_codes = room(size, np.int32, -1)
        state = np.array([0, -1, capacity], dtype=np.int64)
        firsts = room(capacity, np.int64)
        codes = [room(n, np.int32) for _ in columns]
        for j, (array, out) in enumerate(zip(arrays, codes, strict=True)):
            validity, views = array.buffers()[:2]
            status = kernel(
                n, views.address, 0 if validity is None else validity.address, array.offset,
                shift, pointer(table_w0), pointer(table_w1), pointer(table_codes),
                pointer(state), j * n, pointer(out), pointer(firsts), pointer(VIEW_MASKS),
            )  # fmt: skip
            if status == LONG:
                return None
            if status == FULL:
                break
        else:
            break
        capacity *= 8
    where = firsts[: int(state[0])]
    return Codes(codes, _values_at(columns, where // max(n, 1), where % max(n, 1)))


def _values_at(columns: Sequence[pl.Series], column: np.ndarray, row: np.ndarray) -> pl.Series:
    """The values at (column, row) pairs, in order."""
    if len(columns) == 1:
        return columns[0].gather(row)
    parts = pl.concat(
        [
            columns[j]
            .gather(row[column == j])
            .to_frame("v")
            .with_columns(pl.Series("at", np.flatnonzero(column == j)))
            for j in range(len(columns))
        ]
    )
    return parts.sort("at").get_column("v").rename(columns[0].name)


def exact_codes(columns: Sequence[pl.Series]) -> Codes:
    """``dense_codes`` computed with Polars alone (after a hash collision)."""
    n = columns[0].len()
    values = pl.concat([column.rename("v") for column in columns]).to_frame()
    numbered = (
        values.with_row_index("at")
        .group_by("v", maintain_order=True)
        .agg(pl.col("at").first())
        .with_row_index("code")
    )
    codes = (
        values.join(numbered, on="v", how="left", nulls_equal=True, maintain_order="left")
        .get_column("code")
        .cast(pl.Int32)
        .to_numpy()
    )
    return Codes(
        [np.ascontiguousarray(codes[j * n : (j + 1) * n]) for j in range(len(columns))],
        numbered.get_column("v").rename(columns[0].name),
    )


@dataclass(frozen=True)
class Trips:
    """Trip codes (``trip_codes``): ``codes`` each row's trip (0, 1, ... in order of first
    appearance), ``firsts`` each trip's first row."""

    codes: np.ndarray
    firsts: np.ndarray

    @property
    def count(self) -> int:
        return int(self.firsts.size)


def microseconds(times: pl.Series) -> np.ndarray:
    """A naive datetime column as int64 microseconds (floored; 0 where null), the unit the
    kernels count calendar days in."""
    dtype = times.dtype
    assert isinstance(dtype, pl.Datetime) and dtype.time_zone is None
    physical = times.to_physical().fill_null(0).to_numpy()
    if dtype.time_unit == "ms":
        physical = physical * 1000
    elif dtype.time_unit == "ns":
        physical = np.floor_divide(physical, 1000)
    return np.ascontiguousarray(physical, dtype=np.int64)


def trip_codes(
    truck: Codes,
    has_truck: np.ndarray,
    declaration: np.ndarray,
    has_declaration: np.ndarray,
    crossing: Codes,
    declared_at: pl.Series,
) -> Trips:
    """The trip of each row: its truck (else its declaration), crossing and calendar day of
    the naive ``declared_at``. ``truck``/``crossing``: ``dense_codes`` of those columns,
    ``declaration``: an exact code of each row's declaration (int32); ``has_*``: 1 where the
    row has one (int8). A row lacking a crossing, a time, or both truck and declaration has
    no trip text: all such rows make one trip, as one null key does in a group-by."""
    n = declared_at.len()
    at = microseconds(declared_at)
    crossing_codes = crossing.codes[0]
    if not (crossing.values.null_count() or declared_at.null_count()) and has_declaration.all():
        valid = has_declaration  # every row has a trip text
    else:
        valid = (
            ~crossing.values.is_null().to_numpy()[crossing_codes]
            & present(declared_at).view(np.bool_)
            & (has_truck | has_declaration).view(np.bool_)
        ).view(np.int8)
    declaration = np.ascontiguousarray(declaration, dtype=np.int32)
    function = _kernels()["row_trip_codes"]
    capacity = max(1024, n // 4)
    while True:
        shift = _shift(capacity)
        size = 1 << (64 - shift)
        table_ab, table_c = room(size, np.uint64), room(size, np.uint64)
        table_codes = room(size, np.int32, -1)
        codes = room(n, np.int32)
        firsts = room(capacity, np.int64)
        count = function(
            n, pointer(truck.codes[0]), pointer(has_truck), pointer(declaration), pointer(at),
            pointer(crossing_codes), pointer(valid), shift,
            pointer(table_ab), pointer(table_c), pointer(table_codes), capacity, pointer(codes),
            pointer(firsts),
        )  # fmt: skip
        if count != FULL:
            return Trips(codes, firsts[:count].copy())
        capacity *= 4


@dataclass(frozen=True)
class TripTotals:
    """Per row: its declaration's items and value, its trip's items, distinct declarations,
    importers and chapters and value; per trip (``trip_gross``): gross mass."""

    declaration_items: np.ndarray
    declaration_value: np.ndarray
    trip_declarations: np.ndarray
    trip_items: np.ndarray
    trip_importers: np.ndarray
    trip_chapters: np.ndarray
    trip_value: np.ndarray
    trip_gross: np.ndarray


def trip_totals(
    trips: Trips,
    declaration: np.ndarray,
    declarations: int,
    importer: Codes,
    chapter: Codes,
    value: pl.Series,
    gross: pl.Series,
) -> TripTotals:
    """Totals per trip and per declaration handed to every row (``TripTotals``); sums skip
    nulls and run in row order. ``declaration``: codes 0 .. ``declarations`` - 1."""
    n = trips.codes.size
    nt = trips.count
    # Every array a kernel reads is held by a name for the whole call.
    declaration = np.ascontiguousarray(declaration, dtype=np.int32)
    values = np.ascontiguousarray(value.fill_null(0.0).to_numpy(), dtype=np.float64)
    masses = np.ascontiguousarray(gross.fill_null(0.0).to_numpy(), dtype=np.float64)
    value_valid, gross_valid = present(value), present(gross)
    per_trip = [room(nt + 1, np.int64), room(nt, np.int64)]
    per_trip += [room(nt, np.int64)]
    per_trip += [room(nt, np.float64) for _ in range(2)]
    per_trip += [room(nt, np.int64) for _ in range(3)]
    marks = [room(max(count, 1), np.int32) for count in
             (declarations, importer.count, chapter.count)]  # fmt: skip
    per_declaration = [room(declarations, np.int64), room(declarations, np.float64)]
    order = room(n, np.int64)
    out = TripTotals(
        declaration_items=room(n, np.int64),
        declaration_value=room(n, np.float64),
        trip_declarations=room(n, np.int64),
        trip_items=room(n, np.int64),
        trip_importers=room(n, np.int64),
        trip_chapters=room(n, np.int64),
        trip_value=room(n, np.float64),
        trip_gross=per_trip[4],
    )
    _kernels()["row_trip_totals"](
        n, pointer(trips.codes), nt,
        pointer(declaration), declarations,
        pointer(importer.codes[0]), importer.count, pointer(chapter.codes[0]), chapter.count,
        pointer(values), pointer(value_valid), pointer(masses), pointer(gross_valid),
        *(pointer(a) for a in per_trip), *(pointer(a) for a in marks),
        *(pointer(a) for a in per_declaration), pointer(order),
        *(pointer(getattr(out, name)) for name in list(TripTotals.__dataclass_fields__)[:-1]),
    )  # fmt: skip
    return out


def nearest_readings(
    readings: pl.DataFrame,
    keys: np.ndarray,
    has_key: np.ndarray,
    key_of_row: np.ndarray,
    at: np.ndarray,
    trips: Trips,
    trip_gross: np.ndarray,
    tolerance: int,
) -> pl.Series:
    """``(reading - gross) / gross`` per row, the reading nearest ``at`` (within
    ``tolerance``, the later on a tie) among ``readings`` of the row's key, ``gross`` its
    trip's gross mass; null without one, or where ``gross`` is not above 0. ``readings``:
    ``key`` (UInt64), ``at`` and ``weighbridge_kg`` in time order; ``keys``/``has_key`` the
    keys, ``key_of_row`` each row's index into them; ``at`` in the readings' unit."""
    m = readings.height
    n = key_of_row.size
    key_of_row = np.ascontiguousarray(key_of_row, dtype=np.int32)
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    trip_gross = np.ascontiguousarray(trip_gross, dtype=np.float64)
    r_keys = np.ascontiguousarray(readings.get_column("key").to_numpy())
    r_times = np.ascontiguousarray(readings.get_column("at").to_physical().to_numpy())
    r_weights = np.ascontiguousarray(readings.get_column("weighbridge_kg").to_numpy())
    shift = _shift(max(m, 8))
    table_keys, table_codes = _free_table(shift)
    starts = room(m + 2, np.int64)
    order = room(max(m, 1), np.int64)
    group = room(max(m, 1), np.int32)
    group_of_key = room(max(keys.size, 1), np.int32)
    ratio = room(n, np.float64)
    valid = room(n, np.int8)
    _kernels()["row_nearest_readings"](
        m, pointer(r_keys), pointer(r_times), pointer(r_weights),
        shift, pointer(table_keys), pointer(table_codes), pointer(starts), pointer(order),
        pointer(group), keys.size, pointer(keys), pointer(has_key), pointer(group_of_key),
        n, pointer(key_of_row), pointer(at), pointer(trips.codes), pointer(trip_gross),
        tolerance, pointer(ratio), pointer(valid),
    )  # fmt: skip
    return with_nulls(ratio, valid)


def with_nulls(values: np.ndarray, valid: np.ndarray) -> pl.Series:
    """A Series of ``values``, null where ``valid`` (0/1 or bool) is 0: the values and a
    validity bitmap handed to Arrow as they are."""
    valid = np.ascontiguousarray(valid).view(np.bool_)
    if valid.all():
        return pl.Series(values)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    array = pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), values.size, [bitmap, pa.py_buffer(values)]
    )
    return pl.Series(pl.from_arrow(array))


def local_signals(
    items: pl.DataFrame, declaration_value: np.ndarray, thresholds: Sequence[float], margin: float
) -> dict[str, pl.Series]:
    """``features.behaviour``'s row-local signals (threshold gaps and flags of the item and
    its declaration, invoice roundness, gross/net ratio, importer age, burst ratio) in one
    pass, the same operations in the same order as their expressions (a division by a
    constant as Polars does it: a product with the constant's reciprocal)."""
    n = items.height

    def floats(name: str) -> tuple[np.ndarray, np.ndarray]:
        column = items.get_column(name)
        return np.ascontiguousarray(column.fill_null(0).to_numpy(), dtype=np.float64), present(
            column
        )

    def integers(name: str, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        column = items.get_column(name)
        return np.ascontiguousarray(column.to_physical().fill_null(0).to_numpy(), dtype=dtype), (
            present(column)
        )

    limits = np.full(MAX_THRESHOLDS, np.nan)
    limits[: len(thresholds)] = thresholds
    reciprocals = 1.0 / limits
    value, value_valid = floats("customs_value_usd")
    declared = np.ascontiguousarray(declaration_value, dtype=np.float64)
    invoice, invoice_valid = floats("invoice_value")
    net, net_valid = floats("net_mass_kg")
    gross, gross_valid = floats("gross_mass_kg")
    at = microseconds(items.get_column("declared_at"))
    registered, registered_valid = integers("importer_registered_on", np.int32)
    registered_valid = registered_valid & present(items.get_column("declared_at"))
    d1, d1_valid = integers("importer_declarations_1d", np.int64)
    d30, d30_valid = integers("importer_declarations_30d", np.int64)
    f64 = [room(n, np.float64) for _ in range(5)]
    i8 = [room(n, np.int8) for _ in range(8)]
    gap, dgap, ratio, age, burst = f64
    gap_v, flag, dgap_v, dflag, rounded, ratio_v, age_v, burst_v = i8
    _kernels()["row_local_signals"](
        n, pointer(limits), pointer(reciprocals), limits.size, float(margin),
        pointer(value), pointer(value_valid), pointer(declared),
        pointer(invoice), pointer(invoice_valid), pointer(net), pointer(net_valid),
        pointer(gross), pointer(gross_valid), pointer(at),
        pointer(registered), pointer(registered_valid),
        pointer(d1), pointer(d1_valid), pointer(d30), pointer(d30_valid),
        pointer(gap), pointer(gap_v), pointer(flag), pointer(dgap), pointer(dgap_v),
        pointer(dflag), pointer(rounded), pointer(ratio), pointer(ratio_v), pointer(age),
        pointer(age_v), pointer(burst), pointer(burst_v),
    )  # fmt: skip
    return {
        "value_gap_below_threshold": with_nulls(gap, gap_v),
        "value_just_under_threshold": pl.Series(flag),
        "declaration_value_gap_below_threshold": with_nulls(dgap, dgap_v),
        "declaration_value_just_under_threshold": pl.Series(dflag),
        "invoice_value_roundness": pl.Series(rounded),
        "gross_net_ratio": with_nulls(ratio, ratio_v),
        "importer_age_days": with_nulls(age, age_v),
        "importer_burst_ratio": with_nulls(burst, burst_v),
    }


def lookup(codes: np.ndarray, table: pl.Series) -> pl.Series:
    """``table`` (Int32, nulls kept) at each code: ``table.gather(codes)`` in one pass."""
    n = codes.size
    values = np.ascontiguousarray(table.fill_null(0).to_numpy(), dtype=np.int32)
    there = present(table)
    out, out_valid = room(n, np.int32), room(n, np.int8)
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    _kernels()["row_lookup"](
        n, pointer(codes), pointer(values), pointer(there), pointer(out), pointer(out_valid)
    )
    return with_nulls(out, out_valid).alias(table.name)


def route_flags(
    origin: np.ndarray, dispatch: np.ndarray, countries: pl.Series, eaeu: Sequence[str]
) -> tuple[pl.Series, pl.Series, pl.Series]:
    """``features.route``'s three country flags from the codes of origin and dispatch
    (``countries``: the value of each code): dispatch differs from origin (null where only the
    origin is missing), CN origin dispatched from KZ, dispatched from another ``eaeu``
    member."""
    n = origin.size

    def flag(values: pl.Series) -> np.ndarray:
        return np.ascontiguousarray(values.fill_null(False).to_numpy(), dtype=np.int8)

    missing = flag(countries.is_null())
    cn, kz, member = flag(countries == "CN"), flag(countries == "KZ"), flag(countries.is_in(eaeu))
    differs, differs_valid, cn_kz, from_eaeu = (room(n, np.int8) for _ in range(4))
    _kernels()["row_route_flags"](
        n, pointer(origin), pointer(dispatch), pointer(missing), pointer(cn), pointer(kz),
        pointer(member), pointer(differs), pointer(differs_valid), pointer(cn_kz),
        pointer(from_eaeu),
    )  # fmt: skip
    return with_nulls(differs, differs_valid), pl.Series(cn_kz), pl.Series(from_eaeu)
