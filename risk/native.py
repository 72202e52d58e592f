"""Small native kernels: LLVM IR built with llvmlite, compiled in this process, called by ctypes.

Some loops have no fast form in Polars or NumPy: a pass over a million rows that keeps state
per key, a binary search per row. They are written here as LLVM IR with ``llvmlite.ir`` (a
dependency already, through lleaves), compiled at -O3 for the host CPU in about 0.05 s, once
per process, and called through ctypes, which releases the GIL for the call: two threads run
two kernels at once.

``Kernel`` is an ``ir.IRBuilder`` with the few habits that make IR readable as code: stack
variables (``var``; LLVM's mem2reg turns them into registers, so no phi nodes by hand), counted
and conditional loops (``loop``, ``while_``), and indexed loads and stores (``load``,
``store``). ``compile`` returns the ctypes function; the compiled code stays alive with the
process.

    k = Kernel("total", [I64, F64.as_pointer(), F64.as_pointer()])
    n, values, out = k.args
    total = k.var(F64, 0.0)
    with k.loop(k.const(0), n) as i:
        total.set(k.b.fadd(total.get(), k.load(values, i)))
    k.store(total.get(), out, k.const(0))
    function = k.compile([ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p])

Pass NumPy arrays with ``pointer(array)``: C-contiguous, of the type the kernel reads, and held
by the caller for the whole call.

Object code is cached on disk (``RISK_CACHE_DIR``, default the user's cache folder, under
``native-kernels``), keyed by the SHA-256 of the IR, the llvmlite version and the host's
triple, CPU and CPU features: a later process loads a kernel in about a millisecond instead
of compiling it. A cached file is used only when its checksum matches (LLVM aborts the
process on a damaged object rather than raising); a cache that cannot be written is skipped.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from llvmlite import ir

F64 = ir.DoubleType()
F32 = ir.FloatType()
I64 = ir.IntType(64)
I32 = ir.IntType(32)
I8 = ir.IntType(8)
I1 = ir.IntType(1)

CACHE_SUBDIR = "native-kernels"

log = logging.getLogger(__name__)
_LOCK = threading.RLock()
_ENGINES: list[Any] = []  # compiled code stays alive with the process


def default_cache_dir() -> Path:
    """The user's cache folder for this project (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "grey-import-risk"


def checksum_path(target: Path) -> Path:
    """Where the SHA-256 of a cached object file is kept."""
    return target.with_name(target.name + ".sha256")


def read_checked(target: Path) -> bytes | None:
    """A cached file's bytes if it is there and they are the ones written, else None."""
    try:
        data = target.read_bytes()
        expected = checksum_path(target).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == expected else None


def write_checked(target: Path, data: bytes) -> None:
    """Write a cache file and its checksum, each atomically (the checksum first: a reader
    that finds the file finds the checksum it must match)."""
    from risk.atomic import atomic_path

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(checksum_path(target)) as tmp:
        tmp.write_text(hashlib.sha256(data).hexdigest(), encoding="ascii")
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def _kernel_folder() -> Path:
    from risk.settings import get_settings

    configured = get_settings().cache_dir
    return (configured if configured is not None else default_cache_dir()) / CACHE_SUBDIR


@cache
def _host() -> str:
    """What object code depends on besides the IR: llvmlite, triple, CPU and its features."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return "\n".join([f"llvmlite {version('llvmlite')}", llvm.get_process_triple(), *_cpu()])


def _cpu() -> tuple[str, str]:
    import llvmlite.binding as llvm

    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot detect them everywhere
        features = ""
    return llvm.get_host_cpu_name(), features


def pointer(array: np.ndarray) -> int:
    """The address of a C-contiguous array's data, for a kernel's pointer argument."""
    if not array.flags.c_contiguous:
        raise ValueError("a kernel reads C-contiguous arrays only")
    return int(array.ctypes.data)


# Linux's madvise advice that faults a range in, writable, in one call (Linux 5.14 on).
MADV_POPULATE_WRITE = 23
# Below this many bytes an array's page faults cost less than the call.
POPULATE_BYTES = 1 << 20
_PAGE = 4096


@cache
def _madvise() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # no C library to ask (not Linux)
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def populate(array: np.ndarray) -> bool:
    """Fault in the whole pages of a large array's memory now, in one system call, before a
    kernel writes it (``MADV_POPULATE_WRITE``): fresh memory otherwise costs a fault per 4 KiB
    page as the kernel first touches it, and the system's entry and exit per fault cost more
    than zeroing the page (a third less system time for a fresh 400 MB). The contents stay as
    they are; pages only partly the array's are left to fault as usual. False where the system
    cannot (not Linux, a kernel before 5.14) or the array is small: nothing is done then."""
    if array.nbytes < POPULATE_BYTES:
        return False
    madvise = _madvise()
    if madvise is None:
        return False
    start = int(array.ctypes.data)
    first = -(-start // _PAGE) * _PAGE
    last = (start + array.nbytes) // _PAGE * _PAGE
    return last > first and madvise(first, last - first, MADV_POPULATE_WRITE) == 0


_POLARS_TYPES = {
    "int64": "Int64",
    "uint64": "UInt64",
    "int32": "Int32",
    "uint32": "UInt32",
    "int8": "Int8",
    "uint8": "UInt8",
    "float64": "Float64",
}


def room(size: int, dtype: Any, fill: int = 0) -> np.ndarray:
    """An array of ``size`` ``fill`` values for a kernel to fill (through its address: NumPy
    sees it read-only), in memory from Polars' allocator, which reuses what it frees. NumPy
    asks the system for huge pages for large arrays, and where memory is fragmented the
    system compacts it first: on the 1M-item benchmark the entity pass's system time was
    0.25-0.95 s with NumPy's arrays, 0.20-0.29 s this way. Zeros are fresh pages, faulted
    in at once here (``populate``), not page by page as the kernel writes them."""
    import polars as pl

    polars_type = getattr(pl, _POLARS_TYPES[np.dtype(dtype).name])
    array = pl.repeat(fill, max(size, 1), dtype=polars_type, eager=True).to_numpy()
    if fill == 0:
        populate(array)
    return array[:size]


def compile_ir(
    text: str, name: str, restype: Any, argtypes: Sequence[Any], *, opt: int = 3
) -> Callable[..., Any]:
    """Compile LLVM IR ``text`` for the host CPU (or load its object code from the cache)
    and return its function ``name`` as a ctypes function (``restype``, ``argtypes``: ctypes
    types)."""
    (address,) = _compile_addresses(text, [name], opt)
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


def compile_kernels(
    kernels: Sequence[tuple[Kernel, Sequence[Any], Any]], *, opt: int = 3
) -> list[Callable[..., Any]]:
    """Several kernels (each with its ctypes ``argtypes`` and ``restype``) compiled as one
    module: one optimisation run, one engine and one cache file for all of them, which costs
    about what one kernel does. Returns their ctypes functions, in order."""
    import llvmlite.binding as llvm

    with _LOCK:
        _host()  # LLVM initialised
        modules = [llvm.parse_assembly(kernel.ir()) for kernel, _, _ in kernels]
        for other in modules[1:]:
            modules[0].link_in(other)
        text = str(modules[0])
    names = [kernel.name for kernel, _, _ in kernels]
    addresses = _compile_addresses(text, names, opt)
    return [
        ctypes.CFUNCTYPE(restype, *argtypes)(address)
        for (_, argtypes, restype), address in zip(kernels, addresses, strict=True)
    ]


def compile_built(
    key: str,
    signatures: Sequence[tuple[str, Sequence[Any], Any]],
    build: Callable[[], Sequence[Kernel]],
    *,
    opt: int = 3,
) -> list[Callable[..., Any]]:
    """``compile_kernels`` for kernels whose IR depends on ``key`` alone (say, the source of
    the code that builds them): their linked IR is cached on disk under ``key``, so a process
    that finds it neither builds the kernels nor prints their IR (tens of milliseconds of
    Python). ``signatures``: each function's name, ctypes ``argtypes`` and ``restype``;
    ``build``: the kernels, in the same order."""
    import llvmlite.binding as llvm

    digest = hashlib.sha256(f"{key}\n{_host()}".encode()).hexdigest()
    target = _kernel_folder() / f"{digest}.ll"
    cached = read_checked(target)
    if cached is not None:
        text = cached.decode()
    else:
        kernels = build()
        if [kernel.name for kernel in kernels] != [name for name, _, _ in signatures]:
            raise ValueError("build() gave other kernels than signatures names")
        with _LOCK:
            modules = [llvm.parse_assembly(kernel.ir()) for kernel in kernels]
            for other in modules[1:]:
                modules[0].link_in(other)
            text = str(modules[0])
        try:
            write_checked(target, text.encode())
        except OSError as error:  # a read-only home: built again next time
            log.info("native kernels' IR not cached (%s)", error)
    addresses = _compile_addresses(text, [name for name, _, _ in signatures], opt)
    return [
        ctypes.CFUNCTYPE(restype, *argtypes)(address)
        for (_, argtypes, restype), address in zip(signatures, addresses, strict=True)
    ]


def _compile_addresses(text: str, names: Sequence[str], opt: int) -> list[int]:
    """The addresses of functions ``names`` of IR ``text`` compiled (or loaded from the
    cache); the code stays alive with the process."""
    import llvmlite.binding as llvm

    name = names[0]
    with _LOCK:
        key = hashlib.sha256(f"{text}\n{_host()}\nopt={opt}".encode()).hexdigest()
        target = _kernel_folder() / f"{key}.o"
        cached = read_checked(target)
        module = llvm.parse_assembly(text)
        cpu, features = _cpu()
        machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=cpu, features=features, opt=opt
        )
        if cached is None:
            module.verify()
            builder = llvm.PassManagerBuilder()
            builder.opt_level = opt
            passes = llvm.ModulePassManager()
            builder.populate(passes)
            passes.run(module)
        engine = llvm.create_mcjit_compiler(module, machine)
        produced: list[bytes] = []
        engine.set_object_cache(
            lambda _module, data: produced.append(bytes(data)), lambda _module: cached
        )
        engine.finalize_object()
        _ENGINES.append(engine)
        addresses = [engine.get_function_address(function) for function in names]
        if cached is None and produced:
            try:
                write_checked(target, produced[0])
            except OSError as error:  # a read-only home: compiled again next time
                log.info("native kernel %s not cached (%s)", name, error)
    return addresses


class Var:
    """A stack variable of a kernel (``Kernel.var``)."""

    def __init__(self, kernel: Kernel, slot: Any) -> None:
        self._kernel = kernel
        self.slot = slot

    def get(self) -> Any:
        return self._kernel.b.load(self.slot)

    def set(self, value: Any) -> None:
        self._kernel.b.store(value, self.slot)


class Kernel:
    """One function being written: ``b`` is its ``ir.IRBuilder``, ``args`` its arguments
    (pointer arguments are marked ``noalias``: a kernel's arrays must not overlap)."""

    def __init__(self, name: str, args: Sequence[ir.Type], ret: ir.Type | None = None) -> None:
        self.name = name
        self.module = ir.Module(name=name)
        self.function = ir.Function(self.module, ir.FunctionType(ret or ir.VoidType(), args), name)
        for argument in self.function.args:
            if isinstance(argument.type, ir.PointerType):
                argument.attributes.add("noalias")
        self._entry = self.function.append_basic_block("entry")
        self._allocas = ir.IRBuilder(self._entry)
        self.b = ir.IRBuilder(self.function.append_basic_block("start"))
        self._compiled: Callable[..., Any] | None = None

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self.function.args)

    @staticmethod
    def const(value: int | float, type_: ir.Type = I64) -> ir.Constant:
        return ir.Constant(type_, value)

    def var(self, type_: ir.Type, initial: Any) -> Var:
        """A mutable variable, set to ``initial`` (an IR value or a Python number) here."""
        slot = self._allocas.alloca(type_)
        variable = Var(self, slot)
        if not isinstance(initial, ir.Value):
            initial = ir.Constant(type_, initial)
        variable.set(initial)
        return variable

    def load(self, array: Any, index: Any) -> Any:
        return self.b.load(self.b.gep(array, [index]))

    def store(self, value: Any, array: Any, index: Any) -> None:
        self.b.store(value, self.b.gep(array, [index]))

    def add_to(self, array: Any, index: Any, amount: Any) -> None:
        """``array[index] += amount`` (integers or float64)."""
        at = self.b.gep(array, [index])
        if amount.type == F64:
            self.b.store(self.b.fadd(self.b.load(at), amount), at)
        else:
            self.b.store(self.b.add(self.b.load(at), amount), at)

    @contextmanager
    def loop(self, start: Any, stop: Any, step: int = 1) -> Iterator[Any]:
        """``for index in range(start, stop, step)`` (i64; ``step`` may be negative)."""
        index = self.var(start.type, start)
        head = self.function.append_basic_block("loop")
        body = self.function.append_basic_block("body")
        done = self.function.append_basic_block("done")
        self.b.branch(head)
        self.b.position_at_end(head)
        current = index.get()
        going = "<" if step > 0 else ">"
        self.b.cbranch(self.b.icmp_signed(going, current, stop), body, done)
        self.b.position_at_end(body)
        yield current
        index.set(self.b.add(current, ir.Constant(start.type, step)))
        self.b.branch(head)
        self.b.position_at_end(done)

    @contextmanager
    def while_(self, condition: Callable[[], Any]) -> Iterator[None]:
        """``while condition():`` (``condition`` builds the test, an i1, at the loop's head)."""
        head = self.function.append_basic_block("while")
        body = self.function.append_basic_block("body")
        done = self.function.append_basic_block("done")
        self.b.branch(head)
        self.b.position_at_end(head)
        self.b.cbranch(condition(), body, done)
        self.b.position_at_end(body)
        yield
        self.b.branch(head)
        self.b.position_at_end(done)

    def ir(self) -> str:
        """The module's IR text, the function finished (a ``ret void`` where it falls off)."""
        if not self.b.block.is_terminated:
            self.b.ret_void()
        if not self._entry.is_terminated:
            self._allocas.branch(self.function.blocks[1])
        return str(self.module)

    def compile(self, argtypes: Sequence[Any], restype: Any = None) -> Callable[..., Any]:
        """The compiled function, as a ctypes function of ``argtypes`` returning ``restype``."""
        if self._compiled is None:
            self._compiled = compile_ir(self.ir(), self.name, restype, argtypes)
        return self._compiled
