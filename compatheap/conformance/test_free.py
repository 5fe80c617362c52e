"""HeapFree, and whole alloc/free/realloc lifecycles keeping contents intact."""

from __future__ import annotations

import ctypes
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compatheap import ERROR_INVALID_PARAMETER, ERROR_NOT_ENOUGH_MEMORY, HEAP_NO_SERIALIZE
from compatheap.conformance._support import fill, pattern, read, write

PTR = ctypes.sizeof(ctypes.c_void_p)
SENTINEL = 0x5EADBEEF


def _heap_still_works(k32: Any, heap: int) -> None:
    assert k32.HeapValidate(heap, 0, None)
    block = k32.HeapAlloc(heap, 0, 48)
    assert block
    write(block, pattern(48))
    assert read(block, 48) == pattern(48)
    assert k32.HeapFree(heap, 0, block)


def test_free_returns_true(k32: Any, heap: int) -> None:
    """Freeing a live block succeeds; the result is a true BOOL."""
    block = k32.HeapAlloc(heap, 0, 100)
    result = k32.HeapFree(heap, 0, block)
    assert result
    assert type(result) is int


def test_free_leaves_last_error(k32: Any, heap: int) -> None:
    """A successful HeapFree does not touch the last error."""
    block = k32.HeapAlloc(heap, 0, 100)
    k32.SetLastError(SENTINEL)
    assert k32.HeapFree(heap, 0, block)
    assert k32.GetLastError() == SENTINEL


def test_freed_block_is_no_longer_valid(k32: Any, heap: int) -> None:
    """After HeapFree the pointer is no block of the heap (HeapValidate FALSE)."""
    block = k32.HeapAlloc(heap, 0, 100)
    assert k32.HeapValidate(heap, 0, block)
    assert k32.HeapFree(heap, 0, block)
    assert not k32.HeapValidate(heap, 0, block)
    assert k32.HeapValidate(heap, 0, None)


@pytest.mark.parametrize("which", ["own", "fixed", "process", "NULL"])
def test_free_null_is_true_for_any_heap(k32: Any, heap: int, fixed_heap: int, which: str) -> None:
    """HeapFree(h, 0, NULL) returns TRUE whatever h is, even a NULL handle."""
    handle = {"own": heap, "fixed": fixed_heap, "process": k32.GetProcessHeap(), "NULL": None}[which]
    assert k32.HeapFree(handle, 0, None)
    assert k32.HeapFree(handle, 0, 0)
    assert k32.HeapFree(handle, HEAP_NO_SERIALIZE, None)


def test_free_null_is_true_for_destroyed_heap(k32: Any) -> None:
    """A NULL pointer is checked before the handle: TRUE even on a destroyed heap."""
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapDestroy(heap)
    assert k32.HeapFree(heap, 0, None)


@pytest.mark.parametrize("size", [0, 1, 1000, 0x10000, 0x100000])
def test_free_on_each_kind_of_block(k32: Any, heap: int, size: int) -> None:
    """Empty, small, medium and large blocks are all freed by HeapFree."""
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    write(block, pattern(size))
    assert k32.HeapFree(heap, 0, block)
    _heap_still_works(k32, heap)


def test_freed_room_is_reused(k32: Any, fixed_heap: int) -> None:
    """Freeing lets a full fixed heap allocate again."""
    blocks = []
    while True:
        block = k32.HeapAlloc(fixed_heap, 0, 0x800)
        if not block:
            break
        blocks.append(block)
    assert blocks
    assert k32.HeapFree(fixed_heap, 0, blocks.pop())
    again = k32.HeapAlloc(fixed_heap, 0, 0x800)
    assert again
    for block in blocks + [again]:
        assert k32.HeapFree(fixed_heap, 0, block)


# -- bad pointers: safety promises of the emulation ---------------------------


def _assert_refused(k32: Any, heap: int, pointer: int) -> None:
    k32.SetLastError(SENTINEL)
    assert not k32.HeapFree(heap, 0, pointer)
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER
    _heap_still_works(k32, heap)


@pytest.mark.needs("refuses_bad_pointers")
def test_double_free_is_refused(k32: Any, heap: int) -> None:
    """(impl) Freeing a block twice: FALSE, ERROR_INVALID_PARAMETER, heap unharmed."""
    keep = k32.HeapAlloc(heap, 0, 32)
    write(keep, pattern(32))
    block = k32.HeapAlloc(heap, 0, 32)
    assert k32.HeapFree(heap, 0, block)
    _assert_refused(k32, heap, block)
    assert read(keep, 32) == pattern(32)
    assert k32.HeapFree(heap, 0, keep)


@pytest.mark.needs("refuses_bad_pointers")
def test_double_free_of_large_block_is_refused(k32: Any, heap: int) -> None:
    """(impl) The same holds for a block with its own mapping."""
    block = k32.HeapAlloc(heap, 0, 0x200000)
    assert k32.HeapFree(heap, 0, block)
    _assert_refused(k32, heap, block)


@pytest.mark.needs("refuses_bad_pointers")
def test_double_free_on_fixed_heap_is_refused(k32: Any, fixed_heap: int) -> None:
    """(impl) A fixed heap refuses a double free and its room stays consistent."""
    block = k32.HeapAlloc(fixed_heap, 0, 0x1000)
    assert k32.HeapFree(fixed_heap, 0, block)
    _assert_refused(k32, fixed_heap, block)
    # A double free that had been accepted would let two blocks share memory.
    first = k32.HeapAlloc(fixed_heap, 0, 0x1000)
    second = k32.HeapAlloc(fixed_heap, 0, 0x1000)
    assert first and second and first != second
    write(first, pattern(0x1000, 1))
    write(second, pattern(0x1000, 2))
    assert read(first, 0x1000) == pattern(0x1000, 1)
    assert k32.HeapFree(fixed_heap, 0, first)
    assert k32.HeapFree(fixed_heap, 0, second)


@pytest.mark.needs("refuses_bad_pointers")
def test_foreign_pointer_is_refused(k32: Any, heap: int) -> None:
    """(impl) A pointer into a static buffer is not freed, and the buffer is untouched."""
    buffer = ctypes.create_string_buffer(pattern(256), 256)
    address = (ctypes.addressof(buffer) + 63) & ~63
    _assert_refused(k32, heap, address)
    assert buffer.raw == pattern(256)


@pytest.mark.needs("refuses_bad_pointers")
@pytest.mark.parametrize("offset", [1, 2 * PTR, 64])
def test_interior_pointer_is_refused(k32: Any, heap: int, offset: int) -> None:
    """(impl) A pointer inside a live block is refused; the block itself stays live."""
    block = k32.HeapAlloc(heap, 0, 128)
    write(block, pattern(128))
    _assert_refused(k32, heap, block + offset)
    assert k32.HeapValidate(heap, 0, block)
    assert read(block, 128) == pattern(128)
    assert k32.HeapFree(heap, 0, block)


@pytest.mark.needs("refuses_bad_pointers")
def test_other_heaps_block_is_refused(k32: Any, heap: int, fixed_heap: int) -> None:
    """(impl) A block freed through the wrong heap is refused and stays live in its own."""
    block = k32.HeapAlloc(fixed_heap, 0, 40)
    write(block, pattern(40))
    _assert_refused(k32, heap, block)
    other = k32.HeapAlloc(heap, 0, 40)
    _assert_refused(k32, fixed_heap, other)
    assert k32.HeapValidate(fixed_heap, 0, block)
    assert read(block, 40) == pattern(40)
    assert k32.HeapFree(fixed_heap, 0, block)
    assert k32.HeapFree(heap, 0, other)


@pytest.mark.needs("refuses_bad_pointers")
def test_process_heap_refuses_private_heaps_block(k32: Any, heap: int) -> None:
    """(impl) The process heap does not free another heap's block."""
    block = k32.HeapAlloc(heap, 0, 40)
    _assert_refused(k32, k32.GetProcessHeap(), block)
    assert k32.HeapFree(heap, 0, block)


@pytest.mark.needs("refuses_bad_pointers")
def test_free_through_destroyed_heap_is_refused(k32: Any) -> None:
    """(impl) HeapFree with a destroyed heap handle: FALSE, ERROR_INVALID_PARAMETER."""
    heap = k32.HeapCreate(0, 0, 0)
    block = k32.HeapAlloc(heap, 0, 16)
    assert k32.HeapDestroy(heap)
    k32.SetLastError(SENTINEL)
    assert not k32.HeapFree(heap, 0, block)
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER


# -- lifecycles ---------------------------------------------------------------

#: One step: ("alloc", size) | ("free", pick) | ("realloc", pick, size) | ("refree", pick)
Step = Tuple[Any, ...]

_sizes = st.one_of(
    st.integers(0, 256),
    st.integers(0, 0x2000),
    st.sampled_from([0x10000, 0x40000, 0x100000, 0x180000]),
)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), _sizes),
        st.tuples(st.just("free"), st.integers(0, 1 << 16)),
        st.tuples(st.just("realloc"), st.integers(0, 1 << 16), _sizes),
        st.tuples(st.just("refree"), st.integers(0, 1 << 16)),
    ),
    max_size=40,
)

LIFECYCLE = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _run_lifecycle(k32: Any, heap: int, steps: List[Step], fixed: bool) -> None:
    live: Dict[int, Tuple[int, int]] = {}  # address -> (size, seed)
    order: List[int] = []
    seed = 0

    def check_all() -> None:
        for address, (size, block_seed) in live.items():
            assert k32.HeapSize(heap, 0, address) == size
            assert read(address, size) == fill(size, block_seed)

    try:
        for step in steps:
            kind = step[0]
            if kind == "alloc":
                size = step[1]
                address = k32.HeapAlloc(heap, 0, size)
                if not address:
                    # Only a fixed heap may run out of room.
                    assert fixed and k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
                    continue
                assert address not in live
                seed += 1
                write(address, fill(size, seed))
                live[address] = (size, seed)
                order.append(address)
            elif not order:
                continue
            elif kind in ("free", "refree"):
                address = order.pop(step[1] % len(order))
                del live[address]
                assert k32.HeapFree(heap, 0, address)
                if kind == "refree":
                    # Free-then-allocate the same size: the likeliest reuse.
                    size = step[1] % 512
                    again = k32.HeapAlloc(heap, 0, size)
                    assert again or fixed
                    if again:
                        seed += 1
                        write(again, fill(size, seed))
                        live[again] = (size, seed)
                        order.append(again)
            else:
                index = step[1] % len(order)
                address, size = order[index], step[2]
                old_size, old_seed = live[address]
                moved = k32.HeapReAlloc(heap, 0, address, size)
                if not moved:
                    assert fixed and k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
                    # A failed realloc leaves the block as it was (checked below).
                    continue
                keep = min(old_size, size)
                assert read(moved, keep) == fill(old_size, old_seed)[:keep]
                seed += 1
                write(moved, fill(size, seed))
                del live[address]
                assert moved not in live
                live[moved] = (size, seed)
                order[index] = moved
            check_all()
        check_all()
        assert k32.HeapValidate(heap, 0, None)
    finally:
        for address in order:
            assert k32.HeapFree(heap, 0, address)


@LIFECYCLE
@given(steps=_steps)
def test_lifecycle_keeps_contents_on_growable_heap(k32: Any, heap: int, steps: List[Step]) -> None:
    """Any sequence of alloc/free/realloc leaves every live block's bytes and size intact."""
    _run_lifecycle(k32, heap, steps, fixed=False)


@LIFECYCLE
@given(steps=_steps)
def test_lifecycle_keeps_contents_on_fixed_heap(k32: Any, fixed_heap: int, steps: List[Step]) -> None:
    """The same on a fixed heap, where requests may fail but never corrupt blocks."""
    _run_lifecycle(k32, fixed_heap, steps, fixed=True)
