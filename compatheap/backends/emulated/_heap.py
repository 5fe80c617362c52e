"""What every emulated heap has: handle, lock, live blocks and walk snapshot."""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Dict, List, Optional, Tuple

from ..._constants import HEAP_NO_SERIALIZE, POINTER_SIZE
from ._debug import DebugChecks, Quarantine
from ._guard import HeapGate
from ._oldnative import Native

#: From this size on a block gets its own mapping (Windows' large-block threshold).
LARGE_THRESHOLD = 0xFF000 if POINTER_SIZE == 8 else 0x7F000
#: Heap handles are aligned like Windows' heap segments.
HANDLE_ALIGNMENT = 0x10000
#: Requests above this cannot be satisfied on any system; refused up front so
#: size arithmetic (tail, rounding to pages) can never wrap around.
MAX_REQUEST = (1 << (8 * POINTER_SIZE - 1)) - HANDLE_ALIGNMENT
#: Freed blocks up to this size are kept for reuse by an allocation of the
#: same size (at most SPARE_PER_SIZE each): the hot paths' list pop and append
#: instead of an allocator's work.
SPARE_MAX_SIZE = 256
SPARE_PER_SIZE = 8

# A walk entry: (lpData, cbData, cbOverhead, iRegionIndex, wFlags, region info),
# region info being (committed, uncommitted, first block, last block) or None.
Entry = Tuple[int, int, int, int, int, Optional[Tuple[int, int, int, int]]]

_memset = ctypes.memset


class _NoLock:
    """Stands in for the lock of a HEAP_NO_SERIALIZE heap: locking is a no-op."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        pass

    def _is_owned(self) -> bool:
        return True

    def __enter__(self) -> bool:
        return True

    def __exit__(self, *exc: Any) -> None:
        pass


_NO_LOCK = _NoLock()


class Heap:
    """Base of the growable and fixed-size heaps.

    ``blocks`` maps every live block's address to its requested size: it is the
    single source of truth for "is this a block of this heap", so a pointer the
    heap never handed out is refused before any memory is touched.
    """

    growable = True

    def __init__(self, native: Native, debug: DebugChecks, flags: int, handle: int) -> None:
        self.native = native
        self.debug = debug
        #: ``bool(debug)`` once: DebugChecks.__bool__ is a Python call per use.
        self.checking = bool(debug)
        self.flags = flags
        self.handle = handle
        #: The hot paths' token and the full paths' mark (see _guard.py), and
        #: the RLock; HeapDestroy uses them on every heap.
        self.hot_gate = HeapGate()
        self.token = self.hot_gate.token
        self.active = self.hot_gate.active
        self.rlock = threading.RLock()
        #: What the full paths and HeapLock go through: nothing on a HEAP_NO_SERIALIZE heap.
        serialized = not flags & HEAP_NO_SERIALIZE
        self.gate: Any = self.hot_gate if serialized else _NO_LOCK
        self.lock: Any = self.rlock if serialized else _NO_LOCK
        self.alive = True
        self.blocks: Dict[int, int] = {}
        #: Freed blocks kept for reuse, by requested size (see SPARE_MAX_SIZE).
        #: Only without debug checks: freed blocks go to quarantine then.
        self.spare: Dict[int, List[int]] = {}
        self.recycle = not self.checking
        #: Blocks with a mapping of their own: address -> mapping length.
        self.large: Dict[int, int] = {}
        #: Whether the hot paths may call the C library themselves for this
        #: heap's small blocks (malloc, realloc, free) and its mapped ones
        #: (mremap, munmap): see GrowableHeap.
        self.malloc_direct = False
        self.remap_direct = False
        self.compat_info = 0
        self.quarantine: Optional[Quarantine] = Quarantine() if debug.free else None
        self._walk_cache: Optional[Tuple[List[Entry], Dict[Tuple[int, int], int]]] = None

    # -- primitives each kind provides ------------------------------------
    def alloc(self, size: int, zero: bool) -> int:
        raise NotImplementedError

    def release(self, address: int, size: int) -> None:
        """Give a block's memory back (the caller has dropped it from ``blocks``)."""
        raise NotImplementedError

    def resize_in_place(self, address: int, old: int, new: int) -> bool:
        raise NotImplementedError

    def resize(self, address: int, old: int, new: int) -> int:
        """Resize where moving is allowed: in place when possible, else move (0 on failure)."""
        if self.resize_in_place(address, old, new):
            return address
        return self.move(address, old, new)

    def move(self, address: int, old: int, new: int) -> int:
        """A new block of ``new`` bytes holding the old contents; the old one is released."""
        raise NotImplementedError

    def remap_large(self, address: int, length: int, new: int) -> int:
        """Resize a block with a mapping of its own (only heaps that make them)."""
        raise NotImplementedError

    def entries(self) -> List[Entry]:
        raise NotImplementedError

    def largest_free(self) -> int:
        raise NotImplementedError

    def committed(self) -> int:
        raise NotImplementedError

    def reserved(self) -> int:
        raise NotImplementedError

    def destroy(self) -> None:
        raise NotImplementedError

    # -- shared behaviour --------------------------------------------------
    def keep_spare(self, address: int, size: int) -> bool:
        """Keep a freed block for the next allocation of its size; whether it was kept."""
        if size > SPARE_MAX_SIZE or not self.recycle:
            return False
        spare = self.spare.get(size)
        if spare is None:
            spare = self.spare[size] = []
        if len(spare) >= SPARE_PER_SIZE:
            return False
        spare.append(address)
        return True

    def guards(self, flags: int) -> Tuple[Any, Any]:
        """``(gate, lock)`` for a call with ``flags``: ``with gate, lock:`` (no-ops for HEAP_NO_SERIALIZE)."""
        if flags & HEAP_NO_SERIALIZE:
            return _NO_LOCK, _NO_LOCK
        return self.gate, self.lock

    def stop_serving(self) -> None:
        """Before HeapDestroy takes the heap apart: no hot path may use it again.

        A hot path that found the heap before it left the registry may get the
        token after HeapDestroy; it then finds nothing to hand out (the spare
        lists and live blocks are emptied by ``destroy``) and nothing to call,
        and the full path answers ERROR_INVALID_HANDLE.
        """
        self.recycle = self.malloc_direct = self.remap_direct = False

    def allocated(self) -> int:
        """Bytes in live blocks: summed when asked, so no call pays to keep a total."""
        return sum(self.blocks.values())

    def new_contents(self, address: int, start: int, end: int, zero: bool) -> None:
        """Initialise bytes ``start..end`` of a block that were not the caller's before."""
        if end > start:
            if zero:
                _memset(address + start, 0, end - start)
            elif self.debug.free:
                self.debug.fill_new(address + start, end - start)

    def walk_next(self, lp_data: int, w_flags: int) -> Optional[Entry]:
        """The entry after the one the caller holds (the first for lpData NULL)."""
        cache = self._walk_cache
        if cache is None:
            entries = self.entries()
            index = {(e[0], e[4] & 0x7): i for i, e in enumerate(entries)}
            cache = self._walk_cache = (entries, index)
        entries, index = cache
        if not lp_data:
            return entries[0] if entries else None
        position = index.get((lp_data, w_flags & 0x7))
        if position is None or position + 1 >= len(entries):
            return None
        return entries[position + 1]

    def valid(self) -> bool:
        """Whole-heap validation: debug fills intact."""
        debug = self.debug
        if debug.tail:
            for address, size in self.blocks.items():
                if not self.block_intact(address, size):
                    return False
        if self.quarantine is not None and not self.quarantine.intact():
            return False
        return True

    def block_intact(self, address: int, size: int) -> bool:
        return self.debug.tail_intact(address, size)

    def write_tail(self, address: int, size: int) -> None:
        self.debug.write_tail(address, size)
