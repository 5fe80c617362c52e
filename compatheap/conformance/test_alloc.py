"""HeapAlloc: sizes, alignment, zeroing and the failures Windows reports."""

from __future__ import annotations

import ctypes
from typing import Any, List

import pytest

from compatheap import (
    ERROR_INVALID_HANDLE,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_NO_SERIALIZE,
    HEAP_ZERO_MEMORY,
    STATUS_NO_MEMORY,
    HeapException,
)
from compatheap.conformance._support import pattern, read, write

PTR = ctypes.sizeof(ctypes.c_void_p)
SIZE_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1
#: The block size Wine's own heap tests build their scenarios on (0x40000 on 64-bit).
UNIT = 0x8000 * PTR
#: Any error code a heap call would never set.
SENTINEL = 0xDEADBEEF & 0x7FFFFFFF


def _is_zero(address: int, length: int) -> bool:
    return read(address, length) == bytes(length)


def _free_all(k32: Any, heap: int, blocks: List[int]) -> None:
    for block in blocks:
        assert k32.HeapFree(heap, 0, block)


def test_zero_size_blocks_are_unique_and_valid(k32: Any, heap: int) -> None:
    """A 0-byte request yields a real block: non-NULL, distinct, HeapSize 0, freeable."""
    blocks = [k32.HeapAlloc(heap, 0, 0) for _ in range(16)]
    assert all(blocks)
    assert len(set(blocks)) == len(blocks)
    for block in blocks:
        assert k32.HeapSize(heap, 0, block) == 0
        assert k32.HeapValidate(heap, 0, block)
    _free_all(k32, heap, blocks)


def test_zero_size_on_fixed_and_process_heap(k32: Any, fixed_heap: int) -> None:
    """Size 0 works the same on a fixed-size heap and on the process heap."""
    for heap in (fixed_heap, k32.GetProcessHeap()):
        block = k32.HeapAlloc(heap, 0, 0)
        assert block
        assert k32.HeapSize(heap, 0, block) == 0
        assert k32.HeapFree(heap, 0, block)


def test_blocks_are_writable_over_their_whole_size(k32: Any, heap: int) -> None:
    """Every byte of a block up to the requested size belongs to the caller."""
    sizes = [1, 7, 16, 100, 4095, 4096, 65537, 5 * UNIT + 1]
    blocks = []
    for seed, size in enumerate(sizes):
        block = k32.HeapAlloc(heap, 0, size)
        assert block
        write(block, pattern(size, seed))
        blocks.append(block)
    # Checked only after all writes: an overlap between blocks would show here.
    for seed, (size, block) in enumerate(zip(sizes, blocks)):
        assert read(block, size) == pattern(size, seed)
    _free_all(k32, heap, blocks)


def _ored_addresses(k32: Any, heap: int) -> int:
    """Every address of 128 blocks of 0x8000 pointers each, or-ed together."""
    blocks = [k32.HeapAlloc(heap, 0, UNIT) for _ in range(128)]
    assert all(blocks)
    ored = 0
    for block in blocks:
        ored |= block
    _free_all(k32, heap, blocks)
    return ored


def test_small_blocks_aligned_to_two_pointers(k32: Any, heap: int) -> None:
    """128 blocks of 0x8000 pointers each are 2xPTR aligned."""
    assert _ored_addresses(k32, heap) & (2 * PTR - 1) == 0


@pytest.mark.needs("blocks_not_over_aligned")
def test_small_blocks_not_over_aligned(k32: Any, heap: int) -> None:
    """Not all of 128 blocks of 0x8000 pointers each are 4xPTR aligned: some sits at an
    odd multiple of 2xPTR. (An emulation over a C allocator that aligns such sizes to
    pages, as jemalloc does, cannot promise this.)"""
    assert _ored_addresses(k32, heap) & (2 * PTR)


def test_small_blocks_of_every_size_are_aligned(k32: Any, heap: int) -> None:
    """Blocks of 0..256 bytes all start at a multiple of 2xPTR (MEMORY_ALLOCATION_ALIGNMENT)."""
    blocks = [k32.HeapAlloc(heap, 0, size) for size in range(257)]
    assert all(blocks)
    assert all(block % (2 * PTR) == 0 for block in blocks)
    _free_all(k32, heap, blocks)


def test_large_blocks_aligned_to_eight_pointers(k32: Any, heap: int) -> None:
    """Blocks of 4 x 0x8000 pointers (past the large-block threshold) are 8xPTR aligned."""
    blocks = [k32.HeapAlloc(heap, 0, 4 * UNIT) for _ in range(128)]
    assert all(blocks)
    ored = 0
    for block in blocks:
        ored |= block
    assert ored & (8 * PTR - 1) == 0
    _free_all(k32, heap, blocks)


@pytest.mark.parametrize("extra", [0, 1, 0x1234])
def test_large_block_lies_past_its_regions_header(k32: Any, heap: int, extra: int) -> None:
    """A large block starts 0x40 [0x20] bytes into a region of its own, so it is aligned
    to 8 pointers but not to a page; the rest of its last page is its own and reads 0."""
    size = 4 * UNIT + extra
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    try:
        assert block % 0x1000 == 8 * PTR
        end = block + size
        rest = ((end + 0xFFF) & ~0xFFF) - end
        assert _is_zero(end, rest)  # an off-by-one read past a large block never faults
    finally:
        assert k32.HeapFree(heap, 0, block)


@pytest.mark.skipif(PTR != 4, reason="the request limit of a 32-bit process")
@pytest.mark.parametrize("size", [0x7FFF0000, 0x80000000, SIZE_MAX])
def test_requests_from_0x7fff0000_fail_in_32_bit_processes(k32: Any, heap: int, size: int) -> None:
    k32.SetLastError(SENTINEL)
    assert k32.HeapAlloc(heap, 0, size) is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY


@pytest.mark.parametrize("size", [1, 17, 0x1000, UNIT, 1 << 20])
def test_zero_memory_flag_zeroes_new_blocks(k32: Any, heap: int, size: int) -> None:
    """HEAP_ZERO_MEMORY returns a block whose requested bytes all read 0."""
    block = k32.HeapAlloc(heap, HEAP_ZERO_MEMORY, size)
    assert block
    assert k32.HeapSize(heap, 0, block) == size
    assert _is_zero(block, size)
    assert k32.HeapFree(heap, 0, block)


def test_zero_memory_flag_zeroes_reused_memory(k32: Any, heap: int) -> None:
    """Memory filled, freed and handed out again with HEAP_ZERO_MEMORY reads 0.

    The same sizes are allocated again right after being freed, many times, so
    the heap reuses the dirty memory (free lists, tcache) for the new block.
    """
    for _ in range(8):
        for size in range(1, 257, 5):
            dirty = k32.HeapAlloc(heap, 0, size)
            assert dirty
            ctypes.memset(dirty, 0xFF, size)
            assert k32.HeapFree(heap, 0, dirty)
            clean = k32.HeapAlloc(heap, HEAP_ZERO_MEMORY, size)
            assert clean
            assert _is_zero(clean, size), size
            assert k32.HeapFree(heap, 0, clean)


def test_zero_memory_flag_zeroes_reused_memory_in_batches(k32: Any, fixed_heap: int) -> None:
    """After a batch of dirty blocks is freed, a zeroed batch of the same sizes reads 0.

    On a fixed-size heap, where freed room is certainly reused.
    """
    sizes = [8, 24, 100, 500, 1000, 3000, 64, 16]
    for _ in range(6):
        dirty = [k32.HeapAlloc(fixed_heap, 0, size) for size in sizes]
        assert all(dirty)
        for block, size in zip(dirty, sizes):
            ctypes.memset(block, 0xA5, size)
        _free_all(k32, fixed_heap, dirty)
        clean = [k32.HeapAlloc(fixed_heap, HEAP_ZERO_MEMORY, size) for size in sizes]
        assert all(clean)
        for block, size in zip(clean, sizes):
            assert _is_zero(block, size)
        _free_all(k32, fixed_heap, clean)


@pytest.mark.parametrize("size", [SIZE_MAX, SIZE_MAX - 7], ids=["~0", "~0-7"])
def test_impossible_size_fails_with_not_enough_memory(k32: Any, heap: int, fixed_heap: int, size: int) -> None:
    """~0 and ~0-7 bytes: NULL and ERROR_NOT_ENOUGH_MEMORY, on every kind of heap."""
    for target in (heap, fixed_heap, k32.GetProcessHeap()):
        k32.SetLastError(SENTINEL)
        assert k32.HeapAlloc(target, 0, size) is None
        assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
        # The heap is unharmed by the refusal.
        assert k32.HeapValidate(target, 0, None)
        block = k32.HeapAlloc(target, 0, 32)
        assert block
        assert k32.HeapFree(target, 0, block)


def test_impossible_size_with_generate_exceptions_raises(k32: Any, heap: int) -> None:
    """With HEAP_GENERATE_EXCEPTIONS the failure is raised as STATUS_NO_MEMORY."""
    with pytest.raises(HeapException) as info:
        k32.HeapAlloc(heap, HEAP_GENERATE_EXCEPTIONS, SIZE_MAX)
    assert info.value.status == STATUS_NO_MEMORY


@pytest.mark.wine_deviation("Wine 8 ignores HEAP_GENERATE_EXCEPTIONS given to HeapCreate")
def test_heap_created_with_generate_exceptions_raises(k32: Any) -> None:
    """A heap created with HEAP_GENERATE_EXCEPTIONS raises on failure even for flags 0."""
    heap = k32.HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0, 0)
    assert heap
    try:
        with pytest.raises(HeapException) as info:
            k32.HeapAlloc(heap, 0, SIZE_MAX - 7)
        assert info.value.status == STATUS_NO_MEMORY
        block = k32.HeapAlloc(heap, 0, 10)
        assert block
        assert k32.HeapFree(heap, 0, block)
    finally:
        assert k32.HeapDestroy(heap)


def test_no_serialize_flag_allocates_normally(k32: Any, heap: int) -> None:
    """HEAP_NO_SERIALIZE per call changes locking only, not the result."""
    block = k32.HeapAlloc(heap, HEAP_NO_SERIALIZE | HEAP_ZERO_MEMORY, 40)
    assert block
    assert _is_zero(block, 40)
    assert k32.HeapSize(heap, 0, block) == 40
    assert k32.HeapFree(heap, HEAP_NO_SERIALIZE, block)


# -- fixed-size heaps ---------------------------------------------------------


def test_fixed_heap_fits_block_within_overhead(k32: Any, fixed_heap: int) -> None:
    """A 0x40000 fixed heap holds a block of 0x40000 - 0xC00 bytes."""
    size = 0x40000 - 0xC00
    block = k32.HeapAlloc(fixed_heap, 0, size)
    assert block
    assert k32.HeapSize(fixed_heap, 0, block) == size
    write(block + size - 64, pattern(64))
    assert k32.HeapFree(fixed_heap, 0, block)


#: A block a 0x40000-byte fixed heap cannot hold: 64-bit Windows' bookkeeping takes
#: more than 0x600 bytes of it; 32-bit Windows' largest block there is 0x3FD30.
PAST_FIXED_ROOM = 0x40000 - 0x600 if PTR == 8 else 0x3FD30 + 8


@pytest.mark.wine_deviation("Wine 8's fixed heaps keep less room for bookkeeping")
def test_fixed_heap_refuses_block_past_its_room(k32: Any, fixed_heap: int) -> None:
    """A 0x40000 fixed heap cannot hold 0x40000 - 0x600 bytes (0x3FD38 on 32-bit): its bookkeeping needs more."""
    k32.SetLastError(SENTINEL)
    assert k32.HeapAlloc(fixed_heap, 0, PAST_FIXED_ROOM) is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    assert k32.HeapValidate(fixed_heap, 0, None)


def test_fixed_heap_refuses_large_block_with_room_to_spare(k32: Any) -> None:
    """HeapCreate(0, 8 units, 8 units) refuses a 4-unit block, yet small blocks work."""
    heap = k32.HeapCreate(0, 8 * 0x40000, 8 * 0x40000)
    assert heap
    try:
        k32.SetLastError(SENTINEL)
        assert k32.HeapAlloc(heap, 0, 4 * 0x40000) is None
        assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
        small = [k32.HeapAlloc(heap, 0, size) for size in (1, 100, 0x1000, 0x10000)]
        assert all(small)
        _free_all(k32, heap, small)
    finally:
        assert k32.HeapDestroy(heap)


def test_fixed_heap_holds_blocks_below_documented_limit(k32: Any) -> None:
    """A block just under 0x7FFF8 bytes (the documented fixed-heap limit) is accepted; a
    32-bit process's fixed heap stops below its large-block threshold, at 0x7EFE8."""
    heap = k32.HeapCreate(0, 8 * 0x40000, 8 * 0x40000)
    assert heap
    size = 0x7FFF0 if PTR == 8 else 0x7EFE8
    try:
        block = k32.HeapAlloc(heap, HEAP_ZERO_MEMORY, size)
        assert block
        assert k32.HeapSize(heap, 0, block) == size
        assert _is_zero(block, size)
        assert k32.HeapFree(heap, 0, block)
    finally:
        assert k32.HeapDestroy(heap)


def _fill(k32: Any, heap: int, size: int) -> List[int]:
    blocks: List[int] = []
    while True:
        block = k32.HeapAlloc(heap, 0, size)
        if not block:
            assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
            return blocks
        blocks.append(block)
        assert len(blocks) < 100_000, "a fixed-size heap never ran out"


def test_exhausted_fixed_heap_is_usable_again_after_freeing(k32: Any, fixed_heap: int) -> None:
    """Filling a fixed heap until it fails, then freeing everything, gives all the room back."""
    first = _fill(k32, fixed_heap, 0x1000)
    # 0x40000 bytes hold somewhere near 60 blocks of 0x1000 bytes.
    assert 32 <= len(first) <= 64
    _free_all(k32, fixed_heap, first)
    # The freed pieces coalesce: the biggest block fits again.
    big = k32.HeapAlloc(fixed_heap, 0, 0x40000 - 0xC00)
    assert big
    assert k32.HeapFree(fixed_heap, 0, big)
    second = _fill(k32, fixed_heap, 0x1000)
    assert len(second) >= len(first)
    _free_all(k32, fixed_heap, second)


def test_exhausted_fixed_heap_still_serves_smaller_requests(k32: Any, fixed_heap: int) -> None:
    """When a big request no longer fits, smaller ones may, and the heap stays valid."""
    blocks = _fill(k32, fixed_heap, 0x4000)
    assert blocks
    tail = _fill(k32, fixed_heap, 0x100)
    assert k32.HeapValidate(fixed_heap, 0, None)
    _free_all(k32, fixed_heap, blocks + tail)


# -- invalid handles ----------------------------------------------------------


@pytest.mark.needs("refuses_bad_pointers")
def test_alloc_on_destroyed_heap_fails_with_invalid_handle(k32: Any) -> None:
    """(impl) HeapAlloc on a destroyed heap: NULL and ERROR_INVALID_HANDLE."""
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapDestroy(heap)
    k32.SetLastError(SENTINEL)
    assert k32.HeapAlloc(heap, 0, 16) is None
    assert k32.GetLastError() == ERROR_INVALID_HANDLE


@pytest.mark.needs("refuses_bad_pointers")
@pytest.mark.parametrize("handle", [None, 0x12340000, 1], ids=["NULL", "bogus", "odd"])
def test_alloc_on_bogus_heap_fails_with_invalid_handle(k32: Any, handle: Any) -> None:
    """(impl) HeapAlloc on something that never was a heap: ERROR_INVALID_HANDLE."""
    k32.SetLastError(SENTINEL)
    assert k32.HeapAlloc(handle, 0, 16) is None
    assert k32.GetLastError() == ERROR_INVALID_HANDLE
