"""The native seam on Windows: the Universal CRT's allocator and ``VirtualAlloc``.

With this, the emulation runs beside the real kernel32 in one Windows process:
heaps that report wild pointers instead of crashing, and debug checks without
global flags. Windows has no ``mremap``: large blocks that grow are copied
(the emulation's fallback path), and trims decommit pages rather than unmap
them, since a reservation can only be released whole.
"""

from __future__ import annotations

import ctypes
import mmap as _mmap
from typing import Any, Tuple

from ..._constants import MEMORY_ALLOCATION_ALIGNMENT
from ._native import Address, NativeMemory, need

_c_void_p, _c_size_t, _c_uint32, _c_int = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_int

MEM_COMMIT = 0x1000
MEM_RESERVE = 0x2000
MEM_DECOMMIT = 0x4000
MEM_RELEASE = 0x8000
MEM_FREE = 0x10000  # VirtualQuery's state of unreserved addresses
PAGE_READWRITE = 0x04
PAGE_EXECUTE_READWRITE = 0x40
PAGE_SIZE = getattr(_mmap, "PAGESIZE", 4096)
#: VirtualAlloc places every reservation at a multiple of this (64 KiB).
GRANULARITY = getattr(_mmap, "ALLOCATIONGRANULARITY", 0x10000)
#: Tries at an aligned address another thread may take first.
_ALIGN_TRIES = 8


def _libraries() -> Tuple[Any, Any]:
    """Private handles on ucrtbase and kernel32; raise ``OSError`` where there are none."""
    windll = getattr(ctypes, "WinDLL", None)
    pydll = getattr(ctypes, "PyDLL", None)
    if windll is None or pydll is None:
        raise OSError("no Windows DLLs here (ctypes has no WinDLL)")
    # New library objects: their function objects are ours alone, so setting
    # argtypes cannot change anyone else's (ctypes.windll.kernel32's) calls.
    ucrt_quick = pydll("ucrtbase")
    kernel32 = windll("kernel32")
    needed = ((ucrt_quick, ("malloc", "realloc", "free", "_msize")), (kernel32, ("VirtualAlloc", "VirtualFree")))
    for lib, symbols in needed:
        for symbol in symbols:
            if not hasattr(lib, symbol):
                raise OSError(f"{lib._name} lacks {symbol}()")
    return ucrt_quick, kernel32


class WindowsMemory(NativeMemory):
    """``malloc`` and friends from ucrtbase (``_msize`` as the usable size); ``VirtualAlloc`` for pages."""

    @classmethod
    def probe(cls) -> Tuple[bool, str]:
        try:
            _libraries()
        except OSError as exc:
            return False, str(exc)
        return True, "ucrtbase provides malloc and kernel32 VirtualAlloc"

    def __init__(self, *, use_remap: bool = True, use_usable_size: bool = True) -> None:
        ucrt_quick, kernel32 = _libraries()
        # The allocator calls are short and never wait on Python: through
        # PyDLL they keep the GIL. The page calls may take long; they let go.
        self._malloc = need(ucrt_quick, "malloc", _c_void_p, [_c_size_t])
        self._realloc = need(ucrt_quick, "realloc", _c_void_p, [_c_void_p, _c_size_t])
        self._free = need(ucrt_quick, "free", None, [_c_void_p])
        self._msize = need(ucrt_quick, "_msize", _c_size_t, [_c_void_p])
        self._virtual_alloc = need(kernel32, "VirtualAlloc", _c_void_p, [_c_void_p, _c_size_t, _c_uint32, _c_uint32])
        self._virtual_free = need(kernel32, "VirtualFree", _c_int, [_c_void_p, _c_size_t, _c_uint32])
        # No call resizes a reservation: remap() always declines.
        self.can_remap = False
        if use_usable_size:
            self.usable_size_name = "_msize"
        self.page_size = PAGE_SIZE

    # -- the C allocator -----------------------------------------------------
    # The CRT aligns every block to 16 bytes on 64-bit and 8 on 32-bit, which
    # is MEMORY_ALLOCATION_ALIGNMENT on both: nothing to round or redo.
    def malloc(self, size: int) -> Address:
        address = self._malloc(size)
        return int(address) if address else 0

    def realloc(self, address: Address, size: int) -> Address:
        # The CRT's realloc(p, 0) frees p and returns NULL: a block of 0 bytes
        # is asked for as one of MEMORY_ALLOCATION_ALIGNMENT bytes instead.
        moved = self._realloc(address, size or MEMORY_ALLOCATION_ALIGNMENT)
        return int(moved) if moved else 0

    def free(self, address: Address) -> None:
        self._free(address)

    def usable_size(self, address: Address) -> int:
        return self._msize(address) or 0

    # -- page mappings -------------------------------------------------------
    def map(self, length: int, executable: bool = False) -> Address:
        protect = PAGE_EXECUTE_READWRITE if executable else PAGE_READWRITE
        address = self._virtual_alloc(None, length, MEM_RESERVE | MEM_COMMIT, protect)
        return int(address) if address else 0

    def map_aligned(self, length: int, alignment: int, executable: bool = False) -> Address:
        if alignment <= GRANULARITY:
            return self.map(length, executable)  # every reservation starts aligned to this
        protect = PAGE_EXECUTE_READWRITE if executable else PAGE_READWRITE
        # A reservation is released whole only: find a free aligned span by
        # reserving more, give it all back, and reserve the aligned part. Another
        # thread may take that address meanwhile; then try again.
        for _ in range(_ALIGN_TRIES):
            probe = self._virtual_alloc(None, length + alignment, MEM_RESERVE, PAGE_READWRITE)
            if not probe:
                return 0
            start = (int(probe) + alignment - 1) & ~(alignment - 1)
            self._virtual_free(probe, 0, MEM_RELEASE)
            address = self._virtual_alloc(start, length, MEM_RESERVE | MEM_COMMIT, protect)
            if address:
                return int(address)
        return 0

    def unmap(self, address: Address, length: int) -> bool:
        # MEM_RELEASE takes the reservation's base and size 0: it frees the whole
        # reservation, pages decommitted by decommit() included.
        return bool(self._virtual_free(address, 0, MEM_RELEASE))

    def decommit(self, address: Address, length: int) -> bool:
        # The addresses stay reserved until unmap(); committed again, they read zero.
        return bool(self._virtual_free(address, length, MEM_DECOMMIT))

    def commit(self, address: Address, length: int, executable: bool = False) -> bool:
        protect = PAGE_EXECUTE_READWRITE if executable else PAGE_READWRITE
        return bool(self._virtual_alloc(address, length, MEM_COMMIT, protect))

    def remap(self, address: Address, length: int, new_length: int, may_move: bool) -> Address:
        return 0
