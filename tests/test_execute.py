"""HEAP_CREATE_ENABLE_EXECUTE: executable memory only where asked for."""

from __future__ import annotations

import ctypes
import errno
import mmap
from pathlib import Path

import pytest

from compatheap import HEAP_CREATE_ENABLE_EXECUTE
from compatheap.backends.emulated import EmulatedBackend
from tests.conftest import VIRTUAL_QUERY, require_emulation, virtual_query

require_emulation()

MAPS = Path("/proc/self/maps")
#: Windows tells page protection through VirtualQuery (capability probe: ctypes.WinDLL).
pytestmark = pytest.mark.skipif(
    VIRTUAL_QUERY is None and not MAPS.exists(), reason="needs /proc/self/maps or VirtualQuery to read page permissions"
)
_MEM_FREE = 0x10000
_PAGE_EXECUTE_ANY = 0x10 | 0x20 | 0x40 | 0x80  # EXECUTE, _READ, _READWRITE, _WRITECOPY


def _permissions(address: int) -> str:
    """The page's permissions as /proc/self/maps spells them ("rwxp"); only "x" is compared."""
    if VIRTUAL_QUERY is not None:
        info = virtual_query(address)
        if info.State == _MEM_FREE:
            raise AssertionError(f"{address:#x} is not mapped")
        return "rw" + ("x" if info.Protect & _PAGE_EXECUTE_ANY else "-")
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
    assert heap
    block = emu.HeapAlloc(heap, 0, size)
    assert block
    assert "x" in _permissions(block)
    assert emu.HeapDestroy(heap)


@pytest.mark.parametrize(
    ("maximum", "size"),
    [(0, 16), (0, 5000), (0, 0x100000), (0x100000, 16), (0x100000, 5000)],
    ids=["growable-16", "growable-5000", "growable-large", "fixed-16", "fixed-5000"],
)
def test_other_heaps_are_not_executable(emu: EmulatedBackend, maximum: int, size: int) -> None:
    heap = emu.HeapCreate(0, 0, maximum)
    assert heap
    block = emu.HeapAlloc(heap, 0, size)
    assert block
    assert "x" not in _permissions(block)
    assert emu.HeapDestroy(heap)


def test_freed_large_blocks_are_unmapped(emu: EmulatedBackend) -> None:
    """A stale pointer to a freed large block faults; it never reads a new owner's data."""
    heap = emu.HeapCreate(0, 0, 0)
    assert heap
    block = emu.HeapAlloc(heap, 0, 0x200000)
    assert block
    page = block & ~(mmap.PAGESIZE - 1)  # (a large block starts past its mapping's header)
    assert _mapped(page)
    assert emu.HeapFree(heap, 0, block)
    # Asked right away, before anything else could map memory there.
    assert not _mapped(page)
    assert emu.HeapDestroy(heap)


# -- more of the same promises: realloc'd blocks, destruction, zeroing -------------------
def _mapped(address: int) -> bool:
    """Whether the page of ``address`` is mapped (committed, on Windows)."""
    if VIRTUAL_QUERY is not None:
        return bool(virtual_query(address).State == 0x1000)  # MEM_COMMIT
    libc = ctypes.CDLL(None, use_errno=True)
    mincore = libc.mincore
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    vec = (ctypes.c_ubyte * 1)()
    if mincore(address & ~0xFFF, 1, vec) == 0:
        return True
    # mincore fails with ENOMEM for an address with no mapping.
    assert ctypes.get_errno() == errno.ENOMEM
    return False


@pytest.mark.parametrize("maximum", [0, 0x400000], ids=["growable", "fixed"])
@pytest.mark.parametrize("sizes", [(16, 9000), (5000, 0x20000), (0x20000, 24)])
def test_execute_heap_stays_executable_through_realloc(emu: EmulatedBackend, maximum: int, sizes: tuple) -> None:  # type: ignore[type-arg]
    heap = emu.HeapCreate(HEAP_CREATE_ENABLE_EXECUTE, 0, maximum)
    assert heap
    block = emu.HeapReAlloc(heap, 0, emu.HeapAlloc(heap, 0, sizes[0]), sizes[1])
    assert block and "x" in _permissions(block)
    assert emu.HeapDestroy(heap)


@pytest.mark.parametrize("sizes", [(16, 0x200000), (0x200000, 0x800000), (0x200000, 64)])
def test_realloc_never_makes_memory_executable(emu: EmulatedBackend, sizes: tuple) -> None:  # type: ignore[type-arg]
    heap = emu.HeapCreate(0, 0, 0)
    assert heap
    block = emu.HeapReAlloc(heap, 0, emu.HeapAlloc(heap, 0, sizes[0]), sizes[1])
    assert block and "x" not in _permissions(block)
    process = emu.GetProcessHeap()
    other = emu.HeapAlloc(process, 0, 0x200000)
    assert other
    assert "x" not in _permissions(other) and emu.HeapFree(process, 0, other)
    assert emu.HeapDestroy(heap)


def test_large_block_moved_away_is_unmapped(emu: EmulatedBackend) -> None:
    """After a realloc moves a large block, its old address is no longer mapped."""
    heap = emu.HeapCreate(0, 0, 0)
    assert heap
    blocker = []
    block = emu.HeapAlloc(heap, 0, 0x200000)
    assert block
    # Grow until it moves (the pages after it may be taken, or may not).
    for size in range(0x400000, 0x4000000, 0x400000):
        moved = emu.HeapReAlloc(heap, 0, block, size)
        assert moved
        if moved != block:
            assert not _mapped(block)
            break
        blocker.append(emu.HeapAlloc(heap, 0, 0x200000))
    assert emu.HeapDestroy(heap)


def test_destroy_unmaps_every_large_block(emu: EmulatedBackend) -> None:
    heap = emu.HeapCreate(0, 0, 0)
    assert heap
    blocks = [emu.HeapAlloc(heap, 0, 0x100000 * n) or 0 for n in (1, 2, 3)]
    assert all(_mapped(b) for b in blocks)
    assert emu.HeapDestroy(heap)
    assert not any(_mapped(b) for b in blocks)
    assert not _mapped(heap)


ZERO_SIZES = [1, 16, 100, 256, 257, 4096, 70000, 0x100000, 0x200000]


@pytest.mark.parametrize("variant", ["plain", "debug", "fallback"])
@pytest.mark.parametrize("maximum", [0, 0x800000], ids=["growable", "fixed"])
def test_zero_memory_never_returns_old_data(variant: str, maximum: int) -> None:
    """Freed bytes of any size never reach a HEAP_ZERO_MEMORY block, fresh or grown by realloc."""
    from compatheap import HEAP_ZERO_MEMORY

    if variant == "debug":
        k32 = EmulatedBackend(debug={"tail", "free"})
    elif variant == "fallback":
        k32 = EmulatedBackend().variant("emulated-fallback")
    else:
        k32 = EmulatedBackend()
    heap = k32.HeapCreate(0, 0, maximum)
    assert heap
    checked = 0
    for size in ZERO_SIZES:
        for _ in range(3):  # freed blocks of this size are the likeliest to come back
            old = k32.HeapAlloc(heap, 0, size)
            if not old:
                continue  # a fixed heap refuses large blocks
            ctypes.memset(old, 0xCC, size)
            assert k32.HeapFree(heap, 0, old)
            fresh = k32.HeapAlloc(heap, HEAP_ZERO_MEMORY, size)
            assert fresh
            assert ctypes.string_at(fresh, size) == bytes(size)
            # Shrink (the cut bytes keep old data in the slack), then grow back zeroed.
            ctypes.memset(fresh, 0xDD, size)
            small = k32.HeapReAlloc(heap, 0, fresh, size // 2)
            assert small
            grown = k32.HeapReAlloc(heap, HEAP_ZERO_MEMORY, small, size)
            assert grown and ctypes.string_at(grown + size // 2, size - size // 2) == bytes(size - size // 2)
            assert k32.HeapFree(heap, 0, grown)
            checked += 1
    assert checked >= len(ZERO_SIZES) * 2
    assert k32.HeapDestroy(heap)
