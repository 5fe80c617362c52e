"""Debug checks of the emulated backend (Windows' tail and free checking)."""

from __future__ import annotations

import ctypes
from typing import Iterator

import pytest

from compatheap import HEAP_ZERO_MEMORY
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._debug import QUARANTINE_BLOCKS
from compatheap.backends.emulated._heap import LARGE_THRESHOLD

TAIL = b"\xab" * 8
FREED = (0xFEEEFEEE).to_bytes(4, "little")
FRESH = (0xBAADF00D).to_bytes(4, "little")
SIZES = [0, 1, 7, 16, 17, 100, 1000, 4096, 70000]


@pytest.fixture(scope="module")
def checked() -> EmulatedBackend:
    return EmulatedBackend(debug={"tail", "free"})


@pytest.fixture(params=["growable", "fixed"])
def heap(request: pytest.FixtureRequest, checked: EmulatedBackend) -> Iterator[int]:
    handle = checked.HeapCreate(0, 0, 0) if request.param == "growable" else checked.HeapCreate(0, 0, 0x400000)
    assert handle
    yield handle
    assert checked.HeapDestroy(handle)


@pytest.mark.parametrize("size", SIZES)
def test_tail_bytes_follow_the_requested_size(checked: EmulatedBackend, heap: int, size: int) -> None:
    block = checked.HeapAlloc(heap, 0, size)
    assert ctypes.string_at(block + size, 8) == TAIL
    assert checked.HeapValidate(heap, 0, block)


@pytest.mark.parametrize("size", SIZES)
def test_one_byte_overrun_is_reported(checked: EmulatedBackend, heap: int, size: int) -> None:
    block = checked.HeapAlloc(heap, 0, size)
    ctypes.memset(block + size, 0, 1)
    assert not checked.HeapValidate(heap, 0, block)
    assert not checked.HeapValidate(heap, 0, None)
    # Refused on free too; the block stays for inspection.
    assert not checked.HeapFree(heap, 0, block)
    assert checked.HeapSize(heap, 0, block) == size
    ctypes.memset(block + size, 0xAB, 1)  # repaired: the heap is healthy again
    assert checked.HeapValidate(heap, 0, None)
    assert checked.HeapFree(heap, 0, block)


def test_shrinking_turns_old_bytes_into_tail(checked: EmulatedBackend, heap: int) -> None:
    block = checked.HeapAlloc(heap, HEAP_ZERO_MEMORY, 17)
    smaller = checked.HeapReAlloc(heap, 0, block, 14)
    assert ctypes.string_at(smaller + 14, 3) == b"\xab\xab\xab"
    assert checked.HeapValidate(heap, 0, None)


def test_large_blocks_have_no_tail(checked: EmulatedBackend) -> None:
    heap = checked.HeapCreate(0, 0, 0)
    block = checked.HeapAlloc(heap, 0, LARGE_THRESHOLD + 10)
    assert ctypes.string_at(block + LARGE_THRESHOLD + 10, 8) != TAIL
    assert checked.HeapValidate(heap, 0, None)
    assert checked.HeapDestroy(heap)


@pytest.mark.parametrize("size", [8, 100, 4096])
def test_new_blocks_read_baadf00d(checked: EmulatedBackend, heap: int, size: int) -> None:
    block = checked.HeapAlloc(heap, 0, size)
    assert ctypes.string_at(block, size) == (FRESH * size)[:size]
    zeroed = checked.HeapAlloc(heap, HEAP_ZERO_MEMORY, size)
    assert ctypes.string_at(zeroed, size) == bytes(size)


@pytest.mark.parametrize("size", [8, 100, 4096])
def test_freed_blocks_are_filled_and_watched(checked: EmulatedBackend, heap: int, size: int) -> None:
    block = checked.HeapAlloc(heap, 0, size)
    assert checked.HeapFree(heap, 0, block)
    # Quarantined, so still mapped: reading it here is safe.
    assert ctypes.string_at(block, size) == (FREED * size)[:size]
    assert checked.HeapValidate(heap, 0, None)
    ctypes.memset(block + size // 2, 0x41, 1)  # a write after free
    assert not checked.HeapValidate(heap, 0, None)
    ctypes.memmove(block + size // 2, (FREED * size)[size // 2 : size // 2 + 1], 1)
    assert checked.HeapValidate(heap, 0, None)


def test_write_after_free_is_remembered_after_eviction(checked: EmulatedBackend, heap: int) -> None:
    block = checked.HeapAlloc(heap, 0, 32)
    checked.HeapFree(heap, 0, block)
    ctypes.memset(block, 0x41, 1)
    # Push it out of quarantine: the corruption must still be reported.
    for _ in range(QUARANTINE_BLOCKS + 1):
        checked.HeapFree(heap, 0, checked.HeapAlloc(heap, 0, 32))
    assert not checked.HeapValidate(heap, 0, None)


def test_checks_are_off_by_default() -> None:
    plain = EmulatedBackend()
    heap = plain.HeapCreate(0, 0, 0)
    block = plain.HeapAlloc(heap, 0, 17)
    ctypes.memset(block + 17, 0, 1)  # in the slack: harmless without checks
    assert plain.HeapValidate(heap, 0, block)
    assert plain.HeapFree(heap, 0, block)
    assert plain.HeapDestroy(heap)
