"""The emulated backend: Windows heap semantics over the C library and page mappings.

Each Win32 function is one method: it converts its arguments (as ctypes with
argtypes would), finds the heap in the handle registry, then makes one call
into the heap under ``with heap.guard:`` (the heap's lock, or nothing for
HEAP_NO_SERIALIZE) and turns the result into the Win32 return value and last
error. The heap's templates (``_heap.py``) and its kind
(``_growable.py``, ``_fixed.py``) do the rest.

Locking. ``heap.lock`` (an RLock) is held for the length of one call, never
longer, so no interrupt or exception can leave it held. ``HeapLock`` does not
keep it: it records the calling thread as the heap's holder, and a call from
another thread waits (on ``heap.turn``) until the holder's ``HeapUnlock``.
Calls with ``HEAP_NO_SERIALIZE``, or on a heap created with it, take no lock.
Once the low-fragmentation heap is on, an allocation it serves does not wait
for a holder either, as on Windows.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
import threading
import time
import weakref
from typing import Callable, ContextManager, Dict, Iterable, List, Optional, Tuple, Type, TypeVar

from ..._args import buffer_arg, dword_arg, pointer_arg, size_arg
from ..._config import Settings
from ..._constants import (
    ERROR_GEN_FAILURE,
    ERROR_INSUFFICIENT_BUFFER,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NO_MORE_ITEMS,
    ERROR_NOACCESS,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_CREATE_ENABLE_EXECUTE,
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_GROWABLE,
    HEAP_NO_SERIALIZE,
    HEAP_SIZE_FAILURE,
    MEMORY_ALLOCATION_ALIGNMENT,
    POINTER_SIZE,
    SIZE_MAX,
    STATUS_NO_MEMORY,
    HeapCompatibilityInformation,
    HeapEnableTerminationOnCorruption,
)
from ..._errors import HeapException
from ..._structs import HEAP_SUMMARY, PROCESS_HEAP_ENTRY
from .._base import DWORD, HANDLE, LPVOID, SIZE_T, Capabilities, CArg, HeapBackend, OutBuffer
from ._debug import DebugChecks
from ._fixed import FixedHeap
from ._growable import GrowableHeap
from ._heap import LARGE_THRESHOLD, MAX_REQUEST, NO_MEMORY, EmulatedHeap
from ._native import NativeMemory, probe, system_memory

_S = TypeVar("_S", bound=ctypes.Structure)
_T = TypeVar("_T")
_P_ENTRY = ctypes.POINTER(PROCESS_HEAP_ENTRY)
#: PROCESS_HEAP_ENTRY's layout, its union read as the Region variant (a Block
#: variant is all zeros there): packed and unpacked in one step each.
_ENTRY = struct.Struct("@PIBBHIIPP")
assert _ENTRY.size == ctypes.sizeof(PROCESS_HEAP_ENTRY)
_NO_REGION = (0, 0, 0, 0)
_ENTRY_BYTES = ctypes.c_char * _ENTRY.size
_P_SUMMARY = ctypes.POINTER(HEAP_SUMMARY)
_P_SIZE = ctypes.POINTER(ctypes.c_size_t)
# The flags HeapCreate keeps (as kernel32 does); others are dropped.
_CREATE_FLAGS = HEAP_GENERATE_EXCEPTIONS | HEAP_NO_SERIALIZE | HEAP_CREATE_ENABLE_EXECUTE
#: What a call with HEAP_NO_SERIALIZE holds instead of the heap's lock.
NO_LOCK: ContextManager[None] = contextlib.nullcontext()
#: The variant the conformance suite runs besides the default: the fallbacks
#: systems without mremap or malloc_usable_size take, forced.
FALLBACK_VARIANT = "emulated-fallback"

_get_ident = threading.get_ident
#: The key of the process heap's claim.
_PROCESS = "process"


# Flags are only ever tested bit by bit below bit 32, where an int wider
# than a DWORD (or a negative one) answers as its wrapped value would: a plain
# int needs no conversion. Sizes and pointers do, and are checked inline.


class _LastError(threading.local):
    code = 0


def _wait_turn(heap: EmulatedHeap) -> None:
    """Wait (holding ``heap.lock``) while another thread holds the heap with HeapLock.

    Not in a call nested in an allocation the low-fragmentation heap serves
    past the hold (see :func:`_alloc_past_holder`): waiting releases the lock,
    which would let the holder in while that allocation is half done.
    """
    me = _get_ident()
    if heap.passing == me:
        return
    while heap.holder is not None and heap.holder != me:
        heap.turn.wait()


def _alloc_past_holder(heap: EmulatedHeap, size: int, flags: int) -> int:
    """HeapAlloc's call into the heap while another thread holds it with HeapLock."""
    if size >= heap.lfh_below:
        _wait_turn(heap)
        return heap.alloc(size, flags)
    # Served by the low-fragmentation heap, which does not wait for the hold
    # (as on Windows). Marked, so a call nested in it on this thread (a
    # handler's) does not wait either.
    was = heap.passing
    try:
        heap.passing = _get_ident()
        return heap.alloc(size, flags)
    finally:
        heap.passing = was


class EmulatedBackend(HeapBackend):
    """Windows heap semantics for systems without kernel32.

    Safer than Windows where Windows is undefined: every live block is known,
    so bad pointers and handles get the Win32 failure instead of a crash.
    """

    name = "emulated"

    def __init__(self, debug: Iterable[str] = (), memory: Optional[NativeMemory] = None) -> None:
        self.memory = memory if memory is not None else system_memory()
        self.debug_checks = frozenset(debug)
        self.debug = DebugChecks(self.debug_checks)
        # The registry. Its lock is held for single dict operations only, which
        # run no code of ours: a call nested in one (a signal handler's or a
        # finaliser's, on the same thread) re-enters it and finds the registry
        # whole, and nothing else waits for it long.
        self._heaps: Dict[int, EmulatedHeap] = {}
        self._registry_lock = threading.RLock()
        #: The process heap, once made and registered (the fast path's answer).
        self._process_heap: Optional[EmulatedHeap] = None
        #: The process heap as soon as one call's heap won it (``_PROCESS``).
        self._process_claim: Dict[str, EmulatedHeap] = {}
        #: Heaps a HeapDestroy has claimed (by id): the call that claims a heap destroys it.
        self._destroy_claims: Dict[int, List[EmulatedHeap]] = {}
        self._error = _LastError()
        self._variants: Dict[str, EmulatedBackend] = {}
        self._not_over_aligned: Optional[bool] = None
        _LIVE.add(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> "EmulatedBackend":
        return cls(debug=settings.debug)

    @classmethod
    def probe(cls) -> Tuple[bool, str]:
        return probe()

    @classmethod
    def fix(cls) -> str:
        return "On Windows use the 'kernel32' backend (unset COMPATHEAP_BACKEND)."

    @property
    def capabilities(self) -> Capabilities:
        memory = self.memory
        return Capabilities(
            refuses_bad_pointers=True,
            blocks_not_over_aligned=self._spaces_blocks_like_windows(),
            transcript_reference=True,
            debug_checks=frozenset({"tail", "free"}),
            debug_enabled=self.debug_checks,
            variants={FALLBACK_VARIANT: "no mremap, no usable-size query: the fallbacks of systems without them"},
            features={
                "mremap": "available: large blocks grow and shrink in place"
                if memory.can_remap
                else "fallback: large blocks that grow are copied to a new mapping",
                "malloc_usable_size": f"available as {memory.usable_size_name}()"
                if memory.usable_size_name
                else "fallback: each block's capacity is recorded by the emulation",
            },
            large_block_threshold=LARGE_THRESHOLD,
            page_size=memory.page_size,
        )

    def _spaces_blocks_like_windows(self) -> bool:
        """Whether the C allocator leaves some blocks of 0x8000 pointers at odd
        multiples of the alignment (jemalloc, tcmalloc and mimalloc put them on
        page boundaries). Asked once, of the allocator itself."""
        if self._not_over_aligned is None:
            memory = self.memory
            blocks = [memory.malloc(0x8000 * POINTER_SIZE) for _ in range(32)]
            self._not_over_aligned = any(block & MEMORY_ALLOCATION_ALIGNMENT for block in blocks)
            for block in blocks:
                if block:
                    memory.free(block)
        return self._not_over_aligned

    def variant(self, name: str) -> "EmulatedBackend":
        if name != FALLBACK_VARIANT:
            raise KeyError(name)
        found = self._variants.get(name)
        if found is None:
            memory = system_memory(use_remap=False, use_usable_size=False)
            found = self._variants[name] = EmulatedBackend(self.debug_checks, memory)
        return found

    # -- internals -------------------------------------------------------------------
    def _fail(self, code: int) -> Optional[int]:
        """Set the last error; the NULL result of a failed pointer-returning call."""
        self._error.code = code
        return None

    def _false(self, code: int) -> int:
        self._error.code = code
        return 0

    def _no_block(self, failure: int, flags: int, function: str, size: int) -> Optional[int]:
        """A failed HeapAlloc or HeapReAlloc: NULL, or the exception HEAP_GENERATE_EXCEPTIONS asks for."""
        self._error.code = -failure
        if failure == NO_MEMORY and flags & HEAP_GENERATE_EXCEPTIONS:
            raise HeapException(STATUS_NO_MEMORY, function, size)
        return None

    def _registered(self) -> List[EmulatedHeap]:
        """The registered heaps, copied in one dict operation (it runs no Python code)."""
        with self._registry_lock:
            return list(self._heaps.values())

    def _heap(self, value: HANDLE) -> Optional[EmulatedHeap]:
        """The live heap a handle argument names, or None."""
        heap = self._heaps.get(pointer_arg(value, 1))
        return heap if heap is not None and heap.alive else None

    # -- heaps -------------------------------------------------------------------------
    def GetProcessHeap(self) -> Optional[int]:
        heap = self._process_heap
        if heap is not None:
            return heap.handle
        # Made on first use, in steps that are one dict operation each and
        # change nothing when repeated: a call on another thread, or one nested
        # between two steps, finishes them with the same heap. Exactly one
        # heap wins the claim; a loser is destroyed before anyone sees it.
        heap = self._process_claim.get(_PROCESS)
        if heap is None:
            try:
                made: EmulatedHeap = GrowableHeap(self.memory, self.debug, 0)
            except MemoryError:  # Out of address space: retried on the next call.
                return self._fail(ERROR_NOT_ENOUGH_MEMORY)
            try:
                with self._registry_lock:
                    heap = self._process_claim.setdefault(_PROCESS, made)
            except MemoryError:
                made.destroy()
                return self._fail(ERROR_NOT_ENOUGH_MEMORY)
            if heap is not made:
                made.destroy()
        try:
            with self._registry_lock:
                self._heaps.setdefault(heap.handle, heap)
        except MemoryError:  # The heap stays claimed: the next call registers it.
            return self._fail(ERROR_NOT_ENOUGH_MEMORY)
        self._process_heap = heap
        return heap.handle

    def GetProcessHeaps(self, NumberOfHeaps: DWORD, ProcessHeaps: OutBuffer, /) -> int:
        count = dword_arg(NumberOfHeaps, 1)
        address, room = buffer_arg(ProcessHeaps, 2, ctypes.POINTER(ctypes.c_void_p))
        self.GetProcessHeap()
        process = self._process_heap  # (registered before it is set, and never removed)
        handles = [process.handle] if process is not None else []
        handles.extend(heap.handle for heap in self._registered() if heap is not process)
        total = len(handles)
        if count >= total and total:
            if not self._write_out(address, room, bytes((ctypes.c_size_t * total)(*handles))):
                return self._false(ERROR_NOACCESS)
        return total

    def HeapCreate(self, flOptions: DWORD, dwInitialSize: SIZE_T, dwMaximumSize: SIZE_T, /) -> Optional[int]:
        flags = dword_arg(flOptions, 1) & _CREATE_FLAGS
        initial = size_arg(dwInitialSize, 2)
        maximum = size_arg(dwMaximumSize, 3)
        if initial > MAX_REQUEST or maximum > MAX_REQUEST:
            return self._fail(ERROR_NOT_ENOUGH_MEMORY)
        try:
            if maximum:
                heap: EmulatedHeap = FixedHeap(self.memory, self.debug, flags, initial, maximum)
            else:
                heap = GrowableHeap(self.memory, self.debug, flags | HEAP_GROWABLE)
        except MemoryError:
            return self._fail(ERROR_NOT_ENOUGH_MEMORY)
        try:
            with self._registry_lock:
                self._heaps[heap.handle] = heap
        except MemoryError:
            heap.destroy()
            return self._fail(ERROR_NOT_ENOUGH_MEMORY)
        return heap.handle

    def HeapDestroy(self, hHeap: HANDLE, /) -> int:
        heap = self._heap(hHeap)
        if heap is None or heap is self._process_claim.get(_PROCESS):
            return self._false(ERROR_INVALID_HANDLE)
        with heap.lock:  # (also on a HEAP_NO_SERIALIZE heap: other threads' calls must finish)
            _wait_turn(heap)
            failure = self._destroy(heap)
            if failure:
                return self._false(failure)
            # This thread's HeapLock holds end with the heap; waiters wake to fail.
            heap.holder = None
            heap.holds = 0
            heap.turn.notify_all()
        return 1

    def _destroy(self, heap: EmulatedHeap) -> int:
        """Take ``heap`` out of the registry and destroy it (0), unless another
        call (on another thread, or nested in this one) has claimed it first.

        The claim is one dict operation, so exactly one destroyer wins it. The
        heap leaves the registry before its memory goes back: no other heap
        can have its handle until then.
        """
        claim = [heap]
        try:
            with self._registry_lock:
                won = self._destroy_claims.setdefault(id(heap), claim) is claim
        except MemoryError:
            return ERROR_NOT_ENOUGH_MEMORY
        if not won:
            return ERROR_INVALID_HANDLE
        try:
            if not heap.alive:  # Destroyed by a call whose claim ended before this one began.
                return ERROR_INVALID_HANDLE
            with self._registry_lock:
                self._heaps.pop(heap.handle, None)
            heap.destroy()
        finally:
            with self._registry_lock:
                self._destroy_claims.pop(id(heap), None)
        return 0

    # -- blocks --------------------------------------------------------------------------
    def HeapAlloc(self, hHeap: HANDLE, dwFlags: DWORD, dwBytes: SIZE_T, /) -> Optional[int]:
        heap = self._heaps.get(hHeap) if type(hHeap) is int else None
        if heap is None:
            heap = self._heap(hHeap)
        flags = dwFlags if type(dwFlags) is int else dword_arg(dwFlags, 2)
        size = dwBytes if type(dwBytes) is int and 0 <= dwBytes <= SIZE_MAX else size_arg(dwBytes, 3)
        if heap is None:
            return self._fail(ERROR_INVALID_HANDLE)
        with NO_LOCK if flags & HEAP_NO_SERIALIZE else heap.guard:
            if heap.holder is not None and not flags & HEAP_NO_SERIALIZE:
                result = _alloc_past_holder(heap, size, flags)
            else:
                result = heap.alloc(size, flags)
        if result > 0:
            return result
        return self._no_block(result, flags | heap.flags, "HeapAlloc", size)

    def HeapReAlloc(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, dwBytes: SIZE_T, /) -> Optional[int]:
        heap = self._heaps.get(hHeap) if type(hHeap) is int else None
        if heap is None:
            heap = self._heap(hHeap)
        flags = dwFlags if type(dwFlags) is int else dword_arg(dwFlags, 2)
        address = lpMem if type(lpMem) is int and 0 < lpMem <= SIZE_MAX else pointer_arg(lpMem, 3)
        size = dwBytes if type(dwBytes) is int and 0 <= dwBytes <= SIZE_MAX else size_arg(dwBytes, 4)
        if heap is None:
            return self._fail(ERROR_INVALID_HANDLE)
        if not address:
            return self._fail(0)  # Not an allocation: Windows answers NULL and clears the last error.
        with NO_LOCK if flags & HEAP_NO_SERIALIZE else heap.guard:
            if heap.holder is not None and not flags & HEAP_NO_SERIALIZE:
                _wait_turn(heap)
            result = heap.realloc(address, size, flags)
        if result > 0:
            return result
        return self._no_block(result, flags | heap.flags, "HeapReAlloc", size)

    def HeapFree(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, /) -> int:
        heap = self._heaps.get(hHeap) if type(hHeap) is int else None
        if heap is None:
            heap = self._heap(hHeap)
        flags = dwFlags if type(dwFlags) is int else dword_arg(dwFlags, 2)
        address = lpMem if type(lpMem) is int and 0 < lpMem <= SIZE_MAX else pointer_arg(lpMem, 3)
        if not address:
            return 1  # Freeing NULL succeeds, whatever the handle.
        if heap is None:
            return self._false(ERROR_INVALID_PARAMETER)
        with NO_LOCK if flags & HEAP_NO_SERIALIZE else heap.guard:
            if heap.holder is not None and not flags & HEAP_NO_SERIALIZE:
                _wait_turn(heap)
            failure = heap.free(address)
        if failure:
            return self._false(-failure)
        return 1

    def HeapSize(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, /) -> int:
        heap = self._heaps.get(hHeap) if type(hHeap) is int else None
        if heap is None:
            heap = self._heap(hHeap)
        flags = dword_arg(dwFlags, 2)
        address = pointer_arg(lpMem, 3)
        size = None
        if heap is not None:
            with NO_LOCK if flags & HEAP_NO_SERIALIZE else heap.guard:
                if heap.holder is not None and not flags & HEAP_NO_SERIALIZE:
                    _wait_turn(heap)
                size = heap.size_of(address)
        if size is None:
            self._error.code = ERROR_INVALID_PARAMETER
            return HEAP_SIZE_FAILURE
        return size

    def HeapValidate(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, /) -> int:
        heap = self._heap(hHeap)
        flags = dword_arg(dwFlags, 2)
        address = pointer_arg(lpMem, 3)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        with NO_LOCK if flags & HEAP_NO_SERIALIZE else heap.guard:
            if heap.holder is not None and not flags & HEAP_NO_SERIALIZE:
                _wait_turn(heap)
            if not heap.alive:
                return self._false(ERROR_INVALID_HANDLE)
            if not address:
                return int(heap.valid())
            size = heap.size_of(address)
            return int(size is not None and heap.block_intact(address, size))

    def HeapCompact(self, hHeap: HANDLE, dwFlags: DWORD, /) -> int:
        heap = self._heap(hHeap)
        flags = dword_arg(dwFlags, 2)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        with NO_LOCK if flags & HEAP_NO_SERIALIZE else heap.guard:
            if heap.holder is not None and not flags & HEAP_NO_SERIALIZE:
                _wait_turn(heap)
            if not heap.alive:
                return self._false(ERROR_INVALID_HANDLE)
            try:
                return heap.largest_free()
            except MemoryError:  # Merging free room needs Python's memory: nothing was lost.
                return self._false(ERROR_NOT_ENOUGH_MEMORY)

    # -- locking ---------------------------------------------------------------------------
    def HeapLock(self, hHeap: HANDLE, /) -> int:
        heap = self._heap(hHeap)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        if not heap.serialized:
            return 1  # Succeeds and holds up nothing, as on Windows.
        with heap.lock:
            _wait_turn(heap)
            if not heap.alive:  # Destroyed while we waited.
                return self._false(ERROR_INVALID_HANDLE)
            me = _get_ident()
            # The count before the holder: cut short in between, no hold exists
            # (a count without a holder means nothing).
            if heap.holder == me:
                heap.holds += 1
            else:
                heap.holds = 1
                heap.holder = me
        return 1

    def HeapUnlock(self, hHeap: HANDLE, /) -> int:
        heap = self._heap(hHeap)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        if not heap.serialized:
            return 1
        with heap.lock:
            if heap.holder != _get_ident():  # Not locked by this thread.
                return self._false(ERROR_INVALID_PARAMETER)
            if heap.holds > 1:
                heap.holds -= 1
            else:
                # Waiters woken first: they look again only once this call
                # lets the lock go, and an unlock cut short before the holder
                # is cleared has not happened (the hold stays, whole).
                heap.turn.notify_all()
                heap.holder = None
                heap.holds = 0
        return 1

    # -- inspection --------------------------------------------------------------------------
    def HeapWalk(self, hHeap: HANDLE, lpEntry: OutBuffer, /) -> int:
        heap = self._heap(hHeap)
        address, room = buffer_arg(lpEntry, 2, _P_ENTRY)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        # The caller's entry itself when its extent is known, else a copy.
        fits = room is not None and address and room >= _ENTRY.size
        view = _ENTRY_BYTES.from_address(address) if fits else None
        held = view if view is not None else self._read_out(address, room, _ENTRY.size)
        if held is None:
            return self._false(ERROR_NOACCESS)
        lp_data, _, _, _, w_flags, _, _, _, _ = _ENTRY.unpack_from(held)
        with heap.guard:
            if heap.holder is not None:
                _wait_turn(heap)
            if not heap.alive:
                return self._false(ERROR_INVALID_HANDLE)
            try:
                found = heap.walk_next(lp_data, w_flags)
            except MemoryError:
                return self._false(ERROR_NOT_ENOUGH_MEMORY)
        if found is None:
            return self._false(ERROR_NO_MORE_ITEMS)
        lp_data, cb_data, overhead, region_index, w_flags, region = found
        # The whole entry in one write; a block entry's union part is zero.
        committed, uncommitted, first, last = region if region is not None else _NO_REGION
        fields = (lp_data, cb_data & 0xFFFFFFFF, overhead, region_index, w_flags, committed, uncommitted, first, last)
        if view is not None:
            _ENTRY.pack_into(view, 0, *fields)
        elif not self._write_out(address, room, _ENTRY.pack(*fields)):
            return self._false(ERROR_NOACCESS)
        return 1

    def HeapSummary(self, hHeap: HANDLE, dwFlags: DWORD, lpSummary: OutBuffer, /) -> int:
        heap = self._heap(hHeap)
        dword_arg(dwFlags, 2)
        address, room = buffer_arg(lpSummary, 3, _P_SUMMARY)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        summary = self._out_struct(HEAP_SUMMARY, address, room)
        if summary is None:
            return self._false(ERROR_NOACCESS)
        if summary.cb != ctypes.sizeof(HEAP_SUMMARY):
            return self._false(ERROR_INVALID_PARAMETER)
        with heap.guard:
            if heap.holder is not None:
                _wait_turn(heap)
            if not heap.alive:  # Destroyed since the check above.
                return self._false(ERROR_INVALID_HANDLE)
            try:
                summary.cbAllocated = heap.allocated()
                summary.cbCommitted = heap.committed()
                summary.cbReserved = summary.cbMaxReserve = heap.reserved()
            except MemoryError:
                return self._false(ERROR_NOT_ENOUGH_MEMORY)
        if room is None and not self._write_out(address, room, bytes(summary)):
            return self._false(ERROR_NOACCESS)
        return 1

    def HeapQueryInformation(
        self,
        HeapHandle: HANDLE,
        HeapInformationClass: DWORD,
        HeapInformation: OutBuffer,
        HeapInformationLength: SIZE_T,
        ReturnLength: OutBuffer,
        /,
    ) -> int:
        heap = self._heap(HeapHandle)
        info_class = dword_arg(HeapInformationClass, 2)
        address, room = buffer_arg(HeapInformation, 3)
        length = size_arg(HeapInformationLength, 4)
        ret_address, ret_room = buffer_arg(ReturnLength, 5, _P_SIZE)
        if heap is None:
            return self._false(ERROR_NOACCESS)
        if info_class != HeapCompatibilityInformation:
            return self._false(ERROR_INVALID_PARAMETER)
        # The needed length is reported even when the buffer is refused.
        self._write_out(ret_address, ret_room, bytes(ctypes.c_size_t(4)))
        if not address or length < 4:
            return self._false(ERROR_INSUFFICIENT_BUFFER)
        if not self._write_out(address, room, bytes(ctypes.c_uint32(heap.compat_info))):
            return self._false(ERROR_NOACCESS)
        return 1

    def HeapSetInformation(
        self,
        HeapHandle: HANDLE,
        HeapInformationClass: DWORD,
        HeapInformation: CArg,
        HeapInformationLength: SIZE_T,
        /,
    ) -> int:
        handle = pointer_arg(HeapHandle, 1)
        info_class = dword_arg(HeapInformationClass, 2)
        address, room = buffer_arg(HeapInformation, 3)
        length = size_arg(HeapInformationLength, 4)
        if info_class == HeapEnableTerminationOnCorruption:
            return 1  # Accepted; corruption is reported, never silently used.
        if info_class != HeapCompatibilityInformation:
            return self._false(ERROR_INVALID_PARAMETER)
        heap = self._heap(handle)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        if not address or length < 4:
            return self._false(ERROR_INSUFFICIENT_BUFFER)
        raw = self._read_out(address, room, 4)
        if raw is None:
            return self._false(ERROR_NOACCESS)
        value = ctypes.c_uint32.from_buffer_copy(raw).value
        with heap.lock:
            _wait_turn(heap)
            if not heap.alive:  # Destroyed since the check above.
                return self._false(ERROR_INVALID_HANDLE)
            if value == 2:
                if not heap.serialized:
                    return self._false(ERROR_INVALID_PARAMETER)
                heap.enable_lfh()
                return 1
            if value == 0 and heap.compat_info != 2:
                return 1
            return self._false(ERROR_GEN_FAILURE)

    # -- last error ----------------------------------------------------------------------------
    def GetLastError(self) -> int:
        return self._error.code

    def SetLastError(self, dwErrCode: DWORD, /) -> None:
        self._error.code = dword_arg(dwErrCode, 1)

    # -- the caller's buffers ---------------------------------------------------------------------
    # Every access to a caller's buffer goes through these: with a known extent
    # (a ctypes object) it must be large enough; a bare address is only touched
    # while it lies in a live block (see _in_live_block).
    def _in_live_block(self, address: int, length: int, access: Callable[[], _T]) -> Optional[_T]:
        """``access()`` if ``address..+length`` lies in a live block of some heap, else None.

        A bare integer address carries no extent; touching it is only safe where
        the emulation itself handed out the memory, and only while that block
        stays live: the access runs under the block's heap lock, so no other
        thread frees the block in between.
        """
        end = address + length
        for heap in self._registered():
            with heap.lock:
                blocks = heap.blocks
                size = blocks.get(address)  # A block's own start: found at once.
                if size is not None and end <= address + size:
                    return access() if heap.alive else None
                for start in list(blocks):
                    size = blocks.get(start)
                    if size is not None and start <= address and end <= start + size:
                        return access() if heap.alive else None
        return None

    def _read_out(self, address: int, room: Optional[int], length: int) -> Optional[bytes]:
        """The buffer's first ``length`` bytes, or None when they cannot be reached."""
        if not address or (room is not None and room < length):
            return None
        if room is None:
            return self._in_live_block(address, length, lambda: ctypes.string_at(address, length))
        return ctypes.string_at(address, length)

    def _write_out(self, address: int, room: Optional[int], data: bytes) -> bool:
        """Write ``data`` to the buffer; False when it cannot be reached."""
        if not address or (room is not None and room < len(data)):
            return False

        def write() -> bool:
            ctypes.memmove(address, data, len(data))
            return True

        if room is None:
            return bool(self._in_live_block(address, len(data), write))
        return write()

    def _out_struct(self, cls: Type[_S], address: int, room: Optional[int]) -> Optional[_S]:
        """The caller's output structure: itself when its extent is known, else a copy.

        A copy is written back with :meth:`_write_out`.
        """
        if room is not None:
            if not address or room < ctypes.sizeof(cls):
                return None
            return cls.from_address(address)
        raw = self._read_out(address, room, ctypes.sizeof(cls))
        return None if raw is None else cls.from_buffer_copy(raw)


# -- fork ------------------------------------------------------------------------------------------
# A child process starts with one thread: locks another thread held at fork
# would never be released there. So fork waits until no heap call is under way
# (each heap's lock is held only for one call), and the child gets fresh locks.
# A HeapLock hold of a thread that does not exist in the child ends there.
_LIVE: "weakref.WeakSet[EmulatedBackend]" = weakref.WeakSet()
#: How long fork waits, in all, for heap calls under way to finish. A call
#: does not take long; the bound only matters if a thread inside a call waits
#: for a heap the forking thread has already taken (a finaliser's call into
#: another heap): that heap is then as the call left it in the child.
FORK_WAIT = 2.0
_held_for_fork: List["threading.RLock"] = []


def _before_fork() -> None:
    # The registry locks are not held across the fork: each guards single dict
    # operations, which a fork does not split, so the child's registry is
    # whole whoever held one; the child gets new ones.
    deadline = time.monotonic() + FORK_WAIT
    for backend in list(_LIVE):
        for heap in backend._registered():
            lock = heap.lock
            if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                _held_for_fork.append(lock)


def _after_fork_in_parent() -> None:
    while _held_for_fork:
        _held_for_fork.pop().release()


def _after_fork_in_child() -> None:
    _held_for_fork.clear()
    me = _get_ident()
    for backend in list(_LIVE):
        backend._registry_lock = threading.RLock()
        for heap in backend._registered():
            heap.lock = threading.RLock()
            heap.turn = threading.Condition(heap.lock)
            if heap.serialized:
                heap.guard = heap.lock
            if heap.holder != me:
                heap.holder = None
                heap.holds = 0
            if heap.passing != me:
                heap.passing = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
