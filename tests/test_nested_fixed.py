"""A heap call made in the middle of another on the same fixed-size heap.

A signal handler or a finaliser may call into the heap whose call it
interrupted, with blocks of its own (docs/reliability.md, "Interrupted
calls"); no block may then be handed out twice. Here ``sys.settrace`` makes
the nested call at each line of the interrupted call in turn, and at each
bytecode, which makes every window between two steps
of the fixed heap's bookkeeping reachable, deterministically. After each run:
no two live blocks overlap, each keeps its contents and size, validation
passes, the walk lists exactly the live blocks with no uncommitted room under
any of them, the heap's remaining room goes to new blocks overlapping none,
and HeapDestroy succeeds.
"""

from __future__ import annotations

import ctypes
import functools
import os
from types import CodeType
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from compatheap import (
    ERROR_NO_MORE_ITEMS,
    PROCESS_HEAP_ENTRY,
    PROCESS_HEAP_ENTRY_BUSY,
    PROCESS_HEAP_UNCOMMITTED_RANGE,
)
from compatheap.backends.emulated import EmulatedBackend, _fixed, _heap
from compatheap.backends.emulated._heap import SPARE_MAX_SIZE
from tests.conftest import require_emulation
from tests.tracing import at_step, opcode_events

require_emulation()

#: Above the spare-list sizes: freed blocks go back to the fixed heap's own bins and index.
SIZE = SPARE_MAX_SIZE + 44
HEAP_SIZE = 0x10000
#: Where the interrupted call's steps are: the heap's templates and the fixed heap's mechanics.
TRACED_FILES = {os.path.normcase(module.__file__ or "") for module in (_heap, _fixed)}
CHECKS = {"plain": (), "debug": ("tail", "free")}


class Heap:
    """A fixed-size heap and the blocks live on it: address -> (size, fill byte)."""

    def __init__(self, checks: Tuple[str, ...]) -> None:
        self.k32 = EmulatedBackend(debug=checks)
        self.handle = self.k32.HeapCreate(0, 0, HEAP_SIZE) or 0
        assert self.handle
        self.live: Dict[int, Tuple[int, int]] = {}
        #: Addresses handed out while a block there was live.
        self.twice: List[int] = []
        self._fill = 0

    def _record(self, block: int, size: int, fill: Optional[int] = None) -> None:
        if block in self.live:
            self.twice.append(block)
        if fill is None:
            self._fill = self._fill % 255 + 1
            fill = self._fill
        self.live[block] = (size, fill)

    def alloc(self, size: int = SIZE) -> int:
        block = self.k32.HeapAlloc(self.handle, 0, size) or 0
        if block:
            self._record(block, size)
            ctypes.memset(block, self.live[block][1], size)
        return block

    # Out of ``live`` before the call: a nested call may be given the address while it runs.
    def free(self, block: int) -> None:
        del self.live[block]
        assert self.k32.HeapFree(self.handle, 0, block)

    def realloc(self, block: int, size: int) -> int:
        old, fill = self.live.pop(block)
        moved = self.k32.HeapReAlloc(self.handle, 0, block, size) or 0
        if not moved:
            self._record(block, old, fill)
        else:
            self._record(moved, size, fill)
            # Only the new part: a move that lost the old contents shows in the check.
            ctypes.memset(moved + old, fill, size - old)
        return moved

    def walk(self) -> List[Tuple[int, int, int]]:
        entry = PROCESS_HEAP_ENTRY()
        found = []
        while self.k32.HeapWalk(self.handle, ctypes.byref(entry)):
            found.append((entry.lpData or 0, entry.cbData, entry.wFlags))
        assert self.k32.GetLastError() == ERROR_NO_MORE_ITEMS
        return found

    def intact(self) -> List[Tuple[int, int]]:
        """The live blocks, (address, size), sorted, each checked: handed out once, overlapping
        no other, keeping its contents and size."""
        assert not self.twice, [hex(block) for block in self.twice]
        spans = sorted((block, size) for block, (size, _) in self.live.items())
        for (block, size), (following, _) in zip(spans, spans[1:]):
            assert block + size <= following, f"blocks overlap: {block:#x}+{size:#x} and {following:#x}"
        for block, (size, fill) in self.live.items():
            assert ctypes.string_at(block, size) == bytes([fill]) * size, hex(block)
            assert self.k32.HeapSize(self.handle, 0, block) == size
        return spans

    def check(self) -> None:
        """Everything the heap says agrees with the blocks live on it; then it fills up and is destroyed."""
        spans = self.intact()
        assert self.k32.HeapValidate(self.handle, 0, None)
        walk = self.walk()
        assert sorted((block, size) for block, size, flags in walk if flags & PROCESS_HEAP_ENTRY_BUSY) == spans
        ends = [block + size for block, size in spans]
        for start, _, flags in walk:
            if flags & PROCESS_HEAP_UNCOMMITTED_RANGE:
                assert start >= max(ends, default=start), "uncommitted room under a live block"
        # The rest of the room: a chunk recorded both busy and free would be handed out again.
        while self.alloc(1000):
            pass
        while self.alloc(100):
            pass
        self.intact()
        assert self.k32.HeapDestroy(self.handle)


def _nested_at(step: int, opcodes: bool, call: Callable[[], object], nested: Callable[[], object]) -> bool:
    """Run ``call`` with ``nested`` made at its ``step``-th line (or bytecode) in the heap's
    code, as a signal handler runs between two steps; whether it was made (False: the call
    took fewer steps)."""
    return at_step(step, _in_heap, call, nested, opcodes=opcodes)[0]


def _in_heap(code: CodeType) -> bool:
    return os.path.normcase(code.co_filename) in TRACED_FILES


# -- the interrupted calls: each prepares its heap and gives the call -----------------------
Prepared = Tuple[Callable[[], object], int]  # (the interrupted call, a live block the nested call may use)


def _fresh_alloc(heap: Heap) -> Prepared:
    """HeapAlloc splitting the heap's untouched rest, which starts just short of a page end:
    the interrupted call's block ends in that page, a nested one's in the next."""
    victim = heap.alloc()
    fixed = heap.k32._heaps[heap.handle]
    assert isinstance(fixed, _fixed.FixedHeap)
    filler_start = victim - _fixed.CHUNK_HEADER + fixed._chunk_length(SIZE)
    rest = ((victim + 0xFFF) & ~0xFFF) - 400
    assert heap.alloc(rest - filler_start - _fixed.CHUNK_HEADER - fixed.tail_size)
    return heap.alloc, victim


def _binned_alloc(heap: Heap) -> Prepared:
    """HeapAlloc taking a freed chunk of its size (from a bin, or the quarantine's once merged)."""
    victim = heap.alloc()
    freed = heap.alloc()
    heap.alloc()
    heap.free(freed)
    return heap.alloc, victim


def _split_alloc(heap: Heap) -> Prepared:
    """HeapAlloc splitting the best-fitting free chunk of the index (a hole, not the rest)."""
    hole = heap.alloc(1000)
    victim = heap.alloc()
    heap.free(hole)
    heap.walk()  # The hole into the index.
    return heap.alloc, victim


def _merging_compact(heap: Heap) -> Prepared:
    """HeapCompact coalescing three freed neighbours; the nested call frees the fourth."""
    first, second, third = heap.alloc(), heap.alloc(), heap.alloc()
    victim = heap.alloc()
    heap.alloc()
    for block in (first, third, second):
        heap.free(block)
    return functools.partial(heap.k32.HeapCompact, heap.handle, 0), victim


def _free_between_free(heap: Heap) -> Prepared:
    """HeapFree of a block between two free chunks of the index."""
    first, second, third = heap.alloc(), heap.alloc(), heap.alloc()
    victim = heap.alloc()
    heap.free(first)
    heap.free(third)
    heap.walk()
    return functools.partial(heap.free, second), victim


def _grow_in_place(heap: Heap) -> Prepared:
    """HeapReAlloc growing a block into the free chunk after it (the best fit for a nested allocation too)."""
    block = heap.alloc()
    hole = heap.alloc(1000)
    victim = heap.alloc()
    heap.free(hole)
    heap.walk()

    def grow() -> None:
        assert heap.realloc(block, SIZE + 600)  # In place, or moved if a nested call took the room.

    return grow, victim


def _grow_over_all(heap: Heap) -> Prepared:
    """HeapReAlloc growing a block over the whole free chunk after it."""
    block = heap.alloc()
    hole = heap.alloc(SIZE)
    victim = heap.alloc()
    heap.free(hole)
    heap.walk()

    def grow() -> None:
        assert heap.realloc(block, 2 * SIZE)

    return grow, victim


CALLS: Dict[str, Callable[[Heap], Prepared]] = {
    "fresh alloc": _fresh_alloc,
    "binned alloc": _binned_alloc,
    "split alloc": _split_alloc,
    "merging compact": _merging_compact,
    "free between free": _free_between_free,
    "grow in place": _grow_in_place,
    "grow over all": _grow_over_all,
}
NESTED: Dict[str, Callable[[Heap, int], object]] = {
    "alloc": lambda heap, victim: heap.alloc(),
    "free": lambda heap, victim: heap.free(victim),
    "realloc": lambda heap, victim: heap.realloc(victim, 3 * SIZE),
}


OPCODE_EVENTS = opcode_events()


def _every_step(checks: str, call: str, nested: str, opcodes: bool) -> int:
    """The nested call at each step of the interrupted one in turn; how many steps there were."""
    step = 0
    while True:
        step += 1
        heap = Heap(CHECKS[checks])
        interrupted, victim = CALLS[call](heap)
        made = _nested_at(step, opcodes, interrupted, functools.partial(NESTED[nested], heap, victim))
        heap.check()
        if not made:
            return step - 1


@pytest.mark.parametrize("steps", ["lines", "bytecodes"])
@pytest.mark.parametrize("nested", list(NESTED))
@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("checks", list(CHECKS))
def test_a_nested_call_at_each_step_never_gets_a_block_in_use(checks: str, call: str, nested: str, steps: str) -> None:
    """Before the fix the interrupted allocation and the nested one got the same
    chunk, or a growth took a chunk a nested allocation had just been given. At
    each bytecode too: the fix relies on no place where the nested call may run."""
    if steps == "bytecodes" and not OPCODE_EVENTS:
        pytest.skip("this interpreter does not report bytecodes to a trace function")
    assert _every_step(checks, call, nested, opcodes=steps == "bytecodes") > 5
