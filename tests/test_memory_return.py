"""Memory of blocks still allocated at HeapDestroy goes back to the system, on every backend."""

from __future__ import annotations

import ctypes

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
