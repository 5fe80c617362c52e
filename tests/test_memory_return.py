"""Memory of blocks still allocated at HeapDestroy goes back to the system, on every backend."""

from __future__ import annotations

import ctypes
import sys

import pytest

from compatheap import backends
from compatheap._bench._resident import resident_bytes

MiB = 1 << 20


@pytest.mark.parametrize("name", backends.available())
def test_destroy_releases_the_blocks_memory(name: str) -> None:
    k32 = backends.get(name)
    heap = k32.HeapCreate(0, 0, 0)
    assert heap
    before = resident_bytes()
    if before is None:
        k32.HeapDestroy(heap)
        pytest.skip("this system does not report resident memory")
    for _ in range(32):
        block = k32.HeapAlloc(heap, 0, MiB)
        assert block
        ctypes.memset(block, 0x5A, MiB)  # make every page resident
    full = resident_bytes()
    assert full is not None
    assert full - before >= 24 * MiB
    assert k32.HeapDestroy(heap)
    after = resident_bytes()
    assert after is not None
    assert full - after >= 24 * MiB


#: Systems where giving pages of a mapping back frees them at once (Linux's
#: MADV_DONTNEED, Windows' MEM_DECOMMIT); elsewhere it is a hint.
HAS_PAGE_RELEASE = sys.platform.startswith("linux") or sys.platform == "win32"


@pytest.mark.skipif(not HAS_PAGE_RELEASE, reason="pages given back are only a hint to this system")
def test_shrinking_a_large_block_gives_its_pages_back_and_keeps_its_room() -> None:
    """A large block shrunk gives its pages back but keeps its mapping, as a
    Windows heap decommits the pages and keeps the reservation: other mappings
    made meanwhile cannot take its place, and it grows back in place."""
    from compatheap import HEAP_REALLOC_IN_PLACE_ONLY, HEAP_ZERO_MEMORY
    from compatheap.backends.emulated import EmulatedBackend

    k32 = EmulatedBackend()
    heap = k32.HeapCreate(0, 0, 0)
    block = k32.HeapAlloc(heap, 0, 32 * MiB)
    assert block
    ctypes.memset(block, 0x5A, 32 * MiB)
    full = resident_bytes()
    if full is None:
        k32.HeapDestroy(heap)
        pytest.skip("this system does not report resident memory")
    assert k32.HeapReAlloc(heap, 0, block, MiB) == block
    after = resident_bytes()
    assert after is not None
    assert full - after >= 24 * MiB
    others = [k32.HeapAlloc(heap, 0, 2 * MiB) for _ in range(16)]  # mappings made meanwhile
    assert all(others)
    grown = k32.HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY | HEAP_ZERO_MEMORY, block, 32 * MiB)
    assert grown == block
    assert ctypes.string_at(block, MiB) == b"\x5a" * MiB
    assert ctypes.string_at(block + MiB, 31 * MiB) == bytes(31 * MiB)
    assert k32.HeapDestroy(heap)
