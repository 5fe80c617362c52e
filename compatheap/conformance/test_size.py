"""HeapSize: the exact requested size, and (SIZE_T)-1 on failure."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compatheap import ERROR_INVALID_PARAMETER, HEAP_NO_SERIALIZE, HEAP_SIZE_FAILURE

PTR = ctypes.sizeof(ctypes.c_void_p)
SIZE_FAILURE = (1 << (8 * PTR)) - 1
SENTINEL = 0x5EADBEEF

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

#: Mostly small sizes, some around page and large-block boundaries.
sizes = st.one_of(
    st.integers(0, 300),
    st.integers(0, 0x3000),
    st.sampled_from([0xFFF, 0x1000, 0x1001, 0xFEFFF, 0xFF000, 0xFF001, 0x100000, 0x100001]),
)


def test_failure_value_is_size_t_minus_one() -> None:
    """The published failure constant is (SIZE_T)-1 for this pointer width."""
    assert HEAP_SIZE_FAILURE == SIZE_FAILURE == ctypes.c_size_t(-1).value


@pytest.mark.parametrize("size", range(49))
def test_small_sizes_are_not_rounded(k32: Any, heap: int, size: int) -> None:
    """Every small request reports itself, not the 2xPTR-rounded capacity."""
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    assert k32.HeapSize(heap, 0, block) == size
    assert k32.HeapFree(heap, 0, block)


@HYPOTHESIS
@given(size=sizes)
def test_size_is_exact_on_growable_heap(k32: Any, heap: int, size: int) -> None:
    """HeapSize returns exactly the requested size, for any size."""
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    try:
        assert k32.HeapSize(heap, 0, block) == size
        assert k32.HeapSize(heap, HEAP_NO_SERIALIZE, block) == size
    finally:
        assert k32.HeapFree(heap, 0, block)


@HYPOTHESIS
@given(size=st.integers(0, 0x8000))
def test_size_is_exact_on_fixed_heap(k32: Any, fixed_heap: int, size: int) -> None:
    """Fixed-size heaps report the requested size too."""
    block = k32.HeapAlloc(fixed_heap, 0, size)
    assert block
    try:
        assert k32.HeapSize(fixed_heap, 0, block) == size
    finally:
        assert k32.HeapFree(fixed_heap, 0, block)


@HYPOTHESIS
@given(size=st.integers(0, 2000))
def test_size_is_exact_on_process_heap(k32: Any, size: int) -> None:
    """The process heap reports the requested size."""
    heap = k32.GetProcessHeap()
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    try:
        assert k32.HeapSize(heap, 0, block) == size
    finally:
        assert k32.HeapFree(heap, 0, block)


@HYPOTHESIS
@given(first=sizes, second=sizes)
def test_size_follows_the_last_realloc(k32: Any, heap: int, first: int, second: int) -> None:
    """After HeapReAlloc the size is the new request, exactly, whether it grew or shrank."""
    block = k32.HeapAlloc(heap, 0, first)
    assert block
    moved = k32.HeapReAlloc(heap, 0, block, second)
    assert moved
    try:
        assert k32.HeapSize(heap, 0, moved) == second
    finally:
        assert k32.HeapFree(heap, 0, moved)


def test_live_blocks_keep_their_own_sizes(k32: Any, heap: int) -> None:
    """Sizes stay per block while neighbours come and go."""
    blocks = {size: k32.HeapAlloc(heap, 0, size) for size in range(1, 200, 3)}
    assert all(blocks.values())
    for size in list(blocks)[::2]:
        assert k32.HeapFree(heap, 0, blocks.pop(size))
    for size, block in blocks.items():
        assert k32.HeapSize(heap, 0, block) == size
        assert k32.HeapFree(heap, 0, block)


def test_success_leaves_last_error(k32: Any, heap: int) -> None:
    """A successful HeapSize does not touch the last error."""
    block = k32.HeapAlloc(heap, 0, 10)
    k32.SetLastError(SENTINEL)
    assert k32.HeapSize(heap, 0, block) == 10
    assert k32.GetLastError() == SENTINEL
    assert k32.HeapFree(heap, 0, block)


@pytest.mark.needs("refuses_bad_pointers")
def test_freed_block_reports_failure(k32: Any, heap: int) -> None:
    """(impl) HeapSize of a freed block: (SIZE_T)-1 and ERROR_INVALID_PARAMETER."""
    block = k32.HeapAlloc(heap, 0, 10)
    assert k32.HeapFree(heap, 0, block)
    k32.SetLastError(SENTINEL)
    assert k32.HeapSize(heap, 0, block) == SIZE_FAILURE
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER


@pytest.mark.needs("refuses_bad_pointers")
def test_foreign_pointer_reports_failure(k32: Any, heap: int) -> None:
    """(impl) A pointer into memory the heap never handed out fails the same way."""
    buffer = ctypes.create_string_buffer(256)
    address = (ctypes.addressof(buffer) + 63) & ~63
    k32.SetLastError(SENTINEL)
    assert k32.HeapSize(heap, 0, address) == SIZE_FAILURE
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER


@pytest.mark.needs("refuses_bad_pointers")
def test_interior_pointer_reports_failure(k32: Any, heap: int) -> None:
    """(impl) A pointer inside a block is not a block."""
    block = k32.HeapAlloc(heap, 0, 64)
    k32.SetLastError(SENTINEL)
    assert k32.HeapSize(heap, 0, block + 2 * PTR) == SIZE_FAILURE
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER
    assert k32.HeapSize(heap, 0, block) == 64
    assert k32.HeapFree(heap, 0, block)


@pytest.mark.needs("refuses_bad_pointers")
def test_other_heaps_block_reports_failure(k32: Any, heap: int, fixed_heap: int) -> None:
    """(impl) A block asked about through the wrong heap handle is unknown to it."""
    block = k32.HeapAlloc(fixed_heap, 0, 24)
    k32.SetLastError(SENTINEL)
    assert k32.HeapSize(heap, 0, block) == SIZE_FAILURE
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER
    assert k32.HeapSize(fixed_heap, 0, block) == 24
    assert k32.HeapFree(fixed_heap, 0, block)


@pytest.mark.needs("refuses_bad_pointers")
def test_null_pointer_reports_failure(k32: Any, heap: int) -> None:
    """(impl) HeapSize(NULL) is not a block either."""
    k32.SetLastError(SENTINEL)
    assert k32.HeapSize(heap, 0, None) == SIZE_FAILURE
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER


@pytest.mark.needs("refuses_bad_pointers")
def test_destroyed_heap_reports_failure(k32: Any) -> None:
    """(impl) HeapSize through a destroyed heap: (SIZE_T)-1 and ERROR_INVALID_PARAMETER."""
    heap = k32.HeapCreate(0, 0, 0)
    block = k32.HeapAlloc(heap, 0, 10)
    assert k32.HeapDestroy(heap)
    k32.SetLastError(SENTINEL)
    assert k32.HeapSize(heap, 0, block) == SIZE_FAILURE
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER
