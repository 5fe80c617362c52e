"""Fixed-size heaps: one reserved mapping with a best-fit allocator inside.

Layout: the handle is the mapping's start and a header of ``HEADER`` bytes
follows; the rest is carved into chunks. A chunk starts with ``CHUNK_HEADER``
bytes of (unused) header space, as a Windows heap entry does, so a block's
address is its chunk's address plus 16 [8].

Free chunks are indexed three ways: by start and by end (to coalesce with
both neighbours in O(1)) and in a list sorted by ``(length, start)`` (best fit
by bisection). A freed chunk first goes to a bin of its length, from which an
allocation needing exactly that length takes it in O(1) however fragmented the
heap; bins are merged into the index (coalescing) when an allocation or an
in-place growth finds no room otherwise, and before the heap is inspected.
Spare blocks (see ``_heap.py``) keep their chunk; they go to the bins at the
same times. A call nested in another on the heap (a signal handler's, a
finaliser's) may run between any two steps of it: a free chunk belongs to the
call that takes it out of ``free_at`` or out of its bin, which is one step.
Everything is bookkept in Python, never in the heap's memory, so a buffer
overrun cannot corrupt the allocator.

What is busy (``chunks``, ``chunks_held``) is the truth; the free index and
the bins only help to find the rest. That makes running out of Python's memory
simple to survive: a step of the index that raises MemoryError marks the index
out of date, and it is made again from the busy records (every gap between two
busy chunks is free) before it is next used. Undoing the steps instead cannot
be made safe: putting back a key just taken out of a dict, or shortening a
list, may itself need memory. An allocation or growth changes its busy record
last, so one that fails leaves the busy records as they were.
"""

from __future__ import annotations

import bisect
import ctypes
from typing import Dict, Iterator, List, Tuple

from ..._constants import (
    HEAP_CREATE_ENABLE_EXECUTE,
    MEMORY_ALLOCATION_ALIGNMENT,
    POINTER_SIZE,
    PROCESS_HEAP_ENTRY_BUSY,
    PROCESS_HEAP_REGION,
    PROCESS_HEAP_UNCOMMITTED_RANGE,
)
from ._debug import DebugChecks
from ._heap import HANDLE_ALIGNMENT, LARGE_THRESHOLD, EmulatedHeap, Entry
from ._native import Address, NativeMemory

#: The heap header at the start of the mapping: what Windows' fixed heaps keep
#: of their room (a 0x40000-byte heap holds a block of 0x40000 - 0xC00 bytes
#: but not one of 0x40000 - 0x600 on 64-bit; on 32-bit its largest block is
#: 0x3FD30, and 0xFD30 in a 0x10000-byte heap).
HEADER = 0x800 if POINTER_SIZE == 8 else 0x2C8
CHUNK_HEADER = MEMORY_ALLOCATION_ALIGNMENT
MIN_CHUNK = 2 * MEMORY_ALLOCATION_ALIGNMENT
#: The largest block a fixed heap holds: its chunk (debug tail aside) reaches
#: the large-block threshold (0x7EFE8 on 32-bit, as Windows).
LARGEST_BLOCK = LARGE_THRESHOLD - CHUNK_HEADER
#: A fixed heap's size is a multiple of this.
SIZE_GRANULE = 0x400 * POINTER_SIZE

_ALIGN_MASK = MEMORY_ALLOCATION_ALIGNMENT - 1
_memset = ctypes.memset


def reserve_size(initial: int, maximum: int) -> int:
    """The mapping a ``HeapCreate(_, initial, maximum)`` fixed heap gets."""
    size = max(initial, maximum, HEADER + MIN_CHUNK)
    return (size + SIZE_GRANULE - 1) // SIZE_GRANULE * SIZE_GRANULE


class FixedHeap(EmulatedHeap):
    __slots__ = (
        "size", "end", "page", "chunks", "chunks_held", "free_at", "free_end",
        "by_size", "bins", "index_stale", "_overhead", "reached",
    )  # fmt: skip

    def __init__(self, memory: NativeMemory, debug: DebugChecks, flags: int, initial: int, maximum: int) -> None:
        size = reserve_size(initial, maximum)
        executable = bool(flags & HEAP_CREATE_ENABLE_EXECUTE)
        handle = memory.map_aligned(size, HANDLE_ALIGNMENT, executable)
        if not handle:
            raise MemoryError("cannot reserve the heap's room")
        try:
            super().__init__(memory, debug, flags, handle)
            self.size = size
            self.end = handle + size
            self.page = memory.page_size
            start = handle + HEADER
            #: Busy chunks: block address -> chunk length.
            self.chunks: Dict[Address, int] = {}
            #: Chunks in quarantine (free checking): block address -> chunk length.
            self.chunks_held: Dict[Address, int] = {}
            self.free_at: Dict[int, int] = {start: self.end - start}
            self.free_end: Dict[int, int] = {self.end: start}
            self.by_size: List[Tuple[int, int]] = [(self.end - start, start)]
            #: Freed chunks not yet merged into the index: chunk length -> starts.
            self.bins: Dict[int, List[int]] = {}
            #: Whether the free index must be made again from the busy records.
            self.index_stale = False
            self._overhead = CHUNK_HEADER + debug.tail_size + _ALIGN_MASK
            #: A byte per page of the room, set once a chunk reaches into the page: what
            #: is committed ends with the last page set. Setting a byte is one step, so
            #: no nested call's commit is undone by the call it interrupted (as storing
            #: a maximum worked out before it would).
            self.reached = bytearray(-(-size // self.page))
            self.reached[self._last_page(handle + max(initial, HEADER))] = 1
        except BaseException:  # Python's memory ran out (or an interrupt): no heap, so no room.
            memory.unmap(handle, size)
            raise

    def _last_page(self, end: int) -> int:
        """Where in ``reached`` the page is that the room up to ``end`` ends in.

        Worked out before a busy record is made, so that nothing after it needs memory.
        """
        return (end - 1 - self.handle) // self.page

    @property
    def committed_end(self) -> int:
        return min(self.end, self.handle + (self.reached.rfind(1) + 1) * self.page)

    def _chunk_length(self, size: int) -> int:
        return max((size + self._overhead) & ~_ALIGN_MASK, MIN_CHUNK)

    # -- free-chunk index ----------------------------------------------------------
    # ``free_at`` is the index's truth: a chunk is claimed by taking it out of
    # ``free_at`` in one step (``pop``), so that a nested call (a signal
    # handler's or a finaliser's, between any two steps of this one) and the
    # call it interrupted never both get it; ``free_end`` and ``by_size`` only
    # help to find chunks, and an entry of theirs that ``free_at`` does not
    # confirm is passed over. The indexes are changed one step at a time, so
    # an exception landing between two steps can leave a free chunk in some of
    # them only: at worst a free chunk is lost from reach (a leak), never
    # handed out twice. When the exception is a MemoryError, the index is
    # marked out of date and made again instead (see the module's docstring),
    # so nothing is lost.
    def _add_free(self, start: int, length: int) -> None:
        end = start + length
        following = self._take_free(end) if end in self.free_at else 0  # (The test: a shortcut, not the claim.)
        length += following
        end += following
        previous = self.free_end.get(start)
        if previous is not None and self.free_at.get(previous) == start - previous:
            taken = self._take_free(previous)
            if taken == start - previous:
                length += taken
                start = previous
            elif taken:  # A nested call changed that chunk meanwhile: back it goes, unmerged.
                self._add_free(previous, taken)
        # ``free_at`` first: a ``by_size`` entry it does not confirm yet would be passed over and dropped.
        self.free_at[start] = length
        self.free_end[end] = start
        bisect.insort(self.by_size, (length, start))

    def _take_free(self, start: int) -> int:
        """Claim the free chunk at ``start``: its length, or 0 if none starts there (any more)."""
        length = self.free_at.pop(start, 0)
        if length:
            end = start + length
            if self.free_end.get(end) == start:
                self.free_end.pop(end, None)
            self._unlist(length, start)
        return length

    def _unlist(self, length: int, start: int) -> None:
        """Take ``(length, start)`` out of ``by_size`` if it is there."""
        by_size = self.by_size
        key = (length, start)
        index = bisect.bisect_left(by_size, key)
        try:
            if by_size[index] != key:
                return
            removed = by_size.pop(index)
        except IndexError:  # Not there (or a nested call shortened the list meanwhile).
            return
        if removed != key:  # A nested call shifted the list meanwhile: that entry goes back.
            bisect.insort(by_size, removed)

    def _use(self, start: int, length: int, need: int) -> Address:
        """Turn part of the free chunk ``start``, claimed, into a busy chunk of ``need``."""
        if length - need < MIN_CHUNK:
            need = length
        address = start + CHUNK_HEADER
        last_page = self._last_page(start + need)
        if need < length:
            self._add_free(start + need, length - need)
        self.chunks[address] = need  # Last: a MemoryError before this leaves the chunk free.
        self.reached[last_page] = 1
        return address

    def _merge_bins(self) -> bool:
        """Coalesce the spare, quarantined and binned chunks into the free index; whether there were any.

        The quarantine is let go too: a fixed heap's room is all it has, and
        Windows' free checking keeps no freed block from reuse (it checks the
        fill when the block leaves quarantine). An index out of date is made
        again here (MemoryError if that needs more memory than there is).
        """
        chunks = self.chunks
        try:
            # Block by block, out of its spare list and then out of the busy
            # records: a MemoryError stops this with every block in one place.
            # (The emptied lists stay: a finaliser may be adding to one.)
            for addresses in list(self.spare.values()):
                while addresses:
                    address = addresses.pop()
                    self._bin(address, chunks.pop(address))
            quarantine = self.quarantine
            if quarantine is not None:
                for address, _ in quarantine.drain():
                    self._bin(address, self.chunks_held.pop(address))
            if self.index_stale:
                self._rebuild_index()
                return True
            bins = self.bins
            self.bins = {}
            for length, starts in bins.items():
                # Each start claimed by its pop: a nested allocation may take one meanwhile.
                while starts:
                    self._add_free(starts.pop(), length)
        except MemoryError:
            self.index_stale = True
            raise
        return bool(bins)

    def _rebuild_index(self) -> None:
        """Make the free index again from the busy records: every gap between busy chunks is free.

        Built aside and put in place at the end, so a MemoryError leaves it out of date, no worse.
        """
        held, quarantine = self.chunks_held, self.quarantine
        if quarantine is not None and len(held) != len(quarantine.blocks):
            # A hold cut short: what the quarantine does not hold is free.
            kept = {address for address, _ in quarantine.blocks}
            for address in [address for address in held if address not in kept]:
                del held[address]
        busy = sorted([*self.chunks.items(), *held.items()])
        busy.append((self.end + CHUNK_HEADER, 0))
        free_at: Dict[int, int] = {}
        free_end: Dict[int, int] = {}
        start = self.handle + HEADER
        for address, length in busy:
            chunk = address - CHUNK_HEADER
            if chunk > start:
                free_at[start] = chunk - start
                free_end[chunk] = start
            start = max(start, chunk + length)
        by_size = sorted([(length, start) for start, length in free_at.items()])
        self.free_end, self.by_size, self.bins = free_end, by_size, {}
        # In place: a walk under way reads this table as it goes.
        self.free_at.clear()
        self.free_at.update(free_at)
        self.index_stale = False

    def _bin(self, address: Address, length: int) -> None:
        """Make the chunk of a block no longer in use free again (never raises MemoryError)."""
        try:
            self.bins.setdefault(length, []).append(address - CHUNK_HEADER)
        except MemoryError:
            self.index_stale = True  # Its chunk is found again with every other gap.

    # -- primitives ----------------------------------------------------------------
    def new_block(self, size: int) -> Address:
        if size > LARGEST_BLOCK:
            return 0  # Fixed heaps refuse large blocks, room or not.
        try:
            need = self._chunk_length(size)
            if self.index_stale:
                self._rebuild_index()
            binned = self.bins.get(need)
            if binned:
                try:
                    start = binned.pop()  # The claim (see _take_free): one step.
                except IndexError:  # A nested call took the last one meanwhile.
                    pass
                else:
                    address = start + CHUNK_HEADER
                    self.chunks[address] = need
                    return address
            by_size = self.by_size
            while True:
                try:
                    length, start = by_size[bisect.bisect_left(by_size, (need, 0))]
                except IndexError:
                    # No room in the index: freed chunks may coalesce into some.
                    return self.new_block(size) if self._merge_bins() else 0
                taken = self._take_free(start)
                if taken != length:  # A nested call took or changed the chunk meanwhile: look again.
                    self._unlist(length, start)
                if taken >= need:
                    return self._use(start, taken, need)
                if taken:
                    self._add_free(start, taken)
        except MemoryError:  # Python's memory ran out: fail, the busy records as they were.
            self.index_stale = True
            return 0

    def release(self, address: Address, size: int) -> None:
        length = self.chunks.pop(address)
        quarantine = self.quarantine
        if quarantine is not None:
            try:
                self.chunks_held[address] = length
            except MemoryError:  # Not held, then: free at once.
                self._bin(address, length)
                return
            try:
                evicted = quarantine.hold(address, size + self.tail_size)
            except MemoryError:  # Held or not: what the quarantine lacks is found free again.
                self.index_stale = True
                return
            if evicted is None:
                return
            address = evicted[0]
            length = self.chunks_held.pop(address)
        self._bin(address, length)

    def resize_in_place(self, address: Address, old: int, new: int) -> bool:
        if new > LARGEST_BLOCK:
            return False
        try:
            need = self._chunk_length(new)
            length = self.chunks[address]
            start = address - CHUNK_HEADER
            if need <= length:
                if length - need >= MIN_CHUNK:
                    rest, rest_length = start + need, length - need
                    self.chunks[address] = need  # An existing key: no memory needed.
                    if not self.index_stale:
                        self._add_free(rest, rest_length)
                return True
            if self.index_stale:
                self._rebuild_index()
            following = self._take_free(start + length)
            if length + following < need:
                if following:
                    self._add_free(start + length, following)
                # A freed neighbour may sit in a bin.
                return self._merge_bins() and self.resize_in_place(address, old, new)
            # Grow into the free neighbour, claimed, giving back what is not needed.
            total = length + following
            if total - need < MIN_CHUNK:
                need = total
            last_page = self._last_page(start + need)
            if need < total:
                self._add_free(start + need, total - need)
        except MemoryError:
            # Python's memory ran out: a growth fails, the block keeping its
            # chunk; a shrink is done all the same (the room it gives back is
            # found again with every other gap).
            self.index_stale = True
            return new <= old
        self.chunks[address] = need  # An existing key: no memory needed.
        self.reached[last_page] = 1
        return True

    # -- inspection ----------------------------------------------------------------
    def entries(self) -> Iterator[Entry]:
        self._merge_bins()  # Windows walks coalesced free blocks.
        handle, end = self.handle, self.end
        committed_end = self.committed_end
        yield (
            handle,
            HEADER,  # Windows reports the heap header's size here.
            0,
            0,
            PROCESS_HEAP_REGION,
            (committed_end - handle, end - committed_end, handle + HEADER, end),
        )
        chunks, held, free_at, blocks = self.chunks, self.chunks_held, self.free_at, self.blocks
        # The one copy a walk makes: where the chunks start, sorted. Each is
        # looked up again when its turn comes, so changes meanwhile show.
        order = [a - CHUNK_HEADER for a in list(chunks)]
        order.extend([a - CHUNK_HEADER for a in list(held)])
        order.extend(list(free_at))
        order.sort()
        for start in order:
            address = start + CHUNK_HEADER
            length = chunks.get(address)
            if length is not None:
                size = blocks.get(address)
                if size is not None:
                    yield (address, size, min(255, length - size), 0, PROCESS_HEAP_ENTRY_BUSY, None)
                continue
            length = held.get(address) or free_at.get(start) or 0
            if start + length > committed_end:  # Read again only when it matters (it only grows).
                committed_end = self.committed_end
                length = min(length, committed_end - start)
            if length > CHUNK_HEADER:
                yield (address, length - CHUNK_HEADER, CHUNK_HEADER, 0, 0, None)
        del order
        committed_end = self.committed_end
        if committed_end < end:
            yield (committed_end, end - committed_end, 0, 0, PROCESS_HEAP_UNCOMMITTED_RANGE, None)

    def largest_free(self) -> int:
        self._merge_bins()
        committed_end = self.committed_end
        best = 0
        for start, length in list(self.free_at.items()):
            if start < committed_end:
                best = max(best, min(length, committed_end - start) - CHUNK_HEADER)
        return best

    def committed(self) -> int:
        return self.committed_end - self.handle

    def reserved(self) -> int:
        return self.size

    def release_all(self) -> None:
        self.spare = {}
        self.blocks = {}
        self.chunks = {}
        self.bins = {}
        self.quarantine = None
        self.memory.unmap(self.handle, self.size)
