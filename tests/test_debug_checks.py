"""Debug checks of the emulated backend (Windows' tail and free checking)."""

from __future__ import annotations

import ctypes
from typing import Iterator

import pytest

from compatheap import HEAP_REALLOC_IN_PLACE_ONLY, HEAP_ZERO_MEMORY
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._debug import QUARANTINE_BLOCKS
from compatheap.backends.emulated._fixed import LARGEST_BLOCK
from compatheap.backends.emulated._heap import LARGE_THRESHOLD
from tests.conftest import require_emulation

require_emulation()

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
    assert block
    assert ctypes.string_at(block + size, 8) == TAIL
    assert checked.HeapValidate(heap, 0, block)


@pytest.mark.parametrize("size", SIZES)
def test_one_byte_overrun_is_reported(checked: EmulatedBackend, heap: int, size: int) -> None:
    block = checked.HeapAlloc(heap, 0, size)
    assert block
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
    assert block
    smaller = checked.HeapReAlloc(heap, 0, block, 14)
    assert smaller
    assert ctypes.string_at(smaller + 14, 3) == b"\xab\xab\xab"
    assert checked.HeapValidate(heap, 0, None)


def test_large_blocks_have_no_tail(checked: EmulatedBackend) -> None:
    """Nor any pattern: fresh or grown, a large block reads 0 (free checking is on here)."""
    heap = checked.HeapCreate(0, 0, 0)
    assert heap
    block = checked.HeapAlloc(heap, 0, LARGE_THRESHOLD + 10)
    assert block
    assert ctypes.string_at(block + LARGE_THRESHOLD + 10, 8) != TAIL
    assert ctypes.string_at(block, 64) == bytes(64)
    grown = checked.HeapReAlloc(heap, 0, block, 2 * LARGE_THRESHOLD)
    assert grown
    assert ctypes.string_at(grown + LARGE_THRESHOLD + 10, 64) == bytes(64)
    assert checked.HeapValidate(heap, 0, None)
    assert checked.HeapDestroy(heap)


@pytest.mark.parametrize("size", [8, 100, 4096])
def test_new_blocks_read_baadf00d(checked: EmulatedBackend, heap: int, size: int) -> None:
    block = checked.HeapAlloc(heap, 0, size)
    assert block
    assert ctypes.string_at(block, size) == (FRESH * size)[:size]
    zeroed = checked.HeapAlloc(heap, HEAP_ZERO_MEMORY, size)
    assert zeroed
    assert ctypes.string_at(zeroed, size) == bytes(size)


@pytest.mark.parametrize("size", [8, 100, 4096])
def test_freed_blocks_are_filled_and_watched(checked: EmulatedBackend, heap: int, size: int) -> None:
    block = checked.HeapAlloc(heap, 0, size)
    assert block
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
    assert block
    checked.HeapFree(heap, 0, block)
    ctypes.memset(block, 0x41, 1)
    # Push it out of quarantine: the corruption must still be reported.
    for _ in range(QUARANTINE_BLOCKS + 1):
        checked.HeapFree(heap, 0, checked.HeapAlloc(heap, 0, 32))
    assert not checked.HeapValidate(heap, 0, None)


def test_checks_are_off_by_default() -> None:
    plain = EmulatedBackend()
    heap = plain.HeapCreate(0, 0, 0)
    assert heap
    block = plain.HeapAlloc(heap, 0, 17)
    assert block
    ctypes.memset(block + 17, 0, 1)  # in the slack: harmless without checks
    assert plain.HeapValidate(heap, 0, block)
    assert plain.HeapFree(heap, 0, block)
    assert plain.HeapDestroy(heap)


# -- every size class, both heap kinds, fresh and realloc'd blocks -------------------
#: Around the alignment (16), the tail size, the small-block recycling limit
#: (256), a page, and just below the large-block threshold (large blocks get
#: no tail, as on Windows: they are unmapped on free instead).
EDGE_SIZES = [1, 15, 16, 17, 31, 32, 33, 255, 256, 257, 4095, 4096, 4097, 65536]
# The largest small blocks: the fixed heap's largest, and just below the growable large-block threshold.
EDGE_SIZES += [LARGEST_BLOCK - 1, LARGEST_BLOCK]


@pytest.fixture(params=["growable", "fixed"])
def roomy_heap(request: pytest.FixtureRequest, checked: EmulatedBackend) -> Iterator[int]:
    """A growable heap, or a fixed one with room for the biggest small block several times."""
    handle = checked.HeapCreate(0, 0, 0) if request.param == "growable" else checked.HeapCreate(0, 0, 0x800000)
    assert handle
    yield handle
    assert checked.HeapDestroy(handle)


def _overrun_is_caught(checked: EmulatedBackend, heap: int, block: int, size: int) -> None:
    assert checked.HeapValidate(heap, 0, block)
    saved = ctypes.string_at(block + size, 1)
    ctypes.memset(block + size, 0x00, 1)  # one byte past the end
    assert not checked.HeapValidate(heap, 0, block)
    assert not checked.HeapValidate(heap, 0, None)
    assert not checked.HeapFree(heap, 0, block)  # refused on free, block kept
    assert checked.HeapSize(heap, 0, block) == size
    ctypes.memmove(block + size, saved, 1)
    assert checked.HeapValidate(heap, 0, None)


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_overrun_caught_at_every_size(checked: EmulatedBackend, roomy_heap: int, size: int) -> None:
    block = checked.HeapAlloc(roomy_heap, 0, size)
    assert block
    _overrun_is_caught(checked, roomy_heap, block, size)
    assert checked.HeapFree(roomy_heap, 0, block)


@pytest.mark.parametrize("size", EDGE_SIZES)
@pytest.mark.parametrize("start", [8, 300, 5000], ids=["from-8", "from-300", "from-5000"])
def test_overrun_caught_after_realloc(checked: EmulatedBackend, roomy_heap: int, start: int, size: int) -> None:
    """A block grown or shrunk (in place or moved) is guarded at its new end."""
    block = checked.HeapAlloc(roomy_heap, 0, start)
    assert block
    moved = checked.HeapReAlloc(roomy_heap, 0, block, size)
    assert moved
    _overrun_is_caught(checked, roomy_heap, moved, size)
    assert checked.HeapFree(roomy_heap, 0, moved)


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_write_after_free_caught_at_every_size(checked: EmulatedBackend, roomy_heap: int, size: int) -> None:
    block = checked.HeapAlloc(roomy_heap, 0, size)
    assert block
    assert checked.HeapFree(roomy_heap, 0, block)
    assert checked.HeapValidate(roomy_heap, 0, None)
    for offset in {0, size // 2, size - 1}:
        saved = ctypes.string_at(block + offset, 1)
        ctypes.memset(block + offset, saved[0] ^ 0xFF, 1)
        assert not checked.HeapValidate(roomy_heap, 0, None), f"write at offset {offset} unseen"
        ctypes.memmove(block + offset, saved, 1)
    assert checked.HeapValidate(roomy_heap, 0, None)


# -- the fills lie on the block's DWORD grid, as Windows lays them -----------------------------
def test_grown_bytes_get_the_pattern_on_the_blocks_grid(checked: EmulatedBackend, heap: int) -> None:
    """A block grown from 7 to 15 bytes reads 0xBAADF00D at offset 8: the DWORDs that
    start at or after the old size, not a pattern shifted to start at 7."""
    block = checked.HeapAlloc(heap, HEAP_ZERO_MEMORY, 7)
    assert block
    grown = checked.HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, block, 15) or checked.HeapReAlloc(heap, 0, block, 15)
    assert grown
    assert ctypes.string_at(grown, 7) == bytes(7)
    assert ctypes.string_at(grown + 8, 4) == FRESH
    assert checked.HeapFree(heap, 0, grown)


@pytest.mark.parametrize("size", [5, 6, 7])
def test_new_bytes_pattern_leaves_a_partial_dword_alone(checked: EmulatedBackend, heap: int, size: int) -> None:
    """Only whole DWORDs get the pattern: growing a 0-byte block in place, the bytes of
    the trailing partial DWORD keep what they held (the old block's tail bytes). The
    0-byte block is shrunk from 16 bytes: its room to grow in place is then there under
    every C allocator (a fresh one may have none: 12 usable bytes on i386 and musl)."""
    block = checked.HeapAlloc(heap, 0, 16)
    assert block
    assert checked.HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, block, 0) == block
    assert ctypes.string_at(block, 8) == TAIL
    grown = checked.HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, block, size)
    assert grown == block
    assert ctypes.string_at(block, 4) == FRESH
    assert ctypes.string_at(block + 4, size - 4) == TAIL[: size - 4]
    assert ctypes.string_at(block + size, 8) == TAIL
    assert checked.HeapFree(heap, 0, block)
