"""What every emulated heap kind shares: its state and the templates of the block operations.

:class:`EmulatedHeap` owns whole operations: ``alloc``, ``free``, ``realloc``
(here is where HeapReAlloc decides between in place and moving), validation
and the walk cursor. A heap kind (``_growable.py``, ``_fixed.py``) supplies the
mechanics as primitives with explicit results: ``new_block`` gives memory or
0, ``resize_in_place`` says whether it did, ``move`` gives the new address or
0 and leaves the block untouched when it fails.

The backend calls a template with the heap's lock held (see ``_backend.py``);
the templates never lock. They report failure by returning a :data:`Failure`:
the negated Win32 error code (addresses are positive, so no address is ever
mistaken for one).
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import threading
from typing import ContextManager, Dict, Iterator, List, Optional, Tuple

from ..._constants import (
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_NO_SERIALIZE,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_ZERO_MEMORY,
    POINTER_SIZE,
)
from ._debug import DebugChecks, Quarantine
from ._native import Address, NativeMemory

#: From this size on a growable heap gives a block its own mapping (Windows'
#: large-block threshold: 0xFF000 on 64-bit, 0x7EFF0 on 32-bit); a fixed-size
#: heap refuses blocks whose chunk would be larger.
LARGE_THRESHOLD = 0xFF000 if POINTER_SIZE == 8 else 0x7EFF0
#: Heap handles are aligned like Windows' heap segments.
HANDLE_ALIGNMENT = 0x10000
#: The largest request ever attempted: 0x7FFF0000 and up fail on 32-bit, as on
#: Windows, and the size arithmetic (tails, pages) can never wrap around.
MAX_REQUEST = (1 << (8 * POINTER_SIZE - 1)) - HANDLE_ALIGNMENT - 1
#: Freed blocks up to this size are kept for the next allocation of the same
#: size (at most SPARE_PER_SIZE each): a list pop instead of an allocator's work.
SPARE_MAX_SIZE = 256
SPARE_PER_SIZE = 8
#: The low-fragmentation heap switches itself on after this many allocations
#: of one size below LFH_MAX_SIZE (on a serialised growable heap).
LFH_ACTIVATION = 0x12
LFH_MAX_SIZE = 0x4000

#: A template's failure: ``-code``, ``code`` being the Win32 last error.
Failure = int
INVALID_HANDLE: Failure = -ERROR_INVALID_HANDLE
INVALID_PARAMETER: Failure = -ERROR_INVALID_PARAMETER
NO_MEMORY: Failure = -ERROR_NOT_ENOUGH_MEMORY

#: Region figures of a walk entry: (dwCommittedSize, dwUnCommittedSize, lpFirstBlock, lpLastBlock).
Region = Tuple[int, int, int, int]
#: A walk entry: (lpData, cbData, cbOverhead, iRegionIndex, wFlags, region or None).
Entry = Tuple[int, int, int, int, int, Optional[Region]]
#: Where a walk stands: the (lpData, wFlags & 7) of the entry the caller holds.
WalkKey = Tuple[int, int]

_memset = ctypes.memset
_memmove = ctypes.memmove
#: Walk cursors kept per heap (one per walker that walks in step).
_WALKERS = 8


class PendingRecord:
    """One reserved slot for a ``table[key] = value`` that Python's memory could
    not make: filling it sets three attributes of an existing object, which
    needs no memory."""

    __slots__ = ("table", "key", "value")

    def __init__(self) -> None:
        self.table: Optional[Dict[Address, int]] = None
        self.key: Address = 0
        self.value = 0


class EmulatedHeap(abc.ABC):
    """An emulated heap: one handle, its lock, its live blocks.

    ``blocks`` maps every live block's address to its requested size: it is the
    single source of truth for "is this a block of this heap", so a pointer the
    heap never handed out is refused before any memory is touched.
    """

    # Slots: attribute reads cost the same however many a kind adds (an
    # instance dict of more than 30 keys is slower to read on CPython 3.11),
    # and a misspelt attribute fails instead of making a new one.
    __slots__ = (
        "memory", "debug", "checking", "tail_size", "flags", "handle", "large_from",
        "lock", "guard", "turn", "holder", "holds", "alive", "blocks", "large", "spare",
        "quarantine", "compat_info", "lfh_below", "lfh_counts", "lfh_capable",
        "pending", "pending_count", "_walkers", "pinned", "pinned_freed", "passing",
    )  # fmt: skip

    def __init__(self, memory: NativeMemory, debug: DebugChecks, flags: int, handle: Address) -> None:
        self.memory = memory
        self.debug = debug
        self.checking = debug.enabled
        self.tail_size = debug.tail_size
        self.flags = flags
        self.handle = handle
        #: Requests from this size on get a mapping of their own (here: never).
        self.large_from = MAX_REQUEST + 1
        #: Held for the length of one call (never across calls: see HeapLock).
        self.lock = threading.RLock()
        #: What a call takes: the lock, or nothing on a HEAP_NO_SERIALIZE heap.
        self.guard: ContextManager[object] = self.lock if not flags & HEAP_NO_SERIALIZE else contextlib.nullcontext()
        #: Signalled when a HeapLock hold ends.
        self.turn = threading.Condition(self.lock)
        #: The thread holding HeapLock (its ident) and how many times, or None.
        self.holder: Optional[int] = None
        self.holds = 0
        #: The thread inside an allocation served past another thread's hold (see _backend.py).
        self.passing: Optional[int] = None
        self.alive = True
        self.blocks: Dict[Address, int] = {}
        #: Blocks with a mapping of their own: address -> mapping length.
        self.large: Dict[Address, int] = {}
        #: Freed blocks kept for reuse, by requested size (see SPARE_MAX_SIZE).
        #: Not with debug checks: freed blocks go to quarantine then.
        self.spare: Dict[int, List[Address]] = {}
        self.quarantine: Optional[Quarantine] = Quarantine() if debug.free else None
        #: HeapCompatibilityInformation: 0 standard, 2 low-fragmentation heap.
        self.compat_info = 0
        #: Once the LFH is on: allocations below this size do not wait for HeapLock.
        self.lfh_below = 0
        #: Allocations per size until the LFH switches itself on (None: it will not).
        self.lfh_counts: Optional[Dict[int, int]] = None
        #: Whether this kind has a low-fragmentation heap to switch on.
        self.lfh_capable = False
        # Bookkeeping that Python's memory running out could not record: slots
        # of (table, key, value), made before any block moves, so that a moved
        # block is always known (see keep_pending()).
        self.pending = (PendingRecord(), PendingRecord())
        self.pending_count = 0
        self._walkers: Dict[WalkKey, Iterator[Entry]] = {}
        #: The block whose tail a whole-heap HeapValidate is reading (0: none),
        #: and its size if a nested call freed it meanwhile (its memory goes
        #: back once the read is done).
        self.pinned: Address = 0
        self.pinned_freed: Optional[int] = None

    @property
    def serialized(self) -> bool:
        return not self.flags & HEAP_NO_SERIALIZE

    # -- primitives each kind provides ------------------------------------------
    @abc.abstractmethod
    def new_block(self, size: int) -> Address:
        """Memory for a new block of ``size`` bytes (and its debug tail), or 0.

        A block of ``large_from`` bytes or more is a fresh mapping that reads 0.
        """

    @abc.abstractmethod
    def release(self, address: Address, size: int) -> None:
        """Give a block's memory back (it is no longer in ``blocks``)."""

    @abc.abstractmethod
    def resize_in_place(self, address: Address, old: int, new: int) -> bool:
        """Make a block (not a mapped one) hold ``new`` bytes without moving it; whether that was possible."""

    def move(self, address: Address, old: int, new: int) -> Address:
        """A block of ``new`` bytes holding the old contents, the old one released; 0 if none.

        This is the copying move; a kind whose system can move a block itself
        (C ``realloc``) overrides it for those blocks.
        """
        moved = self.new_block(new)
        if moved:
            _memmove(moved, address, min(old, new))
            self.release(address, old)
        return moved

    @abc.abstractmethod
    def entries(self) -> Iterator[Entry]:
        """The heap's walk, in order, from its first entry."""

    @abc.abstractmethod
    def largest_free(self) -> int:
        """HeapCompact's answer (spare blocks go back first)."""

    @abc.abstractmethod
    def committed(self) -> int: ...

    @abc.abstractmethod
    def reserved(self) -> int: ...

    @abc.abstractmethod
    def release_all(self) -> None:
        """Give back every block and the heap's own memory (HeapDestroy), also
        blocks whose records are still in a pending slot (Python's memory may
        still be short: nothing may need it)."""

    def note_reach(self, address: Address, size: int) -> None:
        """Before a mapped block's record shrinks from ``size``: the caller may have written that far.

        Only kinds that make mapped blocks keep such a note (see :meth:`clear_mapped`).
        """
        return None  # Without notes, clear_mapped() clears every byte it is asked to.

    def clear_mapped(self, address: Address, old: int, new: int, length: int) -> None:
        """Make bytes ``old..new`` of a mapped block, just grown, read 0.

        ``length`` is its mapping's length before the growth (0 if it was no
        mapped block then). A kind that knows which of them already do may skip those.
        """
        _memset(address + old, 0, new - old)

    def resize_mapped(self, address: Address, length: int, old: int, new: int, may_move: bool) -> Address:
        """Resize a block of ``old`` bytes with a mapping of its own (of ``length`` bytes); its address after, or 0.

        Only kinds that make such blocks (``large``) are asked. Without
        ``may_move`` only in place; 0 also where the system cannot resize
        mappings (the caller then moves the block by copying).
        """
        return 0

    # -- the templates ------------------------------------------------------------
    def alloc(self, size: int, flags: int) -> int:
        """HeapAlloc: the new block's address, or a :data:`Failure`."""
        address = 0
        spare = self.spare.get(size)
        if spare:
            # (Spare lists hold small blocks only, and a destroyed heap has none.)
            try:
                address = spare.pop()
            except IndexError:  # Emptied since the test, by a nested call (a handler's).
                pass
        if not address:
            if size > MAX_REQUEST or not self.alive:
                return NO_MEMORY if self.alive else INVALID_HANDLE
            address = self.new_block(size)
            if not address:
                return NO_MEMORY
        if (flags & HEAP_ZERO_MEMORY or self.checking) and size < self.large_from:
            # (A mapped block reads 0 and gets no debug fills.) Before the
            # record: a block recorded is a block whose tail is in place.
            if flags & HEAP_ZERO_MEMORY:
                _memset(address, 0, size)
            else:
                self.debug.fill_new(address, 0, size)
            if self.tail_size:
                self.debug.write_tail(address, size)
        try:
            self.blocks[address] = size
        except MemoryError:  # Python's own memory ran out: the block goes back.
            self.release(address, size)
            return NO_MEMORY
        counts = self.lfh_counts
        if counts is not None and size < LFH_MAX_SIZE:
            seen = counts.get(size, 0) + 1
            if seen >= LFH_ACTIVATION:
                self.enable_lfh()
            else:
                try:
                    counts[size] = seen
                except MemoryError:
                    pass  # Only the count is lost.
        return address

    def free(self, address: Address) -> int:
        """HeapFree: 0, or a :data:`Failure`.

        A small block goes to the spare list of its size (while that has room),
        for the next allocation of the same size; anything else goes back to
        the kind (``release``). The block leaves ``blocks`` before it goes
        anywhere else: an exception between the two steps leaks it, never
        leaves it recorded twice.
        """
        if self.pending_count and not self.adopt_pending():
            return self._free_short_of_memory(address)
        if self.checking:
            size = self.blocks.get(address)
            if size is not None and not self.block_intact(address, size):
                # The debug heap refuses to free a block whose tail was overrun.
                return INVALID_PARAMETER
        size = self.blocks.pop(address, None)
        if size is None:
            return INVALID_PARAMETER
        if size <= SPARE_MAX_SIZE and not self.checking and not (self.large and address in self.large):
            # Kept for the next allocation of its size (not with debug checks:
            # freed blocks go to quarantine then; never a mapped block).
            spare = self.spare.get(size)
            if spare is None or len(spare) < SPARE_PER_SIZE:
                try:
                    if spare is None:
                        spare = self.spare[size] = []
                    spare.append(address)
                except MemoryError:  # Not kept, then: given back.
                    self.let_go(address, size)
                return 0
        self.let_go(address, size)
        return 0

    def _free_short_of_memory(self, address: Address) -> int:
        """HeapFree while pending slots still hold bookkeeping Python's memory could not take."""
        if self.mapping_pending(address):
            return NO_MEMORY  # Its mapping's length is known to a slot only: kept till memory returns.
        size = self.size_of(address)
        if size is None:
            return INVALID_PARAMETER
        if self.checking and not self.block_intact(address, size):
            return INVALID_PARAMETER
        # Out of every record (its slot, its table entry) before it is given back.
        self.drop_pending(address)
        self.blocks.pop(address, None)
        self.let_go(address, size)
        return 0

    def size_of(self, address: Address) -> Optional[int]:
        """HeapSize: the block's requested size, or None for no block of this heap."""
        size = self.blocks.get(address)
        return size if size is not None else self.find_pending(address)

    def realloc(self, address: Address, size: int, flags: int) -> int:
        """HeapReAlloc: the block's address afterwards, or a :data:`Failure` (block untouched).

        Shrinking keeps the pointer. Growing tries the block's own room first
        (for a block with a mapping of its own: the mapping, resized in one
        step that may also move it), then, unless HEAP_REALLOC_IN_PLACE_ONLY,
        moves it (the kind decides how: ``realloc``, or allocate and copy).
        """
        # Slots still holding bookkeeping Python's memory could not take: no
        # move may start then (it could need both), nor may a block whose
        # records are in a slot change; anything else can.
        short = self.pending_count and not self.adopt_pending()
        old = self.blocks.get(address)
        if old is None:
            if short and self.find_pending(address) is not None:
                return NO_MEMORY
            # (A destroyed heap has no blocks: the handle is what is wrong then.)
            return INVALID_PARAMETER if self.alive else INVALID_HANDLE
        if short and self.mapping_pending(address):
            return NO_MEMORY
        if size > MAX_REQUEST:
            return NO_MEMORY
        if self.checking and not self.block_intact(address, old):
            return INVALID_PARAMETER  # As HeapFree: an overrun block is kept for inspection.
        in_place_only = flags & HEAP_REALLOC_IN_PLACE_ONLY
        mapped = self.large.get(address, 0) if self.large else 0
        blocks = self.blocks
        # Every step below is ordered so that an exception landing between any
        # two of them (a signal handler's) leaves the records true: at worst
        # memory no record names leaks; never does a record name memory that
        # was given back, or a block appear twice.
        if size <= old:
            # Shrinking: the record first, then the room goes back.
            if self.tail_size and not mapped:
                self.debug.write_tail(address, size)
            if mapped:
                # Before the record shrinks: bytes the caller wrote past the
                # new end must never pass for zero, however this call ends.
                self.note_reach(address, old)
            blocks[address] = size  # An existing key: no memory needed.
            if mapped:
                self.resize_mapped(address, mapped, old, size, False)
            else:
                self.resize_in_place(address, old, size)
            return address
        if mapped:
            grown = in_place_only and self.resize_mapped(address, mapped, old, size, False) == address
        else:
            grown = self.resize_in_place(address, old, size)
        if grown:
            moved = address
            if self.tail_size and not mapped:
                self.debug.write_tail(address, size)
            blocks[address] = size  # An existing key: no memory needed.
            mapped_now = bool(mapped)
        else:
            if in_place_only or short or address == self.pinned:
                # (Pinned: HeapValidate is reading its tail, a nested call moves nothing from under it.)
                return NO_MEMORY
            # Moving: the block leaves the records before the call that may
            # give its memory back, and only memory that exists gets a record.
            # Slots are free (checked above), so neither putting the old record
            # back nor making the new one can fail for want of memory.
            del blocks[address]
            # A mapped block: one step, the system resizes the mapping in place
            # when it can and moves its pages (no copy) when it cannot.
            moved = self.resize_mapped(address, mapped, old, size, True) if mapped else 0
            # Mapped after the move: by its own mapping, or as a new block of its
            # size (new_block()'s rule). Not told by the table: the record may
            # be in a slot.
            mapped_now = bool(moved) or size >= self.large_from
            if not moved and not self.pending_count:  # (A record left waiting: no second try.)
                moved = self.move(address, old, size)
            if not moved:
                try:
                    blocks[address] = old
                except MemoryError:
                    self.keep_pending(blocks, address, old)
                return NO_MEMORY
            if self.tail_size and not mapped_now:
                self.debug.write_tail(moved, size)
            try:
                blocks[moved] = size
            except MemoryError:
                self.keep_pending(blocks, moved, size)
        # Bytes past the old requested size are new to the caller even if they
        # sat in the old block's room (after a shrink, say): zero them, or fill
        # them for the debug checks.
        if not mapped_now:
            if flags & HEAP_ZERO_MEMORY:
                _memset(moved + old, 0, size - old)
            elif self.checking:
                self.debug.fill_new(moved, old, size)
        elif flags & HEAP_ZERO_MEMORY:
            self.clear_mapped(moved, old, size, mapped)
        return moved

    def valid(self) -> bool:
        """Whole-heap HeapValidate: every debug fill intact."""
        if self.tail_size:
            blocks = self.blocks
            # Over a copy of the addresses: a finaliser or signal handler may
            # allocate or free on this heap while the loop runs. The block
            # being read is pinned: a nested call may free it, but its memory
            # stays until the read is done (see let_go()). (A nested
            # validation leaves the pin to the one it interrupted.)
            pinning = not self.pinned
            try:
                for address in list(blocks):
                    if pinning:
                        self._unpin()
                        self.pinned = address
                    size = blocks.get(address)
                    if size is not None and not self.block_intact(address, size) and blocks.get(address) == size:
                        return False  # (Still the block that was read: not one a nested call changed.)
            finally:
                if pinning:
                    self._unpin()
        quarantine = self.quarantine
        return quarantine is None or quarantine.intact()

    def block_intact(self, address: Address, size: int) -> bool:
        # (A mapped block has no tail.)
        return address in self.large or self.mapping_pending(address) or self.debug.tail_intact(address, size)

    def allocated(self) -> int:
        """Bytes in live blocks: summed when asked, so no call pays to keep a total."""
        self.require_records()
        return sum(self.blocks.values())

    def walk_next(self, lp_data: Address, w_flags: int) -> Optional[Entry]:
        """The entry after the one the caller holds (the first for lpData NULL).

        A walker that continues where it stopped resumes its cursor (flat cost
        per entry, no copy of the heap's entries); any other position is found
        from the start. The cursor is taken out while it runs: a nested walk
        (a finaliser's) makes its own.
        """
        key = (lp_data, w_flags & 0x7)
        walker = self._walkers.pop(key, None) if lp_data else None
        if walker is None:
            self.require_records()
            walker = self.entries()
            if lp_data:
                for entry in walker:
                    if (entry[0], entry[4] & 0x7) == key:
                        break
                else:
                    return None
        found = next(walker, None)
        if found is not None:
            walkers = self._walkers
            if len(walkers) >= _WALKERS:
                walkers.clear()
            try:
                walkers[(found[0], found[4] & 0x7)] = walker
            except MemoryError:
                pass  # The next step finds its place from the start.
        return found

    def destroy(self) -> None:
        """HeapDestroy's part: every block and the heap's memory go back."""
        self.alive = False
        self.adopt_pending()
        self._walkers.clear()
        self.release_all()  # (Records still in a slot included.)
        for record in self.pending:
            record.table = None
        self.pending_count = 0

    # -- shared mechanics ----------------------------------------------------------
    def enable_lfh(self) -> None:
        """Switch the low-fragmentation heap on (it cannot be switched off)."""
        if self.lfh_capable:
            self.lfh_below = LFH_MAX_SIZE
        self.compat_info = 2
        # Last: cut short before this, the next counted allocation switches it on again.
        self.lfh_counts = None

    def keep_pending(self, table: Dict[Address, int], key: Address, value: int) -> None:
        """Hold ``table[key] = value`` in a pending slot: Python's memory ran out.

        For bookkeeping after a block moved: the old entry is gone, so this one
        must not be. :meth:`realloc` starts no move without both slots free,
        and the slots exist from the start: filling one needs no memory.
        ``pending_count`` never counts fewer slots than are filled (it goes up
        before a slot fills and is recounted after one empties), so a check of
        it alone cannot miss one, whatever interrupts these steps.
        """
        first, second = self.pending
        record = first if first.table is None else second
        self.pending_count += 1
        record.key = key
        record.value = value
        record.table = table

    def _count_pending(self) -> None:
        first, second = self.pending
        self.pending_count = (first.table is not None) + (second.table is not None)

    def adopt_pending(self) -> bool:
        """Move pending bookkeeping into its tables; whether none is left."""
        for record in self.pending:
            table = record.table
            if table is not None:
                try:
                    table[record.key] = record.value
                except MemoryError:
                    continue
                # Recorded twice for a moment (same key, same value): free()
                # and realloc() adopt before they take a block out.
                record.table = None
        self._count_pending()
        return not self.pending_count

    def require_records(self) -> None:
        """For a whole-heap answer (a walk, a summary): every record in its
        table, or MemoryError while a slot still holds one (the answer would
        leave its block out)."""
        if self.pending_count and not self.adopt_pending():
            raise MemoryError("the heap's records wait for memory")

    def find_pending(self, address: Address) -> Optional[int]:
        """The size of a block only a pending slot knows (None: no such block)."""
        if not self.pending_count:
            return None
        if self.adopt_pending():  # Memory again: the block is in its table now.
            return self.blocks.get(address)
        for record in self.pending:
            if record.table is self.blocks and record.key == address:
                return record.value
        return None

    def let_go(self, address: Address, size: int) -> None:
        """Give a freed block's memory back, or hold it while HeapValidate reads it (see :meth:`valid`)."""
        if address == self.pinned:
            self.pinned_freed = size  # (An attribute set: needs no memory.)
            return
        self.release(address, size)

    def _unpin(self) -> None:
        address, size = self.pinned, self.pinned_freed
        self.pinned, self.pinned_freed = 0, None
        if size is not None:
            self.release(address, size)

    def mapping_pending(self, address: Address) -> bool:
        """Whether a block's mapping record is one only a pending slot holds."""
        if self.pending_count:
            for record in self.pending:
                if record.table is self.large and record.key == address:
                    return True
        return False

    def drop_pending(self, address: Address) -> None:
        """Forget a block only a pending slot knows (it is being freed)."""
        for record in self.pending:
            if record.table is self.blocks and record.key == address:
                record.table = None
        self._count_pending()
