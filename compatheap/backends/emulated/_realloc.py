"""HeapReAlloc, the whole path: checks, in-place attempt, move, fills.

Order of preference: resize in place (always for a shrink; into the block's
real capacity, a free neighbour, or an ``mremap`` without MAYMOVE for a
grow); otherwise, unless ``HEAP_REALLOC_IN_PLACE_ONLY``, move (``realloc``,
``mremap`` with MAYMOVE, or allocate-copy-release). A large block that may
move grows with a single ``mremap`` with MAYMOVE, which stays in place when it
can. The heap kinds provide these steps (``resize``, ``resize_in_place``,
``move``); this module decides between them. Any failure leaves the block
exactly as it was.

In front of it, each backend instance has a hot path (:func:`hot_realloc`):
for plain int arguments, no flags, and a small block of a heap over the plain
C library, it resizes in place when the block's capacity allows (always for a
shrink) or else calls ``realloc``, under the heap's token (see ``_guard.py``).
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..._args import dword_arg, pointer_arg, size_arg
from ..._constants import (
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_ZERO_MEMORY,
    SIZE_MAX,
)
from ._alloc import F0, F1, F8, F9
from ._guard import register_hot
from ._heap import LARGE_THRESHOLD, MAX_REQUEST

if TYPE_CHECKING:
    from ._backend import EmulatedBackend

_memset = ctypes.memset


def heap_realloc(self: "EmulatedBackend", hHeap: Any, dwFlags: Any, lpMem: Any, dwBytes: Any) -> Optional[int]:
    """``HeapReAlloc(hHeap, dwFlags, lpMem, dwBytes)``."""
    heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
    flags = dwFlags if type(dwFlags) is int and 0 <= dwFlags <= 0xFFFFFFFF else dword_arg(dwFlags, 2)
    address = lpMem if type(lpMem) is int and 0 < lpMem <= SIZE_MAX else pointer_arg(lpMem, 3)
    size = dwBytes if type(dwBytes) is int and 0 <= dwBytes <= SIZE_MAX else size_arg(dwBytes, 4)
    if heap is None:
        return self._fail(ERROR_INVALID_HANDLE)
    if not address:
        # Not an allocation: Windows answers NULL and clears the last error.
        return self._fail(0)
    flags |= heap.flags
    gate, lock = heap.guards(flags)
    with gate, lock:
        if not heap.alive:
            return self._fail(ERROR_INVALID_HANDLE)
        blocks = heap.blocks
        old = blocks.get(address)
        if old is None:
            return self._fail(ERROR_INVALID_PARAMETER)
        if size > MAX_REQUEST:
            moved = 0
        elif flags & HEAP_REALLOC_IN_PLACE_ONLY:
            moved = address if heap.resize_in_place(address, old, size) else 0
        else:
            moved = heap.resize(address, old, size)
        if moved:
            if moved != address:
                del blocks[address]
            blocks[moved] = size
            heap._walk_cache = None
            if size > old:
                # Bytes past the old requested size are new to the caller even
                # if they sat in the old block's slack: zero them (or fill them).
                heap.new_contents(moved, old, size, (flags & HEAP_ZERO_MEMORY) != 0)
            if heap.debug.tail:
                heap.write_tail(moved, size)
            return moved
    if flags & HEAP_GENERATE_EXCEPTIONS:
        self._raise_no_memory("HeapReAlloc", size)
    return self._fail(ERROR_NOT_ENOUGH_MEMORY)


def hot_realloc(backend: "EmulatedBackend") -> Callable[[Any, Any, Any, Any], Optional[int]]:
    """HeapReAlloc for ``backend``, with its hot path in front."""
    heaps = backend._heaps
    full: Callable[[Any, Any, Any, Any], Optional[int]] = heap_realloc.__get__(backend)

    def HeapReAlloc(hHeap: Any, dwFlags: Any, lpMem: Any, dwBytes: Any) -> Optional[int]:
        if (
            type(hHeap) is int
            and (dwFlags is F0 or dwFlags is F8 or dwFlags is F1 or dwFlags is F9)
            and type(lpMem) is int
            and type(dwBytes) is int
            and 0 <= dwBytes <= MAX_REQUEST
        ):
            try:
                heap = heaps[hHeap]  # (a subscript is cheaper than .get())
            except KeyError:
                heap = None
            if heap is not None and heap.malloc_direct:
                token = heap.token
                taken = False
                try:
                    del token[-1]  # IndexError: held elsewhere, and the full path waits for it
                    try:  # at once, and held set first thing: see _guard.py
                        held = taken = True
                        blocks = heap.blocks
                        try:
                            old = None if heap.active else blocks[lpMem]  # marked: step aside
                        except KeyError:
                            old = None
                        if old is not None:
                            length = heap.large.get(lpMem)
                            if length is None:
                                # In place within the block's capacity (always for a
                                # shrink), else realloc: the full path's choices. A
                                # small block growing large moves: the full path's job.
                                if dwBytes <= old or dwBytes <= heap.native.usable_query(lpMem):  # type: ignore[misc]
                                    moved = lpMem
                                elif dwBytes < LARGE_THRESHOLD:
                                    moved = heap.native.realloc(lpMem, dwBytes)
                                else:
                                    moved = 0
                                zero_end = dwBytes
                            elif heap.remap_direct:
                                moved = heap.remap_large(lpMem, length, dwBytes)
                                # From the old mapping's end on, the pages are new (zero).
                                zero_end = min(dwBytes, length)
                            else:
                                moved = 0
                            if moved:
                                if moved != lpMem:
                                    del blocks[lpMem]
                                blocks[moved] = dwBytes
                                heap._walk_cache = None
                                if dwFlags & F8 and zero_end > old:
                                    _memset(moved + old, 0, zero_end - old)
                                return moved
                    finally:
                        held = False  # noqa: F841 - read by _guard.held_here()
                        token.append(True)
                except IndexError:
                    if taken:
                        raise
        return full(hHeap, dwFlags, lpMem, dwBytes)

    register_hot((HeapReAlloc,))
    return HeapReAlloc
