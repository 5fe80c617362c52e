"""``Heap``: the Win32 heap API as a Python object, on any backend."""

from __future__ import annotations

import ctypes
import operator
import threading
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Type

from ._constants import (
    ERROR_NO_MORE_ITEMS,
    HEAP_CREATE_ENABLE_EXECUTE,
    HEAP_NO_SERIALIZE,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_SIZE_FAILURE,
    HEAP_ZERO_MEMORY,
    PROCESS_HEAP_ENTRY_BUSY,
    PROCESS_HEAP_REGION,
    PROCESS_HEAP_UNCOMMITTED_RANGE,
)
from ._errors import HeapError, InvalidatedError
from ._structs import HEAP_SUMMARY, PROCESS_HEAP_ENTRY
from .block import Block

__all__ = ["Heap", "HeapEntry", "HeapUsage"]

_FLAG_NAMES = (
    (HEAP_NO_SERIALIZE, "HEAP_NO_SERIALIZE"),
    (HEAP_ZERO_MEMORY, "HEAP_ZERO_MEMORY"),
    (HEAP_REALLOC_IN_PLACE_ONLY, "HEAP_REALLOC_IN_PLACE_ONLY"),
    (HEAP_CREATE_ENABLE_EXECUTE, "HEAP_CREATE_ENABLE_EXECUTE"),
)


def _flags(value: int) -> str:
    names = [name for bit, name in _FLAG_NAMES if value & bit]
    return "|".join(names) if names else "0"


def _size(value: Any, what: str) -> int:
    size = operator.index(value)
    if size < 0:
        raise ValueError(f"{what} must be >= 0, not {size}")
    return size


def _active_backend() -> Any:
    from . import backend

    return backend


class HeapEntry(NamedTuple):
    """One entry of :meth:`Heap.walk` (a ``PROCESS_HEAP_ENTRY``)."""

    address: int
    size: int
    overhead: int
    region_index: int
    flags: int

    @property
    def kind(self) -> str:
        """``"block"`` (busy), ``"free"``, ``"region"`` or ``"uncommitted"``."""
        if self.flags & PROCESS_HEAP_REGION:
            return "region"
        if self.flags & PROCESS_HEAP_UNCOMMITTED_RANGE:
            return "uncommitted"
        return "block" if self.flags & PROCESS_HEAP_ENTRY_BUSY else "free"


class HeapUsage(NamedTuple):
    """:meth:`Heap.summary`: bytes allocated, committed, reserved, and the reserve limit."""

    allocated: int
    committed: int
    reserved: int
    max_reserve: int


class Heap:
    """A Win32 heap: created on entry (or construction), destroyed on exit.

    ``Heap(initial_size=0, maximum_size=0)`` is ``HeapCreate``; a nonzero
    ``maximum_size`` makes a fixed-size heap. ``serialize=False`` is
    ``HEAP_NO_SERIALIZE`` (the caller then keeps threads apart),
    ``executable=True`` is ``HEAP_CREATE_ENABLE_EXECUTE``. ``backend`` runs the
    heap on a given backend object instead of :data:`compatheap.backend`.

    Failed calls raise :class:`~compatheap.HeapError` (a
    :class:`~compatheap.HeapMemoryError`, also a ``MemoryError``, when memory
    ran out) and leave the heap and its blocks as they were.
    """

    def __init__(
        self,
        initial_size: int = 0,
        maximum_size: int = 0,
        *,
        serialize: bool = True,
        executable: bool = False,
        backend: Any = None,
    ) -> None:
        api = backend if backend is not None else _active_backend()
        flags = (0 if serialize else HEAP_NO_SERIALIZE) | (HEAP_CREATE_ENABLE_EXECUTE if executable else 0)
        initial = _size(initial_size, "initial_size")
        maximum = _size(maximum_size, "maximum_size")
        handle = api.HeapCreate(flags, initial, maximum)
        if not handle:
            raise HeapError.from_last_error(
                f"HeapCreate({_flags(flags)}, {initial:#x}, {maximum:#x})", api.GetLastError()
            )
        self._setup(api, int(handle), owned=True)

    def _setup(self, api: Any, handle: int, owned: bool) -> None:
        self._api = api
        self._handle = handle
        self._owned = owned
        self._destroyed = False
        self._blocks: Dict[int, Block] = {}
        # Guards the Python-side records and every access to block memory. It
        # is never held across a heap call, so HeapLock in another thread cannot
        # deadlock against it.
        self._lock = threading.Lock()

    @classmethod
    def process(cls, *, backend: Any = None) -> "Heap":
        """The process heap (``GetProcessHeap``); it is never destroyed."""
        api = backend if backend is not None else _active_backend()
        handle = api.GetProcessHeap()
        if not handle:
            raise HeapError.from_last_error("GetProcessHeap()", api.GetLastError())
        heap = cls.__new__(cls)
        heap._setup(api, int(handle), owned=False)
        return heap

    # -- lifetime ----------------------------------------------------------------
    @property
    def handle(self) -> int:
        """The heap handle, as ``HeapCreate``/``GetProcessHeap`` returned it."""
        self._check()
        return self._handle

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    def _check(self) -> None:
        if self._destroyed:
            raise InvalidatedError(f"heap {self._handle:#x} was destroyed")

    def __enter__(self) -> "Heap":
        self._check()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._owned and not self._destroyed:
            self.destroy()

    def destroy(self) -> None:
        """``HeapDestroy``: free every block; all its :class:`Block` objects die."""
        if not self._owned:
            raise ValueError("the process heap cannot be destroyed")
        with self._lock:
            self._check()
            blocks = [block for block in self._blocks.values() if block._gone is None]
            for block in blocks:
                block._release_views()
            self._destroyed = True
            for block in blocks:
                block._gone = "belongs to a destroyed heap"
        if not self._api.HeapDestroy(self._handle):
            code = self._api.GetLastError()
            with self._lock:
                self._destroyed = False
                for block in blocks:
                    block._gone = None
            raise HeapError.from_last_error(f"HeapDestroy({self._handle:#x})", code)
        self._blocks.clear()

    def __repr__(self) -> str:
        state = "destroyed" if self._destroyed else f"{len(self._blocks)} blocks"
        kind = "process heap" if not self._owned else "Heap"
        return f"<compatheap.{kind} {self._handle:#x} on {getattr(self._api, 'name', '?')}, {state}>"

    # -- blocks ------------------------------------------------------------------
    def _own(self, block: Block) -> None:
        """Check, with the lock held, that ``block`` is a live block of this heap."""
        self._check()
        if not isinstance(block, Block):
            raise TypeError(f"expected a compatheap.Block, not {type(block).__name__}")
        if block._heap is not self:
            raise ValueError(f"{block!r} belongs to another heap, not {self!r}")
        block._check()

    def alloc(self, size: int, *, zero: bool = False) -> Block:
        """``HeapAlloc``: a new block of ``size`` bytes (zeroed with ``zero=True``)."""
        nbytes = _size(size, "size")
        flags = HEAP_ZERO_MEMORY if zero else 0
        with self._lock:
            self._check()
        address = self._api.HeapAlloc(self._handle, flags, nbytes)
        if not address:
            code = self._api.GetLastError()
            raise HeapError.from_last_error(f"HeapAlloc({self._handle:#x}, {_flags(flags)}, {nbytes})", code)
        block = Block(self, int(address), nbytes)
        with self._lock:
            if self._destroyed:  # destroyed by another thread meanwhile
                block._gone = "belongs to a destroyed heap"
            else:
                self._blocks[block._address] = block
        return block

    def realloc(self, block: Block, size: int, *, zero: bool = False, in_place: bool = False) -> Block:
        """``HeapReAlloc``: a block of ``size`` bytes with the old contents.

        Returns a new :class:`Block`; the old one can no longer be used (also
        when the memory did not move). ``zero=True`` zeroes bytes past the old
        size; ``in_place=True`` fails rather than move the block. On failure the
        old block is untouched and still usable.
        """
        nbytes = _size(size, "size")
        flags = (HEAP_ZERO_MEMORY if zero else 0) | (HEAP_REALLOC_IN_PLACE_ONLY if in_place else 0)
        with self._lock:
            self._own(block)
            block._release_views()
            block._gone = "is being reallocated or freed by another thread"
        old = block._address
        address = self._api.HeapReAlloc(self._handle, flags, old, nbytes)
        if not address:
            code = self._api.GetLastError()
            with self._lock:
                block._gone = None
            raise HeapError.from_last_error(
                f"HeapReAlloc({self._handle:#x}, {_flags(flags)}, {old:#x}, {nbytes})", code
            )
        new = Block(self, int(address), nbytes)
        with self._lock:
            self._blocks.pop(old, None)
            self._blocks[new._address] = new
            where = "in place" if new._address == old else f"to {new._address:#x}"
            block._gone = f"was reallocated ({where}); use the Block that realloc returned"
        return new

    def free(self, block: Block) -> None:
        """``HeapFree``: release the block; the :class:`Block` can no longer be used."""
        with self._lock:
            self._own(block)
            block._release_views()
            block._gone = "is being reallocated or freed by another thread"
        if not self._api.HeapFree(self._handle, 0, block._address):
            code = self._api.GetLastError()
            with self._lock:
                block._gone = None
            raise HeapError.from_last_error(f"HeapFree({self._handle:#x}, 0, {block._address:#x})", code)
        with self._lock:
            self._blocks.pop(block._address, None)
            block._gone = "was freed"

    def size(self, block: Block) -> int:
        """``HeapSize``: the block's size as the heap reports it."""
        with self._lock:
            self._own(block)
        result = int(self._api.HeapSize(self._handle, 0, block._address))
        if result == HEAP_SIZE_FAILURE:
            raise HeapError.from_last_error(
                f"HeapSize({self._handle:#x}, 0, {block._address:#x})", self._api.GetLastError()
            )
        return result

    def blocks(self) -> List[Block]:
        """The live blocks this object handed out, in no particular order."""
        with self._lock:
            self._check()
            return list(self._blocks.values())

    # -- the heap as a whole -------------------------------------------------------
    def validate(self, block: Optional[Block] = None) -> bool:
        """``HeapValidate`` of the whole heap, or of one block."""
        with self._lock:
            if block is None:
                self._check()
                address = 0
            else:
                self._own(block)
                address = block._address
        return bool(self._api.HeapValidate(self._handle, 0, address))

    def compact(self) -> int:
        """``HeapCompact``: the largest free committed block, in bytes."""
        self._check()
        self._api.SetLastError(0)
        result = int(self._api.HeapCompact(self._handle, 0))
        if result == 0:
            code = self._api.GetLastError()
            if code:
                raise HeapError.from_last_error(f"HeapCompact({self._handle:#x}, 0)", code)
        return result

    @contextmanager
    def locked(self) -> Iterator["Heap"]:
        """``HeapLock`` ... ``HeapUnlock``: other threads' calls on the heap wait."""
        self._check()
        if not self._api.HeapLock(self._handle):
            raise HeapError.from_last_error(f"HeapLock({self._handle:#x})", self._api.GetLastError())
        try:
            yield self
        finally:
            if not self._api.HeapUnlock(self._handle):
                raise HeapError.from_last_error(f"HeapUnlock({self._handle:#x})", self._api.GetLastError())

    def walk(self) -> Iterator[HeapEntry]:
        """``HeapWalk``: every entry of the heap, taken with the heap locked.

        The entries are collected before the first one is returned, so the
        heap is not left locked by an unfinished loop.
        """
        entries: List[HeapEntry] = []
        entry = PROCESS_HEAP_ENTRY()
        with self.locked():
            while self._api.HeapWalk(self._handle, ctypes.byref(entry)):
                entries.append(
                    HeapEntry(entry.lpData or 0, entry.cbData, entry.cbOverhead, entry.iRegionIndex, entry.wFlags)
                )
            code = self._api.GetLastError()
        if code != ERROR_NO_MORE_ITEMS:  # what ends a complete walk
            raise HeapError.from_last_error(f"HeapWalk({self._handle:#x})", code)
        return iter(entries)

    def summary(self) -> HeapUsage:
        """``HeapSummary``: how many bytes are allocated, committed and reserved."""
        self._check()
        summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
        if not self._api.HeapSummary(self._handle, 0, ctypes.byref(summary)):
            raise HeapError.from_last_error(f"HeapSummary({self._handle:#x}, 0)", self._api.GetLastError())
        return HeapUsage(summary.cbAllocated, summary.cbCommitted, summary.cbReserved, summary.cbMaxReserve)
