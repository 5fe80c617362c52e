"""Python's own memory running out: argument conversion, and the heap's records.

The live-block tables here are dicts that refuse new keys while ``full`` (a
dict that cannot grow raises MemoryError the same way); argument conversion
is run with CPython's allocation hooks made to fail, in a child process.
"""

from __future__ import annotations

import ctypes
from typing import Iterator, List, Tuple

import pytest

from compatheap import (
    ERROR_NO_MORE_ITEMS,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_SUMMARY,
    HEAP_ZERO_MEMORY,
    PROCESS_HEAP_ENTRY,
    PROCESS_HEAP_ENTRY_BUSY,
)
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._fixed import FixedHeap
from compatheap.backends.emulated._growable import LARGE_HEADER
from compatheap.backends.emulated._heap import LARGE_THRESHOLD
from tests.conftest import require_emulation, run_python
from tests.faulty import FaultyMemory, TableWithoutRoom

require_emulation()

#: Whether the system moves a large block's mapping itself (mremap); where it
#: cannot, a large block grows by copying and no mapping record waits.
CAN_REMAP = EmulatedBackend().memory.can_remap
needs_remap = pytest.mark.skipif(not CAN_REMAP, reason="mappings cannot move here: large blocks grow by copying")


def _busy_blocks(k32: EmulatedBackend, handle: int) -> Tuple[int, List[int]]:
    """The last error a walk ended with, and the busy blocks it listed."""
    entry = PROCESS_HEAP_ENTRY()
    found: List[int] = []
    while k32.HeapWalk(handle, ctypes.byref(entry)):
        if entry.wFlags & PROCESS_HEAP_ENTRY_BUSY:
            found.append(entry.lpData or 0)
    return k32.GetLastError(), found


def _allocated(k32: EmulatedBackend, handle: int) -> Tuple[int, int]:
    summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
    done = k32.HeapSummary(handle, 0, ctypes.byref(summary))
    return (summary.cbAllocated, 0) if done else (-1, k32.GetLastError())


CONVERSIONS = r"""
import ctypes, gc, sys, _testcapi
sys.settrace(None)  # (a coverage tracer would fail first, and not as the code under test does)
from compatheap._args import dword_arg, pointer_arg, size_arg
cases = [
    (size_arg, ctypes.c_size_t(0x1000), 0x1000),
    (dword_arg, ctypes.c_uint32(0x1234), 0x1234),
    (pointer_arg, ctypes.c_void_p(0x10000), 0x10000),
    (pointer_arg, ctypes.c_char_p(None), 0),
]
outcomes = set()
for convert, value, want in cases:
    for n in range(40):
        gc.disable()
        _testcapi.set_nomemory(n, n + 1)  # the n-th allocation from here fails
        try:
            got = convert(value, 3)
        except (MemoryError, ctypes.ArgumentError):
            got = "raised"
        finally:
            _testcapi.remove_mem_hooks()
            gc.enable()
        assert got in (want, "raised"), (convert.__name__, value, n, got)
        outcomes.add(got == "raised")
assert outcomes == {True, False}, outcomes  # both failing and succeeding allocations were reached
print("ok")
"""


def test_argument_conversion_raises_instead_of_answering_garbage() -> None:
    """A ctypes object argument converted while Python's memory fails: the right
    value or an exception, never a made-up size, flags value or pointer (a
    Python callback's failure would be printed and its result left undefined)."""
    pytest.importorskip("_testcapi")
    proc = run_python(CONVERSIONS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert "Exception ignored" not in proc.stderr


@pytest.fixture
def short_heap() -> Iterator[Tuple[EmulatedBackend, int, TableWithoutRoom[int, int], TableWithoutRoom[int, int]]]:
    k32 = EmulatedBackend(debug=("tail", "free"))
    handle = k32.HeapCreate(0, 0, 0)
    assert handle
    heap = k32._heaps[handle]
    blocks, large = TableWithoutRoom[int, int](), TableWithoutRoom[int, int]()
    heap.blocks, heap.large = blocks, large
    yield k32, handle, blocks, large
    blocks.full = large.full = False
    assert k32.HeapDestroy(handle)


@needs_remap
def test_a_moved_large_block_whose_mapping_record_waits_gets_no_tail(
    short_heap: Tuple[EmulatedBackend, int, TableWithoutRoom[int, int], TableWithoutRoom[int, int]],
) -> None:
    """mremap moved a large block and its mapping's record went to a slot: the block is
    still a mapped one (no debug tail past it, no fill in its grown part; a tail
    written past a block ending at its mapping's end crashed the process)."""
    k32, handle, _, large = short_heap
    old = LARGE_THRESHOLD + 100
    block = k32.HeapAlloc(handle, 0, old)
    assert block
    neighbours = [k32.HeapAlloc(handle, 0, old) for _ in range(2)]  # so the block has to move
    new = 0x300000
    large.full = True
    moved = k32.HeapReAlloc(handle, 0, block, new)
    assert moved and moved != block
    assert moved not in large, "the mapping's record was not left to a slot"
    assert ctypes.string_at(moved + old, 64) == bytes(64)  # not filled with the free-check pattern
    assert ctypes.string_at(moved + new, 8) == bytes(8)  # no tail past its end
    assert k32.HeapValidate(handle, 0, moved)
    # Its mapping's length is known to the slot only: freeing waits for memory.
    assert k32.HeapFree(handle, 0, moved) == 0 and k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    large.full = False
    assert k32.HeapFree(handle, 0, moved)
    for other in neighbours:
        assert k32.HeapFree(handle, 0, other)


MAPPING_END = r"""
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._heap import LARGE_THRESHOLD
class Full(dict):
    full = False
    def __setitem__(self, key, value):
        if self.full and key not in self:
            raise MemoryError
        super().__setitem__(key, value)
k32 = EmulatedBackend(debug=("tail",))
handle = k32.HeapCreate(0, 0, 0)
heap = k32._heaps[handle]
heap.large = Full()
block = k32.HeapAlloc(handle, 0, LARGE_THRESHOLD + 100)
others = [k32.HeapAlloc(handle, 0, LARGE_THRESHOLD + 100) for _ in range(2)]
heap.large.full = True
new = 0x400000 - 0x40  # ends exactly at its new mapping's end
moved = k32.HeapReAlloc(handle, 0, block, new)
assert moved and moved != block and moved not in heap.large
heap.large.full = False
assert k32.HeapDestroy(handle)
print("ok")
"""


@needs_remap
def test_a_moved_large_block_ending_at_its_mapping_end_survives_a_waiting_record() -> None:
    proc = run_python(MAPPING_END)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_other_blocks_work_while_a_record_waits_for_memory(
    short_heap: Tuple[EmulatedBackend, int, TableWithoutRoom[int, int], TableWithoutRoom[int, int]],
) -> None:
    """While a moved block's record waits in a slot: every other block can be
    freed, shrunk and grown in place; only moves, the waiting block and the
    whole-heap answers (which would leave it out) wait for memory."""
    k32, handle, blocks, _ = short_heap
    moving, other, third, fourth = (k32.HeapAlloc(handle, 0, 16) or 0 for _ in range(4))
    blocks.full = True
    moved = k32.HeapReAlloc(handle, 0, moving, 100_000)
    assert moved and moved not in blocks, "the moved block's record was not left to a slot"
    assert k32.HeapSize(handle, 0, moved) == 100_000

    assert k32.HeapFree(handle, 0, other) == 1
    assert k32.HeapReAlloc(handle, 0, third, 8) == third
    assert k32.HeapReAlloc(handle, HEAP_REALLOC_IN_PLACE_ONLY, third, 12) == third
    for block, size in ((fourth, 200_000), (moved, 8)):  # a move; the waiting block
        k32.SetLastError(0)
        assert k32.HeapReAlloc(handle, 0, block, size) is None
        assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    assert _busy_blocks(k32, handle) == (ERROR_NOT_ENOUGH_MEMORY, [])
    assert _allocated(k32, handle) == (-1, ERROR_NOT_ENOUGH_MEMORY)
    assert k32.HeapSize(handle, 0, third) == 12 and k32.HeapSize(handle, 0, fourth) == 16
    assert k32.HeapValidate(handle, 0, None)

    blocks.full = False  # memory is back: the record joins its table
    error, listed = _busy_blocks(k32, handle)
    assert error == ERROR_NO_MORE_ITEMS
    assert sorted(listed) == sorted([moved, third, fourth])
    assert _allocated(k32, handle) == (100_000 + 12 + 16, 0)
    for block in (moved, third, fourth):
        assert k32.HeapFree(handle, 0, block)


@pytest.mark.parametrize(
    "waiting", ["blocks", pytest.param("large", marks=needs_remap), pytest.param("both", marks=needs_remap)]
)
def test_destroy_gives_back_blocks_whose_records_wait(waiting: str) -> None:
    """HeapDestroy while Python's memory is still short: every block and mapping
    goes back, the moved block whose records wait in the slots too."""
    native = FaultyMemory()
    k32 = EmulatedBackend(memory=native)
    assert k32.GetProcessHeap()
    before = (set(native.blocks), set(native.mappings))
    handle = k32.HeapCreate(0, 0, 0)
    assert handle
    heap = k32._heaps[handle]
    blocks, large = TableWithoutRoom[int, int](), TableWithoutRoom[int, int]()
    heap.blocks, heap.large = blocks, large
    size = 16 if waiting == "blocks" else LARGE_THRESHOLD + 100
    block = k32.HeapAlloc(handle, 0, size)
    others = [k32.HeapAlloc(handle, 0, n) for n in (16, 5000, size, size)]
    assert block and all(others)
    blocks.full = waiting in ("blocks", "both")
    large.full = waiting in ("large", "both")
    moved = k32.HeapReAlloc(handle, 0, block, 4 * size)
    assert moved and heap.pending_count == (2 if waiting == "both" else 1)
    assert k32.HeapDestroy(handle) == 1
    assert (set(native.blocks), set(native.mappings)) == before


def test_zero_memory_growth_clears_what_the_caller_wrote_on_the_last_page() -> None:
    """A large block's bytes up to the end of its last page are the caller's; a
    HEAP_ZERO_MEMORY growth reads zero from the old size on, as on Windows,
    in place and after a shrink."""
    k32 = EmulatedBackend()
    handle = k32.HeapCreate(0, 0, 0)
    assert handle
    page = k32.memory.page_size
    size = LARGE_THRESHOLD + 0x100
    block = k32.HeapAlloc(handle, 0, size)
    assert block
    slack = page - (LARGE_HEADER + size) % page
    ctypes.memset(block, 0x77, size + slack)
    grown = k32.HeapReAlloc(handle, HEAP_ZERO_MEMORY | HEAP_REALLOC_IN_PLACE_ONLY, block, size + 8)
    assert grown == block
    assert ctypes.string_at(block + size, 8) == bytes(8)
    # Shrunk by more than a page, written to its new last page's end, grown again.
    small = size - 2 * page
    assert k32.HeapReAlloc(handle, 0, block, small) == block
    ctypes.memset(block + small, 0x77, page - (LARGE_HEADER + small) % page)
    assert k32.HeapReAlloc(handle, HEAP_ZERO_MEMORY, block, size) == block
    assert ctypes.string_at(block + small, size - small) == bytes(size - small)
    assert k32.HeapDestroy(handle)


def test_compact_answers_no_memory_and_loses_no_room() -> None:
    """HeapCompact merges a fixed heap's freed room into its index, which needs
    Python's memory: short of it, FALSE and ERROR_NOT_ENOUGH_MEMORY, and once
    memory is back the answer of a heap that never ran short."""
    k32 = EmulatedBackend()
    answers = []
    for short in (False, True):
        handle = k32.HeapCreate(0, 0x40000, 0x40000)
        assert handle
        blocks = [k32.HeapAlloc(handle, 0, 300 + 50 * i) or 0 for i in range(6)]
        assert all(blocks)
        for block in blocks[::2]:  # freed room between busy blocks: to be merged
            assert k32.HeapFree(handle, 0, block)
        if short:
            heap = k32._heaps[handle]
            assert isinstance(heap, FixedHeap)
            index = TableWithoutRoom[int, int](heap.free_at)
            heap.free_at = index
            index.full = True
            k32.SetLastError(0)
            assert k32.HeapCompact(handle, 0) == 0
            assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
            index.full = False
        answers.append(k32.HeapCompact(handle, 0))
        assert sorted(_busy_blocks(k32, handle)[1]) == sorted(blocks[1::2])
        assert k32.HeapDestroy(handle)
    assert answers[0] == answers[1] > 0
