"""HeapQueryInformation and HeapSetInformation (compatibility mode, corruption policy)."""

from __future__ import annotations

import ctypes
from typing import Any, Optional, Tuple

import pytest

from compatheap import (
    ERROR_GEN_FAILURE,
    ERROR_INSUFFICIENT_BUFFER,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOACCESS,
    HEAP_NO_SERIALIZE,
    HeapCompatibilityInformation,
    HeapEnableTerminationOnCorruption,
)

#: Any value no heap function would set as last error.
MARK = 0x1BADBEEF
#: What a query's buffer holds before the call, to see whether it was written.
UNTOUCHED = 0x5A5A5A5A
LFH = 2


def _query(k32: Any, heap: Optional[int], length: int = 4) -> Tuple[int, int, int, int]:
    """``(result, last error, value, return length)`` of a compatibility query."""
    value = ctypes.c_uint32(UNTOUCHED)
    returned = ctypes.c_size_t(77)
    k32.SetLastError(MARK)
    result = k32.HeapQueryInformation(
        heap, HeapCompatibilityInformation, ctypes.byref(value), length, ctypes.byref(returned)
    )
    return result, k32.GetLastError(), value.value, returned.value


def _set(k32: Any, heap: Optional[int], mode: int) -> Tuple[int, int]:
    """``(result, last error)`` of setting the compatibility mode."""
    value = ctypes.c_uint32(mode)
    k32.SetLastError(MARK)
    result = k32.HeapSetInformation(heap, HeapCompatibilityInformation, ctypes.byref(value), 4)
    return result, k32.GetLastError()


def _new_mode(k32: Any, heap: int) -> int:
    result, _, value, length = _query(k32, heap)
    assert result and length == 4
    return value


def test_new_heap_is_standard(k32: Any, heap: int, fixed_heap: int) -> None:
    """A new heap, growable or fixed, reports compatibility mode 0 in 4 bytes."""
    for handle in (heap, fixed_heap):
        result, _, value, length = _query(k32, handle)
        assert result
        assert value == 0
        assert length == 4


def test_larger_buffer_is_fine(k32: Any, heap: int) -> None:
    """A buffer larger than 4 bytes is accepted."""
    value = (ctypes.c_uint32 * 2)(UNTOUCHED, UNTOUCHED)
    assert k32.HeapQueryInformation(heap, HeapCompatibilityInformation, value, 8, None)
    assert value[0] == 0


def test_null_buffer_is_too_small(k32: Any, heap: int) -> None:
    """A NULL buffer: FALSE, ERROR_INSUFFICIENT_BUFFER, and the needed length 4 is reported."""
    returned = ctypes.c_size_t(0)
    k32.SetLastError(MARK)
    assert not k32.HeapQueryInformation(heap, HeapCompatibilityInformation, None, 0, ctypes.byref(returned))
    assert k32.GetLastError() == ERROR_INSUFFICIENT_BUFFER
    assert returned.value == 4
    k32.SetLastError(MARK)
    assert not k32.HeapQueryInformation(heap, HeapCompatibilityInformation, None, 0, None)
    assert k32.GetLastError() == ERROR_INSUFFICIENT_BUFFER


@pytest.mark.parametrize("length", [0, 1, 3])
def test_short_buffer_is_too_small(k32: Any, heap: int, length: int) -> None:
    """A buffer under 4 bytes: FALSE, ERROR_INSUFFICIENT_BUFFER, length 4 reported, buffer left alone."""
    buffer = (ctypes.c_uint8 * 3)(0xA1, 0xA2, 0xA3)
    returned = ctypes.c_size_t(0)
    k32.SetLastError(MARK)
    assert not k32.HeapQueryInformation(heap, HeapCompatibilityInformation, buffer, length, ctypes.byref(returned))
    assert k32.GetLastError() == ERROR_INSUFFICIENT_BUFFER
    assert returned.value == 4
    assert list(buffer) == [0xA1, 0xA2, 0xA3]


@pytest.mark.wine_deviation("HeapQueryInformation ignores the heap handle")
def test_null_heap_query_fails(k32: Any) -> None:
    """Querying the NULL heap: FALSE and ERROR_NOACCESS, nothing written."""
    result, error, value, length = _query(k32, None)
    assert not result
    assert error == ERROR_NOACCESS
    assert value == UNTOUCHED
    assert length == 77


def test_setting_lfh_succeeds(k32: Any, heap: int) -> None:
    """Switching a serialised heap to the low-fragmentation heap (2) succeeds."""
    result, _ = _set(k32, heap, LFH)
    assert result
    # The heap keeps working as before.
    block = k32.HeapAlloc(heap, 0, 40)
    assert block
    assert k32.HeapSize(heap, 0, block) == 40
    assert k32.HeapFree(heap, 0, block)


@pytest.mark.wine_deviation("queries report 0 after LFH was set")
def test_lfh_is_reported_after_setting_it(k32: Any, heap: int) -> None:
    """After setting mode 2, queries report 2."""
    assert _new_mode(k32, heap) == 0
    assert _set(k32, heap, LFH)[0]
    assert _new_mode(k32, heap) == LFH


@pytest.mark.wine_deviation("HeapSetInformation accepts any mode")
def test_lfh_cannot_be_undone(k32: Any, heap: int) -> None:
    """Once a heap is LFH, setting 0 or 1 fails with ERROR_GEN_FAILURE and the mode stays 2."""
    assert _set(k32, heap, LFH)[0]
    for mode in (0, 1):
        assert _set(k32, heap, mode) == (0, ERROR_GEN_FAILURE)
    assert _new_mode(k32, heap) == LFH


@pytest.mark.wine_deviation("HeapSetInformation accepts any mode on any heap")
def test_lfh_refused_on_unserialised_heap(k32: Any) -> None:
    """A HEAP_NO_SERIALIZE heap cannot become LFH: FALSE, ERROR_INVALID_PARAMETER, mode stays 0."""
    heap = k32.HeapCreate(HEAP_NO_SERIALIZE, 0, 0)
    assert heap
    try:
        assert _set(k32, heap, LFH) == (0, ERROR_INVALID_PARAMETER)
        assert _new_mode(k32, heap) == 0
    finally:
        assert k32.HeapDestroy(heap)


def test_termination_on_corruption_is_accepted(k32: Any, heap: int) -> None:
    """HeapEnableTerminationOnCorruption (a process-wide setting, NULL handle) is accepted."""
    assert k32.HeapSetInformation(None, HeapEnableTerminationOnCorruption, None, 0)
    assert _new_mode(k32, heap) == 0  # it does not change the compatibility mode


@pytest.mark.needs("refuses_bad_pointers")
def test_destroyed_heap_information(k32: Any) -> None:
    """A destroyed heap: setting fails with ERROR_INVALID_HANDLE, querying with ERROR_NOACCESS."""
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapDestroy(heap)
    assert _set(k32, heap, LFH) == (0, ERROR_INVALID_HANDLE)
    result, error, value, _ = _query(k32, heap)
    assert (result, error, value) == (0, ERROR_NOACCESS, UNTOUCHED)
