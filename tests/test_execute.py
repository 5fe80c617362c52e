"""HEAP_CREATE_ENABLE_EXECUTE: executable memory only where asked for."""

from __future__ import annotations

import ctypes
import errno
from pathlib import Path

import pytest

from compatheap import HEAP_CREATE_ENABLE_EXECUTE
from compatheap.backends.emulated import EmulatedBackend

MAPS = Path("/proc/self/maps")
pytestmark = pytest.mark.skipif(not MAPS.exists(), reason="needs /proc/self/maps to read page permissions")


def _permissions(address: int) -> str:
    for line in MAPS.read_text().splitlines():
        span, perms = line.split()[:2]
        start, end = (int(x, 16) for x in span.split("-"))
        if start <= address < end:
            return perms
    raise AssertionError(f"{address:#x} is not mapped")


@pytest.fixture(scope="module")
def emu() -> EmulatedBackend:
    return EmulatedBackend()


@pytest.mark.parametrize("maximum", [0, 0x100000], ids=["growable", "fixed"])
@pytest.mark.parametrize("size", [16, 5000, 0x20000])
def test_execute_heap_blocks_are_executable(emu: EmulatedBackend, maximum: int, size: int) -> None:
    heap = emu.HeapCreate(HEAP_CREATE_ENABLE_EXECUTE, 0, maximum)
    block = emu.HeapAlloc(heap, 0, size)
    assert block
    assert "x" in _permissions(block)
    assert emu.HeapDestroy(heap)


@pytest.mark.parametrize("maximum", [0, 0x100000], ids=["growable", "fixed"])
@pytest.mark.parametrize("size", [16, 5000, 0x100000])
def test_other_heaps_are_not_executable(emu: EmulatedBackend, maximum: int, size: int) -> None:
    heap = emu.HeapCreate(0, 0, maximum)
    block = emu.HeapAlloc(heap, 0, size)
    if maximum and not block:
        pytest.skip("a fixed heap refuses large blocks")
    assert "x" not in _permissions(block)
    assert emu.HeapDestroy(heap)


def test_freed_large_blocks_are_unmapped(emu: EmulatedBackend) -> None:
    """A stale pointer to a freed large block faults; it never reads a new owner's data."""
    libc = ctypes.CDLL(None, use_errno=True)
    mincore = libc.mincore
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    vec = (ctypes.c_ubyte * 1)()
    heap = emu.HeapCreate(0, 0, 0)
    block = emu.HeapAlloc(heap, 0, 0x200000)
    assert mincore(block, 1, vec) == 0
    assert emu.HeapFree(heap, 0, block)
    # mincore fails with ENOMEM for an address with no mapping: asked right
    # away, before anything else could map memory there.
    assert mincore(block, 1, vec) == -1
    assert ctypes.get_errno() == errno.ENOMEM
    assert emu.HeapDestroy(heap)
