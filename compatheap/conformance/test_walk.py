"""HeapWalk: the shape of a walk and how it follows allocations."""

from __future__ import annotations

import ctypes
from typing import Any, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import compatheap
from compatheap import (
    ERROR_INVALID_HANDLE,
    ERROR_NO_MORE_ITEMS,
    PROCESS_HEAP_ENTRY_BUSY,
    PROCESS_HEAP_REGION,
    PROCESS_HEAP_UNCOMMITTED_RANGE,
)
from compatheap.conformance._support import WalkEntry, busy_blocks, walk_full

#: Comfortably above the large-block threshold (0xFF000 [0x7EFF0]).
LARGE = 5 * 0x8000 * ctypes.sizeof(ctypes.c_void_p)

_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _index_of(entries: List[WalkEntry], flag: int) -> int:
    return next(i for i, e in enumerate(entries) if e[4] & flag)


def test_walk_ends_with_no_more_items(k32: Any, heap: int) -> None:
    """A walk starts from lpData NULL and ends with FALSE and ERROR_NO_MORE_ITEMS."""
    entry = compatheap.PROCESS_HEAP_ENTRY()
    entry.lpData = None
    k32.SetLastError(0x1BADBEEF)
    count = 0
    while k32.HeapWalk(heap, ctypes.byref(entry)):
        count += 1
        assert count < 10_000
    assert count > 0
    assert k32.GetLastError() == ERROR_NO_MORE_ITEMS


def test_fresh_heap_is_region_free_block_uncommitted_range(k32: Any, heap: int) -> None:
    """A new growable heap walks as its region, one free block and its uncommitted range."""
    entries = walk_full(k32, heap)
    assert len(entries) == 3
    (r_data, r_size, r_overhead, r_index, r_flags, region), free, uncommitted = entries

    assert r_flags == PROCESS_HEAP_REGION
    assert r_data == heap
    assert r_overhead == 0 and r_index == 0
    assert 0 < r_size <= 0x1000  # the heap's own header
    assert region is not None
    committed, reserve, first, last = region
    assert committed > 0 and reserve > 0
    assert heap < first < heap + committed

    assert free[4] == 0  # a free block has no flag at all
    assert heap + r_size <= free[0] < heap + committed
    assert free[1] > 0 and free[2] > 0
    # It runs up to the uncommitted range, its overhead counted on both sides.
    assert free[0] + free[1] + 2 * free[2] == uncommitted[0]

    assert uncommitted[4] == PROCESS_HEAP_UNCOMMITTED_RANGE
    assert uncommitted[0] == heap + committed
    assert 0 < uncommitted[1] <= reserve
    assert uncommitted[2] == 0
    # The region's last block is where its address range ends.
    assert last == uncommitted[0] + uncommitted[1]


@_SETTINGS
@given(sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=8), keep=st.lists(st.booleans(), min_size=8))
def test_busy_blocks_are_listed_with_their_requested_size(k32: Any, sizes: List[int], keep: List[bool]) -> None:
    """Each live block shows up once as a busy entry: its pointer, its exact requested size, in address order."""
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    try:
        live = {}
        for size, kept in zip(sizes, keep):
            block = k32.HeapAlloc(heap, 0, size)
            assert block
            if kept:
                live[block] = size
            else:
                assert k32.HeapFree(heap, 0, block)
        entries = walk_full(k32, heap)
        busy = [e for e in entries if e[4] & PROCESS_HEAP_ENTRY_BUSY]
        assert busy_blocks(entries) == live
        assert len(busy) == len(live)
        for entry in busy:
            assert entry[4] == PROCESS_HEAP_ENTRY_BUSY
        addresses = [e[0] for e in busy]
        assert addresses == sorted(addresses)
        # Small blocks sit inside the first region, before its uncommitted range.
        assert entries[0][4] == PROCESS_HEAP_REGION
        end = _index_of(entries, PROCESS_HEAP_UNCOMMITTED_RANGE)
        assert all(0 < entries.index(e) < end for e in busy)
    finally:
        assert k32.HeapDestroy(heap)


@pytest.mark.wine_deviation("Wine 8 commits a new heap's whole first region")
def test_new_growable_heap_region_figures(k32: Any, heap: int) -> None:
    """HeapCreate(0, 0, 0) reserves 0x10000 bytes and commits 0x400 pointers' worth; the
    uncommitted range starts where the committed part ends and leaves out the last page;
    a free entry's overhead is 4 pointers, the range's 0."""
    ptr = ctypes.sizeof(ctypes.c_void_p)
    region, free, uncommitted = walk_full(k32, heap)
    figures = region[5]
    assert figures is not None
    committed, reserve, _, last = figures
    assert committed == 0x400 * ptr
    assert committed + reserve == 0x10000
    assert uncommitted[0] == heap + committed
    assert uncommitted[1] == reserve - 0x1000
    assert uncommitted[2] == 0
    assert last == uncommitted[0] + uncommitted[1]
    assert free[2] == 4 * ptr


def test_large_blocks_follow_the_regions(k32: Any, heap: int) -> None:
    """Large blocks are listed after every region entry, in allocation order; freeing them restores the walk."""
    before = walk_full(k32, heap)
    first = k32.HeapAlloc(heap, compatheap.HEAP_ZERO_MEMORY, LARGE)
    assert first
    during_one = walk_full(k32, heap)
    assert during_one[: len(before)] == before
    assert len(during_one) == len(before) + 1

    second = k32.HeapAlloc(heap, compatheap.HEAP_ZERO_MEMORY, LARGE)
    assert second
    during = walk_full(k32, heap)
    assert during[: len(during_one)] == during_one
    tail = during[len(before) :]
    assert [(e[0], e[1], e[4]) for e in tail] == [
        (first, LARGE, PROCESS_HEAP_ENTRY_BUSY),
        (second, LARGE, PROCESS_HEAP_ENTRY_BUSY),
    ]
    last_region = max(i for i, e in enumerate(during) if e[4] & PROCESS_HEAP_REGION)
    assert last_region < len(before)

    assert k32.HeapFree(heap, 0, second)
    assert k32.HeapFree(heap, 0, first)
    assert walk_full(k32, heap) == before


def test_large_blocks_have_region_index_64(k32: Any, heap: int) -> None:
    """A large block's entry carries iRegionIndex 64 and no overhead beyond its own region."""
    block = k32.HeapAlloc(heap, 0, LARGE)
    assert block
    try:
        entry = next(e for e in walk_full(k32, heap) if e[0] == block)
        assert entry[3] == 64
        assert entry[2] == 0
    finally:
        assert k32.HeapFree(heap, 0, block)


def test_walk_of_fixed_heap(k32: Any, fixed_heap: int) -> None:
    """A fixed heap walks as one region holding its busy blocks; freeing them all restores the first walk."""
    before = walk_full(k32, fixed_heap)
    assert before[0][4] == PROCESS_HEAP_REGION
    assert before[0][0] == fixed_heap
    assert 0 < before[0][1] <= 0x1000  # the heap's own header
    assert not busy_blocks(before)
    region = before[0][5]
    assert region is not None
    room_end = fixed_heap + region[0] + region[1]

    blocks = {}
    for size in (1, 100, 0, 4000, 33):
        block = k32.HeapAlloc(fixed_heap, 0, size)
        assert block
        blocks[block] = size
    during = walk_full(k32, fixed_heap)
    assert busy_blocks(during) == blocks
    busy = [e[0] for e in during if e[4] & PROCESS_HEAP_ENTRY_BUSY]
    assert busy == sorted(busy)
    assert all(fixed_heap < address < room_end for address in busy)
    assert sum(1 for e in during if e[4] & PROCESS_HEAP_REGION) == 1

    for block in blocks:
        assert k32.HeapFree(fixed_heap, 0, block)
    assert walk_full(k32, fixed_heap) == before


def test_walk_of_process_heap(k32: Any) -> None:
    """The process heap can be walked too; its first entry is its region."""
    process = k32.GetProcessHeap()
    assert k32.HeapLock(process)
    try:
        entries = walk_full(k32, process)
    finally:
        assert k32.HeapUnlock(process)
    assert entries[0][4] == PROCESS_HEAP_REGION
    assert entries[0][0] == process


@pytest.mark.needs("refuses_bad_pointers")
def test_walk_of_destroyed_heap_fails(k32: Any) -> None:
    """Walking a destroyed heap fails with ERROR_INVALID_HANDLE."""
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapDestroy(heap)
    entry = compatheap.PROCESS_HEAP_ENTRY()
    k32.SetLastError(0)
    assert not k32.HeapWalk(heap, ctypes.byref(entry))
    assert k32.GetLastError() == ERROR_INVALID_HANDLE


@pytest.mark.needs("refuses_bad_pointers")
def test_walk_of_bogus_handle_fails(k32: Any) -> None:
    """Walking something that is not a heap handle fails with ERROR_INVALID_HANDLE."""
    buffer = ctypes.create_string_buffer(64)
    entry = compatheap.PROCESS_HEAP_ENTRY()
    for bogus in (ctypes.addressof(buffer), 0x7FFF0000, None):
        k32.SetLastError(0)
        assert not k32.HeapWalk(bogus, ctypes.byref(entry))
        assert k32.GetLastError() == ERROR_INVALID_HANDLE
