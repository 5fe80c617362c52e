"""Regression tests for the defects the reliability campaigns found.

Each crash case runs in a child process: a regression must fail the test,
not kill the run.
"""

from __future__ import annotations

import threading
from typing import List, NoReturn, Tuple

import pytest

from compatheap import ERROR_NOT_ENOUGH_MEMORY
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._posix import PosixMemory
from tests.conftest import require_emulation, run_python
from tests.faulty import FaultyMemory

require_emulation()

WILD_POINTER_OBJECTS = r"""
import ctypes
from compatheap import ERROR_NOACCESS, HEAP_SUMMARY, PROCESS_HEAP_ENTRY
from compatheap.backends.emulated import EmulatedBackend
k32 = EmulatedBackend()
heap = k32.HeapCreate(0, 0, 0)
freed = k32.HeapAlloc(heap, 0, 0x200000)
k32.HeapFree(heap, 0, freed)  # unmapped now
results = []
for address in (8, 0xDEAD0000, freed):
    for call in (
        lambda: k32.HeapWalk(heap, ctypes.cast(address, ctypes.POINTER(PROCESS_HEAP_ENTRY))),
        lambda: k32.HeapSummary(heap, 0, ctypes.cast(address, ctypes.POINTER(HEAP_SUMMARY))),
        lambda: k32.GetProcessHeaps(64, ctypes.cast(address, ctypes.POINTER(ctypes.c_void_p))),
    ):
        results.append((call(), k32.GetLastError()))
    value = ctypes.c_uint32()
    k32.HeapQueryInformation(heap, 0, ctypes.byref(value), 4, ctypes.cast(address, ctypes.POINTER(ctypes.c_size_t)))
# A pointer into a buffer too small for the structure: refused, nothing written past it.
small = ctypes.create_string_buffer(8)
guard = ctypes.create_string_buffer(b"\x5a" * 64)
results.append((k32.HeapWalk(heap, ctypes.cast(small, ctypes.POINTER(PROCESS_HEAP_ENTRY))), k32.GetLastError()))
assert results == [(0, ERROR_NOACCESS)] * 10, results
assert small.raw == bytes(8) and guard.raw == b"\x5a" * 64 + b"\0"
# A pointer object into a live block still works: that memory is the heap's own.
block = k32.HeapAlloc(heap, 8, 64)  # HEAP_ZERO_MEMORY: lpData NULL starts a walk
assert k32.HeapWalk(heap, ctypes.cast(block, ctypes.POINTER(PROCESS_HEAP_ENTRY))) == 1
print("ok")
"""


def test_pointer_objects_to_wild_addresses_are_refused() -> None:
    """HeapWalk/HeapSummary/GetProcessHeaps/HeapQueryInformation through ``cast(address, POINTER(T))``.

    Found by the stateful fuzzer: a ctypes pointer cast from a bare address was
    trusted like one to a live structure, and written through (segfault, or a
    write into freed memory). Now only memory a pointer keeps alive, or a live
    heap block, is written.
    """
    proc = run_python(WILD_POINTER_OBJECTS)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


SHRUNK_LARGE_BLOCK = r"""
from compatheap.backends.emulated import EmulatedBackend
k32 = EmulatedBackend()
heap = k32.HeapCreate(0, 0, 0)
for size in (1, 127, 256):
    block = k32.HeapAlloc(heap, 0, 0x120000)
    block = k32.HeapReAlloc(heap, 0, block, size)  # stays mapped, now small
    assert k32.HeapFree(heap, 0, block)
    again = k32.HeapAlloc(heap, 0, size)
    assert again and k32.HeapFree(heap, 0, again)
assert k32.HeapDestroy(heap)
print("ok")
"""


def test_large_block_shrunk_small_is_not_recycled_as_malloc_memory() -> None:
    """Found by the atheris campaign: a mapped block shrunk to a small size was put on the
    malloc spare list when freed, and ``free()``d at HeapDestroy (segfault)."""
    proc = run_python(SHRUNK_LARGE_BLOCK)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


class _SplitRefusingMemory(PosixMemory):
    """POSIX memory whose ``refuse``-th unmap fails (the kernel's ENOMEM at its
    mapping-count limit, when unmapping splits a mapping); it counts mapped bytes."""

    def __init__(self, refuse: int) -> None:
        super().__init__()
        self.refuse = refuse
        self.unmaps = 0
        self.mapped = 0

    def map(self, length: int, executable: bool = False) -> int:
        address = super().map(length, executable)
        self.mapped += length if address else 0
        return address

    def unmap(self, address: int, length: int) -> bool:
        self.unmaps += 1
        if self.unmaps == self.refuse:
            return False
        done = super().unmap(address, length)
        self.mapped -= length if done else 0
        return done


@pytest.mark.skipif(not PosixMemory.probe()[0], reason="POSIX mmap trimming (Windows releases a reservation whole)")
@pytest.mark.parametrize("refuse", [1, 2])
def test_aligned_mapping_leaks_nothing_when_trimming_fails(refuse: int) -> None:
    """Found by fault injection: a refused trim of the aligned reservation leaked the mapping."""
    memory = _SplitRefusingMemory(refuse)
    # An alignment the first mapping is all but sure to miss, so both ends are trimmed.
    address = memory.map_aligned(0x10000, 0x100000)
    if memory.unmaps > refuse:
        assert address == 0
        assert memory.unmaps == refuse + 1  # the refused piece, then all of it at once
    else:  # The mapping happened to need fewer trims than that: nothing was refused.
        memory.refuse = 0  # (nor is the test's own unmap)
        assert address and memory.unmap(address, 0x10000)
    assert memory.mapped == 0


def _large_block(failable: Tuple[str, ...], fill: int, filled: int) -> Tuple[FaultyMemory, EmulatedBackend, int, int]:
    """A 3 MiB block on a growable heap over memory whose ``failable`` calls can be made to fail, its start filled."""
    import ctypes

    native = FaultyMemory(only=failable)
    k32 = EmulatedBackend(memory=native)
    heap = k32.HeapCreate(0, 0, 0)
    block = k32.HeapAlloc(heap, 0, 0x300000)
    assert heap and block
    ctypes.memset(block, fill, filled)
    return native, k32, heap, block


def test_shrinking_a_large_block_survives_a_refused_decommit() -> None:
    """A shrink whose pages the system keeps: the block shrinks all the same, and
    growing it again with HEAP_ZERO_MEMORY clears what the caller wrote there
    (found by fault injection, when shrinking unmapped the tail: the tail was
    forgotten even when munmap refused)."""
    import ctypes

    from compatheap import HEAP_ZERO_MEMORY

    native, k32, heap, block = _large_block(("decommit",), 0xAB, 0x300000)
    native.fail_at = native.calls + 1
    assert k32.HeapReAlloc(heap, 0, block, 0x100000) == block
    assert native.injected == 1
    assert k32.HeapSize(heap, 0, block) == 0x100000
    assert k32.HeapReAlloc(heap, HEAP_ZERO_MEMORY, block, 0x300000) == block
    assert ctypes.string_at(block, 0x100000) == b"\xab" * 0x100000
    assert ctypes.string_at(block + 0x100000, 0x200000) == bytes(0x200000)
    assert k32.HeapFree(heap, 0, block) and k32.HeapDestroy(heap)
    assert native.leaks() == []


@pytest.mark.parametrize("flags", [0, 0x10])  # 0x10: HEAP_REALLOC_IN_PLACE_ONLY
def test_growing_a_large_block_into_pages_the_system_will_not_commit(flags: int) -> None:
    """Growing back into pages a shrink decommitted, when committing them is
    refused: the block moves (its contents with it), or with
    HEAP_REALLOC_IN_PLACE_ONLY the call fails and the block stays as it was."""
    import ctypes

    native, k32, heap, block = _large_block(("commit",), 0x5A, 0x100000)
    assert k32.HeapReAlloc(heap, 0, block, 0x100000) == block
    native.fail_at = native.calls + 1
    grown = k32.HeapReAlloc(heap, flags, block, 0x200000)
    assert native.injected == 1
    if flags:
        assert grown is None and k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
        assert k32.HeapSize(heap, 0, block) == 0x100000
        grown = block
    else:
        assert grown
        assert grown != block and k32.HeapSize(heap, 0, grown) == 0x200000
    assert ctypes.string_at(grown, 0x100000) == b"\x5a" * 0x100000
    assert k32.HeapFree(heap, 0, grown) and k32.HeapDestroy(heap)
    assert native.leaks() == []


def test_process_heap_creation_failure_is_clean() -> None:
    """GetProcessHeap under exhaustion: NULL and ERROR_NOT_ENOUGH_MEMORY, not a MemoryError."""
    native = FaultyMemory(1, persistent=True)
    k32 = EmulatedBackend(memory=native)
    assert k32.GetProcessHeap() is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    native.fail_at = None
    assert k32.GetProcessHeap()


@pytest.mark.parametrize("kind", ["growable", "fixed", "process"])
def test_heap_creation_leaves_nothing_mapped_when_python_memory_runs_out(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by exhausting Python's memory: HeapCreate answered NULL and
    ERROR_NOT_ENOUGH_MEMORY when the heap's own records could not be made, but
    the reservation it had mapped for the heap stayed mapped."""
    native = FaultyMemory()
    k32 = EmulatedBackend(memory=native)
    if kind != "process":
        assert k32.GetProcessHeap()
    mappings, calls = dict(native.mappings), native.calls
    refused: List[str] = []

    def no_lock() -> NoReturn:
        refused.append("lock")
        raise MemoryError

    with monkeypatch.context() as patch:
        patch.setattr(threading, "RLock", no_lock)  # What a new heap makes after mapping its room.
        if kind == "process":
            handle = k32.GetProcessHeap()
        else:
            handle = k32.HeapCreate(0, 0, 0x40000 if kind == "fixed" else 0)
    assert handle is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    assert refused and native.calls > calls, "the heap's room was never mapped"
    assert native.mappings == mappings, native.leaks()
    assert k32.GetProcessHeap() if kind == "process" else k32.HeapCreate(0, 0, 0)


def test_null_pointer_objects_convert_to_null() -> None:
    """Found by the atheris campaign: ``c_void_p(None)`` converted to a garbage address
    (the conversion callback returned None, leaving the C result undefined)."""
    import ctypes

    from compatheap._args import pointer_arg

    for _ in range(50):
        assert pointer_arg(ctypes.c_void_p(None), 1) == 0
        assert pointer_arg(ctypes.c_void_p(), 1) == 0
    k32 = EmulatedBackend()
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapFree(heap, 0, ctypes.c_void_p()) == 1  # freeing NULL succeeds
    block = k32.HeapAlloc(ctypes.c_void_p(heap), 0, 8)
    assert block and k32.HeapFree(ctypes.c_void_p(heap), 0, ctypes.c_void_p(block)) == 1
    assert k32.HeapDestroy(heap)


NEGATIVE_BYREF_OFFSET = r"""
import ctypes
from compatheap import ERROR_NOACCESS, HeapCompatibilityInformation, PROCESS_HEAP_ENTRY
from compatheap.backends.emulated import EmulatedBackend
k32 = EmulatedBackend()
heap = k32.HeapCreate(0, 0, 0)
# byref(obj, -n) points before obj: refused, nothing written there.
lone = (ctypes.c_uint32 * 1)(7)
assert k32.HeapQueryInformation(heap, HeapCompatibilityInformation, ctypes.byref(lone, -16), 4, None) == 0
assert k32.GetLastError() == ERROR_NOACCESS
entry = PROCESS_HEAP_ENTRY()
assert k32.HeapWalk(heap, ctypes.byref(entry, -8)) == 0 and k32.GetLastError() == ERROR_NOACCESS
# Before a field but inside the structure holding it: that memory is the caller's.
class Pair(ctypes.Structure):
    _fields_ = [("head", ctypes.c_uint32 * 4), ("tail", ctypes.c_uint32 * 1)]
pair = Pair((1, 2, 3, 4), (5,))
assert k32.HeapQueryInformation(heap, HeapCompatibilityInformation, ctypes.byref(pair.tail, -16), 4, None) == 1
assert list(pair.head) == [0, 2, 3, 4] and pair.tail[0] == 5
print("ok")
"""


def test_negative_byref_offsets_are_not_trusted() -> None:
    """``byref(obj, -n)`` was given the extent ``sizeof(obj) + n``: the emulation
    wrote before the object, into memory nothing vouched for."""
    proc = run_python(NEGATIVE_BYREF_OFFSET)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_destroying_a_locked_heap_wakes_its_waiters() -> None:
    """HeapDestroy by the thread holding HeapLock lets blocked callers fail cleanly.

    The handle is gone afterwards, so no HeapUnlock could release the lock:
    destroying must drop it, or a thread waiting in HeapAlloc would hang forever.
    """
    import threading

    from compatheap import ERROR_INVALID_HANDLE

    k32 = EmulatedBackend()
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapLock(heap) and k32.HeapLock(heap)  # held twice, as nested code does
    started, outcome = threading.Event(), []

    def waiter() -> None:
        started.set()
        outcome.append((k32.HeapAlloc(heap, 0, 16), k32.GetLastError()))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert started.wait(5)
    thread.join(0.2)
    assert thread.is_alive(), "HeapAlloc did not wait for the locked heap"
    assert k32.HeapDestroy(heap)
    thread.join(5)
    assert not thread.is_alive(), "a caller still waits on a destroyed heap"
    assert outcome == [(None, ERROR_INVALID_HANDLE)]
    assert not k32.HeapUnlock(heap)


def test_a_byref_passed_again_gets_the_same_extent_as_the_first_time() -> None:
    """The last ``byref()`` converted is remembered (a HeapWalk loop passes the
    same one each call): each byref, offset and pointed-to type still gets
    exactly its own answer, whatever came before it."""
    import ctypes

    from compatheap import HEAP_SUMMARY, PROCESS_HEAP_ENTRY
    from compatheap._args import buffer_arg

    buffer = (ctypes.c_char * 64)()
    start = ctypes.addressof(buffer)
    whole, inner = ctypes.byref(buffer), ctypes.byref(buffer, 16)
    entry = PROCESS_HEAP_ENTRY()
    ref = ctypes.byref(entry)
    p_entry, p_summary = ctypes.POINTER(PROCESS_HEAP_ENTRY), ctypes.POINTER(HEAP_SUMMARY)
    for _ in range(3):
        assert buffer_arg(whole, 1) == (start, 64)
        assert buffer_arg(whole, 1) == (start, 64)
        assert buffer_arg(inner, 1) == (start + 16, 48)
        assert buffer_arg(ref, 2, p_entry) == (ctypes.addressof(entry), ctypes.sizeof(entry))
        # The same byref where another type is expected: refused, as ctypes refuses it.
        with pytest.raises(ctypes.ArgumentError):
            buffer_arg(ref, 2, p_summary)
        assert buffer_arg(ref, 2, p_entry) == (ctypes.addressof(entry), ctypes.sizeof(entry))
        assert buffer_arg(ref, 2) == (ctypes.addressof(entry), ctypes.sizeof(entry))


def test_a_walk_into_another_objects_buffer_leaves_it_unexported() -> None:
    """An entry made over an mmap (``from_buffer``) and walked with ``byref``:
    once the entry is gone the mmap closes (the remembered byref once kept the
    buffer exported)."""
    import ctypes
    import gc
    import mmap

    from compatheap import PROCESS_HEAP_ENTRY

    k32 = EmulatedBackend()
    heap = k32.HeapCreate(0, 0, 0)
    assert heap and k32.HeapAlloc(heap, 0, 16)
    pages = mmap.mmap(-1, 4096)
    entry = PROCESS_HEAP_ENTRY.from_buffer(pages)
    assert k32.HeapWalk(heap, ctypes.byref(entry)) and entry.lpData == heap
    del entry
    gc.collect()
    pages.close()  # BufferError while anything still holds the entry
    assert k32.HeapDestroy(heap)


NAMES_ITSELF = r"""
import ctypes
from compatheap.backends.emulated import EmulatedBackend

class NamesItself:
    @property
    def _as_parameter_(self):
        return self

k32 = EmulatedBackend()
heap = k32.HeapCreate(0, 0, 0)
calls = [
    (1, lambda: k32.HeapFree(NamesItself(), 0, None)),
    (2, lambda: k32.HeapWalk(heap, NamesItself())),
    (3, lambda: k32.HeapSize(heap, 0, NamesItself())),
    (3, lambda: k32.HeapAlloc(heap, 0, NamesItself())),
    (3, lambda: k32.HeapQueryInformation(heap, 0, NamesItself(), 4, None)),
]
for position, call in calls:
    try:
        call()
    except ctypes.ArgumentError as exc:
        assert str(exc).startswith(f"argument {position}: RecursionError"), exc
    else:
        raise AssertionError("accepted")
print("ok")
"""


def test_an_as_parameter_that_names_itself_is_an_argument_error() -> None:
    """An object whose ``_as_parameter_`` is itself: ctypes would follow it until the
    C stack overflowed (a crash, found in review); it is ``ArgumentError`` now."""
    proc = run_python(NAMES_ITSELF)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
