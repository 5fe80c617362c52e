"""The Windows native seam (ucrtbase and VirtualAlloc), checked against VirtualQuery."""

from __future__ import annotations

import ctypes
from typing import Tuple

import pytest

from compatheap import MEMORY_ALLOCATION_ALIGNMENT
from compatheap.backends.emulated._windows import (
    GRANULARITY,
    MEM_COMMIT,
    MEM_FREE,
    MEM_RESERVE,
    PAGE_EXECUTE_READWRITE,
    PAGE_READWRITE,
    WindowsMemory,
)

from .conftest import virtual_query

HAS_WINDOWS_MEMORY, WHY = WindowsMemory.probe()
pytestmark = pytest.mark.skipif(not HAS_WINDOWS_MEMORY, reason=f"no Windows native calls here: {WHY}")


def _query(address: int) -> Tuple[int, int, int, int]:
    """``(allocation base, region size, state, protection)`` of the pages at ``address``."""
    info = virtual_query(address)
    return info.AllocationBase or 0, info.RegionSize, info.State, info.Protect


@pytest.fixture
def memory() -> WindowsMemory:
    return WindowsMemory()


def test_malloc_aligns_and_msize_is_the_size(memory: WindowsMemory) -> None:
    blocks = [memory.malloc(size) for size in range(0, 300, 7)]
    assert all(blocks) and all(block % MEMORY_ALLOCATION_ALIGNMENT == 0 for block in blocks)
    assert [memory.usable_size(block) for block in blocks] == list(range(0, 300, 7))
    for block in blocks:
        memory.free(block)


def test_realloc_to_zero_keeps_a_block(memory: WindowsMemory) -> None:
    """The CRT's realloc(p, 0) frees p: the seam must hand back a live block instead."""
    block = memory.malloc(64)
    ctypes.memmove(block, b"kept", 4)
    smaller = memory.realloc(block, 0)
    assert smaller and memory.usable_size(smaller) == MEMORY_ALLOCATION_ALIGNMENT  # live, not freed
    grown = memory.realloc(smaller, 5000)
    assert grown and memory.usable_size(grown) == 5000
    memory.free(grown)


def test_failed_realloc_leaves_the_block(memory: WindowsMemory) -> None:
    block = memory.malloc(32)
    ctypes.memmove(block, b"x" * 32, 32)
    assert memory.realloc(block, (1 << (8 * ctypes.sizeof(ctypes.c_void_p) - 1))) == 0
    assert ctypes.string_at(block, 32) == b"x" * 32 and memory.usable_size(block) == 32
    memory.free(block)


@pytest.mark.parametrize("executable", [False, True])
def test_map_commits_zeroed_pages_executable_only_when_asked(memory: WindowsMemory, executable: bool) -> None:
    length = 5 * memory.page_size
    start = memory.map(length, executable)
    assert start and start % GRANULARITY == 0
    base, size, state, protect = _query(start)
    assert (base, state) == (start, MEM_COMMIT) and size >= length
    assert protect == (PAGE_EXECUTE_READWRITE if executable else PAGE_READWRITE)
    assert ctypes.string_at(start, length) == bytes(length)
    assert memory.unmap(start, length)
    assert _query(start)[2] == MEM_FREE


def test_decommit_keeps_the_addresses_and_commit_brings_zeroed_pages(memory: WindowsMemory) -> None:
    page = memory.page_size
    start = memory.map(8 * page)
    ctypes.memset(start, 1, 8 * page)
    assert memory.decommit(start + 3 * page, 5 * page)
    assert _query(start)[1:3] == (3 * page, MEM_COMMIT)
    assert _query(start + 3 * page)[2] == MEM_RESERVE  # the addresses stay ours until unmap
    ctypes.memset(start, 2, 3 * page)  # what was kept is still usable
    assert memory.commit(start + 3 * page, 2 * page)
    assert _query(start + 3 * page)[1:3] == (2 * page, MEM_COMMIT)
    assert ctypes.string_at(start + 3 * page, 2 * page) == bytes(2 * page)
    assert memory.commit(start, 5 * page)  # committed pages stay as they were
    assert ctypes.string_at(start, 3 * page) == b"\x02" * (3 * page)
    assert memory.unmap(start, 8 * page)
    assert _query(start)[2] == MEM_FREE and _query(start + 3 * page)[2] == MEM_FREE


def test_map_aligned_beyond_the_granularity(memory: WindowsMemory) -> None:
    alignment = 16 * GRANULARITY
    starts = [memory.map_aligned(3 * memory.page_size, alignment) for _ in range(4)]
    assert all(starts) and all(start % alignment == 0 for start in starts)
    for start in starts:
        assert _query(start)[0] == start
        assert memory.unmap(start, 3 * memory.page_size)


def test_remap_always_declines(memory: WindowsMemory) -> None:
    start = memory.map(memory.page_size)
    assert not memory.can_remap and memory.remap(start, memory.page_size, 2 * memory.page_size, True) == 0
    assert _query(start)[2] == MEM_COMMIT
    assert memory.unmap(start, memory.page_size)


def test_unmap_refuses_what_is_no_reservation_base(memory: WindowsMemory) -> None:
    start = memory.map(2 * memory.page_size)
    assert not memory.unmap(start + memory.page_size, memory.page_size)
    assert _query(start)[2] == MEM_COMMIT
    assert memory.unmap(start, 2 * memory.page_size)
