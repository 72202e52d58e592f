"""Whether cleaning would leave a text column as it is, in one native pass over its Arrow views.

``parse.verbatim_fields`` asks this first: a column whose every cell is non-empty and has no
white space at either end (and, for code columns, holds only ASCII without lower-case letters)
is given back unchanged by ``parse._text``. A column that fails here is not necessarily
changed: ``verbatim_fields`` then decides on its distinct values, as before. White space is
judged as ``parse._no_space_at_ends`` judges it: a first byte up to 32 or a UTF-8 lead byte of
white space, a last byte up to 32, or a last pair of bytes that ends UTF-8 white space.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from risk.native import I1, I8, I32, I64, Kernel, pointer
from risk.runs import cached_kernel, locate_text, string_views

# UTF-8 white space beyond ASCII (U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
# U+202F, U+205F, U+3000: what strip_chars strips) starts with one of these bytes and ends
# with one of these pairs of bytes.
SPACE_LEAD_BYTES = (0xC2, 0xE1, 0xE2, 0xE3)
SPACE_LAST_PAIRS = (
    0xC285,
    0xC2A0,
    0x9A80,
    *range(0x8080, 0x808B),
    0x80A8,
    0x80A9,
    0x80AF,
    0x819F,
)


def clean_ends(column: pl.Series, *, code: bool = False) -> bool:
    """True when every non-null cell of ``column`` (text) is non-empty with no white space
    at either end; with ``code``, also only ASCII and no lower-case letter."""
    return _every_chunk(
        column,
        lambda n, views, buffers, validity, offset: _kernel()(
            n, views, int(buffers.ctypes.data), validity, offset, int(code)
        ),
    )


@cache
def _kernel() -> Any:
    argtypes = [ctypes.c_int64, *[ctypes.c_void_p] * 3, ctypes.c_int64, ctypes.c_int64]
    return cached_kernel("clean_text_ends", _build, argtypes, ctypes.c_int64)


def _build() -> Kernel:
    i8p, i64p = I8.as_pointer(), I64.as_pointer()
    k = Kernel("clean_text_ends", [I64, i8p, i64p, i8p, I64, I64], ret=I64)
    n, views, buffers, validity, offset, code = k.args
    b = k.b

    def check(at: Any) -> Any:
        clean = k.var(I1, Kernel.const(1, I1))
        size, data = locate_text(k, views, buffers, at)
        with b.if_else(b.icmp_signed("==", size, k.const(0))) as (empty, filled):
            with empty:
                clean.set(Kernel.const(0, I1))
            with filled:
                clean.set(b.not_(_space_at_ends(k, data, size)))
                checked = b.and_(clean.get(), b.icmp_signed("!=", code, k.const(0)))
                with b.if_then(checked), k.loop(k.const(0), size) as index:
                    letter = b.load(b.gep(data, [index]))
                    ascii_ = b.icmp_unsigned("<", letter, Kernel.const(128, I8))
                    lower = b.and_(
                        b.icmp_unsigned(">=", letter, Kernel.const(ord("a"), I8)),
                        b.icmp_unsigned("<=", letter, Kernel.const(ord("z"), I8)),
                    )
                    with b.if_then(b.or_(b.not_(ascii_), lower)):
                        clean.set(Kernel.const(0, I1))
        return clean.get()

    b.ret(b.zext(_every_present(k, n, validity, offset, check), I64))
    return k


def _space_at_ends(k: Kernel, data: Any, size: Any) -> Any:
    """Whether a non-empty text starts or ends with (a byte of) white space."""
    b = k.b
    first = b.zext(b.load(data), I64)
    last = b.zext(b.load(b.gep(data, [b.sub(size, k.const(1))])), I64)
    space = b.or_(
        b.icmp_unsigned("<=", first, k.const(32)), b.icmp_unsigned("<=", last, k.const(32))
    )
    for lead in SPACE_LEAD_BYTES:
        space = b.or_(space, b.icmp_unsigned("==", first, k.const(lead)))
    found = k.var(I1, space)
    # The last two bytes matter when the last is not ASCII (a one-byte text has no pair).
    beyond_ascii = b.icmp_unsigned(">=", last, k.const(0x80))
    with b.if_then(b.and_(beyond_ascii, b.icmp_signed(">", size, k.const(1)))):
        before = b.zext(b.load(b.gep(data, [b.sub(size, k.const(2))])), I64)
        pair = b.or_(b.shl(before, k.const(8)), last)
        in_pairs = Kernel.const(0, I1)
        for value in SPACE_LAST_PAIRS:
            in_pairs = b.or_(in_pairs, b.icmp_unsigned("==", pair, k.const(value)))
        found.set(b.or_(found.get(), in_pairs))
    return found.get()


def all_in_pairs(column: pl.Series, pairs: frozenset[str]) -> bool:
    """True when every non-null cell of ``column`` (text) is one of ``pairs``, texts of two
    bytes each (``is_in(pairs)``, nulls passing), in one native pass over its Arrow views."""
    table = np.zeros(1 << 16, dtype=np.uint8)
    for pair in pairs:
        first, second = pair.encode()  # exactly two bytes, else ValueError
        table[first << 8 | second] = 1
    return _every_chunk(
        column,
        lambda n, views, _, validity, offset: _pairs_kernel()(
            n, views, validity, offset, pointer(table)
        ),
    )


@cache
def _pairs_kernel() -> Any:
    argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return cached_kernel(
        "text_in_pairs", _build_pairs, [*argtypes, ctypes.c_void_p], ctypes.c_int64
    )


def _build_pairs() -> Kernel:
    """Whether each present view is 2 bytes long (inline) and its bytes are marked in a
    table of 65536 bytes (first byte * 256 + second)."""
    i8p = I8.as_pointer()
    k = Kernel("text_in_pairs", [I64, i8p, i8p, I64, i8p], ret=I64)
    n, views, validity, offset, table = k.args
    b = k.b

    def check(at: Any) -> Any:
        inside = k.var(I1, Kernel.const(1, I1))
        view = b.gep(views, [b.mul(at, k.const(16))])
        length = b.load(b.bitcast(view, I32.as_pointer()))
        with b.if_else(b.icmp_unsigned("==", length, Kernel.const(2, I32))) as (two, other):
            with two:
                first = b.zext(b.load(b.gep(view, [k.const(4)])), I64)
                second = b.zext(b.load(b.gep(view, [k.const(5)])), I64)
                marked = k.load(table, b.or_(b.shl(first, k.const(8)), second))
                inside.set(b.icmp_unsigned("!=", marked, Kernel.const(0, I8)))
            with other:
                inside.set(Kernel.const(0, I1))
        return inside.get()

    b.ret(b.zext(_every_present(k, n, validity, offset, check), I64))
    return k


def all_in_codes(column: pl.Series, codes: frozenset[str]) -> bool:
    """True when every non-null cell of ``column`` (text) is one of ``codes``, texts of one
    to three bytes, all of one length (``is_in(codes)``, nulls passing), in one native pass
    over its Arrow views and a bitmap of every possible code."""
    lengths = {len(code.encode()) for code in codes}
    if len(lengths) != 1 or not 1 <= (width := lengths.pop()) <= 3:
        raise ValueError("codes must be one to three bytes long, all of one length")
    bitmap = np.zeros((1 << (8 * width)) // 8, dtype=np.uint8)
    for code in codes:
        value = int.from_bytes(code.encode(), "big")
        bitmap[value >> 3] |= 1 << (value & 7)
    return _every_chunk(
        column,
        lambda n, views, _, validity, offset: _codes_kernel()(
            n, views, validity, offset, pointer(bitmap), width
        ),
    )


@cache
def _codes_kernel() -> Any:
    argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return cached_kernel(
        "text_in_codes", _build_codes, [*argtypes, ctypes.c_void_p, ctypes.c_int64], ctypes.c_int64
    )


def _build_codes() -> Kernel:
    """Whether each present view is ``width`` bytes long (inline) and its bytes, read as a
    big-endian number, have their bit set in the bitmap."""
    i8p = I8.as_pointer()
    k = Kernel("text_in_codes", [I64, i8p, i8p, I64, i8p, I64], ret=I64)
    n, views, validity, offset, bitmap, width = k.args
    b = k.b

    def check(at: Any) -> Any:
        inside = k.var(I1, Kernel.const(1, I1))
        view = b.gep(views, [b.mul(at, k.const(16))])
        length = b.zext(b.load(b.bitcast(view, I32.as_pointer())), I64)
        with b.if_else(b.icmp_unsigned("==", length, width)) as (fits, other):
            with fits:
                value = k.var(I64, 0)
                with k.loop(k.const(0), width) as index:
                    letter = b.zext(b.load(b.gep(view, [b.add(index, k.const(4))])), I64)
                    value.set(b.or_(b.shl(value.get(), k.const(8)), letter))
                code = value.get()
                marks = k.load(bitmap, b.lshr(code, k.const(3)))
                place = b.trunc(b.and_(code, k.const(7)), I8)
                mark = b.and_(b.lshr(marks, place), Kernel.const(1, I8))
                inside.set(b.icmp_unsigned("!=", mark, Kernel.const(0, I8)))
            with other:
                inside.set(Kernel.const(0, I1))
        return inside.get()

    b.ret(b.zext(_every_present(k, n, validity, offset, check), I64))
    return k


def all_of_class(column: pl.Series, allowed: bytes, shortest: int, longest: int) -> bool:
    """True when every non-null cell of ``column`` (text) is ``shortest`` to ``longest``
    bytes long and made only of the bytes in ``allowed`` (a regex ``^[...]{m,n}$``), in
    one native pass over its Arrow views."""
    table = np.zeros(256, dtype=np.uint8)
    table[list(allowed)] = 1
    return _every_chunk(
        column,
        lambda n, views, buffers, validity, offset: _class_kernel()(
            n, views, int(buffers.ctypes.data), validity, offset, pointer(table), shortest, longest
        ),
    )


@cache
def _class_kernel() -> Any:
    argtypes = [ctypes.c_int64, *[ctypes.c_void_p] * 3, ctypes.c_int64, ctypes.c_void_p]
    return cached_kernel(
        "text_of_class", _build_class, [*argtypes, ctypes.c_int64, ctypes.c_int64], ctypes.c_int64
    )


def _build_class() -> Kernel:
    """Whether each present text's length lies in [shortest, longest] and each of its bytes
    is marked in a table of 256."""
    i8p, i64p = I8.as_pointer(), I64.as_pointer()
    k = Kernel("text_of_class", [I64, i8p, i64p, i8p, I64, i8p, I64, I64], ret=I64)
    n, views, buffers, validity, offset, table, shortest, longest = k.args
    b = k.b

    def check(at: Any) -> Any:
        fits = k.var(I1, Kernel.const(1, I1))
        size, data = locate_text(k, views, buffers, at)
        sized = b.and_(b.icmp_signed(">=", size, shortest), b.icmp_signed("<=", size, longest))
        fits.set(sized)
        with b.if_then(sized), k.loop(k.const(0), size) as index:
            letter = b.zext(b.load(b.gep(data, [index])), I64)
            with b.if_then(b.icmp_unsigned("==", k.load(table, letter), Kernel.const(0, I8))):
                fits.set(Kernel.const(0, I1))
        return fits.get()

    b.ret(b.zext(_every_present(k, n, validity, offset, check), I64))
    return k


def _every_present(
    k: Kernel, n: Any, validity: Any, offset: Any, check: Callable[[Any], Any]
) -> Any:
    """Whether ``check(row)`` (an i1 built for a present row) holds for every row of ``0 ..
    n - 1`` whose Arrow validity bit is set (no bitmap, ``validity`` null: every row is
    there); the pass stops at the first row that fails."""
    b = k.b
    passing = k.var(I1, Kernel.const(1, I1))
    row = k.var(I64, 0)
    has_validity = b.icmp_unsigned("!=", b.ptrtoint(validity, I64), k.const(0))
    with k.while_(lambda: b.and_(b.icmp_signed("<", row.get(), n), passing.get())):
        at = row.get()
        present = k.var(I1, Kernel.const(1, I1))
        with b.if_then(has_validity):
            bit = b.add(at, offset)
            byte = k.load(validity, b.lshr(bit, k.const(3)))
            shift = b.trunc(b.and_(bit, k.const(7)), I8)
            valid = b.and_(b.lshr(byte, shift), Kernel.const(1, I8))
            present.set(b.icmp_unsigned("!=", valid, Kernel.const(0, I8)))
        with b.if_then(present.get()):
            passing.set(check(at))
        row.set(b.add(at, k.const(1)))
    return passing.get()


def _every_chunk(column: pl.Series, check: Callable[..., int]) -> bool:
    """Whether ``check(rows, views, buffers, validity, offset)`` (a kernel over one chunk's
    Arrow string views: its rows, the views' address, the data buffers' addresses, the
    validity bitmap's address or 0, the chunk's offset) holds for every chunk of ``column``,
    each taken as it is (no copy of the column)."""
    for chunk in column.get_chunks():
        views, buffers, held = string_views(chunk)
        array = held[0]
        validity = array.buffers()[0]
        address = 0 if validity is None else validity.address
        if not check(len(array), views, buffers, address, array.offset):
            return False
    return True
