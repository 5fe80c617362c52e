"""Fixed-size heaps: one reserved mapping with a best-fit allocator inside.

Layout: the handle is the mapping's start and a header of ``HEADER`` bytes
follows; the rest is carved into chunks. A chunk starts with ``CHUNK_HEADER``
bytes of (unused) header space, as a Windows heap entry does, so a block's
address is its chunk's address plus 16.

Free chunks are indexed three ways: by start and by end (to coalesce with
both neighbours in O(1)) and in a list sorted by ``(length, start)`` (best fit
by bisection). A freed chunk first goes to a bin of its length, from which an
allocation needing exactly that length takes it in O(1) however fragmented the
heap; bins are merged into the index (coalescing) when an allocation or an
in-place growth finds no room otherwise, and before the heap is inspected.
Before the bins come the spare blocks: freed small blocks kept whole, chunk
and all, for the next allocation of the same size (the hot paths' pop and
append); they go to the bins at the same times.
Everything is bookkept in Python, never in the heap's memory, so a buffer
overrun cannot corrupt the allocator.
"""

from __future__ import annotations

import bisect
import ctypes
from typing import Dict, List, Tuple

from ..._constants import (
    HEAP_CREATE_ENABLE_EXECUTE,
    MEMORY_ALLOCATION_ALIGNMENT,
    POINTER_SIZE,
    PROCESS_HEAP_ENTRY_BUSY,
    PROCESS_HEAP_REGION,
    PROCESS_HEAP_UNCOMMITTED_RANGE,
)
from ._debug import DebugChecks
from ._heap import HANDLE_ALIGNMENT, LARGE_THRESHOLD, Entry, Heap
from ._oldnative import Native

#: The heap header at the start of the mapping (Windows' fixed heaps keep a
#: little over 0x600 bytes of their room for bookkeeping).
HEADER = 0x800
CHUNK_HEADER = MEMORY_ALLOCATION_ALIGNMENT
MIN_CHUNK = 2 * MEMORY_ALLOCATION_ALIGNMENT
#: A fixed heap's size is a multiple of this.
SIZE_GRANULE = 0x400 * POINTER_SIZE

_ALIGN_MASK = MEMORY_ALLOCATION_ALIGNMENT - 1
_memmove = ctypes.memmove
_memset = ctypes.memset


def reserve_size(initial: int, maximum: int) -> int:
    """The mapping a ``HeapCreate(_, initial, maximum)`` fixed heap gets."""
    size = max(initial, maximum, HEADER + MIN_CHUNK)
    return (size + SIZE_GRANULE - 1) // SIZE_GRANULE * SIZE_GRANULE


class FixedHeap(Heap):
    growable = False

    def __init__(self, native: Native, debug: DebugChecks, flags: int, initial: int, maximum: int) -> None:
        size = reserve_size(initial, maximum)
        executable = bool(flags & HEAP_CREATE_ENABLE_EXECUTE)
        handle = native.map_aligned(size, HANDLE_ALIGNMENT, executable)
        if not handle:
            raise MemoryError("cannot reserve the heap's room")
        super().__init__(native, debug, flags, handle)
        self.size = size
        self.end = handle + size
        self.page = native.page_size
        start = handle + HEADER
        #: Busy chunks: block address -> chunk length.
        self.chunks: Dict[int, int] = {}
        #: Chunks in quarantine (free checking): block address -> chunk length.
        self.chunks_held: Dict[int, int] = {}
        self.free_at: Dict[int, int] = {start: self.end - start}
        self.free_end: Dict[int, int] = {self.end: start}
        self.by_size: List[Tuple[int, int]] = [(self.end - start, start)]
        #: Freed chunks not yet merged into the index: chunk length -> starts.
        self.bins: Dict[int, List[int]] = {}
        self._overhead = CHUNK_HEADER + debug.tail_size + _ALIGN_MASK
        self.committed_end = min(self.end, self._page_up(handle + max(initial, HEADER)))

    def _page_up(self, address: int) -> int:
        page = self.page
        return (address + page - 1) & ~(page - 1)

    def _chunk_length(self, size: int) -> int:
        return max((size + self._overhead) & ~_ALIGN_MASK, MIN_CHUNK)

    # -- free-chunk index ----------------------------------------------------
    def _add_free(self, start: int, length: int) -> None:
        end = start + length
        following = self.free_at.get(end)
        if following is not None:
            self._take_free(end, following)
            length += following
            end += following
        previous = self.free_end.get(start)
        if previous is not None:
            self._take_free(previous, start - previous)
            length += start - previous
            start = previous
        self.free_at[start] = length
        self.free_end[end] = start
        bisect.insort(self.by_size, (length, start))

    def _take_free(self, start: int, length: int) -> None:
        del self.free_at[start]
        del self.free_end[start + length]
        index = bisect.bisect_left(self.by_size, (length, start))
        del self.by_size[index]

    def _use(self, start: int, length: int, need: int) -> int:
        """Turn part of the free chunk ``start`` into a busy chunk of ``need``."""
        self._take_free(start, length)
        if length - need >= MIN_CHUNK:
            self._add_free(start + need, length - need)
        else:
            need = length
        address = start + CHUNK_HEADER
        self.chunks[address] = need
        self._commit_to(start + need)
        return address

    def _merge_bins(self) -> bool:
        """Coalesce the spare and binned chunks into the free index; whether there were any."""
        spare, self.spare = self.spare, {}
        for addresses in spare.values():
            for address in addresses:
                self._bin(address - CHUNK_HEADER, self.chunks.pop(address))
        bins, self.bins = self.bins, {}
        for length, starts in bins.items():
            for start in starts:
                self._add_free(start, length)
        return bool(bins)

    def _commit_to(self, end: int) -> None:
        if end > self.committed_end:
            self.committed_end = min(self.end, self._page_up(end))

    # -- primitives ----------------------------------------------------------
    def _carve(self, size: int) -> int:
        if size >= LARGE_THRESHOLD:
            return 0  # Fixed heaps refuse large blocks, room or not.
        need = (size + self._overhead) & ~_ALIGN_MASK  # _chunk_length(), inlined
        if need < MIN_CHUNK:
            need = MIN_CHUNK
        binned = self.bins.get(need)
        if binned:
            address = binned.pop() + CHUNK_HEADER
            self.chunks[address] = need
            return address
        by_size = self.by_size
        index = bisect.bisect_left(by_size, (need, 0))
        if index == len(by_size):
            # No room in the index: freed chunks may coalesce into some.
            return self._carve(size) if self._merge_bins() else 0
        length, start = by_size[index]
        return self._use(start, length, need)

    def alloc(self, size: int, zero: bool) -> int:
        spare = self.spare.get(size)
        address = spare.pop() if spare else self._carve(size)
        if address:
            if zero:
                _memset(address, 0, size)
            elif self.checking:
                self.new_contents(address, 0, size, False)
            if self.checking:
                self.debug.write_tail(address, size)
        return address

    def release(self, address: int, size: int) -> None:
        if self.keep_spare(address, size):
            return  # Its chunk stays in self.chunks.
        length = self.chunks.pop(address)
        quarantine = self.quarantine
        if quarantine is not None:
            self.chunks_held[address] = length
            evicted = quarantine.hold(address, size + self.debug.tail_size)
            if evicted is None:
                return
            address = evicted[0]
            length = self.chunks_held.pop(address)
        self._bin(address - CHUNK_HEADER, length)

    def _bin(self, start: int, length: int) -> None:
        binned = self.bins.get(length)
        if binned is None:
            binned = self.bins[length] = []
        binned.append(start)

    def resize_in_place(self, address: int, old: int, new: int) -> bool:
        if new >= LARGE_THRESHOLD:
            return False
        need = self._chunk_length(new)
        length = self.chunks[address]
        start = address - CHUNK_HEADER
        if need <= length:
            if length - need >= MIN_CHUNK:
                self.chunks[address] = need
                self._add_free(start + need, length - need)
            return True
        following = self.free_at.get(start + length)
        if following is None or length + following < need:
            if self._merge_bins():  # A freed neighbour may sit in a bin.
                return self.resize_in_place(address, old, new)
            return False
        # Grow into the free neighbour, giving back what is not needed.
        self._take_free(start + length, following)
        total = length + following
        if total - need >= MIN_CHUNK:
            self._add_free(start + need, total - need)
            total = need
        self.chunks[address] = total
        self._commit_to(start + total)
        return True

    def move(self, address: int, old: int, new: int) -> int:
        moved = self._carve(new)
        if moved:
            _memmove(moved, address, min(old, new))
            self.release(address, old)
        return moved

    def entries(self) -> List[Entry]:
        self._merge_bins()  # Windows walks coalesced free blocks.
        handle, committed_end = self.handle, self.committed_end
        blocks = self.blocks
        entries: List[Entry] = [
            (
                handle,
                HEADER,  # Windows reports the heap header's size here.
                0,
                0,
                PROCESS_HEAP_REGION,
                (committed_end - handle, self.end - committed_end, handle + HEADER, self.end),
            )
        ]
        spans = [(a - CHUNK_HEADER, n, True) for a, n in self.chunks.items()]
        spans.extend((a - CHUNK_HEADER, n, False) for a, n in self.chunks_held.items())
        spans.extend((s, n, False) for s, n in self.free_at.items() if s < committed_end)
        spans.sort()
        for start, length, busy in spans:
            address = start + CHUNK_HEADER
            if busy:
                size = blocks[address]
                entries.append((address, size, min(255, length - size), 0, PROCESS_HEAP_ENTRY_BUSY, None))
            else:
                length = min(length, committed_end - start)
                if length <= CHUNK_HEADER:
                    continue
                entries.append((address, length - CHUNK_HEADER, CHUNK_HEADER, 0, 0, None))
        if committed_end < self.end:
            entries.append((committed_end, self.end - committed_end, 0, 0, PROCESS_HEAP_UNCOMMITTED_RANGE, None))
        return entries

    def largest_free(self) -> int:
        self._merge_bins()
        committed_end = self.committed_end
        best = 0
        for start, length in self.free_at.items():
            if start < committed_end:
                best = max(best, min(length, committed_end - start) - CHUNK_HEADER)
        return best

    def committed(self) -> int:
        return self.committed_end - self.handle

    def reserved(self) -> int:
        return self.size

    def destroy(self) -> None:
        self.spare = {}
        self.blocks.clear()
        self.chunks.clear()
        self.bins.clear()
        self.native.unmap(self.handle, self.size)
