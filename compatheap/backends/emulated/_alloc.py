"""HeapAlloc, HeapFree and HeapSize: the full paths and the hot paths.

The full paths take any argument ctypes would, hold the heap's lock and
handle every case. Each backend instance also gets hot paths (closures, bound
by :func:`hot_paths`): for plain int arguments, no flags (HeapAlloc: or
HEAP_ZERO_MEMORY), and a block served from or kept in the heap's spare lists
(or, for HeapSize, any live block), they do the whole call under the heap's
token (see ``_guard.py``) in a few dictionary and list operations. Anything
else, or a token that is taken, goes to the full path, which gives the same
result for these calls.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from ..._args import dword_arg, pointer_arg, size_arg
from ..._constants import (
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_NO_SERIALIZE,
    HEAP_SIZE_FAILURE,
    HEAP_ZERO_MEMORY,
    SIZE_MAX,
)
from ._guard import register_hot
from ._heap import LARGE_THRESHOLD, MAX_REQUEST, SPARE_MAX_SIZE, SPARE_PER_SIZE

if TYPE_CHECKING:
    from ._backend import EmulatedBackend

_memset = ctypes.memset
_DWORD_MAX = 0xFFFFFFFF
# The flag values the hot paths serve: none, HEAP_NO_SERIALIZE (1),
# HEAP_ZERO_MEMORY (8) and both. Compared by identity: every int this small
# that CPython makes is one cached object, so ``is`` checks type and value at
# once (a bool, a float or an int subclass takes the full path, as it should).
# HEAP_NO_SERIALIZE changes nothing here: the token is no lock a caller waits on.
F0, F1, F8, F9 = 0, HEAP_NO_SERIALIZE, HEAP_ZERO_MEMORY, HEAP_NO_SERIALIZE | HEAP_ZERO_MEMORY


def heap_alloc(self: "EmulatedBackend", hHeap: Any, dwFlags: Any, dwBytes: Any) -> Optional[int]:
    """``HeapAlloc(hHeap, dwFlags, dwBytes)``."""
    heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
    flags = dwFlags if type(dwFlags) is int and 0 <= dwFlags <= _DWORD_MAX else dword_arg(dwFlags, 2)
    size = dwBytes if type(dwBytes) is int and 0 <= dwBytes <= SIZE_MAX else size_arg(dwBytes, 3)
    if heap is None:
        return self._fail(ERROR_INVALID_HANDLE)
    flags |= heap.flags
    gate, lock = heap.guards(flags)
    with gate, lock:
        if not heap.alive:
            return self._fail(ERROR_INVALID_HANDLE)
        address = heap.alloc(size, (flags & HEAP_ZERO_MEMORY) != 0) if size <= MAX_REQUEST else 0
        if address:
            try:
                heap.blocks[address] = size
            except MemoryError:  # Python's own memory ran out: the block goes back.
                heap.release(address, size)
                heap._walk_cache = None  # A fixed heap's free index changed twice.
            else:
                heap._walk_cache = None
                return address
    if flags & HEAP_GENERATE_EXCEPTIONS:
        self._raise_no_memory("HeapAlloc", size)
    return self._fail(ERROR_NOT_ENOUGH_MEMORY)


def heap_free(self: "EmulatedBackend", hHeap: Any, dwFlags: Any, lpMem: Any) -> int:
    """``HeapFree(hHeap, dwFlags, lpMem)``."""
    heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
    flags = dwFlags if type(dwFlags) is int and 0 <= dwFlags <= _DWORD_MAX else dword_arg(dwFlags, 2)
    address = lpMem if type(lpMem) is int and 0 < lpMem <= SIZE_MAX else pointer_arg(lpMem, 3)
    if not address:
        return 1  # Freeing NULL succeeds, whatever the handle.
    if heap is None:
        return self._false(ERROR_INVALID_PARAMETER)
    gate, lock = heap.guards(flags)
    with gate, lock:
        blocks = heap.blocks
        size = blocks.get(address)
        if size is None or not heap.alive:
            return self._false(ERROR_INVALID_PARAMETER)
        if heap.checking and not heap.block_intact(address, size):
            # The debug heap refuses to free a block whose tail was overrun.
            return self._false(ERROR_INVALID_PARAMETER)
        del blocks[address]
        heap._walk_cache = None
        heap.release(address, size)
    return 1


def heap_size(self: "EmulatedBackend", hHeap: Any, dwFlags: Any, lpMem: Any) -> int:
    """``HeapSize(hHeap, dwFlags, lpMem)``."""
    heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
    flags = dword_arg(dwFlags, 2)
    address = pointer_arg(lpMem, 3)
    if heap is None:
        self._error.code = ERROR_INVALID_PARAMETER
        return HEAP_SIZE_FAILURE
    gate, lock = heap.guards(flags)
    with gate, lock:
        size = heap.blocks.get(address) if heap.alive else None
    if size is None:
        self._error.code = ERROR_INVALID_PARAMETER
        return HEAP_SIZE_FAILURE
    return size


HotAlloc = Callable[[Any, Any, Any], Optional[int]]
HotFree = Callable[[Any, Any, Any], int]


def hot_paths(backend: "EmulatedBackend") -> Tuple[HotAlloc, HotFree, HotFree]:
    """HeapAlloc, HeapFree and HeapSize for ``backend``, each with its hot path in front.

    Local names rather than attribute lookups, ``type(x) is int`` rather than
    conversions, no lock calls: each is a measurable part of a call this short.
    """
    heaps = backend._heaps
    full_alloc: HotAlloc = heap_alloc.__get__(backend)
    full_free: HotFree = heap_free.__get__(backend)
    full_size: HotFree = heap_size.__get__(backend)

    def HeapAlloc(hHeap: Any, dwFlags: Any, dwBytes: Any) -> Optional[int]:
        if (
            type(hHeap) is int
            and (dwFlags is F0 or dwFlags is F8 or dwFlags is F1 or dwFlags is F9)
            and type(dwBytes) is int
        ):
            try:
                heap = heaps[hHeap]  # (a subscript is cheaper than .get())
            except KeyError:
                heap = None
            if heap is not None:
                token = heap.token
                taken = False
                try:
                    del token[-1]  # IndexError: held elsewhere, and the full path waits for it
                    try:  # at once, and held set first thing: see _guard.py
                        held = taken = True
                        address = 0
                        # Marked: step aside, before anything that could run a handler (see _guard.py).
                        if not heap.active:
                            spare = heap.spare.get(dwBytes)
                            if spare:
                                address = spare.pop()
                                if dwFlags & F8:
                                    _memset(address, 0, dwBytes)
                            elif heap.malloc_direct and 0 <= dwBytes < LARGE_THRESHOLD:
                                address = heap.native.malloc(dwBytes or 1)
                                if address and dwFlags & F8:
                                    _memset(address, 0, dwBytes)
                            elif heap.recycle and 0 <= dwBytes <= MAX_REQUEST:
                                address = heap.alloc(dwBytes, (dwFlags & F8) != 0)
                        if address:
                            try:
                                heap.blocks[address] = dwBytes
                            except MemoryError:
                                heap.release(address, dwBytes)  # and the full path fails as it must
                            else:
                                heap._walk_cache = None
                                return address
                    finally:
                        held = False  # noqa: F841 - read by _guard.held_here()
                        token.append(True)
                except IndexError:
                    if taken:
                        raise
        # Failures too: the full path sets the last error or raises.
        return full_alloc(hHeap, dwFlags, dwBytes)

    def HeapFree(hHeap: Any, dwFlags: Any, lpMem: Any) -> int:
        if type(hHeap) is int and (dwFlags is F0 or dwFlags is F1) and type(lpMem) is int:
            try:
                heap = heaps[hHeap]  # (a subscript is cheaper than .get())
            except KeyError:
                heap = None
            if heap is not None:
                token = heap.token
                taken = False
                try:
                    del token[-1]  # IndexError: held elsewhere, and the full path waits for it
                    try:  # at once, and held set first thing: see _guard.py
                        held = taken = True
                        blocks = heap.blocks
                        try:
                            # Marked: step aside, before anything that could run a
                            # handler (see _guard.py).
                            size = None if heap.active else blocks[lpMem]
                        except KeyError:
                            size = None
                        if size is not None and heap.recycle:  # recycle: no debug checks to make first
                            # Out of the live blocks first: never live and spare at once.
                            del blocks[lpMem]
                            heap._walk_cache = None
                            if lpMem in heap.large:
                                heap.release(lpMem, size)  # A mapped block is unmapped, never kept.
                            else:
                                spare = heap.spare.get(size)
                                if spare is not None and len(spare) < SPARE_PER_SIZE:
                                    spare.append(lpMem)
                                elif heap.malloc_direct and size > SPARE_MAX_SIZE:
                                    heap.native.free(lpMem)
                                else:
                                    heap.release(lpMem, size)  # (it starts a spare list for this size)
                            return 1
                    finally:
                        held = False  # noqa: F841 - read by _guard.held_here()
                        token.append(True)
                except IndexError:
                    if taken:
                        raise
        return full_free(hHeap, dwFlags, lpMem)

    def HeapSize(hHeap: Any, dwFlags: Any, lpMem: Any) -> int:
        if type(hHeap) is int and (dwFlags is F0 or dwFlags is F1) and type(lpMem) is int:
            try:
                heap = heaps[hHeap]  # (a subscript is cheaper than .get())
            except KeyError:
                heap = None
            if heap is not None:
                token = heap.token
                taken = False
                try:
                    del token[-1]  # IndexError: held elsewhere, and the full path waits for it
                    try:  # at once, and held set first thing: see _guard.py
                        held = taken = True
                        if not heap.active:
                            try:
                                return heap.blocks[lpMem]
                            except KeyError:
                                pass
                    finally:
                        held = False  # noqa: F841 - read by _guard.held_here()
                        token.append(True)
                except IndexError:
                    if taken:
                        raise
        return full_size(hHeap, dwFlags, lpMem)

    register_hot((HeapAlloc, HeapFree, HeapSize))
    return HeapAlloc, HeapFree, HeapSize
