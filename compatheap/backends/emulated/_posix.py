"""The native seam on POSIX systems: the C library's allocator and ``mmap``."""

from __future__ import annotations

import ctypes
import mmap as _mmap
import sys
from typing import Optional, Tuple

from ..._constants import MEMORY_ALLOCATION_ALIGNMENT
from ._native import Address, CFunction, NativeMemory, bind, need

_c_void_p, _c_size_t, _c_int = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
_MAP_FAILED = (1 << (8 * ctypes.sizeof(_c_void_p))) - 1

PROT_READ = getattr(_mmap, "PROT_READ", 1)
PROT_WRITE = getattr(_mmap, "PROT_WRITE", 2)
PROT_EXEC = getattr(_mmap, "PROT_EXEC", 4)
_MAP_PRIVATE = getattr(_mmap, "MAP_PRIVATE", 2)
_MAP_ANONYMOUS = getattr(_mmap, "MAP_ANONYMOUS", getattr(_mmap, "MAP_ANON", 0x20))
_MREMAP_MAYMOVE = 1
_MADV_DONTNEED = 4  # the same value on Linux, the BSDs and macOS
PAGE_SIZE = getattr(_mmap, "PAGESIZE", 4096)
_ALIGN = MEMORY_ALLOCATION_ALIGNMENT
_MASK = _ALIGN - 1


def _libc() -> ctypes.PyDLL:
    """The process's C library, or raise ``OSError`` when there is none.

    Loaded through PyDLL, every call keeps the GIL, which saves its release and
    re-acquisition (a fifth of an allocator call's cost, a tenth of a large
    block's growth). None of them waits on Python, and a long one (munmap of
    many resident pages) is what CPython's own allocator and glibc's free()
    already do with the GIL held.
    """
    # PyDLL(None) is the running process's global namespace on POSIX; Windows
    # rejects it, which is how this module learns there is no C library.
    try:
        libc = ctypes.PyDLL(None)
    except (OSError, TypeError) as exc:
        raise OSError(f"no C library in the process namespace ({exc})") from None
    for symbol in ("malloc", "realloc", "free", "posix_memalign", "mmap", "munmap", "madvise"):
        if not hasattr(libc, symbol):
            raise OSError(f"the C library lacks {symbol}()")
    return libc


class PosixMemory(NativeMemory):
    """``malloc`` and friends from the C library the process runs on; ``mmap`` for pages."""

    @classmethod
    def probe(cls) -> Tuple[bool, str]:
        try:
            _libc()
        except OSError as exc:
            return False, str(exc)
        return True, "the C library provides malloc and mmap"

    def __init__(self, *, use_remap: bool = True, use_usable_size: bool = True) -> None:
        libc = _libc()
        self._malloc = need(libc, "malloc", _c_void_p, [_c_size_t])
        self._realloc = need(libc, "realloc", _c_void_p, [_c_void_p, _c_size_t])
        self._free = need(libc, "free", None, [_c_void_p])
        self._memalign = need(libc, "posix_memalign", _c_int, [ctypes.POINTER(_c_void_p), _c_size_t, _c_size_t])
        self._mmap = need(libc, "mmap", _c_void_p, [_c_void_p, _c_size_t, _c_int, _c_int, _c_int, ctypes.c_long])
        self._munmap = need(libc, "munmap", _c_int, [_c_void_p, _c_size_t])
        self._madvise = need(libc, "madvise", _c_int, [_c_void_p, _c_size_t, _c_int])
        # Linux's signature and MREMAP_MAYMOVE value; NetBSD has an mremap
        # with five arguments, which this binding would call wrongly.
        linux = sys.platform.startswith("linux")
        self._zeroes_dropped_pages = linux
        mremap = bind(libc, "mremap", _c_void_p, [_c_void_p, _c_size_t, _c_size_t, _c_int]) if linux else None
        self._mremap = mremap if use_remap else None
        self.can_remap = self._mremap is not None
        self._usable: Optional[CFunction] = None
        if use_usable_size:
            # glibc and the BSDs spell it malloc_usable_size, macOS malloc_size.
            for name in ("malloc_usable_size", "malloc_size"):
                self._usable = bind(libc, name, _c_size_t, [_c_void_p])
                if self._usable is not None:
                    self.usable_size_name = name
                    break
        self.page_size = PAGE_SIZE
        #: What sizes are rounded up to (see malloc()): nothing where the
        #: allocator aligns every block on its own.
        self._round = 0 if self._aligns_every_block() else _MASK

    # -- the C allocator -----------------------------------------------------
    # jemalloc, tcmalloc and mimalloc align a block only as much as its size
    # needs (8 bytes for 8), while a size that is a multiple of 16 gets 16 from
    # all of them: under such an allocator sizes are rounded up. glibc aligns
    # every block, and there sizes stay as asked (rounding would change how
    # its blocks are spaced). Should an allocator still miss, the block is
    # redone with posix_memalign: the alignment holds whatever the allocator.
    def _aligns_every_block(self) -> bool:
        """Whether sizes that are not multiples of the alignment still get it (a probe)."""
        blocks = [self._malloc(size) for size in (1, 8, 24, 40, 56, 72, 88, 104, 120) * 8]
        aligned = all(block and not block & _MASK for block in blocks)
        for block in blocks:
            self._free(block)
        return aligned

    def malloc(self, size: int) -> Address:
        grain = self._round
        address: Optional[int] = self._malloc(((size + grain) & ~grain) or _ALIGN)
        if address is None:
            return 0
        if address & _MASK:
            self._free(address)
            return self._aligned_alloc(size)
        return address

    def realloc(self, address: Address, size: int) -> Address:
        grain = self._round
        moved: Optional[int] = self._realloc(address, ((size + grain) & ~grain) or _ALIGN)
        if moved is None:
            return 0
        if moved & _MASK:
            # Moved to a misaligned place: the contents are there now, copy them once more.
            again = self._aligned_alloc(size)
            if not again:
                # The block must stay usable: it is only misaligned, which is
                # better than lost. (No allocator seen does this.)
                return moved
            ctypes.memmove(again, moved, size)
            self._free(moved)
            return again
        return moved

    def _aligned_alloc(self, size: int) -> Address:
        out = _c_void_p()
        if self._memalign(ctypes.byref(out), _ALIGN, size or _ALIGN) != 0:
            return 0
        return out.value or 0

    def free(self, address: Address) -> None:
        self._free(address)

    def usable_size(self, address: Address) -> int:
        usable = self._usable
        if usable is None:  # (only asked where usable_size_name says there is one)
            raise OSError("this C library cannot tell a block's capacity")
        return usable(address) or 0

    # -- page mappings -------------------------------------------------------
    def map(self, length: int, executable: bool = False) -> Address:
        prot = PROT_READ | PROT_WRITE | (PROT_EXEC if executable else 0)
        address = self._mmap(None, length, prot, _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0)
        if not address or address == _MAP_FAILED:
            return 0
        return int(address)

    def unmap(self, address: Address, length: int) -> bool:
        return bool(self._munmap(address, length) == 0)

    def decommit(self, address: Address, length: int) -> bool:
        # MADV_DONTNEED frees the pages and keeps the mapping whole (no split,
        # so no mapping-count limit to meet). Only Linux promises that private
        # anonymous pages read zero afterwards; elsewhere it is a hint.
        done = self._madvise(address, length, _MADV_DONTNEED) == 0
        return done and self._zeroes_dropped_pages

    def commit(self, address: Address, length: int, executable: bool = False) -> bool:
        return True  # Dropped pages stay mapped: touching them brings zero pages.

    def remap(self, address: Address, length: int, new_length: int, may_move: bool) -> Address:
        if self._mremap is None:
            return 0
        result = self._mremap(address, length, new_length, _MREMAP_MAYMOVE if may_move else 0)
        if not result or result == _MAP_FAILED:
            return 0
        return int(result)

    def map_aligned(self, length: int, alignment: int, executable: bool = False) -> Address:
        span = self.map(length + alignment, executable)
        if not span:
            return 0
        start = (span + alignment - 1) & ~(alignment - 1)
        end = span + length + alignment
        # Trimming splits the mapping, which the kernel may refuse: then give
        # back all of it, leaking nothing.
        if start > span and not self.unmap(span, start - span):
            self.unmap(span, end - span)
            return 0
        if end > start + length and not self.unmap(start + length, end - start - length):
            self.unmap(start, end - start)
            return 0
        return start
