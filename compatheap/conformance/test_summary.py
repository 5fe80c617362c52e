"""HeapSummary: the structure's size check and the totals it reports."""

from __future__ import annotations

import ctypes
from typing import Any, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compatheap import ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER, HEAP_SUMMARY

_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SUMMARY_SIZE = ctypes.sizeof(HEAP_SUMMARY)


def _summary(k32: Any, heap: int) -> HEAP_SUMMARY:
    summary = HEAP_SUMMARY()
    summary.cb = SUMMARY_SIZE
    assert k32.HeapSummary(heap, 0, ctypes.byref(summary))
    return summary


def _check_totals(summary: HEAP_SUMMARY, allocated: int) -> None:
    assert summary.cb == SUMMARY_SIZE
    assert summary.cbAllocated == allocated
    assert summary.cbCommitted >= summary.cbAllocated
    assert summary.cbReserved >= summary.cbCommitted


@pytest.mark.needs("heap_summary")
def test_summary_size_is_checked(k32: Any, heap: int) -> None:
    """HeapSummary refuses a structure whose cb is not sizeof(HEAP_SUMMARY): FALSE, ERROR_INVALID_PARAMETER."""
    for cb in (0, SUMMARY_SIZE - 1, SUMMARY_SIZE + 1, 8, 0xFFFFFFFF):
        summary = HEAP_SUMMARY()
        summary.cb = cb
        k32.SetLastError(0)
        assert not k32.HeapSummary(heap, 0, ctypes.byref(summary))
        assert k32.GetLastError() == ERROR_INVALID_PARAMETER


@pytest.mark.needs("heap_summary")
def test_fresh_heap_has_nothing_allocated(k32: Any, heap: int) -> None:
    """A new heap reports no allocated bytes, and commits no more than it reserves."""
    _check_totals(_summary(k32, heap), 0)


@pytest.mark.needs("heap_summary")
def test_allocated_is_sum_of_requested_sizes(k32: Any, heap: int) -> None:
    """cbAllocated follows allocations, reallocations and frees, byte for byte."""
    a = k32.HeapAlloc(heap, 0, 10)
    b = k32.HeapAlloc(heap, 0, 0x200000)  # a large block counts too
    assert a and b
    _check_totals(_summary(k32, heap), 10 + 0x200000)
    a = k32.HeapReAlloc(heap, 0, a, 3000)
    assert a
    _check_totals(_summary(k32, heap), 3000 + 0x200000)
    assert k32.HeapFree(heap, 0, b)
    _check_totals(_summary(k32, heap), 3000)
    assert k32.HeapFree(heap, 0, a)
    _check_totals(_summary(k32, heap), 0)


@pytest.mark.needs("heap_summary")
def test_fixed_heap_totals(k32: Any, fixed_heap: int) -> None:
    """A fixed heap's summary counts its blocks and stays within its reservation."""
    blocks = [k32.HeapAlloc(fixed_heap, 0, n) for n in (1, 2, 3, 0x8000)]
    assert all(blocks)
    summary = _summary(k32, fixed_heap)
    _check_totals(summary, 1 + 2 + 3 + 0x8000)
    assert summary.cbReserved >= 0x40000


@_SETTINGS
@given(ops=st.lists(st.tuples(st.integers(0, 0x3000), st.booleans()), min_size=1, max_size=15))
@pytest.mark.needs("heap_summary")
def test_allocated_matches_live_blocks(k32: Any, ops: List[Tuple[int, bool]]) -> None:
    """For any mix of allocations and frees, cbAllocated is the sum of the live blocks' sizes."""
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    try:
        live = {}
        for size, free_it in ops:
            block = k32.HeapAlloc(heap, 0, size)
            assert block
            if free_it:
                assert k32.HeapFree(heap, 0, block)
            else:
                live[block] = size
            _check_totals(_summary(k32, heap), sum(live.values()))
    finally:
        assert k32.HeapDestroy(heap)


@pytest.mark.needs("refuses_bad_pointers")
def test_summary_of_destroyed_heap_fails(k32: Any) -> None:
    """Summarising a destroyed heap fails with ERROR_INVALID_HANDLE."""
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapDestroy(heap)
    summary = HEAP_SUMMARY()
    summary.cb = SUMMARY_SIZE
    k32.SetLastError(0)
    assert not k32.HeapSummary(heap, 0, ctypes.byref(summary))
    assert k32.GetLastError() == ERROR_INVALID_HANDLE
