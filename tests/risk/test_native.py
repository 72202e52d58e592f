"""The native-kernel toolkit: variables, loops and compiled calls agree with NumPy."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from risk import native
from risk.native import F64, I64, Kernel, pointer


def _running_sums() -> Kernel:
    # out[i] = sum of values[:i + 1], restarting after every negative value.
    k = Kernel("running", [I64, F64.as_pointer(), F64.as_pointer()])
    n, values, out = k.args
    total = k.var(F64, 0.0)
    with k.loop(k.const(0), n) as i:
        value = k.load(values, i)
        total.set(k.b.fadd(total.get(), value))
        k.store(total.get(), out, i)
        with k.b.if_then(k.b.fcmp_ordered("<", value, Kernel.const(0.0, F64))):
            total.set(Kernel.const(0.0, F64))
    return k


def test_a_loop_with_state_gives_numpy_s_answer() -> None:
    function = _running_sums().compile([ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p])
    values = np.random.default_rng(3).normal(size=10_001)
    out = np.empty_like(values)
    function(values.size, pointer(values), pointer(out))
    expected = np.empty_like(values)
    total = 0.0
    for i, value in enumerate(values):
        total += value
        expected[i] = total
        if value < 0:
            total = 0.0
    np.testing.assert_array_equal(out, expected)


def test_while_and_backward_loops() -> None:
    # out = the number of halvings that bring n to 1, and the sum of n-1 .. 0 counted down.
    k = Kernel("halvings", [I64, I64.as_pointer()])
    n, out = k.args
    x = k.var(I64, n)
    steps = k.var(I64, 0)
    with k.while_(lambda: k.b.icmp_signed(">", x.get(), k.const(1))):
        x.set(k.b.sdiv(x.get(), k.const(2)))
        steps.set(k.b.add(steps.get(), k.const(1)))
    k.store(steps.get(), out, k.const(0))
    total = k.var(I64, 0)
    with k.loop(k.b.sub(n, k.const(1)), k.const(-1), step=-1) as i:
        total.set(k.b.add(total.get(), i))
    k.store(total.get(), out, k.const(1))
    function = k.compile([ctypes.c_int64, ctypes.c_void_p])
    for value in (1, 2, 1000, 10**6 + 3):
        result = np.zeros(2, dtype=np.int64)
        function(value, pointer(result))
        assert result.tolist() == [int(value).bit_length() - 1, value * (value - 1) // 2]


def test_an_array_that_is_not_contiguous_is_refused() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        pointer(np.zeros((4, 4))[:, 1])


def _doubler() -> tuple[str, list[object]]:
    k = Kernel("doubler", [I64, I64.as_pointer()])
    n, out = k.args
    with k.loop(k.const(0), n) as i:
        k.store(k.b.mul(i, k.const(2)), out, i)
    return k.ir(), [ctypes.c_int64, ctypes.c_void_p]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from risk.settings import get_settings

    monkeypatch.setenv("RISK_CACHE_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path / native.CACHE_SUBDIR
    get_settings.cache_clear()


def test_object_code_is_cached_checked_and_recompiled_when_damaged(cache_dir: Path) -> None:
    text, argtypes = _doubler()

    def run() -> list[int]:
        function = native.compile_ir(text, "doubler", None, argtypes)
        out = np.zeros(5, dtype=np.int64)
        function(5, pointer(out))
        return out.tolist()

    assert run() == [0, 2, 4, 6, 8]
    (cached,) = cache_dir.glob("*.o")
    written = cached.read_bytes()
    assert native.read_checked(cached) == written
    assert run() == [0, 2, 4, 6, 8]  # loaded from the cache
    cached.write_bytes(written[: len(written) // 2])  # a damaged file is not trusted
    assert native.read_checked(cached) is None
    assert run() == [0, 2, 4, 6, 8]
    assert native.read_checked(cached) == written


def test_a_cache_that_cannot_be_written_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from risk.settings import get_settings

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RISK_CACHE_DIR", str(blocker))
    get_settings.cache_clear()
    try:
        text, argtypes = _doubler()
        out = np.zeros(3, dtype=np.int64)
        native.compile_ir(text, "doubler", None, argtypes)(3, pointer(out))
        assert out.tolist() == [0, 2, 4]
    finally:
        get_settings.cache_clear()


def test_kernels_compiled_together_each_give_their_own_answer() -> None:
    from risk.native import compile_kernels

    running = _running_sums()
    k = Kernel("doubled_total", [I64, F64.as_pointer()], F64)
    n, values = k.args
    total = k.var(F64, 0.0)
    with k.loop(k.const(0), n) as i:
        total.set(k.b.fadd(total.get(), k.b.fmul(k.load(values, i), Kernel.const(2.0, F64))))
    k.b.ret(total.get())
    sums, doubled = compile_kernels(
        [
            (running, [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p], None),
            (k, [ctypes.c_int64, ctypes.c_void_p], ctypes.c_double),
        ]
    )
    values = np.abs(np.random.default_rng(5).normal(size=1000))
    out = np.empty_like(values)
    sums(values.size, pointer(values), pointer(out))
    np.testing.assert_allclose(out, np.cumsum(values))
    assert doubled(values.size, pointer(values)) == pytest.approx(2 * values.sum())


def test_kernels_built_under_a_key_are_built_once_then_read_from_the_cache(
    cache_dir: Path,
) -> None:
    built: list[str] = []

    def build() -> list[Kernel]:
        built.append("built")
        k = Kernel("keyed_doubler", [I64, I64.as_pointer()])
        n, out = k.args
        with k.loop(k.const(0), n) as i:
            k.store(k.b.mul(i, k.const(2)), out, i)
        return [k]

    signatures = [("keyed_doubler", [ctypes.c_int64, ctypes.c_void_p], None)]
    for _ in range(2):
        (function,) = native.compile_built("doubler v1", signatures, build)
        out = np.zeros(4, dtype=np.int64)
        function(4, pointer(out))
        assert out.tolist() == [0, 2, 4, 6]
    assert built == ["built"]  # the second time, the IR came from the cache
    assert len(list(cache_dir.glob("*.ll"))) == 1
    native.compile_built("doubler v2", signatures, build)  # another key: built again
    assert built == ["built", "built"]
    with pytest.raises(ValueError, match="other kernels"):
        native.compile_built("doubler v3", [("another", [], None)], build)


def test_populate_keeps_an_array_s_contents_and_skips_small_ones() -> None:
    large = np.arange(1 << 18, dtype=np.int64)  # 2 MiB
    before = large.copy()
    done = native.populate(large)
    assert done in (True, False)  # False only where the system cannot
    assert np.array_equal(large, before)
    large[-1] = 7  # still writable, still ours
    assert large[-1] == 7
    assert native.populate(np.zeros(16, dtype=np.int64)) is False


def test_room_for_a_kernel_is_fresh_zeros_of_its_own() -> None:
    # The kernels write these arrays through their address: each must be memory that
    # nothing else holds, and a new one must not see what was written into another.
    first = native.room(100_000, np.int64)
    second = native.room(100_000, np.int64)
    assert first.dtype == np.int64 and len(first) == 100_000
    low, high = first.ctypes.data, first.ctypes.data + first.nbytes
    assert not low <= second.ctypes.data < high and not low < second.ctypes.data + 8 <= high
    ctypes.memset(first.ctypes.data, 0xFF, first.nbytes)
    assert (first == -1).all() and (second == 0).all()
    assert (native.room(100_000, np.int64) == 0).all()
    assert native.room(0, np.uint8).tolist() == []
    assert (native.room(10, np.uint32, fill=7) == 7).all()
