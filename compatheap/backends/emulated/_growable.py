"""Growable heaps: small blocks from the C allocator, large blocks mapped.

The handle is a 64 KiB-aligned reservation that plays the heap's first region
in a walk; blocks themselves live wherever ``malloc`` or ``mmap`` put them.
"""

from __future__ import annotations

import ctypes
from typing import Dict, List, Optional, Tuple

from ..._constants import (
    HEAP_CREATE_ENABLE_EXECUTE,
    MEMORY_ALLOCATION_ALIGNMENT,
    PROCESS_HEAP_ENTRY_BUSY,
    PROCESS_HEAP_REGION,
    PROCESS_HEAP_UNCOMMITTED_RANGE,
)
from ._debug import DebugChecks
from ._heap import HANDLE_ALIGNMENT, LARGE_THRESHOLD, Entry, Heap
from ._oldnative import Native

#: The handle's reservation: one region of this size.
REGION_SIZE = HANDLE_ALIGNMENT
#: The part of it shown as committed, and the heap header at its start.
REGION_COMMIT = 0x1000
REGION_HEADER = 0x400
#: Per-block overhead reported by HeapWalk for malloc'd blocks.
BLOCK_OVERHEAD = 16
#: The free block after the header, as Windows walks it: data past a block
#: header, ending twice the reported overhead before the uncommitted range.
FREE_OVERHEAD = 2 * MEMORY_ALLOCATION_ALIGNMENT
FREE_DATA = REGION_HEADER + MEMORY_ALLOCATION_ALIGNMENT
REGION_FREE = REGION_COMMIT - FREE_DATA - 2 * FREE_OVERHEAD
#: HeapWalk's iRegionIndex for a large block.
LARGE_REGION_INDEX = 64

_memmove = ctypes.memmove
_memset = ctypes.memset


class GrowableHeap(Heap):
    growable = True

    def __init__(self, native: Native, debug: DebugChecks, flags: int) -> None:
        handle = native.map_aligned(REGION_SIZE, HANDLE_ALIGNMENT)
        if not handle:
            raise MemoryError("cannot reserve a heap region")
        super().__init__(native, debug, flags, handle)
        self.page = native.page_size
        # An executable heap must not hand out malloc memory (not executable,
        # and making it so would expose neighbours): every block is mapped.
        self.executable = bool(flags & HEAP_CREATE_ENABLE_EXECUTE)
        #: Capacities, kept only when the C library cannot tell them.
        self.capacity: Dict[int, int] = {}
        self.track_capacity = not native.has_usable_size
        #: Requests from this size on are mapped (every one on an executable heap).
        self.large_from = 0 if self.executable else LARGE_THRESHOLD
        self.tail_size = debug.tail_size
        #: (block, offset): after a resize, the block's bytes from offset on are
        #: fresh zero pages (mremap and mmap give those), so HEAP_ZERO_MEMORY
        #: need not touch them. Set by resize_in_place/move, used by new_contents.
        self._fresh: Optional[Tuple[int, int]] = None
        # Spare blocks only over the plain C library (a substituted Native, as
        # fault injection uses, must see every call) and never on an executable
        # heap (it has no malloc'd blocks).
        self.recycle = self.recycle and type(native) is Native and not self.executable
        # Small blocks are plain malloc blocks when nothing else is kept per block.
        self.malloc_direct = self.recycle and not self.track_capacity
        self.remap_direct = self.malloc_direct and native.has_mremap

    # -- helpers -----------------------------------------------------------
    def _pages(self, size: int) -> int:
        page = self.page
        return max(page, (size + page - 1) & ~(page - 1))

    def _map(self, size: int) -> int:
        length = self._pages(size)
        address = self.native.map(length, self.executable)
        if address:
            try:
                self.large[address] = length
            except MemoryError:  # Python's own memory ran out: refuse, leaking nothing.
                self.native.unmap(address, length)
                return 0
        return address

    def _malloc(self, size: int) -> int:
        need = size + self.debug.tail_size
        address = self.native.malloc(need or 1) or 0
        if address and self.track_capacity:
            address = self._remember_capacity(address, need)
        return address

    def _remember_capacity(self, address: int, need: int) -> int:
        """Record a new block's capacity; 0 (block given back) if Python is out of memory."""
        try:
            self.capacity[address] = need
        except MemoryError:
            self.native.free(address)
            return 0
        return address

    # -- primitives ----------------------------------------------------------
    def alloc(self, size: int, zero: bool) -> int:
        spare = self.spare.get(size)
        if spare:
            address = spare.pop()
            if zero:
                _memset(address, 0, size)
            return address
        if size >= self.large_from:
            address = self._map(size)
            if address and not zero:  # Fresh pages are already zero.
                self.debug.fill_new(address, size)
            return address
        # _malloc inlined: this is the hot path of every small HeapAlloc.
        need = size + self.tail_size
        address = self.native.malloc(need or 1) or 0
        if address:
            if self.track_capacity and not self._remember_capacity(address, need):
                return 0
            if zero:
                _memset(address, 0, size)
            elif self.checking:
                self.new_contents(address, 0, size, False)
            if need != size:
                self.debug.write_tail(address, size)
        return address

    def release(self, address: int, size: int) -> None:
        # Never a mapped block (one shrunk below the threshold stays mapped).
        if address not in self.large and self.keep_spare(address, size):
            return
        length = self.large.pop(address, 0)
        if length:
            # Unmapped, not recycled: a stale pointer faults instead of reading
            # the next owner's data.
            self.native.unmap(address, length)
            return
        if self.track_capacity:
            self.capacity.pop(address, None)
        quarantine = self.quarantine
        if quarantine is not None:
            evicted = quarantine.hold(address, size + self.debug.tail_size)
            if evicted is not None:
                self.native.free(evicted[0])
            return
        self.native.free(address)

    def remap_large(self, address: int, length: int, new: int) -> int:
        """Resize the mapped block at ``address`` (a mapping of ``length``) with one system call.

        A growth is an mremap with MAYMOVE, which stays in place when it can
        and moves the pages (no copy) when it cannot; a shrink unmaps the tail.
        The block's address after, or 0 if the system refused (nothing changed).
        """
        need = self._pages(new)
        if need > length:
            moved = self.native.remap(address, length, need, True)
            if moved:
                if moved != address:
                    del self.large[address]
                self.large[moved] = need
            return moved
        # A failed unmap still shrinks the block for the caller: the pages stay its own.
        if need < length and self.native.unmap(address + need, length - need):
            self.large[address] = need
        return address

    def resize_in_place(self, address: int, old: int, new: int) -> bool:
        length = self.large.get(address)
        if length is not None:
            need = self._pages(new)
            if need <= length:
                return bool(self.remap_large(address, length, new))
            if not self.native.remap(address, length, need, False):
                return False
            self.large[address] = need
            self._fresh = (address, length)
            return True
        if new <= old:
            return True  # A shrink always fits: no need to ask the C library.
        need = new + self.debug.tail_size
        if self.track_capacity:
            return need <= self.capacity[address]
        return need <= self.native.usable_size(address, old)

    def resize(self, address: int, old: int, new: int) -> int:
        length = self.large.get(address)
        if length is not None and self.native.has_mremap:
            moved = self.remap_large(address, length, new)
            if not moved:
                return self.move(address, old, new)
            if self.large[moved] > length:
                self._fresh = (moved, length)
            return moved
        if self.resize_in_place(address, old, new):
            return address
        return self.move(address, old, new)

    def move(self, address: int, old: int, new: int) -> int:
        native = self.native
        mapped = new >= self.large_from
        if address in self.large or mapped or self.quarantine is not None:
            # Copying move: the destination is of another kind, mremap is
            # missing, or the old block must go to quarantine, not to realloc.
            moved = self._map(new) if mapped else self._malloc(new)
            if moved:
                _memmove(moved, address, min(old, new))
                self.release(address, old)
                if mapped:
                    self._fresh = (moved, old)
            return moved
        moved = native.realloc(address, new + self.debug.tail_size) or 0
        if moved and self.track_capacity:
            del self.capacity[address]
            self.capacity[moved] = new + self.debug.tail_size
        return moved

    def new_contents(self, address: int, start: int, end: int, zero: bool) -> None:
        fresh, self._fresh = self._fresh, None
        if zero and fresh is not None and fresh[0] == address:
            # Past the offset the pages are fresh: zeroing them would only
            # make a remapped block resident for nothing.
            end = min(end, max(start, fresh[1]))
        super().new_contents(address, start, end, zero)

    def block_intact(self, address: int, size: int) -> bool:
        return address in self.large or self.debug.tail_intact(address, size)

    def write_tail(self, address: int, size: int) -> None:
        if address not in self.large:  # Large blocks get no tail, as on Windows.
            self.debug.write_tail(address, size)

    def entries(self) -> List[Entry]:
        handle = self.handle
        large = self.large
        overhead = BLOCK_OVERHEAD + self.debug.tail_size
        entries: List[Entry] = [
            (
                handle,
                REGION_HEADER,  # Windows reports the heap header's size here.
                0,
                0,
                PROCESS_HEAP_REGION,
                (REGION_COMMIT, REGION_SIZE - REGION_COMMIT, handle + REGION_HEADER, handle + REGION_SIZE),
            )
        ]
        blocks = self.blocks
        small = sorted(a for a in blocks if a not in large)
        entries.extend((a, blocks[a], overhead, 0, PROCESS_HEAP_ENTRY_BUSY, None) for a in small)
        entries.append((handle + FREE_DATA, REGION_FREE, FREE_OVERHEAD, 0, 0, None))
        entries.append(
            (handle + REGION_COMMIT, REGION_SIZE - REGION_COMMIT, 0, 0, PROCESS_HEAP_UNCOMMITTED_RANGE, None)
        )
        # As on Windows: allocation order, no overhead, region index 64.
        entries.extend((a, blocks[a], 0, LARGE_REGION_INDEX, PROCESS_HEAP_ENTRY_BUSY, None) for a in large)
        return entries

    def largest_free(self) -> int:
        self._drop_spares()  # Compacting gives the kept blocks back.
        return REGION_FREE

    def _drop_spares(self) -> None:
        spare, self.spare = self.spare, {}
        free, capacity = self.native.free, self.capacity
        for addresses in spare.values():
            for address in addresses:
                capacity.pop(address, None)
                free(address)

    def committed(self) -> int:
        # Small blocks count with their overhead; large ones by their whole mapping.
        large, blocks = self.large, self.blocks
        small = sum(size for address, size in blocks.items() if address not in large)
        return REGION_COMMIT + small + BLOCK_OVERHEAD * (len(blocks) - len(large)) + sum(large.values())

    def reserved(self) -> int:
        return self.committed() + REGION_SIZE - REGION_COMMIT

    def destroy(self) -> None:
        native = self.native
        quarantine, self.quarantine = self.quarantine, None  # no fills on the way out
        self._drop_spares()
        large = self.large
        for address, length in large.items():
            native.unmap(address, length)
        # One tight loop of free calls: destroying a big heap costs what
        # freeing its blocks one by one in C would.
        free = native.free
        if large:
            for address in self.blocks:
                if address not in large:
                    free(address)
        else:
            for address in self.blocks:
                free(address)
        large.clear()
        self.capacity.clear()
        self.blocks.clear()
        if quarantine is not None:
            for address, _ in quarantine.drain():
                native.free(address)
        native.unmap(self.handle, REGION_SIZE)
