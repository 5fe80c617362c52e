"""The low-fragmentation heap switching itself on, and what changes once it is on."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from compatheap import HEAP_NO_SERIALIZE, PROCESS_HEAP_ENTRY_BUSY, HeapCompatibilityInformation
from compatheap.conformance._support import Held, Worker, walk_full

LFH = 2
#: After this many allocations of one small size a serialised growable heap turns its LFH on.
ACTIVATION = 0x12

#: Wine 8 has none of this.
wine_lacks_it = pytest.mark.wine_deviation("Wine 8 never switches the low-fragmentation heap on by itself")


def _mode(k32: Any, heap: int) -> int:
    value = ctypes.c_uint32(0x5A5A5A5A)
    returned = ctypes.c_size_t(0)
    assert k32.HeapQueryInformation(heap, HeapCompatibilityInformation, ctypes.byref(value), 4, ctypes.byref(returned))
    return value.value


@wine_lacks_it
@pytest.mark.parametrize("size", [0, 24, 100])
def test_lfh_switches_itself_on_after_0x12_allocations_of_one_size(k32: Any, heap: int, size: int) -> None:
    """Each block freed before the next: the 0x12th allocation of the size turns the LFH on."""
    for _ in range(ACTIVATION - 1):
        assert k32.HeapFree(heap, 0, k32.HeapAlloc(heap, 0, size))
    assert _mode(k32, heap) == 0
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    assert _mode(k32, heap) == LFH
    assert k32.HeapFree(heap, 0, block)


def test_lfh_stays_off_on_an_unserialised_heap(k32: Any) -> None:
    heap = k32.HeapCreate(HEAP_NO_SERIALIZE, 0, 0)
    assert heap
    try:
        blocks = [k32.HeapAlloc(heap, 0, 32) for _ in range(4 * ACTIVATION)]
        assert all(blocks)
        assert _mode(k32, heap) == 0
    finally:
        assert k32.HeapDestroy(heap)


@wine_lacks_it
def test_lfh_blocks_are_walked_with_overhead_8(k32: Any, heap: int) -> None:
    for _ in range(ACTIVATION):
        assert k32.HeapFree(heap, 0, k32.HeapAlloc(heap, 0, 40))
    assert _mode(k32, heap) == LFH
    block = k32.HeapAlloc(heap, 0, 40)
    assert block
    entry = next(e for e in walk_full(k32, heap) if e[0] == block)
    assert entry[4] == PROCESS_HEAP_ENTRY_BUSY and entry[1] == 40
    assert entry[2] == 8
    assert k32.HeapFree(heap, 0, block)


@wine_lacks_it
def test_heap_lock_does_not_hold_up_lfh_allocations(k32: Any, heap: int) -> None:
    """Once the LFH is on, another thread's plain HeapAlloc of a size it serves goes
    through while the heap is locked; another thread's HeapLock still waits."""
    for _ in range(ACTIVATION):
        assert k32.HeapFree(heap, 0, k32.HeapAlloc(heap, 0, 64))
    assert _mode(k32, heap) == LFH
    held = Held(k32, heap)
    held.lock()
    try:
        allocation = Worker(lambda: k32.HeapAlloc(heap, 0, 64))
        block = allocation.assert_finishes()
        assert block
        assert held.depth == 1
        locker = Worker(lambda: k32.HeapLock(heap) and k32.HeapUnlock(heap))
        locker.assert_waiting()
    finally:
        held.release_all()
    assert locker.assert_finishes()
    assert k32.HeapFree(heap, 0, block)
