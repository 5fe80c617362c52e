"""The emulated backend: Windows heap semantics over the C library and mmap."""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable, Dict, FrozenSet, Iterable, Optional, Tuple, Type, TypeVar

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
    STATUS_NO_MEMORY,
    HeapCompatibilityInformation,
    HeapEnableTerminationOnCorruption,
)
from ..._errors import HeapException
from ..._structs import HEAP_SUMMARY, PROCESS_HEAP_ENTRY
from .._base import HeapBackend
from ._alloc import heap_alloc, heap_free, heap_size, hot_paths
from ._debug import DebugChecks
from ._fixed import FixedHeap
from ._growable import GrowableHeap
from ._heap import MAX_REQUEST, Heap
from ._oldnative import Native, load_libc
from ._realloc import heap_realloc, hot_realloc

_T = TypeVar("_T")
_S = TypeVar("_S", bound=ctypes.Structure)
_P_ENTRY = ctypes.POINTER(PROCESS_HEAP_ENTRY)
_P_SUMMARY = ctypes.POINTER(HEAP_SUMMARY)
_P_SIZE = ctypes.POINTER(ctypes.c_size_t)
# The flags HeapCreate keeps (as kernel32 does); others are dropped.
_CREATE_FLAGS = HEAP_GENERATE_EXCEPTIONS | HEAP_NO_SERIALIZE | HEAP_CREATE_ENABLE_EXECUTE


class _LastError(threading.local):
    code = 0


class EmulatedBackend(HeapBackend):
    """Windows heap semantics for systems without kernel32.

    Safer than Windows where Windows is undefined: every live block is known,
    so bad pointers and handles get the Win32 failure instead of a crash.
    """

    name = "emulated"

    def __init__(self, debug: Iterable[str] = (), native: Optional[Native] = None) -> None:
        self.native = native if native is not None else Native()
        self.debug_checks: FrozenSet[str] = frozenset(debug)
        self._debug = DebugChecks(self.debug_checks)
        self._heaps: Dict[int, Heap] = {}
        self._registry_lock = threading.Lock()
        self._process_heap: Optional[Heap] = None
        self._error = _LastError()
        # Instance attributes shadow the methods: a call finds the hot path first.
        alloc, free, size = hot_paths(self)
        vars(self).update(HeapAlloc=alloc, HeapFree=free, HeapSize=size, HeapReAlloc=hot_realloc(self))

    @classmethod
    def from_settings(cls, settings: Settings) -> "EmulatedBackend":
        return cls(debug=settings.debug)

    @classmethod
    def probe(cls) -> Tuple[bool, str]:
        try:
            load_libc()
        except OSError as exc:
            return False, str(exc)
        return True, "the C library provides malloc and mmap"

    @classmethod
    def fix(cls) -> str:
        return "On Windows use the 'kernel32' backend (unset COMPATHEAP_BACKEND)."

    # -- internals -----------------------------------------------------------
    def _fail(self, code: int) -> Optional[int]:
        """Set the last error; the NULL result of a failed pointer-returning call."""
        self._error.code = code
        return None

    def _false(self, code: int) -> int:
        self._error.code = code
        return 0

    def _raise_no_memory(self, function: str, size: int) -> None:
        self._error.code = ERROR_NOT_ENOUGH_MEMORY
        raise HeapException(STATUS_NO_MEMORY, function, size)

    def _heap_arg(self, value: Any, position: int) -> Optional[Heap]:
        return self._heaps.get(pointer_arg(value, position))

    def _live(self, hHeap: Any) -> Optional[Heap]:
        heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
        return heap if heap is not None and heap.alive else None

    # -- heaps ---------------------------------------------------------------
    def GetProcessHeap(self) -> Optional[int]:
        heap = self._process_heap
        if heap is None:
            with self._registry_lock:
                heap = self._process_heap
                if heap is None:
                    try:
                        heap = GrowableHeap(self.native, self._debug, 0)
                    except MemoryError:  # Out of address space: retried on the next call.
                        return self._fail(ERROR_NOT_ENOUGH_MEMORY)
                    self._heaps[heap.handle] = heap
                    self._process_heap = heap
        return heap.handle

    def GetProcessHeaps(self, NumberOfHeaps: Any, ProcessHeaps: Any) -> int:
        count = dword_arg(NumberOfHeaps, 1)
        address, room = buffer_arg(ProcessHeaps, 2, ctypes.POINTER(ctypes.c_void_p))
        self.GetProcessHeap()
        with self._registry_lock:
            process = self._process_heap
            handles = [process.handle] if process is not None else []
            handles.extend(h for h, heap in self._heaps.items() if heap is not process)
        total = len(handles)
        if count >= total and total:
            if not self._write_out(address, room, bytes((ctypes.c_size_t * total)(*handles))):
                return self._false(ERROR_NOACCESS)
        return total

    def HeapCreate(self, flOptions: Any, dwInitialSize: Any, dwMaximumSize: Any) -> Optional[int]:
        flags = dword_arg(flOptions, 1) & _CREATE_FLAGS
        initial = size_arg(dwInitialSize, 2)
        maximum = size_arg(dwMaximumSize, 3)
        if initial > MAX_REQUEST or maximum > MAX_REQUEST:
            return self._fail(ERROR_NOT_ENOUGH_MEMORY)
        try:
            if maximum:
                heap: Heap = FixedHeap(self.native, self._debug, flags, initial, maximum)
            else:
                heap = GrowableHeap(self.native, self._debug, flags | HEAP_GROWABLE)
        except MemoryError:
            return self._fail(ERROR_NOT_ENOUGH_MEMORY)
        with self._registry_lock:
            self._heaps[heap.handle] = heap
        return heap.handle

    def HeapDestroy(self, hHeap: Any) -> int:
        heap = self._live(hHeap)
        if heap is None or heap is self._process_heap:
            return self._false(ERROR_INVALID_HANDLE)
        # The gate and RLock even of a HEAP_NO_SERIALIZE heap: the hot paths stop.
        rlock = heap.rlock
        with heap.hot_gate, rlock:
            # Unregister first: from here on other threads see an invalid handle.
            # Whoever takes it out of the registry destroys it, exactly once.
            with self._registry_lock:
                if not heap.alive or self._heaps.get(heap.handle) is not heap:
                    return self._false(ERROR_INVALID_HANDLE)
                heap.alive = False
                del self._heaps[heap.handle]
            heap.stop_serving()
            heap.destroy()
        # Drop the holds HeapLock left this thread, all in one C call: the handle
        # is gone, so no HeapUnlock could, and waiters must wake to fail.
        try:
            rlock._release_save()  # type: ignore[attr-defined]
        except RuntimeError:
            pass  # None left.
        return 1

    # -- blocks --------------------------------------------------------------
    # The full paths; each instance puts its hot paths in front (see __init__).
    HeapAlloc = heap_alloc
    HeapReAlloc = heap_realloc
    HeapFree = heap_free
    HeapSize = heap_size

    def HeapValidate(self, hHeap: Any, dwFlags: Any, lpMem: Any) -> int:
        heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
        flags = dword_arg(dwFlags, 2)
        address = pointer_arg(lpMem, 3)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        gate, lock = heap.guards(flags)
        with gate, lock:
            if not heap.alive:
                return self._false(ERROR_INVALID_HANDLE)
            if not address:
                return int(heap.valid())
            size = heap.blocks.get(address)
            return int(size is not None and heap.block_intact(address, size))

    def HeapCompact(self, hHeap: Any, dwFlags: Any) -> int:
        heap = self._live(hHeap)
        flags = dword_arg(dwFlags, 2)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        gate, lock = heap.guards(flags)
        with gate, lock:
            return heap.largest_free() if heap.alive else self._false(ERROR_INVALID_HANDLE)

    # -- locking -------------------------------------------------------------
    def HeapLock(self, hHeap: Any) -> int:
        heap = self._live(hHeap)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        # Held past this call: the mark keeps other threads' hot paths off too.
        gate, lock = heap.gate, heap.lock
        count = getattr(lock, "_recursion_count", None)  # Python 3.11+
        before = count() if count is not None else int(lock._is_owned())
        try:
            gate.__enter__()
            lock.acquire()
            if not heap.alive:  # Destroyed while we waited.
                lock.release()
                gate.__exit__()
                return self._false(ERROR_INVALID_HANDLE)
        except BaseException:
            # Interrupted (a signal handler's exception) after taking the lock:
            # give it back, or no other thread could ever use the heap.
            after = count() if count is not None else int(lock._is_owned())
            if after > before:
                lock.release()
            raise
        return 1

    def HeapUnlock(self, hHeap: Any) -> int:
        heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        if not heap.lock._is_owned():  # Not locked by this thread.
            return self._false(ERROR_INVALID_PARAMETER)
        heap.lock.release()
        heap.gate.__exit__()
        return 1

    # -- inspection ----------------------------------------------------------
    def HeapWalk(self, hHeap: Any, lpEntry: Any) -> int:
        heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
        address, room = buffer_arg(lpEntry, 2, _P_ENTRY)
        if heap is None or not heap.alive:
            return self._false(ERROR_INVALID_HANDLE)
        entry = self._out_struct(PROCESS_HEAP_ENTRY, address, room)
        if entry is None:
            return self._false(ERROR_NOACCESS)
        with heap.gate, heap.lock:
            if not heap.alive:
                return self._false(ERROR_INVALID_HANDLE)
            found = heap.walk_next(entry.lpData or 0, entry.wFlags)
        if found is None:
            return self._false(ERROR_NO_MORE_ITEMS)
        lp_data, cb_data, overhead, region_index, w_flags, region = found
        entry.lpData = lp_data
        entry.cbData = cb_data & 0xFFFFFFFF
        entry.cbOverhead = overhead
        entry.iRegionIndex = region_index
        entry.wFlags = w_flags
        if region is not None:
            committed, uncommitted, first, last = region
            entry.Region.dwCommittedSize = committed
            entry.Region.dwUnCommittedSize = uncommitted
            entry.Region.lpFirstBlock = first
            entry.Region.lpLastBlock = last
        else:
            ctypes.memset(ctypes.addressof(entry.Block), 0, ctypes.sizeof(entry.Block))
        if not self._write_out(address, room, bytes(entry)):
            return self._false(ERROR_NOACCESS)
        return 1

    def HeapSummary(self, hHeap: Any, dwFlags: Any, lpSummary: Any) -> int:
        heap = (self._heaps.get(hHeap) if type(hHeap) is int else None) or self._heap_arg(hHeap, 1)
        dword_arg(dwFlags, 2)
        address, room = buffer_arg(lpSummary, 3, _P_SUMMARY)
        if heap is None or not heap.alive:
            return self._false(ERROR_INVALID_HANDLE)
        summary = self._out_struct(HEAP_SUMMARY, address, room)
        if summary is None:
            return self._false(ERROR_NOACCESS)
        if summary.cb != ctypes.sizeof(HEAP_SUMMARY):
            return self._false(ERROR_INVALID_PARAMETER)
        with heap.gate, heap.lock:
            if not heap.alive:  # Destroyed since the check above.
                return self._false(ERROR_INVALID_HANDLE)
            summary.cbAllocated = heap.allocated()
            summary.cbCommitted = heap.committed()
            summary.cbReserved = heap.reserved()
            summary.cbMaxReserve = heap.reserved()
        if not self._write_out(address, room, bytes(summary)):
            return self._false(ERROR_NOACCESS)
        return 1

    def HeapQueryInformation(
        self,
        HeapHandle: Any,
        HeapInformationClass: Any,
        HeapInformation: Any,
        HeapInformationLength: Any,
        ReturnLength: Any,
    ) -> int:
        heap = self._live(HeapHandle)
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
        HeapHandle: Any,
        HeapInformationClass: Any,
        HeapInformation: Any,
        HeapInformationLength: Any,
    ) -> int:
        handle = pointer_arg(HeapHandle, 1)
        info_class = dword_arg(HeapInformationClass, 2)
        address, room = buffer_arg(HeapInformation, 3)
        length = size_arg(HeapInformationLength, 4)
        if info_class == HeapEnableTerminationOnCorruption:
            return 1  # Accepted; corruption is reported, never silently used.
        if info_class != HeapCompatibilityInformation:
            return self._false(ERROR_INVALID_PARAMETER)
        heap = self._live(handle)
        if heap is None:
            return self._false(ERROR_INVALID_HANDLE)
        if not address or length < 4:
            return self._false(ERROR_INSUFFICIENT_BUFFER)
        raw = self._read_out(address, room, 4)
        if raw is None:
            return self._false(ERROR_NOACCESS)
        value = ctypes.c_uint32.from_buffer_copy(raw).value
        with heap.gate, heap.lock:
            if not heap.alive:  # Destroyed since the check above.
                return self._false(ERROR_INVALID_HANDLE)
            if value == 2:
                if heap.flags & HEAP_NO_SERIALIZE:
                    return self._false(ERROR_INVALID_PARAMETER)
                heap.compat_info = 2
                return 1
            if value == 0 and heap.compat_info != 2:
                return 1
            return self._false(ERROR_GEN_FAILURE)

    # -- last error ----------------------------------------------------------
    def GetLastError(self) -> int:
        return self._error.code

    def SetLastError(self, dwErrCode: Any) -> None:
        self._error.code = dword_arg(dwErrCode, 1)

    # -- helpers for raw addresses -------------------------------------------
    def _in_live_block(self, address: int, length: int, access: Callable[[], _T]) -> Optional[_T]:
        """``access()`` if ``address..+length`` lies in a live block of some heap, else None.

        A bare integer address carries no extent; touching it is only safe where
        the emulation itself handed out the memory, and only while that block
        stays live: the access runs under the block's heap lock, so no other
        thread frees the block in between. Only that heap is locked: one that
        another thread holds with HeapLock must not stall (or deadlock) a call
        whose buffer lies elsewhere.
        """
        with self._registry_lock:
            heaps = list(self._heaps.values())
        end = address + length
        for heap in heaps:
            # Found unlocked (a dict copy is atomic under the GIL; iterating the
            # live dict is not), then confirmed under the lock.
            start = next((s for s, n in heap.blocks.copy().items() if s <= address and end <= s + n), None)
            if start is None:
                continue
            with heap.gate, heap.lock:
                size = heap.blocks.get(start)
                if heap.alive and size is not None and end <= start + size:
                    return access()
        return None

    # Every access to a caller's buffer goes through these two: with a known
    # extent (a ctypes object) it must be large enough; a bare address is only
    # touched while it lies in a live block (see _in_live_block).
    def _read_out(self, address: int, room: Optional[int], length: int) -> Optional[bytes]:
        """The buffer's first ``length`` bytes, or None when they cannot be reached."""
        if not address or (room is not None and room < length):
            return None
        if room is None:
            return self._read_raw(address, length)
        return ctypes.string_at(address, length)

    def _write_out(self, address: int, room: Optional[int], data: bytes) -> bool:
        """Write ``data`` to the buffer; False when it cannot be reached."""
        if not address or (room is not None and room < len(data)):
            return False
        if room is None:
            return self._write_raw(address, data)
        ctypes.memmove(address, data, len(data))
        return True

    def _out_struct(self, cls: Type[_S], address: int, room: Optional[int]) -> Optional[_S]:
        """A copy of the caller's output structure (written back with :meth:`_write_out`)."""
        raw = self._read_out(address, room, ctypes.sizeof(cls))
        return None if raw is None else cls.from_buffer_copy(raw)

    def _read_raw(self, address: int, length: int) -> Optional[bytes]:
        return self._in_live_block(address, length, lambda: ctypes.string_at(address, length))

    def _write_raw(self, address: int, data: bytes) -> bool:
        def write() -> bool:
            ctypes.memmove(address, data, len(data))
            return True

        return bool(self._in_live_block(address, len(data), write))
