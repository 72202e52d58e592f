"""The native pass behind entity history (``features.history.batch_entity_features``).

Three kernels (``risk.native``), compiled once per process (about 12 ms together, once LLVM
is initialised, which the process pays once for all its kernels):

``radix`` puts the batch's rows in time order: a stable least-significant-digit radix sort
of the times, 11 bits a pass (``sort_by_time``).

``slots`` gives each distinct key of a batch a slot number (0, 1, ... in order of first
appearance) through an open-addressing hash table on the 64-bit keys, and looks up the keys
of the profile's events and of the outcomes in it (-1: not in the batch, nothing to do).

``entity_pass`` walks the batch's rows in time order (``features.history.BatchOrder``), one
group of equal ``declared_at`` at a time, keeping per slot: declarations counted (once per
key and declaration), the first time seen, inspections, violations and duty found, and for
the windowed entities the declarations older than each window. For every group it first
applies the outcomes recorded strictly before the group's time (a cursor over them, sorted
by ``recorded_at``), moves the window cursors over the profile's events and the batch's own
earlier declarations (both in time order), writes each row's features from that state (so a
row sees only what happened strictly before it), and then applies the group's declarations.
The global prior (every outcome so far, ``EVERYONE``) comes from the same outcome cursor.
Each row's features are written where the row is in the batch, so they come back in its
order, as NumPy arrays that Arrow and Polars take over without a copy.
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from llvmlite import ir

from risk.native import F64, I8, I32, I64, Kernel, pointer, room

U64P = I64.as_pointer()
I32P = I32.as_pointer()
I8P = I8.as_pointer()
F64P = F64.as_pointer()
# ``_first`` of an event without one, and the first time of a key never seen.
NO_TIME = (1 << 63) - 1
DAY_US = 86_400_000_000
# Golden-ratio multiplier spreading keys over the table (Fibonacci hashing).
_MIX = 0x9E3779B97F4A7C15 - (1 << 64)
# A slot's state: ``STATE`` int64 fields (duty found: float64) on one cache line, all that a
# row reads: declarations, the declarations before each window, the first time seen, the
# inspections, violations and duty found (the profile's first, then the outcomes since).
_FIELDS = {"decl": 0, "lag": 1, "first": 4, "inspected": 5, "violations": 6, "duty": 7}
STATE = 8

_LOCK = threading.Lock()
_COMPILED: dict[str, Callable[..., Any]] = {}


def _valid(k: Kernel, validity: Any, offset: Any, i: Any) -> Any:
    """Bit ``offset + i`` of an Arrow validity bitmap (i1); every bit set when it is null."""
    b = k.b
    has = b.icmp_unsigned("!=", b.ptrtoint(validity, I64), k.const(0))
    result = k.var(ir.IntType(1), ir.Constant(ir.IntType(1), 1))
    with b.if_then(has):
        at = b.add(offset, i)
        byte = k.load(validity, b.lshr(at, k.const(3)))
        bit = b.trunc(b.and_(at, k.const(7)), I8)
        result.set(b.trunc(b.lshr(byte, bit), ir.IntType(1)))
    return result.get()


def _slots_kernel() -> Kernel:
    """``slots(n, keys, validity, offset, insert, table_keys, table_slots, shift, count,
    limit, out) -> count``: the slot of each key in ``out`` (-1 for a null key, and for a key
    not in the table unless ``insert``). A new key takes slot ``count``, the number of keys
    so far; once the key numbered ``limit`` is in, it stops after that row ``i`` and returns
    ``-1 - i`` (the caller grows the table and goes on). ``table_slots`` starts all -1; its
    size is ``2 ** (64 - shift)``."""
    k = Kernel(
        "entity_slots",
        [I64, U64P, I8P, I64, I64, U64P, I32P, I64, I64, I64, I32P],
        ret=I64,
    )
    n, keys, validity, offset, insert, table_keys, table_slots, shift, count, limit, out = k.args
    b = k.b
    mask = b.sub(b.shl(k.const(1), b.sub(k.const(64), shift)), k.const(1))
    found = k.var(I64, count)
    full = k.var(ir.IntType(1), ir.Constant(ir.IntType(1), 0))
    with k.loop(k.const(0), n) as i:
        slot = k.var(I32, ir.Constant(I32, -1))
        with b.if_then(_valid(k, validity, offset, i)):
            key = k.load(keys, i)
            h = k.var(I64, b.lshr(b.mul(key, k.const(_MIX)), shift))
            searching = k.var(ir.IntType(1), ir.Constant(ir.IntType(1), 1))
            with k.while_(lambda: searching.get()):
                taken = k.load(table_slots, h.get())
                with b.if_else(b.icmp_signed("<", taken, ir.Constant(I32, 0))) as (empty, used):
                    with empty:
                        searching.set(ir.Constant(ir.IntType(1), 0))
                        with b.if_then(b.icmp_signed("!=", insert, k.const(0))):
                            new = found.get()
                            with b.if_then(b.icmp_signed(">=", new, limit)):
                                full.set(ir.Constant(ir.IntType(1), 1))
                            k.store(key, table_keys, h.get())
                            k.store(b.trunc(new, I32), table_slots, h.get())
                            slot.set(b.trunc(new, I32))
                            found.set(b.add(new, k.const(1)))
                    with used:
                        same_key = b.icmp_unsigned("==", k.load(table_keys, h.get()), key)
                        with b.if_else(same_key) as (same, other):
                            with same:
                                slot.set(taken)
                                searching.set(ir.Constant(ir.IntType(1), 0))
                            with other:
                                h.set(b.and_(b.add(h.get(), k.const(1)), mask))
        k.store(slot.get(), out, i)
        with b.if_then(full.get()):
            b.ret(b.sub(k.const(-1), i))
    b.ret(found.get())
    return k


def _pass_kernel() -> Kernel:
    """``entity_pass``: see the module docstring and ``entity_pass`` for the arguments."""
    args = [
        I64, I32P, U64P, I32P, I32P,  # n, perm, times, codes (time order), slot of row
        U64P, U64P,  # each slot's state (``STATE`` int64, ``_FIELDS``) and run last counted
        I64, I32P, U64P, U64P, U64P, U64P, F64P, U64P,  # profile events
        I64, I32P, U64P, U64P,  # the same in time order (slot, time, declarations)
        I64, I32P, U64P, U64P, U64P, F64P,  # outcomes (sorted by time)
        I64, I64, F64, F64,  # prior: inspected, violations, strength * rate, strength
        I64, U64P, U64P, U64P,  # windows: count, lengths, cursors x 2
        I32P, U64P,  # scratch: the batch's declaration events (slot, time)
        U64P, U64P, F64P, I8P, U64P, F64P, F64P,  # out: decl, windows, days, seen, ...
    ]  # fmt: skip
    k = Kernel("entity_pass", args)
    (
        n, perm, times, codes, slot_of_row,
        state, last_run,
        np_, p_slot, p_t, p_n, p_insp, p_viol, p_duty, p_first,
        nq, q_slot, q_t, q_n,
        nj, j_slot, j_t, j_insp, j_viol, j_duty,
        i0, v0, sp0, strength,
        nw, w_len, p_cur, b_cur,
        b_slot, b_t,
        o_decl, o_win, o_days, o_seen, o_insp, o_rate, o_duty,
    ) = k.args  # fmt: skip
    b = k.b
    zero, one = k.const(0), k.const(1)

    def field(name: str, type_: ir.Type = I64) -> Any:
        pointer = b.gep(state, [k.const(_FIELDS[name])])
        return pointer if type_ == I64 else b.bitcast(pointer, type_.as_pointer())

    decl, lag, first = field("decl"), field("lag"), field("first")
    insp, viol = field("inspected"), field("violations")
    duty = field("duty", F64)

    def of(slot: Any) -> Any:  # where a slot's state starts
        return b.mul(slot, k.const(STATE))

    add_to = k.add_to

    def slot_at(r: Any) -> Any:
        return b.sext(k.load(slot_of_row, b.zext(k.load(perm, r), I64)), I64)

    # The profile's totals per slot (every profile event precedes every batch row).
    with k.loop(zero, np_) as p:
        slot = b.sext(k.load(p_slot, p), I64)
        with b.if_then(b.icmp_signed(">=", slot, zero)):
            s = of(slot)
            add_to(decl, s, k.load(p_n, p))
            add_to(insp, s, k.load(p_insp, p))
            add_to(viol, s, k.load(p_viol, p))
            add_to(duty, s, k.load(p_duty, p))
            seen = k.load(p_first, p)
            with b.if_then(b.icmp_signed("<", seen, k.load(first, s))):
                k.store(seen, first, s)
    jc = k.var(I64, 0)
    inspected = k.var(I64, i0)
    violations = k.var(I64, v0)
    events = k.var(I64, 0)  # the batch's declaration events so far
    i = k.var(I64, 0)
    with k.while_(lambda: b.icmp_signed("<", i.get(), n)):
        start = i.get()
        t = k.load(times, start)
        end = k.var(I64, b.add(start, one))
        with k.while_(
            lambda: b.and_(
                b.icmp_signed("<", end.get(), n),
                b.icmp_signed("==", k.load(times, end.get()), t),
            )
        ):
            end.set(b.add(end.get(), one))
        # Outcomes recorded strictly before t.
        with k.while_(
            lambda: b.and_(
                b.icmp_signed("<", jc.get(), nj),
                b.icmp_signed("<", k.load(j_t, jc.get()), t),
            )
        ):
            j = jc.get()
            got_inspected, got_violations = k.load(j_insp, j), k.load(j_viol, j)
            inspected.set(b.add(inspected.get(), got_inspected))
            violations.set(b.add(violations.get(), got_violations))
            slot = b.sext(k.load(j_slot, j), I64)
            with b.if_then(b.icmp_signed(">=", slot, zero)):
                s = of(slot)
                add_to(insp, s, got_inspected)
                add_to(viol, s, got_violations)
                add_to(duty, s, k.load(j_duty, j))
            jc.set(b.add(j, one))
        prior = b.fdiv(
            b.fadd(b.sitofp(violations.get(), F64), sp0),
            b.fadd(b.sitofp(inspected.get(), F64), strength),
        )
        pull = b.fmul(strength, prior)
        # Window cursors: declarations strictly before t - days leave the window.
        with k.loop(zero, nw) as w:
            bound = b.sub(t, k.load(w_len, w))
            pc = k.var(I64, k.load(p_cur, w))
            with k.while_(
                lambda: b.and_(
                    b.icmp_signed("<", pc.get(), nq),
                    b.icmp_signed("<", k.load(q_t, pc.get()), bound),
                )
            ):
                slot = b.sext(k.load(q_slot, pc.get()), I64)
                with b.if_then(b.icmp_signed(">=", slot, zero)):
                    add_to(lag, b.add(of(slot), w), k.load(q_n, pc.get()))
                pc.set(b.add(pc.get(), one))
            k.store(pc.get(), p_cur, w)
            bc = k.var(I64, k.load(b_cur, w))
            with k.while_(
                lambda: b.and_(
                    b.icmp_signed("<", bc.get(), events.get()),
                    b.icmp_signed("<", k.load(b_t, bc.get()), bound),
                )
            ):
                add_to(lag, b.add(of(b.sext(k.load(b_slot, bc.get()), I64)), w), one)
                bc.set(b.add(bc.get(), one))
            k.store(bc.get(), b_cur, w)
        # Every row of the group: its features, the state strictly before t.
        with k.loop(start, end.get()) as r:
            row = b.zext(k.load(perm, r), I64)
            slot = b.sext(k.load(slot_of_row, row), I64)
            k.store(ir.Constant(I8, 0), o_seen, row)
            with b.if_then(b.icmp_signed(">=", slot, zero)):
                s = of(slot)
                declared = k.load(decl, s)
                k.store(declared, o_decl, row)
                with k.loop(zero, nw) as w:
                    k.store(
                        b.sub(declared, k.load(lag, b.add(s, w))),
                        o_win,
                        b.add(b.mul(w, n), row),
                    )
                seen = k.load(first, s)
                with b.if_then(b.icmp_signed("!=", seen, k.const(NO_TIME))):
                    k.store(ir.Constant(I8, 1), o_seen, row)
                    k.store(
                        # Times the reciprocal, as Polars divides a column by a number.
                        b.fmul(b.sitofp(b.sub(t, seen), F64), ir.Constant(F64, 1.0 / DAY_US)),
                        o_days,
                        row,
                    )
                got = k.load(insp, s)
                k.store(got, o_insp, row)
                k.store(
                    b.fdiv(
                        b.fadd(b.sitofp(k.load(viol, s), F64), pull),
                        b.fadd(b.sitofp(got, F64), strength),
                    ),
                    o_rate,
                    row,
                )
                k.store(k.load(duty, s), o_duty, row)
        # Then the group's declarations: once per key and run of one declaration's rows.
        run = k.var(I64, start)
        with k.loop(start, end.get()) as r:
            with b.if_then(b.icmp_signed(">", r, start)):
                changed = b.icmp_signed("!=", k.load(codes, r), k.load(codes, b.sub(r, one)))
                with b.if_then(changed):
                    run.set(r)
            slot = slot_at(r)
            known = b.select(b.icmp_signed(">=", slot, zero), slot, zero)
            s = of(known)
            with b.if_then(
                b.and_(
                    b.icmp_signed(">=", slot, zero),
                    b.icmp_signed("!=", k.load(last_run, known), run.get()),
                )
            ):
                k.store(run.get(), last_run, known)
                add_to(decl, s, one)
                with b.if_then(b.icmp_signed("<", t, k.load(first, s))):
                    k.store(t, first, s)
                with b.if_then(b.icmp_signed(">", nw, zero)):
                    k.store(b.trunc(slot, I32), b_slot, events.get())
                    k.store(t, b_t, events.get())
                    events.set(b.add(events.get(), one))
        i.set(end.get())
    return k


# Bits of the digit the time sort (``sort_by_time``) places rows by in each pass: 2,048
# buckets, whose counts and places stay in the nearest cache.
RADIX_BITS = 11


def _radix_kernel() -> Kernel:
    """``radix(n, times, least, passes, keys_a, rows_a, keys_b, rows_b, counts) -> which``:
    rows sorted stably by ``times - least`` (non-negative), ``RADIX_BITS`` bits a pass from
    the lowest; the sorted keys and rows end in buffers a (``which`` 0) or b (1)."""
    k = Kernel("radix", [I64, U64P, I64, I64, U64P, I32P, U64P, I32P, U64P], ret=I64)
    n, times, least, passes, keys_a, rows_a, keys_b, rows_b, counts = k.args
    b = k.b
    zero, one = k.const(0), k.const(1)
    buckets = k.const(1 << RADIX_BITS)
    mask = k.const((1 << RADIX_BITS) - 1)
    source_keys, source_rows = k.var(U64P, keys_a), k.var(I32P, rows_a)
    target_keys, target_rows = k.var(U64P, keys_b), k.var(I32P, rows_b)
    with k.loop(zero, n) as i:  # the keys, in the rows' order, into buffer a
        k.store(b.sub(k.load(times, i), least), keys_a, i)
        k.store(b.trunc(i, I32), rows_a, i)
    with k.loop(zero, passes) as p:
        shift = b.mul(p, k.const(RADIX_BITS))
        with k.loop(zero, buckets) as d:
            k.store(zero, counts, d)
        with k.loop(zero, n) as i:
            digit = b.and_(b.lshr(k.load(source_keys.get(), i), shift), mask)
            slot = b.gep(counts, [digit])
            b.store(b.add(b.load(slot), one), slot)
        total = k.var(I64, 0)
        with k.loop(zero, buckets) as d:  # counts become each bucket's first place
            here = k.load(counts, d)
            k.store(total.get(), counts, d)
            total.set(b.add(total.get(), here))
        with k.loop(zero, n) as i:
            key = k.load(source_keys.get(), i)
            slot = b.gep(counts, [b.and_(b.lshr(key, shift), mask)])
            place = b.load(slot)
            b.store(b.add(place, one), slot)
            k.store(key, target_keys.get(), place)
            k.store(k.load(source_rows.get(), i), target_rows.get(), place)
        keys_now, rows_now = source_keys.get(), source_rows.get()
        source_keys.set(target_keys.get())
        source_rows.set(target_rows.get())
        target_keys.set(keys_now)
        target_rows.set(rows_now)
    b.ret(b.and_(passes, one))
    return k


def sort_by_time(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in time order, stably (uint32), and the times in that order (int64)."""
    n = len(times)
    if n == 0:
        return np.empty(0, np.uint32), np.empty(0, np.int64)
    least = int(times.min())
    span = int(times.max()) - least
    passes = max(-(-span.bit_length() // RADIX_BITS), 1)
    keys = room(2 * n, np.int64).reshape(2, n)
    rows = room(2 * n, np.uint32).reshape(2, n)
    counts = np.empty(1 << RADIX_BITS, dtype=np.int64)
    which = _compiled("radix")(
        n, pointer(times), least, passes, pointer(keys[0]), pointer(rows[0]),
        pointer(keys[1]), pointer(rows[1]), pointer(counts),
    )  # fmt: skip
    return rows[which], keys[which] + least


def _compiled(name: str) -> Callable[..., Any]:
    with _LOCK:
        if name not in _COMPILED:
            if name == "radix":
                kernel = _radix_kernel()
                _COMPILED[name] = kernel.compile(_pass_argtypes(kernel), ctypes.c_int64)
            elif name == "slots":
                kernel = _slots_kernel()
                argtypes = [ctypes.c_int64, *[ctypes.c_void_p] * 2, *[ctypes.c_int64] * 2]
                argtypes += [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 3 + [ctypes.c_void_p]
                _COMPILED[name] = kernel.compile(argtypes, ctypes.c_int64)
            else:
                kernel = _pass_kernel()
                _COMPILED[name] = kernel.compile(_pass_argtypes(kernel))
        return _COMPILED[name]


def _pass_argtypes(kernel: Kernel) -> list[Any]:
    """ctypes types of a kernel's arguments: pointers, doubles and 64-bit integers."""
    types: list[Any] = []
    for argument in kernel.function.args:
        if isinstance(argument.type, ir.PointerType):
            types.append(ctypes.c_void_p)
        elif argument.type == F64:
            types.append(ctypes.c_double)
        else:
            types.append(ctypes.c_int64)
    return types


def slots_function() -> Callable[..., Any]:
    """The compiled ``slots`` kernel."""
    return _compiled("slots")


def pass_function() -> Callable[..., Any]:
    """The compiled ``entity_pass`` kernel."""
    return _compiled("pass")


def compile_kernels() -> None:
    """Compile the kernels now (once per process), before threads race to."""
    for name in ("radix", "slots", "pass"):
        _compiled(name)


def _pointer(array: np.ndarray) -> int:
    """``pointer``, also of an empty array (which a kernel never reads)."""
    return pointer(array) if len(array) else pointer(_NOTHING)


_NOTHING = np.zeros(1, dtype=np.int64)
# Keys a table has room for at first (more when there are more rows to key); a fuller table
# is built again twice as big.
FIRST_TABLE_KEYS = 1 << 12


def _table(room: int) -> tuple[np.ndarray, np.ndarray, int]:
    """An empty hash table (keys, slots -1) for ``room`` keys at most half full, and the
    shift that maps a mixed key to its place."""
    bits = max(2 * room - 1, 1).bit_length()
    return np.empty(1 << bits, dtype=np.uint64), np.full(1 << bits, -1, dtype=np.int32), 64 - bits


def _rehash(
    table_keys: np.ndarray, table_slots: np.ndarray, count: int, room: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """A table for ``room`` keys holding the ``count`` keys of another with their slots."""
    used = table_slots >= 0
    by_slot = np.empty(count, dtype=np.uint64)
    by_slot[table_slots[used]] = table_keys[used]
    keys, slots, shift = _table(room)
    placed = np.empty(count, dtype=np.int32)
    # Inserted in the order of their slots, the keys take the same slot numbers again.
    slots_function()(
        count, _pointer(by_slot), 0, 0, 1, pointer(keys), pointer(slots), shift, 0, room,
        _pointer(placed),
    )  # fmt: skip
    return keys, slots, shift


def _key_buffers(keys: pl.Series) -> tuple[pa.Array, np.ndarray, int, int]:
    """A UInt64 Series' Arrow array (held for the call), its values, its validity bitmap's
    address (0: no nulls) and bit offset."""
    array = keys.cast(pl.UInt64).rechunk().to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    validity, data = array.buffers()[:2]
    values = np.frombuffer(data, dtype=np.uint64)[array.offset : array.offset + len(array)]
    return array, values, 0 if validity is None else validity.address, array.offset


@dataclass
class KeySlots:
    """A slot number for each distinct key of a Series (``of``): ``slots`` (int32, -1 for a
    null key), ``count`` slots in all, and the hash table that finds them (``look_up``)."""

    slots: np.ndarray
    count: int
    table_keys: np.ndarray
    table_slots: np.ndarray
    shift: int
    source: pa.Array

    @classmethod
    def of(cls, keys: pl.Series, expected: int = 0) -> KeySlots:
        """Slots of ``keys``; ``expected``: how many distinct keys there may be (a hint: the
        table starts with room for that many, or ``FIRST_TABLE_KEYS``, and doubles when
        full, carrying on from where it stopped)."""
        array, values, validity, offset = _key_buffers(keys)
        n = len(values)
        slots = room(n, np.int32)
        capacity = max(min(expected, n), FIRST_TABLE_KEYS, 1)
        table_keys, table_slots, shift = _table(capacity)
        function = slots_function()
        done = count = 0
        while True:
            result = function(
                n - done, _pointer(values) + 8 * done, validity, offset + done, 1,
                pointer(table_keys), pointer(table_slots), shift, count, capacity,
                _pointer(slots) + 4 * done,
            )  # fmt: skip
            if result >= 0:
                return cls(slots, result, table_keys, table_slots, shift, array)
            # Full after row -1 - result, which took slot ``capacity``: the same keys, in the
            # order of their slots, go into a table twice as big, and the rows go on.
            done += -result
            count = capacity + 1
            capacity *= 2
            table_keys, table_slots, shift = _rehash(table_keys, table_slots, count, capacity)

    def look_up(self, keys: pl.Series) -> np.ndarray:
        """The slot of each of ``keys`` (int32), -1 for a null key or one not in the table."""
        array, values, validity, offset = _key_buffers(keys)
        slots = np.empty(len(values), dtype=np.int32)
        slots_function()(
            len(values), _pointer(values), validity, offset, 0,
            pointer(self.table_keys), pointer(self.table_slots), self.shift, self.count,
            self.count, _pointer(slots),
        )  # fmt: skip
        del array
        return slots

    def validity(self) -> pa.Buffer | None:
        """An Arrow validity bitmap of the keys (None: no nulls)."""
        buffer = self.source.buffers()[0]
        if buffer is None or self.source.offset == 0:
            return buffer
        return pa.py_buffer(np.packbits(self.slots >= 0, bitorder="little"))


@dataclass(frozen=True)
class Events:
    """A profile's events of one entity: the slot of each key (-1: not in the batch) and its
    columns (``_first``: ``NO_TIME`` where null), in the profile's order (the order its sums
    are added in, as Polars would); ``timed``: the declaration events (slot, time, count)
    in time order, for the window cursors (``by_time``)."""

    slots: np.ndarray
    times: np.ndarray
    declarations: np.ndarray
    inspected: np.ndarray
    violations: np.ndarray
    duty: np.ndarray
    first: np.ndarray
    timed: tuple[np.ndarray, np.ndarray, np.ndarray] = (
        np.empty(0, np.int32),
        np.empty(0, np.int64),
        np.empty(0, np.int64),
    )

    def by_time(self) -> Events:
        """These events with ``timed`` filled in: the declaration events of keys in the
        batch, in time order."""
        wanted = np.flatnonzero((self.slots >= 0) & (self.declarations != 0))
        order = wanted[np.argsort(self.times[wanted], kind="stable")]
        timed = (self.slots[order], self.times[order], self.declarations[order])
        return dataclasses.replace(self, timed=timed)


@dataclass(frozen=True)
class Outcomes:
    """The judged outcome events since the cut-off, sorted by ``recorded_at`` (microseconds)."""

    times: np.ndarray
    inspected: np.ndarray
    violations: np.ndarray
    duty: np.ndarray


@dataclass(frozen=True)
class Prior:
    """The profile's outcomes of every row (``EVERYONE``), the prior's strength and
    ``pull``: strength x prior violation rate."""

    inspected: int
    violations: int
    strength: float
    pull: float


@dataclass(frozen=True)
class State:
    """Each row's features (batch row order; values of rows without a key are undefined)."""

    declarations: np.ndarray
    windows: list[np.ndarray]
    days_since_first: np.ndarray
    seen: np.ndarray  # uint8: 1 where something was seen before the row
    inspections: np.ndarray
    violation_rate: np.ndarray
    duty: np.ndarray

    def seen_validity(self) -> pa.Buffer:
        return pa.py_buffer(np.packbits(self.seen.view(np.bool_), bitorder="little"))


@dataclass(frozen=True)
class Scratch:
    """Room for the batch's declaration events of a windowed entity (``entity_pass``), one
    per thread, reused from entity to entity."""

    slots: np.ndarray
    times: np.ndarray

    @classmethod
    def of(cls, n: int) -> Scratch:
        return cls(room(n, np.int32), room(n, np.int64))


def _aligned_zeros(size: int) -> np.ndarray:
    """int64 zeros starting on a cache line (64 bytes)."""
    room = np.zeros(size + 8, dtype=np.int64)
    skip = (-room.ctypes.data % 64) // 8
    return room[skip : skip + size]


def entity_pass(
    permutation: np.ndarray,
    times: np.ndarray,
    codes: np.ndarray,
    keys: KeySlots,
    past: Events,
    outcome_slots: np.ndarray,
    outcomes: Outcomes,
    prior: Prior,
    windows: tuple[int, ...],
    scratch: Scratch | None = None,
) -> State:
    """Run ``entity_pass`` over a batch: ``permutation`` its rows in time order (uint32),
    ``times`` and ``codes`` (declarations) in time order, ``keys`` its keys' slots (row
    order); ``past`` the profile's events, ``outcome_slots`` the slot of each outcome;
    ``windows`` in microseconds."""
    n, k = len(times), max(keys.count, 1)
    nw = len(windows)

    def zeros(size: int, dtype: type = np.int64) -> np.ndarray:
        return np.zeros(max(size, 1), dtype=dtype)

    state = _aligned_zeros(k * STATE).reshape(k, STATE)
    state[:, _FIELDS["first"]] = NO_TIME
    last_run = np.full(k, -1, dtype=np.int64)
    lengths = np.array(windows or (0,), dtype=np.int64)
    past_cursor, batch_cursor = zeros(nw), zeros(nw)
    if nw and (scratch is None or len(scratch.slots) < n):
        scratch = Scratch.of(n)
    batch_slots, batch_times = (scratch.slots, scratch.times) if nw and scratch else (_NOTHING,) * 2
    size = max(n, 1)
    out_declarations, out_inspections = room(size, np.int64), room(size, np.int64)
    out_windows = room(nw * n, np.int64)
    out_days, out_rate = room(size, np.float64), room(size, np.float64)
    out_duty, out_seen = room(size, np.float64), room(size, np.uint8)
    p = past
    pass_function()(
        n, _pointer(permutation), _pointer(times), _pointer(codes), _pointer(keys.slots),
        pointer(state), pointer(last_run),
        len(p.slots), _pointer(p.slots), _pointer(p.times), _pointer(p.declarations),
        _pointer(p.inspected), _pointer(p.violations), _pointer(p.duty), _pointer(p.first),
        len(p.timed[0]), *(_pointer(a) for a in p.timed),
        len(outcomes.times), _pointer(outcome_slots), _pointer(outcomes.times),
        _pointer(outcomes.inspected), _pointer(outcomes.violations), _pointer(outcomes.duty),
        prior.inspected, prior.violations, prior.pull, prior.strength,
        nw, pointer(lengths), pointer(past_cursor), pointer(batch_cursor),
        _pointer(batch_slots), _pointer(batch_times),
        pointer(out_declarations), pointer(out_windows), pointer(out_days), pointer(out_seen),
        pointer(out_inspections), pointer(out_rate), pointer(out_duty),
    )  # fmt: skip
    return State(
        declarations=out_declarations[:n],
        windows=[out_windows[w * n : (w + 1) * n] for w in range(nw)],
        days_since_first=out_days[:n],
        seen=out_seen[:n],
        inspections=out_inspections[:n],
        violation_rate=out_rate[:n],
        duty=out_duty[:n],
    )
