"""A model of every heap and live block, and an executor of symbolic heap operations.

An operation is a plain tuple naming heaps and blocks by the ids the model
gave them (never by address), so a sequence of operations can be logged,
replayed in another process, and cut down to a minimal reproducer. Every
operation states what the API must answer; after each one the whole model is
checked against the heap: every live block's size and bytes, and
``HeapValidate(heap, 0, NULL)`` for every heap.

Bad input is part of the language: freed, interior, wild, misaligned and
foreign pointers, another heap's blocks, destroyed and bogus handles, sizes 0,
huge, ``SIZE_MAX`` and negative, arguments of the wrong Python type, and flags
with unknown bits. A bad call must fail the Win32 way (or raise the
``ctypes.ArgumentError`` a ctypes binding raises for an unconvertible
argument) and change nothing.
"""

from __future__ import annotations

import ctypes
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from compatheap import (
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_CREATE_ENABLE_EXECUTE,
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_NO_SERIALIZE,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_SIZE_FAILURE,
    HEAP_SUMMARY,
    HEAP_ZERO_MEMORY,
    MEMORY_ALLOCATION_ALIGNMENT,
    PROCESS_HEAP_ENTRY,
    PROCESS_HEAP_ENTRY_BUSY,
    SIZE_MAX,
    HeapException,
)
from compatheap.backends import FUNCTIONS
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._heap import LARGE_THRESHOLD, MAX_REQUEST

Op = Tuple[Any, ...]

#: Flag bits no heap function gives a meaning to: they must change nothing.
JUNK_FLAGS = (0x100, 0x8000, 0x80000, 0x100000, 0x1000000, 0x80000000)
#: Sizes no heap can satisfy (negative ones wrap to near SIZE_MAX, as in ctypes). Sizes up
#: to MAX_REQUEST are among them only where the address space dwarfs any memory (64-bit):
#: a 32-bit process on a 64-bit kernel may get 2 GiB.
HUGE_SIZES = ((1 << 50, MAX_REQUEST) if ctypes.sizeof(ctypes.c_void_p) == 8 else ()) + (
    MAX_REQUEST + 1,
    SIZE_MAX,
    SIZE_MAX - 15,
    -1,
    -(1 << 20),
)
#: Addresses no heap handed out.
WILD = (1, 0x10, 0xFFF, 0xDEAD0000, 0x7FFFFFFF0000, SIZE_MAX, SIZE_MAX - 15)
#: Arguments of the wrong Python type, by name (ops stay printable).
WRONG_TYPES: Dict[str, Callable[[], Any]] = {
    "float": lambda: 1.5,
    "str": lambda: "16",
    "bytes": lambda: b"\x10",
    "object": object,
    "list": lambda: [16],
    "c_double": lambda: ctypes.c_double(2.0),
}
#: Heap kinds: (maximum, initial) for HeapCreate; maximum 0 is growable.
KINDS = {"growable": (0, 0), "fixed": (0x40000, 0), "fixed-committed": (0x80000, 0x10000)}
#: Every function that takes a heap, a pointer or a buffer: all but these four.
BAD_FUNCTIONS = tuple(
    name for name in FUNCTIONS if name not in ("GetProcessHeap", "HeapCreate", "GetLastError", "SetLastError")
)
#: Functions that write to (or read from) a caller's buffer.
OUTPUT_FUNCTIONS = ("HeapWalk", "HeapSummary", "HeapQueryInformation", "HeapSetInformation", "GetProcessHeaps")
HANDLE_KINDS = ("live", "dead", "bogus", "null", "block", "process", "type")
POINTER_KINDS = ("block", "freed", "interior", "wild", "misaligned", "foreign", "other-heap", "null", "type")
SIZE_KINDS = ("small", "zero", "huge", "type")

MAX_HEAPS = 3
MAX_BLOCKS = 24


class Divergence(AssertionError):
    """The heap answered something the model says it must not."""


def fill(length: int, seed: int) -> bytes:
    cycle = bytes((seed * 31 + i * 7 + 1) % 251 + 1 for i in range(251))
    return (cycle * (length // 251 + 1))[:length]


@dataclass
class HeapRec:
    handle: int
    kind: str
    flags: int
    blocks: List[int] = field(default_factory=list)  # block ids


@dataclass
class BlockRec:
    hid: int
    address: int
    contents: bytes


class World:
    """The model and the executor; ``log`` (a callable) sees each op before it runs."""

    def __init__(self, backend: EmulatedBackend, log: Optional[Callable[[Op], None]] = None) -> None:
        self.k32 = backend
        self.log = log
        self.heaps: Dict[int, HeapRec] = {}
        self.blocks: Dict[int, BlockRec] = {}
        self.dead: List[int] = []  # destroyed heap handles
        self.freed: List[int] = []  # freed block addresses
        self.next_id = 1
        self.steps = 0
        self.bad_inputs = 0
        self.failures_seen = 0  # clean failures the API reported (not divergences)
        # Foreign memory: a buffer the process owns that no heap handed out.
        self.foreign = ctypes.create_string_buffer(256)

    # -- choosing (shared by the Hypothesis machine and the random driver) --------
    def heap_ids(self) -> List[int]:
        return sorted(self.heaps)

    def block_ids(self) -> List[int]:
        return sorted(self.blocks)

    def pick_heap(self, pick: int) -> Optional[int]:
        ids = self.heap_ids()
        return ids[pick % len(ids)] if ids else None

    def pick_block(self, pick: int) -> Optional[int]:
        ids = self.block_ids()
        return ids[pick % len(ids)] if ids else None

    # -- running ------------------------------------------------------------------
    def run(self, op: Op) -> None:
        if self.log is not None:
            self.log(op)
        self.steps += 1
        getattr(self, "op_" + op[0].replace("-", "_"))(*op[1:])
        self.check()

    def replay(self, ops: Sequence[Op]) -> None:
        """Run ops, skipping those whose heaps or blocks do not exist here."""
        for op in ops:
            if self.applicable(op):
                self.run(op)

    def applicable(self, op: Op) -> bool:
        name = op[0]
        if name in ("destroy", "inspect") or (name == "alloc"):
            return op[1] in self.heaps and (name != "alloc" or op[2] not in self.blocks)
        if name in ("realloc", "free", "rewrite"):
            return op[1] in self.blocks
        if name == "create":
            return op[1] not in self.heaps
        return True

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def check(self) -> None:
        k32 = self.k32
        for hid, heap in self.heaps.items():
            if not k32.HeapValidate(heap.handle, 0, None):
                raise Divergence(f"heap {hid} does not validate")
            for bid in heap.blocks:
                block = self.blocks[bid]
                size = k32.HeapSize(heap.handle, 0, block.address)
                if size != len(block.contents):
                    raise Divergence(f"block {bid}: HeapSize {size}, model {len(block.contents)}")
                if ctypes.string_at(block.address, size) != block.contents:
                    raise Divergence(f"block {bid}: contents differ from the model")

    def teardown(self) -> None:
        for hid in list(self.heaps):
            self.op_destroy(hid)

    # -- expectations --------------------------------------------------------------
    def _failed_cleanly(self, function: str, call: Callable[[], Any], flags: int, failure: Any) -> bool:
        """Run an allocating call; True if it failed the Win32 way, False if it succeeded."""
        self.k32.SetLastError(0)
        try:
            result = call()
        except HeapException as exc:
            if not flags & HEAP_GENERATE_EXCEPTIONS:
                raise Divergence(f"{function} raised without HEAP_GENERATE_EXCEPTIONS: {exc}") from None
            self.failures_seen += 1
            return True
        if result:
            return False
        if self.k32.GetLastError() != ERROR_NOT_ENOUGH_MEMORY:
            raise Divergence(f"{function} failed with error {self.k32.GetLastError()}")
        if flags & HEAP_GENERATE_EXCEPTIONS:
            raise Divergence(f"{function} returned NULL under HEAP_GENERATE_EXCEPTIONS")
        self.failures_seen += 1
        return True

    # -- well-formed operations ---------------------------------------------------
    def op_create(self, hid: int, kind: str, flags: int) -> None:
        maximum, initial = KINDS[kind]
        handle = self.k32.HeapCreate(flags, initial, maximum)
        if not handle:
            raise Divergence(f"HeapCreate({flags:#x}, {initial:#x}, {maximum:#x}) failed")
        if handle in self.dead:
            self.dead.remove(handle)
        kept = flags & (HEAP_GENERATE_EXCEPTIONS | HEAP_NO_SERIALIZE | HEAP_CREATE_ENABLE_EXECUTE)
        self.heaps[hid] = HeapRec(handle, kind, kept)

    def op_destroy(self, hid: int) -> None:
        heap = self.heaps.pop(hid)
        if self.k32.HeapDestroy(heap.handle) != 1:
            raise Divergence(f"HeapDestroy of live heap {hid} failed")
        for bid in heap.blocks:
            self.freed.append(self.blocks.pop(bid).address)
        self.dead.append(heap.handle)

    def op_alloc(self, hid: int, bid: int, flags: int, size: int) -> None:
        heap = self.heaps[hid]
        address: List[int] = []

        def call() -> Any:
            result = self.k32.HeapAlloc(heap.handle, flags, size)
            address.append(result or 0)
            return result

        if self._failed_cleanly("HeapAlloc", call, flags | heap.flags, None):
            if heap.kind == "growable" and size < LARGE_THRESHOLD:
                raise Divergence(f"HeapAlloc({size}) failed on a growable heap")
            return
        block = address[0]
        if any(b.address == block for b in self.blocks.values()):
            raise Divergence(f"HeapAlloc returned live block {block:#x} again")
        if block % MEMORY_ALLOCATION_ALIGNMENT:
            raise Divergence(f"HeapAlloc returned misaligned {block:#x}")
        if flags & HEAP_ZERO_MEMORY and ctypes.string_at(block, size) != bytes(size):
            raise Divergence("HEAP_ZERO_MEMORY block holds old data")
        contents = fill(size, bid)
        ctypes.memmove(block, contents, size)
        self.blocks[bid] = BlockRec(hid, block, contents)
        heap.blocks.append(bid)
        if block in self.freed:
            self.freed.remove(block)

    def op_realloc(self, bid: int, flags: int, size: int) -> None:
        block = self.blocks[bid]
        heap = self.heaps[block.hid]
        old = block.contents
        moved: List[int] = []

        def call() -> Any:
            result = self.k32.HeapReAlloc(heap.handle, flags, block.address, size)
            moved.append(result or 0)
            return result

        if self._failed_cleanly("HeapReAlloc", call, flags | heap.flags, None):
            growing = size > len(old)
            if (
                heap.kind == "growable"
                and size < LARGE_THRESHOLD
                and not (flags & HEAP_REALLOC_IN_PLACE_ONLY and growing)
            ):
                raise Divergence(f"HeapReAlloc({len(old)} -> {size}) failed on a growable heap")
            if not growing and heap.kind != "growable" and size < LARGE_THRESHOLD:
                raise Divergence(f"HeapReAlloc shrink {len(old)} -> {size} failed")
            return
        address = moved[0]
        if flags & HEAP_REALLOC_IN_PLACE_ONLY and address != block.address:
            raise Divergence("HEAP_REALLOC_IN_PLACE_ONLY moved the block")
        kept = old[:size]
        if ctypes.string_at(address, len(kept)) != kept:
            raise Divergence("HeapReAlloc lost the block's contents")
        if size > len(old):
            grown = ctypes.string_at(address + len(old), size - len(old))
            if flags & HEAP_ZERO_MEMORY and grown != bytes(size - len(old)):
                raise Divergence("HeapReAlloc with HEAP_ZERO_MEMORY did not zero the new bytes")
            fresh = fill(size - len(old), bid + self.steps)
            ctypes.memmove(address + len(old), fresh, len(fresh))
            kept += fresh
        if address != block.address:
            self.freed.append(block.address)
            if address in self.freed:
                self.freed.remove(address)
        block.address = address
        block.contents = kept

    def op_free(self, bid: int, flags: int) -> None:
        block = self.blocks[bid]
        heap = self.heaps[block.hid]
        if self.k32.HeapFree(heap.handle, flags, block.address) != 1:
            raise Divergence(f"HeapFree of live block {bid} failed")
        del self.blocks[bid]
        heap.blocks.remove(bid)
        self.freed.append(block.address)
        del self.freed[:-64]

    def op_rewrite(self, bid: int, seed: int) -> None:
        block = self.blocks[bid]
        block.contents = fill(len(block.contents), seed)
        ctypes.memmove(block.address, block.contents, len(block.contents))

    def op_inspect(self, hid: int, what: str, flags: int) -> None:
        k32, heap = self.k32, self.heaps[hid]
        handle = heap.handle
        if what == "walk":
            entry = PROCESS_HEAP_ENTRY()
            busy = {}
            count = 0
            while k32.HeapWalk(handle, ctypes.byref(entry)):
                count += 1
                if count > 100_000:
                    raise Divergence("HeapWalk does not end")
                if entry.wFlags & PROCESS_HEAP_ENTRY_BUSY:
                    busy[entry.lpData] = entry.cbData
            model = {self.blocks[b].address: len(self.blocks[b].contents) for b in heap.blocks}
            if busy != model:
                raise Divergence("HeapWalk's busy blocks differ from the model")
        elif what == "summary":
            summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
            if not k32.HeapSummary(handle, flags, ctypes.byref(summary)):
                raise Divergence("HeapSummary failed")
            if summary.cbAllocated != sum(len(self.blocks[b].contents) for b in heap.blocks):
                raise Divergence("HeapSummary's cbAllocated differs from the model")
        elif what == "compact":
            if not isinstance(k32.HeapCompact(handle, flags), int):
                raise Divergence("HeapCompact returned a non-int")
        elif what == "lock":
            if k32.HeapLock(handle) != 1:
                raise Divergence("HeapLock failed")
            try:
                inner = k32.HeapAlloc(handle, 0, 24)
                if inner and k32.HeapFree(handle, 0, inner) != 1:
                    raise Divergence("HeapFree inside a HeapLock section failed")
            finally:
                if k32.HeapUnlock(handle) != 1:
                    raise Divergence("HeapUnlock failed")
        elif what == "query":
            value = ctypes.c_uint32(0xFFFF)
            if not k32.HeapQueryInformation(handle, 0, ctypes.byref(value), 4, None) or value.value not in (0, 2):
                raise Divergence("HeapQueryInformation failed")
        elif what == "size-validate":
            for bid in heap.blocks:
                address = self.blocks[bid].address
                if k32.HeapSize(handle, flags, address) == HEAP_SIZE_FAILURE:
                    raise Divergence("HeapSize failed on a live block")
                if not k32.HeapValidate(handle, flags, address):
                    raise Divergence("HeapValidate failed on a live block")
        elif what == "process-heaps":
            slots = (ctypes.c_void_p * 64)()
            total = k32.GetProcessHeaps(64, slots)
            listed = {s for s in slots[: min(total, 64)] if s}
            if total < len(self.heaps) + 1 or not {h.handle for h in self.heaps.values()} <= listed:
                raise Divergence("GetProcessHeaps misses live heaps")
        else:
            raise ValueError(what)

    # -- bad input -----------------------------------------------------------------
    def _live_addresses(self) -> "set[int]":
        return {b.address for b in self.blocks.values()}

    def _inside_live(self, address: int) -> bool:
        return any(b.address <= address < b.address + max(1, len(b.contents)) for b in self.blocks.values())

    def _handle(self, kind: str, pick: int, hid: Optional[int]) -> Any:
        live_handles = {h.handle for h in self.heaps.values()}
        process = self.k32._process_heap  # made lazily; a dead handle may now be its
        if process is not None:
            live_handles.add(process.handle)
        if kind == "live" and hid is not None:
            return self.heaps[hid].handle
        if kind == "dead" and self.dead:
            handle = self.dead[pick % len(self.dead)]
            if handle not in live_handles:
                return handle
        if kind == "block" and self.blocks:
            return self.blocks[self.block_ids()[pick % len(self.blocks)]].address
        if kind == "process":
            return self.k32.GetProcessHeap()
        if kind == "null":
            return None if pick % 2 else 0
        if kind == "type":
            return WRONG_TYPES[sorted(WRONG_TYPES)[pick % len(WRONG_TYPES)]]()
        value = WILD[pick % len(WILD)]
        return value if value not in live_handles else 0x10

    def _pointer(self, kind: str, pick: int, hid: Optional[int]) -> Any:
        live = self._live_addresses()
        mine = self.heaps[hid].blocks if hid is not None else []
        others = [b for b in self.block_ids() if b not in mine]
        address: Any
        if kind == "block" and mine:
            return self.blocks[mine[pick % len(mine)]].address
        if kind == "other-heap" and others:
            return self.blocks[others[pick % len(others)]].address
        if kind == "freed" and self.freed:
            address = self.freed[pick % len(self.freed)]
        elif kind in ("interior", "misaligned") and self.blocks:
            block = self.blocks[self.block_ids()[pick % len(self.blocks)]]
            offsets = (1, 8, 15, 16, 32, len(block.contents)) if kind == "interior" else (1, 2, 4, 7, 9)
            address = block.address + offsets[(pick // 7) % len(offsets)]
        elif kind == "foreign":
            address = ctypes.addressof(self.foreign) + 16 * (pick % 8)
        elif kind == "null":
            return None if pick % 2 else 0
        elif kind == "type":
            return WRONG_TYPES[sorted(WRONG_TYPES)[pick % len(WRONG_TYPES)]]()
        else:
            address = WILD[pick % len(WILD)]
        # A stale address the heap has since handed out again is live, not bad;
        # so is one inside a live block, for the calls that take a buffer.
        if address in live or (kind in ("freed", "foreign", "wild") and self._inside_live(address)):
            return 0x10
        return address

    def _size(self, kind: str, pick: int) -> Any:
        if kind == "zero":
            return 0
        if kind == "huge":
            return HUGE_SIZES[pick % len(HUGE_SIZES)]
        if kind == "type":
            return WRONG_TYPES[sorted(WRONG_TYPES)[pick % len(WRONG_TYPES)]]()
        return pick % 512 + 1

    def op_bad(self, function: str, hkind: str, pkind: str, skind: str, flags: int, pick: int) -> None:
        """One call with bad input; it must fail and change nothing."""
        self.bad_inputs += 1
        hid = self.pick_heap(pick)
        # Make the call bad for sure: well-formed calls are the other ops' job.
        if function in OUTPUT_FUNCTIONS and pkind in ("block", "other-heap", "interior", "misaligned"):
            pkind = "wild"  # a pointer into a live block is a legitimate buffer
        if hkind == "process" and function != "HeapDestroy":
            hkind = "bogus"
        if hkind == "live" and hid is None:
            hkind = "bogus"
        if hkind == "live":
            if function == "HeapAlloc" and skind != "type":
                skind = "huge"
            elif function == "HeapReAlloc" and pkind == "block" and skind != "type":
                skind = "huge"
            elif function in ("HeapFree", "HeapSize", "HeapValidate") and pkind == "block":
                pkind = "interior"
            elif function in ("HeapDestroy", "HeapCompact"):
                hkind = "dead"
            elif function in ("HeapLock", "HeapUnlock"):
                hkind = "bogus"
        handle = self._handle(hkind, pick, hid if hkind == "live" else None)
        pointer = self._pointer(pkind, pick // 3, hid)
        size = self._size(skind, pick // 5)
        if function == "HeapValidate" and hkind == "live" and pointer in (None, 0):
            pointer = 0x10  # NULL asks about the whole heap, which is valid
        if hkind != "live":
            hid = None
        heap_flags = self.heaps[hid].flags if hid is not None else 0
        call = self._bad_call(function, handle, pointer, size, flags, pick)
        if call is None:
            return
        self.k32.SetLastError(0)
        try:
            result = call()
        except ctypes.ArgumentError:
            self.failures_seen += 1
            return
        except HeapException:
            if not (flags | heap_flags) & HEAP_GENERATE_EXCEPTIONS:
                raise Divergence(f"{function} raised without HEAP_GENERATE_EXCEPTIONS") from None
            self.failures_seen += 1
            return
        self.failures_seen += 1
        if function == "HeapSize":
            if result != HEAP_SIZE_FAILURE:
                raise Divergence(f"HeapSize with bad input answered {result}")
        elif function == "GetProcessHeaps":
            pass  # Its count is an answer, not success; nothing may have been written.
        elif function == "HeapFree" and pointer in (None, 0):
            if result != 1:
                raise Divergence("HeapFree(NULL) failed")
        elif result:
            raise Divergence(f"{function}(handle {hkind}, pointer {pkind}, size {skind}) succeeded: {result!r}")

    def _bad_call(self, function: str, handle: Any, pointer: Any, size: Any, flags: int, pick: int) -> Any:
        k32 = self.k32
        if function == "HeapAlloc":
            return lambda: k32.HeapAlloc(handle, flags, size)
        if function == "HeapReAlloc":
            return lambda: k32.HeapReAlloc(handle, flags & ~HEAP_REALLOC_IN_PLACE_ONLY, pointer, size)
        if function == "HeapFree":
            return lambda: k32.HeapFree(handle, flags, pointer)
        if function == "HeapSize":
            return lambda: k32.HeapSize(handle, flags, pointer)
        if function == "HeapValidate":
            return lambda: k32.HeapValidate(handle, flags, pointer)
        if function == "HeapDestroy":
            return lambda: k32.HeapDestroy(handle)
        if function == "HeapCompact":
            return lambda: k32.HeapCompact(handle, flags)
        if function == "HeapLock":
            return lambda: k32.HeapLock(handle)
        if function == "HeapUnlock":
            return lambda: k32.HeapUnlock(handle)
        if function == "HeapWalk":
            entry = self._bad_struct(PROCESS_HEAP_ENTRY, pointer, pick)
            return lambda: k32.HeapWalk(handle, entry)
        if function == "HeapSummary":
            summary = self._bad_struct(HEAP_SUMMARY, pointer, pick)
            return lambda: k32.HeapSummary(handle, flags, summary)
        if function == "HeapQueryInformation":
            klass = (0, 1, 2, 7, 0xFFFFFFFF)[pick % 5]
            return lambda: k32.HeapQueryInformation(handle, klass, pointer, size, None)
        if function == "HeapSetInformation":
            klass = (0, 2, 7, 0xFFFFFFFF)[pick % 4]
            value = ctypes.c_uint32((1, 3, 0xFFFFFFFF)[pick % 3])
            buffer = pointer if pick % 2 else ctypes.byref(value)
            return lambda: k32.HeapSetInformation(handle, klass, buffer, size)
        if function == "GetProcessHeaps":
            return lambda: k32.GetProcessHeaps(size, pointer)
        raise ValueError(function)

    def _bad_struct(self, struct: Any, pointer: Any, pick: int) -> Any:
        """An output structure argument that is wrong in some way."""
        choice = pick % 5
        if choice == 0 and isinstance(pointer, int) and pointer:
            # A ctypes pointer object to an address nobody vouches for.
            return ctypes.cast(pointer, ctypes.POINTER(struct))
        if choice == 1:
            return ctypes.byref(ctypes.create_string_buffer(4))  # too small
        if choice == 2 and struct is PROCESS_HEAP_ENTRY:
            entry = PROCESS_HEAP_ENTRY()
            entry.lpData = WILD[pick % len(WILD)]  # a walk resumed from nowhere
            entry.wFlags = pick & 0xFFFF
            return ctypes.byref(entry)
        if choice == 3 and struct is HEAP_SUMMARY:
            return ctypes.byref(HEAP_SUMMARY(cb=pick % 39))  # wrong cb
        return pointer


# -- generating operations from plain numbers ------------------------------------------
def make_op(world: World, kind: str, a: int, b: int, c: int, d: int) -> Optional[Op]:
    """The op of ``kind`` that the numbers choose in ``world``'s state (None: none fits)."""
    if kind == "create":
        if len(world.heaps) >= MAX_HEAPS:
            return None
        flags = (0, HEAP_GENERATE_EXCEPTIONS, HEAP_NO_SERIALIZE, HEAP_CREATE_ENABLE_EXECUTE)[a % 4]
        if b % 3 == 0:
            flags |= JUNK_FLAGS[b % len(JUNK_FLAGS)]
        return ("create", world.new_id(), sorted(KINDS)[c % len(KINDS)], flags)
    if kind == "destroy":
        hid = world.pick_heap(a)
        return None if hid is None or len(world.heaps) < 2 else ("destroy", hid)
    if kind == "alloc":
        hid = world.pick_heap(a)
        if hid is None or len(world.blocks) >= MAX_BLOCKS:
            return None
        return ("alloc", hid, world.new_id(), _flags(b, HEAP_ZERO_MEMORY), _alloc_size(c, d))
    if kind == "realloc":
        bid = world.pick_block(a)
        if bid is None:
            return None
        return ("realloc", bid, _flags(b, HEAP_ZERO_MEMORY, HEAP_REALLOC_IN_PLACE_ONLY), _alloc_size(c, d))
    if kind == "free":
        bid = world.pick_block(a)
        return None if bid is None else ("free", bid, _flags(b))
    if kind == "rewrite":
        bid = world.pick_block(a)
        return None if bid is None else ("rewrite", bid, b % 1000)
    if kind == "inspect":
        hid = world.pick_heap(a)
        what = ("walk", "summary", "compact", "lock", "query", "size-validate", "process-heaps")[b % 7]
        return None if hid is None else ("inspect", hid, what, _flags(c))
    if kind == "bad":
        return (
            "bad",
            BAD_FUNCTIONS[a % len(BAD_FUNCTIONS)],
            HANDLE_KINDS[b % len(HANDLE_KINDS)],
            POINTER_KINDS[(b // 7) % len(POINTER_KINDS)],
            SIZE_KINDS[c % len(SIZE_KINDS)],
            _flags(c // 4, HEAP_ZERO_MEMORY, HEAP_GENERATE_EXCEPTIONS),
            d,
        )
    raise ValueError(kind)


def _flags(n: int, *meaningful: int) -> int:
    flags = 0
    for i, bit in enumerate(meaningful):
        if n >> i & 1:
            flags |= bit
    if n >> 8 & 3 == 0:
        flags |= JUNK_FLAGS[(n >> 10) % len(JUNK_FLAGS)]
    return flags


def _alloc_size(c: int, d: int) -> int:
    band = c % 16
    if band == 0:
        return 0
    if band < 9:
        return d % 128
    if band < 14:
        return d % 4096
    if band < 15:
        return 4096 + d % 60000
    return LARGE_THRESHOLD - 64 + d % 0x20000  # straddles the large-block threshold


#: How often the random driver picks each kind of op.
WEIGHTS = {"create": 2, "destroy": 1, "alloc": 10, "realloc": 6, "free": 5, "rewrite": 2, "inspect": 3, "bad": 10}


def random_op(world: World, rng: random.Random) -> Optional[Op]:
    kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    return make_op(world, kind, *(rng.getrandbits(32) for _ in range(4)))


def new_backend(variant: str) -> EmulatedBackend:
    """A fresh backend: ``plain``, ``debug`` (tail and free checks) or ``fallback``."""
    if variant == "debug":
        return EmulatedBackend(debug={"tail", "free"})
    if variant == "fallback":
        return EmulatedBackend().variant("emulated-fallback")
    return EmulatedBackend()


def release_backend(backend: EmulatedBackend) -> None:
    """Give back the process heap a backend made for itself (tests make many backends)."""
    process = backend._process_heap
    if process is not None:
        with process.lock:
            process.alive = False
            process.destroy()
