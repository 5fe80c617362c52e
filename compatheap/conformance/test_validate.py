"""HeapValidate: whole heaps and single blocks."""

from __future__ import annotations

import ctypes
from typing import Any, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compatheap import (
    ERROR_INVALID_HANDLE,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_REALLOC_IN_PLACE_ONLY,
    SIZE_MAX,
)

#: Any value no heap function would set as last error.
MARK = 0x1BADBEEF  # below 2**31: ctypes.set_last_error takes a C int

_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _foreign_pointer(buffer: Any) -> int:
    """A 64-byte aligned address inside a static buffer: no heap ever returned it."""
    return (ctypes.addressof(buffer) & ~63) + 64


def test_healthy_heap_validates_without_touching_last_error(k32: Any, heap: int) -> None:
    """HeapValidate(h, 0, NULL) is TRUE for a healthy heap and leaves the last error alone."""
    k32.SetLastError(MARK)
    assert k32.HeapValidate(heap, 0, None)
    assert k32.GetLastError() == MARK
    blocks = [k32.HeapAlloc(heap, 0, size) for size in (0, 1, 24, 1000, 0x200000)]
    assert all(blocks)
    k32.SetLastError(MARK)
    assert k32.HeapValidate(heap, 0, None)
    assert k32.GetLastError() == MARK
    for block in blocks[::2]:
        assert k32.HeapFree(heap, 0, block)
    k32.SetLastError(MARK)
    assert k32.HeapValidate(heap, 0, None)
    assert k32.GetLastError() == MARK


def test_fixed_and_process_heaps_validate(k32: Any, fixed_heap: int) -> None:
    """A fixed heap and the process heap validate as wholes."""
    block = k32.HeapAlloc(fixed_heap, 0, 300)
    assert block
    k32.SetLastError(MARK)
    assert k32.HeapValidate(fixed_heap, 0, None)
    assert k32.GetLastError() == MARK
    assert k32.HeapValidate(k32.GetProcessHeap(), 0, None)
    assert k32.GetLastError() == MARK


def test_live_block_validates(k32: Any, heap: int) -> None:
    """A pointer to a live block validates TRUE, for small and large blocks."""
    for size in (0, 1, 123, 0x200000):
        block = k32.HeapAlloc(heap, 0, size)
        assert block
        assert k32.HeapValidate(heap, 0, block)
        assert k32.HeapFree(heap, 0, block)


def test_block_stays_valid_after_failed_realloc(k32: Any, heap: int) -> None:
    """A block whose HeapReAlloc failed is still a valid block."""
    block = k32.HeapAlloc(heap, 0, 0)
    assert block
    for size in (SIZE_MAX, SIZE_MAX - 7):
        assert not k32.HeapReAlloc(heap, 0, block, size)
        assert k32.HeapValidate(heap, 0, block)
    assert k32.HeapValidate(heap, 0, None)
    assert k32.HeapFree(heap, 0, block)


def test_block_stays_valid_after_failed_in_place_growth(k32: Any, fixed_heap: int) -> None:
    """An in-place-only growth that cannot be done leaves a valid block behind."""
    first = k32.HeapAlloc(fixed_heap, 0, 64)
    wall = k32.HeapAlloc(fixed_heap, 0, 64)  # keeps the first block from growing in place
    assert first and wall
    k32.SetLastError(0)
    assert not k32.HeapReAlloc(fixed_heap, HEAP_REALLOC_IN_PLACE_ONLY, first, 0x20000)
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    assert k32.HeapValidate(fixed_heap, 0, first)
    assert k32.HeapValidate(fixed_heap, 0, None)


def test_freed_block_does_not_validate(k32: Any, heap: int) -> None:
    """A freed block's pointer validates FALSE, and the last error stays as it was."""
    block = k32.HeapAlloc(heap, 0, 0)
    keep = k32.HeapAlloc(heap, 0, 16)  # so the freed block is not simply the whole heap
    assert block and keep
    assert k32.HeapFree(heap, 0, block)
    k32.SetLastError(MARK)
    assert not k32.HeapValidate(heap, 0, block)
    assert k32.GetLastError() == MARK


def test_foreign_pointer_does_not_validate(k32: Any, heap: int) -> None:
    """A pointer into a static buffer, never returned by the heap, validates FALSE; last error untouched."""
    buffer = ctypes.create_string_buffer(512)
    k32.SetLastError(MARK)
    assert not k32.HeapValidate(heap, 0, _foreign_pointer(buffer))
    assert k32.GetLastError() == MARK


@_SETTINGS
@given(ops=st.lists(st.tuples(st.integers(0, 5000), st.booleans()), min_size=1, max_size=12))
def test_validate_tracks_live_and_freed_blocks(k32: Any, ops: List[Tuple[int, bool]]) -> None:
    """After any mix of allocations and frees, exactly the live blocks validate."""
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    try:
        live: List[int] = []
        freed: List[int] = []
        for size, free_it in ops:
            block = k32.HeapAlloc(heap, 0, size)
            assert block
            if free_it:
                assert k32.HeapFree(heap, 0, block)
                freed.append(block)
            else:
                live.append(block)
        assert k32.HeapValidate(heap, 0, None)
        for block in live:
            assert k32.HeapValidate(heap, 0, block)
        for block in set(freed) - set(live):  # an address may have been handed out again
            assert not k32.HeapValidate(heap, 0, block)
    finally:
        assert k32.HeapDestroy(heap)


@pytest.mark.needs("refuses_bad_pointers")
def test_destroyed_heap_does_not_validate(k32: Any) -> None:
    """Validating a destroyed heap fails with ERROR_INVALID_HANDLE."""
    heap = k32.HeapCreate(0, 0, 0)
    block = k32.HeapAlloc(heap, 0, 10)
    assert k32.HeapDestroy(heap)
    for pointer in (None, block):
        k32.SetLastError(0)
        assert not k32.HeapValidate(heap, 0, pointer)
        assert k32.GetLastError() == ERROR_INVALID_HANDLE


@pytest.mark.needs("refuses_bad_pointers")
def test_bogus_handle_does_not_validate(k32: Any) -> None:
    """Validating something that is not a heap handle fails with ERROR_INVALID_HANDLE."""
    buffer = ctypes.create_string_buffer(256)
    for bogus in (_foreign_pointer(buffer), 0x7FFF0000, None):
        k32.SetLastError(0)
        assert not k32.HeapValidate(bogus, 0, None)
        assert k32.GetLastError() == ERROR_INVALID_HANDLE
