"""Regression tests for defects of the emulated backend's core found under stress.

Alignment under other C allocators, fork beside a busy or locked heap, Python
running out of memory after a block moved or inside a fixed-size heap's
records, heap-wide loops that a finaliser or signal handler on the same thread
changes, and the error a bad call reports.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from types import ModuleType
from typing import Callable, Deque, Dict, Iterator, List, Optional, Tuple, TypeVar

import pytest

from compatheap import (
    ERROR_NO_MORE_ITEMS,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_SUMMARY,
    HEAP_ZERO_MEMORY,
    PROCESS_HEAP_ENTRY,
    PROCESS_HEAP_ENTRY_BUSY,
    PROCESS_HEAP_REGION,
    STATUS_NO_MEMORY,
    HeapException,
)
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._fixed import FixedHeap
from compatheap.backends.emulated._heap import LARGE_THRESHOLD
from tests.conftest import child_env, require_emulation

require_emulation()

_Test = TypeVar("_Test", bound=Callable[..., None])
_Value = TypeVar("_Value")


def _library(name: str) -> Optional[str]:
    """The path ``ldconfig -p`` gives for a shared library, or None."""
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.splitlines():
        if line.strip().startswith(name) and "=>" in line:
            return line.split("=>", 1)[1].strip()
    return None


ALIGNMENT_CHECK = r"""
import compatheap
from compatheap.backends.emulated import EmulatedBackend

k32 = EmulatedBackend()
heap = k32.HeapCreate(0, 0, 0)
assert heap
bad = []
for size in list(range(0, 65)) * 20 + [100, 200, 1000, 5000]:
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    if block % compatheap.MEMORY_ALLOCATION_ALIGNMENT:
        bad.append(("alloc", size, hex(block)))
    grown = k32.HeapReAlloc(heap, 0, block, size * 3 + 1)
    assert grown
    if grown % compatheap.MEMORY_ALLOCATION_ALIGNMENT:
        bad.append(("realloc", size, hex(grown)))
print(bad[:5] if bad else "ok")
"""


@pytest.mark.parametrize("library", ["libjemalloc.so.2", "libtcmalloc_minimal.so.4", "libmimalloc.so.2"])
def test_small_blocks_aligned_under_other_allocators(library: str) -> None:
    """jemalloc, tcmalloc and mimalloc align a block only as its size needs (8 for 8
    bytes); HeapAlloc and HeapReAlloc must still give MEMORY_ALLOCATION_ALIGNMENT."""
    path = _library(library)
    if path is None:
        pytest.skip(f"{library} is not installed here (Debian: libjemalloc2, libtcmalloc-minimal4, libmimalloc2.0)")
    env = child_env({"LD_PRELOAD": path})
    # Debian's builds link against glibc: a musl interpreter cannot load them.
    probe = subprocess.run([sys.executable, "-c", "pass"], capture_output=True, text=True, env=env, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"{library} does not load into this interpreter: {probe.stderr.strip()[:300]}")
    proc = subprocess.run([sys.executable, "-c", ALIGNMENT_CHECK], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"


# -- fork -----------------------------------------------------------------------------
def _child_uses(k32: EmulatedBackend, heap: int) -> None:
    """In a forked child: use ``heap`` and the process heap, then exit 0 (or 1)."""
    ok = True
    try:
        for target in (heap, k32.GetProcessHeap()):
            block = k32.HeapAlloc(target, 0, 100)
            assert block
            ok = ok and bool(block) and k32.HeapFree(target, 0, block) == 1
        ok = ok and k32.HeapLock(heap) == 1 and k32.HeapUnlock(heap) == 1
    finally:
        os._exit(0 if ok else 1)


def _fork_and_check(k32: EmulatedBackend, heap: int, times: int = 1) -> None:
    """Fork ``times`` times; each child must use ``heap`` (see _child_uses) and exit 0."""
    for _ in range(times):
        pid = os.fork()
        if pid == 0:
            _child_uses(k32, heap)
        assert _wait_child(pid) == 0


def _wait_child(pid: int, seconds: float = 20.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the child hung on a heap")


def needs_fork(test: _Test) -> _Test:
    """A test that forks beside other threads on purpose (Python 3.12+ warns of that)."""
    skip = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
    quiet = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    marked: _Test = skip(quiet(test))
    return marked


@pytest.fixture
def own_heap() -> Iterator[Tuple[EmulatedBackend, int]]:
    """A backend of the test's own and a growable heap of it, destroyed at the end."""
    k32 = EmulatedBackend()
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    yield k32, heap
    assert k32.HeapDestroy(heap)


@contextlib.contextmanager
def _threads(target: Callable[[], None], count: int, stop: threading.Event) -> Iterator[None]:
    """``count`` threads running ``target`` for the length of the block; ``stop`` set at its end."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


@needs_fork
def test_fork_while_another_thread_holds_heap_lock(own_heap: Tuple[EmulatedBackend, int]) -> None:
    """The child starts with usable heaps: the holder thread does not exist there."""
    k32, heap = own_heap
    locked, release = threading.Event(), threading.Event()

    def holder() -> None:
        assert k32.HeapLock(heap)
        locked.set()
        release.wait(30)
        assert k32.HeapUnlock(heap)

    with _threads(holder, 1, release):
        assert locked.wait(10)
        _fork_and_check(k32, heap)


@needs_fork
def test_fork_while_other_threads_are_inside_heap_calls(own_heap: Tuple[EmulatedBackend, int]) -> None:
    """Forks racing threads that allocate and free: no child hangs, no heap is left locked."""
    k32, heap = own_heap
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            blocks = [k32.HeapAlloc(heap, 0, size) for size in (16, 300, 5000, LARGE_THRESHOLD + 1)]
            for block in blocks:
                assert k32.HeapFree(heap, 0, block)

    with _threads(churn, 2, stop):
        _fork_and_check(k32, heap, 10)
    assert k32.HeapValidate(heap, 0, None)


@needs_fork
def test_fork_by_the_heap_lock_holder_keeps_its_hold(own_heap: Tuple[EmulatedBackend, int]) -> None:
    """The forking thread's own HeapLock carries over: the child's HeapUnlock succeeds once."""
    k32, heap = own_heap
    assert k32.HeapLock(heap)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if k32.HeapUnlock(heap) == 1 and k32.HeapUnlock(heap) == 0 else 1)
    assert _wait_child(pid) == 0
    assert k32.HeapUnlock(heap)


# -- Python's memory running out after a block moved ---------------------------------------
class _TableFullOnce(Dict[int, _Value]):
    """A live-block table whose next insertion of a new key raises MemoryError,
    as a dict does when Python cannot grow it."""

    armed = False

    def __setitem__(self, key: int, value: _Value) -> None:
        self._refuse(key)
        super().__setitem__(key, value)

    def setdefault(self, key: int, default: _Value) -> _Value:
        self._refuse(key)
        return super().setdefault(key, default)

    def _refuse(self, key: int) -> None:
        if self.armed and key not in self:
            self.armed = False
            raise MemoryError


@pytest.mark.parametrize("sizes", [(16, 100_000), (100, 5000), (LARGE_THRESHOLD + 1, 8 * LARGE_THRESHOLD)])
@pytest.mark.parametrize("memory", ["plain", "fallback"])
def test_realloc_keeps_a_moved_block_when_python_memory_runs_out(memory: str, sizes: List[int]) -> None:
    k32 = EmulatedBackend()
    if memory == "fallback":
        k32 = k32.variant("emulated-fallback")
    handle = k32.HeapCreate(0, 0, 0)
    assert handle
    heap = k32._heaps[handle]
    table: _TableFullOnce[int] = _TableFullOnce()
    heap.blocks = table
    small, big = sizes
    block = k32.HeapAlloc(handle, 0, small)
    assert block
    ctypes.memset(block, 0x5A, small)
    # Something else is live, so the block has to move to grow.
    other = k32.HeapAlloc(handle, 0, small)
    assert other
    table.armed = True
    moved = k32.HeapReAlloc(handle, HEAP_ZERO_MEMORY, block, big)
    assert moved, "the move happened: the bookkeeping must not turn it into a failure"
    assert not table.armed, "the injected MemoryError was not reached"
    assert k32.HeapSize(handle, 0, moved) == big
    assert ctypes.string_at(moved, small) == b"\x5a" * small
    assert k32.HeapValidate(handle, 0, moved)
    entries = _walk(k32, handle)
    assert moved in [e[0] for e in entries]
    summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
    assert k32.HeapSummary(handle, 0, ctypes.byref(summary))
    assert summary.cbAllocated == 2 * small + (big - small)
    assert k32.HeapFree(handle, 0, moved)
    assert k32.HeapFree(handle, 0, other)
    assert k32.HeapDestroy(handle)


def _walk(k32: EmulatedBackend, handle: int) -> List[tuple[int, int, int]]:
    entry = PROCESS_HEAP_ENTRY()
    found = []
    while k32.HeapWalk(handle, ctypes.byref(entry)):
        found.append((entry.lpData or 0, entry.cbData, entry.wFlags))
    assert k32.GetLastError() == ERROR_NO_MORE_ITEMS
    return found


# -- Python's memory running out inside a fixed-size heap's records ----------------------
class _ListFullOnce(List[Tuple[int, int]]):
    """A sorted index whose next insertion raises MemoryError, as a list does
    when Python cannot grow it."""

    armed = False

    def insert(self, index: int, item: Tuple[int, int]) -> None:  # type: ignore[override]
        if self.armed:
            self.armed = False
            raise MemoryError
        super().insert(index, item)


def _fixed_heap_with_a_hole(checks: Tuple[str, ...] = ()) -> Tuple[EmulatedBackend, int, int]:
    """A fixed-size heap with a free chunk between its first block and the rest of its room,
    walked once (so the free chunk is in the index): backend, handle, the live block."""
    k32 = EmulatedBackend(debug=checks)
    handle = k32.HeapCreate(0, 0, 0x10000)
    assert handle
    hole = k32.HeapAlloc(handle, 0, 1000)
    live = k32.HeapAlloc(handle, 0, 300)
    assert hole and live
    assert k32.HeapFree(handle, 0, hole)
    _walk(k32, handle)
    return k32, handle, live


def _fixed(k32: EmulatedBackend, handle: int) -> FixedHeap:
    heap = k32._heaps[handle]
    assert isinstance(heap, FixedHeap)
    return heap


def _room(k32: EmulatedBackend, handle: int) -> Tuple[List[Tuple[int, int, int]], int]:
    """What a heap shows of its room: its walk, relative to the handle, and HeapCompact's answer."""
    walk = [(address - handle, size, flags) for address, size, flags in _walk(k32, handle)]
    return walk, k32.HeapCompact(handle, 0)


@pytest.mark.parametrize("flags", [0, HEAP_GENERATE_EXCEPTIONS], ids=["null", "exception"])
@pytest.mark.parametrize("record", ["chunks", "free_at", "free_end", "by_size"])
def test_fixed_heap_alloc_fails_cleanly_when_python_memory_runs_out(record: str, flags: int) -> None:
    """Splitting a free chunk, a fixed heap let the MemoryError out and lost the chunk
    for good (HeapCompact 1008 -> 928). Now: the allocation fails as any does, the heap as it was."""
    k32, handle, _ = _fixed_heap_with_a_hole()
    heap = _fixed(k32, handle)
    before = _room(k32, handle)
    refusing = _ListFullOnce(heap.by_size) if record == "by_size" else _TableFullOnce(getattr(heap, record))
    setattr(heap, record, refusing)
    refusing.armed = True
    if flags:
        with pytest.raises(HeapException) as raised:
            k32.HeapAlloc(handle, flags, 64)
        assert raised.value.status == STATUS_NO_MEMORY
    else:
        assert k32.HeapAlloc(handle, 0, 64) is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    assert not refusing.armed, "the injected MemoryError was not reached"
    assert _room(k32, handle) == before
    # The free chunk is still where it was: the same request now takes its start.
    hole = min(address for address, _, kind in _walk(k32, handle) if not kind)
    assert k32.HeapAlloc(handle, 0, 64) == hole
    assert k32.HeapDestroy(handle)


def _settled(k32: EmulatedBackend, handle: int, live: int) -> List[Tuple[int, int]]:
    """Where the heap's free room is once every block but ``live`` is freed: (offset
    from the handle, bytes) of each free run, committed or not (how much of it is
    committed depends on how far blocks ever reached)."""
    for address, _, flags in _walk(k32, handle):
        if flags & PROCESS_HEAP_ENTRY_BUSY and address != live:
            assert k32.HeapFree(handle, 0, address)
    runs: List[Tuple[int, int]] = []
    for address, size, flags in _walk(k32, handle):
        if flags & (PROCESS_HEAP_ENTRY_BUSY | PROCESS_HEAP_REGION):
            continue
        offset = address - handle
        if runs and sum(runs[-1]) == offset:  # A free block, then the uncommitted rest after it.
            runs[-1] = (runs[-1][0], runs[-1][1] + size)
        else:
            runs.append((offset, size))
    return runs


def _operate(k32: EmulatedBackend, handle: int, block: int, operation: str) -> object:
    """One call on a heap from :func:`_fixed_heap_with_a_hole`; ``block``: one of 5000 bytes there."""
    if operation == "alloc":
        return k32.HeapAlloc(handle, 0, 64)
    if operation == "free":
        return k32.HeapFree(handle, 0, block)
    # (Growing: into the free room that follows the block.)
    return k32.HeapReAlloc(handle, 0, block, 100 if operation == "shrink" else 6000)


class _QueueFullOnce(Deque[Tuple[int, int]]):
    """A quarantine queue whose next append raises MemoryError, as a deque does when
    Python cannot give it another block."""

    armed = False

    def append(self, item: Tuple[int, int]) -> None:
        if self.armed:
            self.armed = False
            raise MemoryError
        super().append(item)


@pytest.mark.parametrize(("operation", "record"), [("free", "bins"), ("free", "quarantine"), ("shrink", "free_at")])
def test_fixed_heap_gives_room_back_when_python_memory_runs_out(operation: str, record: str) -> None:
    """A block freed or shrunk when the record of the room it gives back cannot be made:
    the call succeeds and the room is free again, as on a heap whose memory did not
    run out (HeapFree and HeapReAlloc raised MemoryError, and the room was lost).
    With free checking, the record is the quarantine's."""
    checks = ("free",) if record == "quarantine" else ()
    heaps = [_fixed_heap_with_a_hole(checks), _fixed_heap_with_a_hole(checks)]
    blocks = [k32.HeapAlloc(handle, 0, 5000) or 0 for k32, handle, _ in heaps]
    assert all(blocks)
    heap = _fixed(*heaps[0][:2])
    refusing: _QueueFullOnce | _TableFullOnce[object]
    if heap.quarantine is not None:
        refusing = heap.quarantine.blocks = _QueueFullOnce(heap.quarantine.blocks)
    else:
        refusing = _TableFullOnce(getattr(heap, record))
        setattr(heap, record, refusing)
    refusing.armed = True
    results = [_operate(k32, handle, block, operation) for (k32, handle, _), block in zip(heaps, blocks)]
    assert not refusing.armed, "the injected MemoryError was not reached"
    assert results == ([1, 1] if operation == "free" else blocks)
    if operation == "shrink":
        assert heaps[0][0].HeapSize(heaps[0][1], 0, blocks[0]) == 100
    assert _room(*heaps[0][:2]) == _room(*heaps[1][:2])
    for k32, handle, _ in heaps:
        assert k32.HeapDestroy(handle)


def _testcapi() -> Optional[ModuleType]:
    try:
        module = importlib.import_module("_testcapi")
    except ImportError:
        return None
    return module if hasattr(module, "set_nomemory") else None


TESTCAPI = _testcapi()


def _with_allocation_failing(number: int, call: Callable[..., object], *arguments: object) -> object:
    """``call(*arguments)``'s result (or MemoryError), Python's ``number``-th memory allocation from now failing."""
    assert TESTCAPI is not None
    gc.collect()
    gc.disable()
    # No tracer meanwhile: a coverage tracer short of memory raises at any
    # line, as an interrupt would, which this test is not about.
    tracer = sys.gettrace()
    sys.settrace(None)
    TESTCAPI.set_nomemory(number, number + 1)
    try:
        return call(*arguments)
    except MemoryError as error:  # (Raised outside the heap's records: the backend's own steps.)
        return error
    finally:
        TESTCAPI.remove_mem_hooks()
        sys.settrace(tracer)
        gc.enable()


@pytest.mark.skipif(TESTCAPI is None, reason="no _testcapi.set_nomemory in this Python")
@pytest.mark.parametrize("operation", ["alloc", "free", "shrink", "grow"])
def test_fixed_heap_loses_no_room_whichever_python_allocation_fails(operation: str) -> None:
    """Each Python allocation the call makes fails in turn. A failed call leaves the heap
    as it was; and whatever happened, once the blocks are freed the free room is
    where it is on the same heap whose memory never ran short."""

    def prepare() -> Tuple[EmulatedBackend, int, int, int]:
        k32, handle, live = _fixed_heap_with_a_hole()
        block = 0 if operation == "alloc" else k32.HeapAlloc(handle, 0, 5000) or 0
        return k32, handle, live, block

    k32, handle, live, _ = prepare()
    expected = _settled(k32, handle, live)  # The same heap, its memory never short.
    outcomes = []
    for number in range(80):  # More than any of these calls makes.
        k32, handle, live, block = prepare()
        before = _room(k32, handle)
        result = _with_allocation_failing(number, _operate, k32, handle, block, operation)
        outcomes.append(result)
        if result is None:  # A failed allocation or growth, the heap as it was.
            assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
            assert _room(k32, handle) == before, number
        assert _settled(k32, handle, live) == expected, number
        assert k32.HeapDestroy(handle)
    assert isinstance(outcomes[-1], int) and outcomes[-1], "no call got through: raise the count"
    if operation == "alloc":
        assert None in outcomes, "no allocation failed"


# -- heap-wide loops changed under their feet -----------------------------------------------
def test_walk_survives_allocations_and_frees_between_its_steps() -> None:
    """Whatever runs between two HeapWalk calls on this thread (a finaliser, a signal
    handler, the caller) may allocate and free: the walk goes on, listing each block once."""
    k32 = EmulatedBackend()
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    blocks = [k32.HeapAlloc(heap, 0, 32 + i % 50) for i in range(2000)]
    freed = set(blocks[1::3])
    added: List[int] = []
    entry = PROCESS_HEAP_ENTRY()
    seen: List[int] = []
    steps = 0
    while k32.HeapWalk(heap, ctypes.byref(entry)):
        if entry.wFlags & PROCESS_HEAP_ENTRY_BUSY:
            seen.append(entry.lpData)
        steps += 1
        if steps == 50:
            for block in freed:
                assert k32.HeapFree(heap, 0, block)
            added.extend(k32.HeapAlloc(heap, 0, 64) or 0 for _ in range(300))
    assert k32.GetLastError() == ERROR_NO_MORE_ITEMS
    assert len(seen) == len(set(seen))
    # From the change on, only live blocks are listed (a freed address may have come back).
    assert set(seen[50:]) <= (set(blocks) - freed) | set(added)
    assert k32.HeapDestroy(heap)


def _walk_sum_and_validate(k32: EmulatedBackend, heap: int) -> None:
    """The three calls that loop over a whole heap, each of which must complete normally."""
    entry = PROCESS_HEAP_ENTRY()
    while k32.HeapWalk(heap, ctypes.byref(entry)):
        pass
    assert k32.GetLastError() == ERROR_NO_MORE_ITEMS
    summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
    assert k32.HeapSummary(heap, 0, ctypes.byref(summary))
    assert k32.HeapValidate(heap, 0, None)


class _FreesOnCollection:
    """Frees a block of its heap when the garbage collector finalises it."""

    def __init__(self, k32: EmulatedBackend, heap: int, block: int) -> None:
        self.k32, self.heap, self.block = k32, heap, block
        self.cycle = self

    def __del__(self) -> None:
        self.k32.HeapFree(self.heap, 0, self.block)
        self.k32.HeapAlloc(self.heap, 0, 24)


@pytest.mark.parametrize("checks", [(), ("tail", "free")])
def test_heap_wide_calls_survive_finalisers_changing_the_heap(checks: tuple[str, ...]) -> None:
    """Garbage with finalisers that free and allocate on the heap, collected while
    HeapWalk, HeapSummary and HeapValidate loop over it: no RuntimeError or KeyError."""
    import gc

    k32 = EmulatedBackend(debug=set(checks))
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    threshold = gc.get_threshold()
    gc.set_threshold(1)  # collect at (almost) every allocation of a container
    try:
        for _ in range(5):
            for i in range(300):
                _FreesOnCollection(k32, heap, k32.HeapAlloc(heap, 0, 40 + i % 7) or 0)
            _walk_sum_and_validate(k32, heap)
    finally:
        gc.set_threshold(*threshold)
        gc.collect()
    assert k32.HeapDestroy(heap)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no interval timers here")
def test_heap_wide_calls_survive_signal_handlers_changing_the_heap() -> None:
    """A signal handler allocating and freeing on the heap while the main thread walks,
    sums and validates it: every call completes normally."""
    k32 = EmulatedBackend(debug={"tail"})
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    for i in range(3000):
        k32.HeapAlloc(heap, 0, 16 + i % 100)
    kept: List[int] = []
    fired = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal fired
        fired += 1
        kept.append(k32.HeapAlloc(heap, 0, 48) or 0)
        if len(kept) > 3:
            assert k32.HeapFree(heap, 0, kept.pop(0))

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
    try:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and fired < 50:
            _walk_sum_and_validate(k32, heap)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired > 0
    assert k32.HeapDestroy(heap)


# -- what a bad call reports ----------------------------------------------------------------------
def test_missing_argument_names_the_public_function() -> None:
    import compatheap

    with pytest.raises(TypeError) as raised:
        compatheap.HeapAlloc(compatheap.GetProcessHeap(), 10)  # type: ignore[call-arg]
    message = str(raised.value)
    assert "HeapAlloc()" in message and "dwBytes" in message
    assert "<locals>" not in message


def test_walk_keeps_no_copy_of_the_heap_after_it_ends(own_heap: Tuple[EmulatedBackend, int]) -> None:
    """A finished walk leaves nothing behind: a walk's one copy (the sorted addresses)
    lives only while the walk runs."""
    k32, handle = own_heap
    for _ in range(1000):
        k32.HeapAlloc(handle, 0, 32)
    assert len(_walk(k32, handle)) > 1000
    assert not k32._heaps[handle]._walkers


def test_summary_counts_a_large_block_once(own_heap: Tuple[EmulatedBackend, int]) -> None:
    """A mapped block commits its mapping, not its size on top of it: cbCommitted
    grows by less than twice the block (it once counted both)."""
    k32, heap = own_heap

    def committed() -> int:
        summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
        assert k32.HeapSummary(heap, 0, ctypes.byref(summary))
        return int(summary.cbCommitted)

    before = committed()
    size = 2 * LARGE_THRESHOLD
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    grown = committed() - before
    assert size <= grown < size + 0x10000, hex(grown)
    assert k32.HeapFree(heap, 0, block)
    assert committed() == before


def test_summary_counts_a_shrunk_large_blocks_pages_as_reserved(own_heap: Tuple[EmulatedBackend, int]) -> None:
    """A large block that shrinks keeps its mapping: the pages past its new end
    leave cbCommitted and stay in cbReserved, and growing back restores both."""
    k32, heap = own_heap

    def figures() -> Tuple[int, int]:
        summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
        assert k32.HeapSummary(heap, 0, ctypes.byref(summary))
        return int(summary.cbCommitted), int(summary.cbReserved)

    block = k32.HeapAlloc(heap, 0, 0x800000)
    assert block
    committed, reserved = figures()
    assert k32.HeapReAlloc(heap, 0, block, 0x200000) == block
    shrunk_committed, shrunk_reserved = figures()
    assert 0x600000 - 0x1000 <= committed - shrunk_committed <= 0x600000
    assert shrunk_reserved == reserved
    assert k32.HeapReAlloc(heap, 0, block, 0x800000) == block
    assert figures() == (committed, reserved)
