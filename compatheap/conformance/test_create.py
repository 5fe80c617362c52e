"""HeapCreate, HeapDestroy, GetProcessHeap and GetProcessHeaps."""

from __future__ import annotations

import ctypes
from typing import Any, Iterator, List

import pytest

from compatheap import (
    ERROR_INVALID_HANDLE,
    HEAP_NO_SERIALIZE,
    HEAP_ZERO_MEMORY,
)
from compatheap.conformance._support import fill, read, write

PTR = ctypes.sizeof(ctypes.c_void_p)
UNIT = 0x8000 * PTR
SENTINEL = 0x5EADBEEF
MiB = 1 << 20


def _heaps(k32: Any) -> List[int]:
    """GetProcessHeaps' whole list, sized by a first call."""
    total = k32.GetProcessHeaps(0, None)
    assert total >= 1
    buffer = (ctypes.c_void_p * total)()
    assert k32.GetProcessHeaps(total, buffer) == total
    return [entry or 0 for entry in buffer]


@pytest.fixture
def created(k32: Any) -> Iterator[List[int]]:
    """A list the test appends heaps to; whatever is still alive is destroyed after."""
    handles: List[int] = []
    yield handles
    alive = set(_heaps(k32))
    for handle in handles:
        if handle in alive:
            k32.HeapDestroy(handle)


# -- HeapCreate ---------------------------------------------------------------


def test_default_heap_grows_without_limit(k32: Any, created: List[int]) -> None:
    """HeapCreate(0, 0, 0) is growable: far more than any initial room can be allocated."""
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    created.append(heap)
    blocks = [k32.HeapAlloc(heap, 0, UNIT) for _ in range(64)]
    blocks.append(k32.HeapAlloc(heap, 0, 8 * MiB))
    assert all(blocks)
    for seed, block in enumerate(blocks):
        # Touch both ends of every block: the memory is really there.
        write(block, fill(16, seed))
        last = UNIT if block != blocks[-1] else 8 * MiB
        write(block + last - 16, fill(16, seed))
    for seed, block in enumerate(blocks):
        assert read(block, 16) == fill(16, seed)
    assert k32.HeapDestroy(heap)


def test_initial_size_alone_still_grows(k32: Any, created: List[int]) -> None:
    """A maximum of 0 means growable, whatever the initial size."""
    heap = k32.HeapCreate(0, 0x10000, 0)
    assert heap
    created.append(heap)
    blocks = [k32.HeapAlloc(heap, 0, 0x10000) for _ in range(32)]
    assert all(blocks)
    assert k32.HeapDestroy(heap)


@pytest.mark.parametrize(
    "options, initial, maximum",
    [
        (0, 0, 0),
        (HEAP_NO_SERIALIZE, 0, 0),
        (0, 0x1000, 0),
        (0, 0x40000, 0x40000),
        (0, 0x1000, 0x10000),
        (0, 0, 0x12345),
        (0, 8 * 0x40000, 8 * 0x40000),
    ],
)
def test_handles_are_64k_aligned(k32: Any, created: List[int], options: int, initial: int, maximum: int) -> None:
    """Every heap handle is a multiple of 0x10000, growable or fixed."""
    handles = [k32.HeapCreate(options, initial, maximum) for _ in range(4)]
    created.extend(handles)
    assert all(handles)
    assert len(set(handles)) == len(handles)
    for handle in handles:
        assert handle % 0x10000 == 0
    for handle in handles:
        assert k32.HeapDestroy(handle)


def test_process_heap_is_a_stable_aligned_handle(k32: Any) -> None:
    """GetProcessHeap returns the same 64 KiB-aligned handle every time, and it allocates."""
    process = k32.GetProcessHeap()
    assert process
    assert process % 0x10000 == 0
    assert all(k32.GetProcessHeap() == process for _ in range(10))
    block = k32.HeapAlloc(process, HEAP_ZERO_MEMORY, 64)
    assert block
    assert read(block, 64) == bytes(64)
    assert k32.HeapFree(process, 0, block)


def test_created_heaps_are_not_the_process_heap(k32: Any, created: List[int]) -> None:
    """HeapCreate never hands out the process heap."""
    heap = k32.HeapCreate(0, 0, 0)
    created.append(heap)
    assert heap != k32.GetProcessHeap()
    assert k32.HeapDestroy(heap)


def test_fixed_heap_has_a_limit(k32: Any, created: List[int]) -> None:
    """A nonzero maximum makes the heap fixed-size: it runs out where a growable one would not."""
    heap = k32.HeapCreate(0, 0x10000, 0x10000)
    assert heap
    created.append(heap)
    blocks = []
    for _ in range(64):
        block = k32.HeapAlloc(heap, 0, 0x1000)
        if not block:
            break
        blocks.append(block)
    assert 8 <= len(blocks) < 64
    assert k32.HeapDestroy(heap)


# -- HeapDestroy --------------------------------------------------------------


def test_destroy_with_live_blocks_returns_true(k32: Any, created: List[int]) -> None:
    """HeapDestroy succeeds with small and large blocks still allocated."""
    for maximum in (0, 0x40000):
        heap = k32.HeapCreate(0, 0, maximum)
        created.append(heap)
        sizes = [0, 1, 100, 0x1000] + ([0x200000] if not maximum else [])
        for size in sizes:
            assert k32.HeapAlloc(heap, 0, size)
        result = k32.HeapDestroy(heap)
        assert result
        assert type(result) is int


def test_destroy_refuses_the_process_heap(k32: Any) -> None:
    """HeapDestroy(GetProcessHeap()) fails with ERROR_INVALID_HANDLE; the heap keeps working."""
    process = k32.GetProcessHeap()
    block = k32.HeapAlloc(process, 0, 32)
    write(block, fill(32))
    k32.SetLastError(SENTINEL)
    assert not k32.HeapDestroy(process)
    assert k32.GetLastError() == ERROR_INVALID_HANDLE
    assert read(block, 32) == fill(32)
    assert k32.HeapFree(process, 0, block)
    assert process in _heaps(k32)


@pytest.mark.needs("refuses_bad_pointers")
def test_destroy_twice_fails_with_invalid_handle(k32: Any) -> None:
    """(impl) Destroying an already destroyed heap: FALSE, ERROR_INVALID_HANDLE."""
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapDestroy(heap)
    k32.SetLastError(SENTINEL)
    assert not k32.HeapDestroy(heap)
    assert k32.GetLastError() == ERROR_INVALID_HANDLE


@pytest.mark.needs("refuses_bad_pointers")
@pytest.mark.parametrize("handle", [0x12340000, 0x10, (1 << (8 * PTR)) - 0x10000])
def test_destroy_bogus_handle_fails_with_invalid_handle(k32: Any, handle: int) -> None:
    """(impl) A handle that never was a heap: FALSE, ERROR_INVALID_HANDLE."""
    k32.SetLastError(SENTINEL)
    assert not k32.HeapDestroy(handle)
    assert k32.GetLastError() == ERROR_INVALID_HANDLE


@pytest.mark.needs("refuses_bad_pointers")
def test_block_functions_refuse_a_destroyed_heap(k32: Any) -> None:
    """(impl) After HeapDestroy, HeapAlloc and HeapReAlloc through the handle: ERROR_INVALID_HANDLE."""
    heap = k32.HeapCreate(0, 0, 0)
    block = k32.HeapAlloc(heap, 0, 16)
    assert k32.HeapDestroy(heap)
    k32.SetLastError(SENTINEL)
    assert k32.HeapAlloc(heap, 0, 16) is None
    assert k32.GetLastError() == ERROR_INVALID_HANDLE
    k32.SetLastError(SENTINEL)
    assert k32.HeapReAlloc(heap, 0, block, 32) is None
    assert k32.GetLastError() == ERROR_INVALID_HANDLE


# -- GetProcessHeaps ----------------------------------------------------------


def test_count_only_query(k32: Any) -> None:
    """GetProcessHeaps(0, NULL) returns how many heaps there are, at least the process heap."""
    total = k32.GetProcessHeaps(0, None)
    assert type(total) is int
    assert total >= 1
    assert total == len(_heaps(k32))


def test_entry_zero_is_the_process_heap(k32: Any) -> None:
    """The first entry is GetProcessHeap()."""
    assert _heaps(k32)[0] == k32.GetProcessHeap()


def test_entries_are_distinct_live_heaps(k32: Any) -> None:
    """No heap is listed twice, and each is a 64 KiB-aligned handle."""
    heaps = _heaps(k32)
    assert len(set(heaps)) == len(heaps)
    assert all(handle and handle % 0x10000 == 0 for handle in heaps)


def test_too_small_buffer_is_left_alone(k32: Any, created: List[int]) -> None:
    """With room for fewer than all heaps nothing is written, and the total comes back."""
    created.extend(k32.HeapCreate(0, 0, 0) for _ in range(2))
    total = k32.GetProcessHeaps(0, None)
    for room in range(total):
        buffer = (ctypes.c_void_p * (total + 1))(*([0x5A5A0000] * (total + 1)))
        assert k32.GetProcessHeaps(room, buffer) == total
        assert list(buffer) == [0x5A5A0000] * (total + 1)


def test_big_enough_buffer_is_filled(k32: Any, created: List[int]) -> None:
    """With room for every heap (or more) all entries are written and the total returned."""
    heap = k32.HeapCreate(0, 0, 0)
    created.append(heap)
    total = k32.GetProcessHeaps(0, None)
    for room in (total, total + 3):
        buffer = (ctypes.c_void_p * room)()
        assert k32.GetProcessHeaps(room, buffer) == total
        listed = [entry or 0 for entry in buffer[:total]]
        assert listed[0] == k32.GetProcessHeap()
        assert heap in listed
        assert 0 not in listed


def test_create_adds_and_destroy_removes(k32: Any, created: List[int]) -> None:
    """Each HeapCreate adds its handle to the list, each HeapDestroy takes it out."""
    start = _heaps(k32)
    growable = k32.HeapCreate(0, 0, 0)
    created.append(growable)
    assert len(_heaps(k32)) == len(start) + 1
    fixed = k32.HeapCreate(0, 0x40000, 0x40000)
    created.append(fixed)
    now = _heaps(k32)
    assert len(now) == len(start) + 2
    assert set(now) == set(start) | {growable, fixed}
    assert k32.HeapDestroy(growable)
    now = _heaps(k32)
    assert len(now) == len(start) + 1
    assert growable not in now and fixed in now
    assert k32.HeapDestroy(fixed)
    assert sorted(_heaps(k32)) == sorted(start)


@pytest.mark.wine_deviation("Wine 8 lists new heaps right after the process heap, newest first")
def test_new_heaps_are_appended_in_creation_order(k32: Any, created: List[int]) -> None:
    """New heaps go to the end of the list, oldest first, and the rest keeps its order."""
    start = _heaps(k32)
    handles = [k32.HeapCreate(0, 0, 0) for _ in range(3)]
    created.extend(handles)
    assert _heaps(k32) == start + handles
    # Destroying the middle one closes the gap without reordering.
    assert k32.HeapDestroy(handles[1])
    assert _heaps(k32) == start + [handles[0], handles[2]]
