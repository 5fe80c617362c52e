"""Growable heaps: small blocks from the C allocator, large blocks mapped.

The handle is a 64 KiB-aligned reservation that plays the heap's first region
in a walk; blocks themselves live wherever ``malloc`` or the mapping calls put
them. A large block is a mapping of its own with the block 0x40 [0x20] bytes
past its start, as on Windows; the bytes from its end to the end of its last
page read 0 when it is made (a shrink leaves what the caller wrote there;
a growth with HEAP_ZERO_MEMORY clears it).
"""

from __future__ import annotations

import ctypes
from typing import Dict, Iterator, Optional, Tuple

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

#: The handle's reservation: one region of this size, of which a new heap
#: commits 0x400 pointers' worth; its last page is never handed out.
REGION_SIZE = HANDLE_ALIGNMENT
REGION_COMMIT = 0x400 * POINTER_SIZE
REGION_GUARD = 0x1000
#: The heap header at the region's start.
REGION_HEADER = 0x400
#: Per-block overhead HeapWalk reports for malloc'd blocks, and for blocks the
#: low-fragmentation heap serves.
BLOCK_OVERHEAD = MEMORY_ALLOCATION_ALIGNMENT
LFH_OVERHEAD = 8
#: The free block after the header, as Windows walks it: data past a block
#: header, ending twice its overhead before the uncommitted range.
FREE_OVERHEAD = 4 * POINTER_SIZE
FREE_DATA = REGION_HEADER + MEMORY_ALLOCATION_ALIGNMENT
REGION_FREE = REGION_COMMIT - FREE_DATA - 2 * FREE_OVERHEAD
#: The uncommitted range's cbData: the reservation past the committed part, less the last page.
UNCOMMITTED_DATA = REGION_SIZE - REGION_COMMIT - REGION_GUARD
#: A large block's place in its mapping, and its walk entry's iRegionIndex.
LARGE_HEADER = 8 * POINTER_SIZE
LARGE_REGION_INDEX = 64
#: New mappings for blocks from BIG_FROM bytes on are whole multiples of
#: 2 MiB: the kernel then places them on 2 MiB boundaries and resizes or moves
#: them a page table at a time, which halves what growing one costs. The rest
#: of the last granule is address space only (untouched pages take no memory);
#: a shrink gives back whole pages.
BIG_FROM = 0x800000
BIG_GRANULE = 0x200000

_memset = ctypes.memset


class GrowableHeap(EmulatedHeap):
    __slots__ = ("page", "executable", "written", "capacity", "track_capacity")

    def __init__(self, memory: NativeMemory, debug: DebugChecks, flags: int) -> None:
        handle = memory.map_aligned(REGION_SIZE, HANDLE_ALIGNMENT)
        if not handle:
            raise MemoryError("cannot reserve a heap region")
        try:
            super().__init__(memory, debug, flags, handle)
            self.page = memory.page_size
            # An executable heap must not hand out malloc memory (not executable,
            # and making it so would expose neighbours): every block is mapped.
            self.executable = bool(flags & HEAP_CREATE_ENABLE_EXECUTE)
            self.large_from = 0 if self.executable else LARGE_THRESHOLD
            #: For mapped blocks that shrank: how far the caller may have written
            #: (the end of the last page of their largest size); past it the
            #: mapping reads 0. Missing: never shrank, so past the end of its
            #: size's last page it reads 0.
            self.written: Dict[Address, int] = {}
            #: Capacities, kept only when the C library cannot tell them.
            self.capacity: Dict[Address, int] = {}
            self.track_capacity = not memory.knows_usable_size
            if self.serialized and not self.executable:
                self.lfh_capable = True
                self.lfh_counts = {}
        except BaseException:  # Python's memory ran out (or an interrupt): no heap, so no region.
            memory.unmap(handle, REGION_SIZE)
            raise

    def _pages(self, size: int) -> int:
        """The length of a new mapping that holds a large block of ``size`` bytes."""
        granule = BIG_GRANULE if size >= BIG_FROM else self.page
        return (size + LARGE_HEADER + granule - 1) & ~(granule - 1)

    def _page_end(self, size: int) -> int:
        """Where, from its mapping's start, the last page a large block of ``size`` bytes touches ends."""
        page = self.page
        return (size + LARGE_HEADER + page - 1) & ~(page - 1)

    def _map(self, size: int) -> Address:
        length = self._pages(size)
        start = self.memory.map(length, self.executable)
        if not start:
            return 0
        address = start + LARGE_HEADER
        try:
            self.large[address] = length
        except MemoryError:  # Python's own memory ran out: refuse, leaking nothing.
            self.memory.unmap(start, length)
            return 0
        return address

    # -- primitives ----------------------------------------------------------------
    def new_block(self, size: int) -> Address:
        if size >= self.large_from:
            return self._map(size)
        need = size + self.tail_size
        address = self.memory.malloc(need)
        if address and self.track_capacity:
            try:
                self.capacity[address] = need
            except MemoryError:
                self.memory.free(address)
                return 0
        return address

    def release(self, address: Address, size: int) -> None:
        length = self.large.pop(address, 0)
        if length:
            self.written.pop(address, None)
            # Unmapped, never kept: a stale pointer faults instead of reading
            # the next owner's data.
            self.memory.unmap(address - LARGE_HEADER, length)
            return
        if self.track_capacity:
            self.capacity.pop(address, None)
        quarantine = self.quarantine
        if quarantine is not None:
            evicted = quarantine.hold(address, size + self.tail_size)
            if evicted is not None:
                self.memory.free(evicted[0])
            return
        self.memory.free(address)

    def resize_in_place(self, address: Address, old: int, new: int) -> bool:
        if new <= old:
            return True  # A shrink always fits: no need to ask the C library.
        need = new + self.tail_size
        if self.track_capacity:
            return need <= self.capacity.get(address, 0)
        return need <= self.memory.usable_size(address)

    def move(self, address: Address, old: int, new: int) -> Address:
        if address in self.large or new >= self.large_from or self.quarantine is not None:
            # Copying move: the destination is of another kind, mremap is
            # missing, or the old block must go to quarantine, not to realloc.
            return super().move(address, old, new)
        need = new + self.tail_size
        if not self.track_capacity:
            return self.memory.realloc(address, need)
        # The capacity record goes before the call that frees the block (a
        # stale one would let a later block grow past its end) and is made
        # only for memory that exists.
        capacity = self.capacity
        had = capacity.pop(address, 0)
        moved = self.memory.realloc(address, need)
        try:
            if moved:
                capacity[moved] = need
            elif had:
                capacity[address] = had
        except MemoryError:
            pass  # Unknown capacity reads as none: the block moves on its next growth.
        return moved

    def resize_mapped(self, address: Address, length: int, old: int, new: int, may_move: bool) -> Address:
        start = address - LARGE_HEADER
        large = self.large
        if new > length - LARGE_HEADER:
            # Growing: one system call (mremap), which with MAYMOVE stays in
            # place when it can and moves the pages, never copying them, when
            # it cannot.
            need = self._pages(new)
            if not may_move:
                if not self.memory.remap(start, length, need, False):
                    return 0
                large[address] = need  # Recorded short until here: at worst its new pages leak.
                return address
            if not self.memory.can_remap:
                return 0
            # The pages may move: the mapping leaves the records before the
            # call (as the block left the block table), so no record names a
            # place the pages have left, or the mapping a nested call (a
            # handler's) may make there before this call records its answer.
            del large[address]
            written = self.written.pop(address, None)
            moved_start = self.memory.remap(start, length, need, True)
            moved = moved_start + LARGE_HEADER if moved_start else address
            self._record_mapping(moved, need if moved_start else length, written, old)
            return moved if moved_start else 0
        if new > old:
            # Within the mapping: pages a shrink decommitted come back (reading zero).
            committed, needed = self._page_end(old), self._page_end(new)
            if needed > committed and not self.memory.commit(start + committed, needed - committed, self.executable):
                return 0
            return address
        if new < old:
            # The whole pages past the new end that the caller may have written
            # (note_reach() recorded how far, before the block's record shrank)
            # go back to the system, as Windows decommits them; the mapping
            # keeps its length, so growing again stays in place and costs no
            # system call. What follows the new end on its last page stays as
            # the caller left it.
            reach = self.written.get(address)
            if reach is None:  # The note found no memory: clear what may be dirty now.
                _memset(address + new, 0, self._page_end(old) - LARGE_HEADER - new)
            keep, dirty = self._page_end(new), self._page_end(old if reach is None else reach)
            if dirty > keep and self.memory.decommit(start + keep, dirty - keep) and reach is not None:
                # Past it, pages read zero now. (Cut short before this line,
                # the note says more may be dirty than is: harmless.)
                self.written[address] = keep - LARGE_HEADER
        return address

    def _record_mapping(self, address: Address, length: int, written: Optional[int], old: int) -> None:
        """A large block's mapping recorded (again) after a remap, with how far its caller may have written."""
        try:
            self.large[address] = length
        except MemoryError:
            self.keep_pending(self.large, address, length)
        if written is not None:
            try:
                self.written[address] = written
            except MemoryError:  # Not recordable: clear what may be dirty now.
                _memset(address + old, 0, max(0, min(written, length - LARGE_HEADER) - old))

    def note_reach(self, address: Address, size: int) -> None:
        written = self.written
        reach = self._page_end(size) - LARGE_HEADER  # (The caller may use its last page to the end.)
        if written.get(address, 0) < reach:
            try:
                written[address] = reach
            except MemoryError:
                pass  # resize_mapped(), next, clears what may be dirty instead (no note: no record).

    def clear_mapped(self, address: Address, old: int, new: int, length: int) -> None:
        # Past the end of the old mapping the pages are new, hence zero; and so
        # is everything past the pages the block ever reached (never the
        # caller's). Zeroing only the rest spares faulting pages in.
        if not length:
            return  # A small block moved to a fresh mapping: past the copy, all zero.
        reach = max(self.written.get(address, 0), self._page_end(old) - LARGE_HEADER)
        end = min(new, length - LARGE_HEADER, reach)
        if end > old:
            _memset(address + old, 0, end - old)

    # -- inspection ----------------------------------------------------------------
    def entries(self) -> Iterator[Entry]:
        handle = self.handle
        yield (
            handle,
            REGION_HEADER,  # Windows reports the heap header's size here.
            0,
            0,
            PROCESS_HEAP_REGION,
            (
                REGION_COMMIT,
                REGION_SIZE - REGION_COMMIT,
                handle + REGION_HEADER,
                handle + REGION_COMMIT + UNCOMMITTED_DATA,
            ),
        )
        blocks, large = self.blocks, self.large
        # The one copy a walk makes: the addresses, sorted (8 bytes a block,
        # dropped when the walk ends). Each is checked again when its turn
        # comes: blocks freed meanwhile are left out.
        order = sorted(blocks)
        overhead = BLOCK_OVERHEAD + self.tail_size
        for address in order:
            size = blocks.get(address)
            if size is not None and address not in large:
                served = LFH_OVERHEAD if size < self.lfh_below else overhead
                yield (address, size, served, 0, PROCESS_HEAP_ENTRY_BUSY, None)
        del order
        yield (handle + FREE_DATA, REGION_FREE, FREE_OVERHEAD, 0, 0, None)
        yield (handle + REGION_COMMIT, UNCOMMITTED_DATA, 0, 0, PROCESS_HEAP_UNCOMMITTED_RANGE, None)
        # As on Windows: after the regions, in allocation order, no overhead, region index 64.
        for address in list(large):
            size = blocks.get(address)
            if size is not None:
                yield (address, size, 0, LARGE_REGION_INDEX, PROCESS_HEAP_ENTRY_BUSY, None)

    def largest_free(self) -> int:
        self._drop_spares()  # Compacting gives the kept blocks back.
        return REGION_FREE

    def _drop_spares(self) -> None:
        free, capacity = self.memory.free, self.capacity
        # Emptied in place, one block at a time: a nested call (a handler's)
        # may be between reading a list and taking from or adding to it.
        for addresses in list(self.spare.values()):
            while addresses:
                address = addresses.pop()
                capacity.pop(address, None)
                free(address)

    def committed(self) -> int:
        small, reached, _ = self._usage()
        return REGION_COMMIT + small + reached

    def reserved(self) -> int:
        small, _, mapped = self._usage()
        return REGION_SIZE + small + mapped

    def _usage(self) -> Tuple[int, int, int]:
        """Bytes of the small blocks with their overhead; of the large blocks'
        mappings up to each block's last page (the rest is reserved only); and
        of those mappings in all."""
        blocks, large = self.blocks, self.large
        # Over copies: a nested call (a finaliser's, a handler's) may change the tables meanwhile.
        sizes = list(blocks.values())
        small, count = sum(sizes), len(sizes)
        reached = mapped = 0
        for address in list(large):
            length = large.get(address, 0)
            size = blocks.get(address)
            if size is not None:
                small -= size
                count -= 1
            reached += min(length, self._page_end(size or 0))
            mapped += length
        return max(0, small + BLOCK_OVERHEAD * count), reached, mapped

    def release_all(self) -> None:
        memory = self.memory
        quarantine, self.quarantine = self.quarantine, None  # no fills on the way out
        self._drop_spares()
        for record in self.pending:  # Records Python's memory could not take: given back too.
            if record.table is self.large:
                self.blocks.pop(record.key, None)  # (Not free()d below: it is a mapping.)
                memory.unmap(record.key - LARGE_HEADER, record.value)
            elif record.table is self.blocks and record.key not in self.large and not self.mapping_pending(record.key):
                memory.free(record.key)
        large, self.large = self.large, {}
        blocks, self.blocks = self.blocks, {}
        self.written.clear()
        for address, length in large.items():
            memory.unmap(address - LARGE_HEADER, length)
        # One tight loop of free calls: destroying a big heap costs what
        # freeing its blocks one by one in C would.
        free = memory.free
        if large:
            for address in blocks:
                if address not in large:
                    free(address)
        else:
            for address in blocks:
                free(address)
        self.capacity.clear()
        if quarantine is not None:
            for address, _ in quarantine.drain():
                free(address)
        memory.unmap(self.handle, REGION_SIZE)
