"""Calls that run in the middle of another call on the same heap and thread.

A signal handler or a finaliser may call into the heap while the call it
interrupted is half done (docs/reliability.md, "Interrupted calls"). Each
test here runs such a nested call at every line of the interrupted call in
turn (through a trace function: the place is chosen, not hoped for) and
checks the promises: no block handed out twice, no crash, the heap's
records true, nothing leaked. The native layer is ``FaultyMemory``, which
refuses to free or unmap memory it never handed out instead of crashing.
"""

from __future__ import annotations

import ctypes
import os
import threading
import traceback
from types import CodeType
from typing import Any, Callable, List, Set, Tuple

import pytest

from compatheap import ERROR_NO_MORE_ITEMS, HEAP_SUMMARY, PROCESS_HEAP_ENTRY, PROCESS_HEAP_ENTRY_BUSY
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._growable import GrowableHeap
from compatheap.backends.emulated._heap import LARGE_THRESHOLD, EmulatedHeap
from tests.conftest import require_emulation
from tests.faulty import FaultyMemory
from tests.tracing import at_step

require_emulation()

#: A scenario: the interrupted call, the nested one, and the check of the
#: interrupted call's result once both are done.
Scenario = Tuple[Callable[[], Any], Callable[[], None], Callable[[Any], None]]


def _at_every_line(code: Set[CodeType], make: Callable[[], Scenario]) -> int:
    """Run a fresh scenario for each line of the interrupted call; how many lines there were.

    In a child process where there is fork: a regression that crashes the
    process fails the test instead of ending the run.
    """
    if not hasattr(os, "fork"):
        return _lines_run(code, make)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's result is its exit status
        os.close(read)
        status = 1
        try:
            os.write(write, str(_lines_run(code, make)).encode())
            status = 0
        except BaseException:  # noqa: BLE001 - any failure is the child's exit status
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        told = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, "the scenario failed or crashed in the child (see its output)"
    return int(told)


def _lines_run(code: Set[CodeType], make: Callable[[], Scenario]) -> int:
    line = 0
    while True:
        line += 1
        outer, nested, check = make()
        fired, result = at_step(line, code, outer, nested)
        check(result)
        if not fired:
            return line - 1


def _live_blocks(k32: EmulatedBackend, handle: int) -> List[int]:
    entry = PROCESS_HEAP_ENTRY()
    found: List[int] = []
    while k32.HeapWalk(handle, ctypes.byref(entry)):
        if entry.wFlags & PROCESS_HEAP_ENTRY_BUSY:
            found.append(entry.lpData or 0)
    assert k32.GetLastError() == ERROR_NO_MORE_ITEMS
    return found


class _Heap:
    """A growable heap on a ledger-keeping native layer."""

    def __init__(self, debug: Tuple[str, ...] = ()) -> None:
        self.native = FaultyMemory()
        self.k32 = EmulatedBackend(debug=debug, memory=self.native)
        assert self.k32.GetProcessHeap()
        self.before = (set(self.native.blocks), set(self.native.mappings))
        handle = self.k32.HeapCreate(0, 0, 0)
        assert handle
        self.handle: int = handle
        self.heap = self.k32._heaps[handle]

    def alloc(self, size: int, fill: int) -> int:
        block = self.k32.HeapAlloc(self.handle, 0, size)
        assert block
        ctypes.memset(block, fill, size)
        return block

    def finish(self, live: List[Tuple[int, int, int]]) -> None:
        """Check the heap holds exactly ``live`` (address, size, fill), each once and intact; destroy it; no leak."""
        k32, handle = self.k32, self.handle
        addresses = [address for address, _, _ in live]
        assert len(set(addresses)) == len(addresses), "a block handed out twice"
        assert sorted(_live_blocks(k32, handle)) == sorted(addresses)
        for address, size, fill in live:
            assert k32.HeapSize(handle, 0, address) == size
            assert ctypes.string_at(address, size) == bytes([fill]) * size
        assert k32.HeapValidate(handle, 0, None)
        assert k32.HeapDestroy(handle)
        assert (set(self.native.blocks), set(self.native.mappings)) == self.before, "memory leaked"


def _code(*functions: Any) -> Set[CodeType]:
    """The functions' code, with the code nested in it (comprehensions, generators)."""
    found: Set[CodeType] = set()
    todo = [function.__code__ for function in functions]
    while todo:
        code = todo.pop()
        found.add(code)
        todo.extend(const for const in code.co_consts if isinstance(const, CodeType))
    return found


def test_compact_in_the_middle_of_an_allocation_or_a_free() -> None:
    """HeapCompact gives the spare blocks back: an allocation taking one, or a
    free adding one, in the middle of it neither gets a block given back nor
    leaks one."""
    code = _code(EmulatedHeap.alloc, EmulatedHeap.free, GrowableHeap._drop_spares)

    def allocating() -> Scenario:
        h = _Heap()
        h.k32.HeapFree(h.handle, 0, h.alloc(48, 1))  # one spare block of 48 bytes

        def check(block: Any) -> None:
            assert block
            ctypes.memset(block, 7, 48)
            h.finish([(block, 48, 7)])

        return lambda: h.k32.HeapAlloc(h.handle, 0, 48), lambda: _compact(h), check

    def freeing() -> Scenario:
        h = _Heap()
        block = h.alloc(48, 1)

        def check(ok: Any) -> None:
            assert ok == 1
            h.finish([])

        return lambda: h.k32.HeapFree(h.handle, 0, block), lambda: _compact(h), check

    assert _at_every_line(code, allocating) > 3
    assert _at_every_line(code, freeing) > 3


def _compact(h: _Heap) -> None:
    assert h.k32.HeapCompact(h.handle, 0)


def test_allocation_of_the_same_size_in_the_middle_of_an_allocation() -> None:
    """Two allocations of one size, one inside the other, with one spare block: two blocks."""
    code = _code(EmulatedHeap.alloc)

    def scenario() -> Scenario:
        h = _Heap()
        h.k32.HeapFree(h.handle, 0, h.alloc(48, 1))
        inner: List[Tuple[int, int, int]] = []

        def nested() -> None:
            inner.append((h.alloc(48, 9), 48, 9))

        def check(block: Any) -> None:
            assert block
            ctypes.memset(block, 7, 48)
            h.finish([(block, 48, 7), *inner])

        return lambda: h.k32.HeapAlloc(h.handle, 0, 48), nested, check

    assert _at_every_line(code, scenario) > 3


def test_summary_while_blocks_come_and_go() -> None:
    """HeapSummary's loops run over copies: a nested call allocating and freeing does not break them."""
    code = _code(EmulatedHeap.allocated, GrowableHeap._usage, GrowableHeap.committed, GrowableHeap.reserved)

    def scenario() -> Scenario:
        h = _Heap()
        live = {h.alloc(64, 3): (64, 3) for _ in range(20)}
        live[h.alloc(LARGE_THRESHOLD + 10, 4)] = (LARGE_THRESHOLD + 10, 4)
        summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))

        def nested() -> None:
            for block in list(live)[:10]:
                assert h.k32.HeapFree(h.handle, 0, block)
                del live[block]
            live.update({h.alloc(80, 5): (80, 5) for _ in range(30)})

        def check(ok: Any) -> None:
            assert ok == 1
            assert summary.cbAllocated > 0
            h.finish([(block, size, fill) for block, (size, fill) in live.items()])

        return lambda: h.k32.HeapSummary(h.handle, 0, ctypes.byref(summary)), nested, check

    assert _at_every_line(code, scenario) > 3


@pytest.mark.skipif(not EmulatedBackend().memory.can_remap, reason="mappings cannot move here")
def test_large_allocation_in_the_middle_of_a_moving_large_growth() -> None:
    """mremap moves a large block away; a nested allocation may be given a mapping
    at the place it left. Each keeps its own record (a record deleted by
    address after the move once took the nested block's, and its later free
    called free() on a mapping)."""
    code = _code(EmulatedHeap.realloc, GrowableHeap.resize_mapped, GrowableHeap._record_mapping)
    size = LARGE_THRESHOLD + 100

    def scenario() -> Scenario:
        h = _Heap()
        block = h.alloc(size, 1)
        neighbours = [h.alloc(size, 2) for _ in range(2)]  # so that growing moves it
        inner: List[int] = []

        def nested() -> None:
            inner.append(h.alloc(size, 9))

        def check(moved: Any) -> None:
            assert moved
            assert ctypes.string_at(moved, size) == b"\x01" * size
            ctypes.memset(moved, 1, 4 * size)
            # Each freed (by HeapDestroy) as what it is: FaultyMemory refuses free() of a mapping.
            h.finish([(moved, 4 * size, 1), *((n, size, 2) for n in neighbours), *((b, size, 9) for b in inner)])

        return lambda: h.k32.HeapReAlloc(h.handle, 0, block, 4 * size), nested, check

    assert _at_every_line(code, scenario) > 3


@pytest.mark.parametrize("size", [64, 0x40000, LARGE_THRESHOLD + 10], ids=["small", "malloc-mapped", "large"])
def test_validation_while_a_nested_call_frees_the_block_it_reads(size: int) -> None:
    """With tail checking, HeapValidate reads every block's tail; a nested call freeing
    blocks (the one being read included) neither makes it read freed memory
    (a crash for a mapped block) nor makes a healthy heap fail."""
    code = _code(EmulatedHeap.valid, EmulatedHeap.block_intact)

    def scenario() -> Scenario:
        h = _Heap(debug=("tail", "free"))
        blocks = [h.alloc(size, 6) for _ in range(3)]

        def nested() -> None:
            while blocks:
                assert h.k32.HeapFree(h.handle, 0, blocks.pop())

        def check(valid: Any) -> None:
            assert valid == 1
            h.finish([(b, size, 6) for b in blocks])

        return lambda: h.k32.HeapValidate(h.handle, 0, None), nested, check

    assert _at_every_line(code, scenario) > 3


def test_nested_validation_leaves_the_pin_to_the_outer_one() -> None:
    """A validation inside a validation (a handler's) answers for the same heap,
    and the outer one still holds its pin."""
    code = _code(EmulatedHeap.valid)

    def scenario() -> Scenario:
        h = _Heap(debug=("tail",))
        blocks = [h.alloc(0x40000, 6) for _ in range(2)]

        def nested() -> None:
            assert h.k32.HeapValidate(h.handle, 0, None)
            while blocks:
                assert h.k32.HeapFree(h.handle, 0, blocks.pop())

        def check(valid: Any) -> None:
            assert valid == 1
            h.finish([(b, 0x40000, 6) for b in blocks])

        return lambda: h.k32.HeapValidate(h.handle, 0, None), nested, check

    assert _at_every_line(code, scenario) > 3


def test_a_call_nested_in_an_lfh_allocation_past_a_hold_does_not_let_the_holder_in() -> None:
    """With the low-fragmentation heap on, an allocation it serves does not wait for
    another thread's HeapLock. A call nested in it (a handler's) must not wait
    either: its wait would release the heap's lock and let the holder's calls
    (here a HeapDestroy) run while the interrupted allocation is half done."""
    k32 = EmulatedBackend()
    handle = k32.HeapCreate(0, 0, 0)
    assert handle
    assert k32.HeapSetInformation(handle, 0, ctypes.byref(ctypes.c_uint32(2)), 4)  # the LFH on
    own = k32.HeapAlloc(handle, 0, 16)
    assert own
    locked, go = threading.Event(), threading.Event()
    destroyed: List[int] = []

    def holder() -> None:
        assert k32.HeapLock(handle)
        locked.set()
        go.wait(10)
        destroyed.append(k32.HeapDestroy(handle))  # the holder: waits for no hold, only for the lock

    thread = threading.Thread(target=holder)
    thread.start()
    assert locked.wait(10)
    sizes: List[int] = []

    def nested() -> None:
        go.set()
        sizes.append(k32.HeapSize(handle, 0, own))

    fired, block = at_step(1, _code(EmulatedHeap.alloc), lambda: k32.HeapAlloc(handle, 0, 40), nested)
    thread.join(10)
    assert fired
    assert sizes == [16], "the holder destroyed the heap while the interrupted allocation was half done"
    assert block and destroyed == [1]
