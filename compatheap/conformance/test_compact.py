"""HeapCompact: the size of the largest free committed block."""

from __future__ import annotations

from typing import Any

import pytest

from compatheap import ERROR_INVALID_HANDLE, HEAP_NO_SERIALIZE, SIZE_MAX


def test_compact_reports_a_size(k32: Any, heap: int) -> None:
    """HeapCompact returns a size (0 allowed), never the failure value, for a working heap."""
    for flags in (0, HEAP_NO_SERIALIZE):
        k32.SetLastError(0)
        result = k32.HeapCompact(heap, flags)
        assert 0 <= result < SIZE_MAX
        assert k32.GetLastError() == 0
    block = k32.HeapAlloc(heap, 0, 100)
    assert block
    assert 0 <= k32.HeapCompact(heap, 0) < SIZE_MAX
    assert k32.HeapValidate(heap, 0, block)  # compacting keeps live blocks


def test_compact_of_process_heap(k32: Any) -> None:
    """The process heap can be compacted too."""
    assert 0 <= k32.HeapCompact(k32.GetProcessHeap(), 0) < SIZE_MAX


@pytest.mark.wine_deviation("HeapCompact is a stub that always returns 0")
def test_largest_free_block_follows_fixed_heap_use(k32: Any, fixed_heap: int) -> None:
    """On a fixed heap the largest free block shrinks when most of the room is taken and grows back on free."""
    empty = k32.HeapCompact(fixed_heap, 0)
    assert 0x30000 < empty <= 0x40000  # nearly the whole 0x40000 bytes are free
    taken = empty * 3 // 4
    block = k32.HeapAlloc(fixed_heap, 0, taken)
    assert block
    crowded = k32.HeapCompact(fixed_heap, 0)
    assert crowded <= empty - taken
    assert k32.HeapFree(fixed_heap, 0, block)
    assert k32.HeapCompact(fixed_heap, 0) == empty


@pytest.mark.wine_deviation("HeapCompact is a stub that always returns 0")
def test_largest_free_block_fits_in_the_room(k32: Any, fixed_heap: int) -> None:
    """What HeapCompact reports is a real free block: somewhat less than that can be allocated at once."""
    largest = k32.HeapCompact(fixed_heap, 0)
    assert largest > 0x100
    block = k32.HeapAlloc(fixed_heap, 0, largest - 0x100)
    assert block
    assert k32.HeapCompact(fixed_heap, 0) < 0x100 + 0x40
    assert k32.HeapFree(fixed_heap, 0, block)


@pytest.mark.needs("refuses_bad_pointers")
def test_compact_of_destroyed_heap_fails(k32: Any) -> None:
    """Compacting a destroyed heap fails: 0 and ERROR_INVALID_HANDLE."""
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapDestroy(heap)
    k32.SetLastError(0)
    assert k32.HeapCompact(heap, 0) == 0
    assert k32.GetLastError() == ERROR_INVALID_HANDLE
