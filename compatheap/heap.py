"""``Heap``: the Win32 heap API as a Python object, on any backend.

The invariant
-------------
A :class:`Block` touches memory only while it owns it. Three rules keep that
true under threads, signal handlers, finalisers and ``fork``:

1. **One lock.** Each ``Heap`` has one re-entrant lock. It guards the heap's
   Python-side state (its liveness, its record of blocks, every block's state)
   and is held around every access to a block's memory and around every
   backend call the object makes, from before the check to after the effect.
   Another thread therefore sees an operation either not begun or complete.
   ``heap.locked()`` holds it for its whole ``with`` body, so the lock is
   always taken before ``HeapLock``, never after.
2. **Liveness from the block and its heap, under the lock.** A block is live
   when neither it nor its heap carries a reason to be dead. An operation
   that releases memory (free, realloc, destroy) marks what it releases dead
   *before* the backend call and releases the ``view()`` memoryviews, so code
   that runs in the middle of it in the same thread (a signal handler, a
   finaliser: the lock is re-entrant for them) is refused rather than handed
   memory on its way out. The record of live blocks is keyed by the ``Block``
   object, never by its address, so an address the heap hands out again
   cannot clobber another block's entry.
3. **Pins for nested code.** An operation on a block first puts a pin in the
   block (then checks it is live); an operation that releases a block's
   memory must find no pin but its own, and ``destroy`` must find no pin and
   no backend call in progress (those register a pin of their own in the
   heap). Nested code therefore either completes before the outer check
   (which sees its effect) or finds the pin and refuses with
   ``BufferError``; the outer operation never acts on a stale check. Pins are
   held weakly by the operation's frame, so one whose removal an exception
   from a signal handler skipped stops counting when that frame goes.

A failed operation restores exactly what it changed: a block marked dead for
a call that then fails is live again, unless something else killed it
meanwhile. Two things cannot be restored: a ``view()`` memoryview released
before a call that failed stays released (take a new one), and a call
interrupted by an exception from a signal handler leaves its block or heap
dead rather than guess whether the backend acted (its memory may leak until
the heap is destroyed; it is never reachable again).

After ``fork`` (``os.register_at_fork``) the child gets a fresh lock for every
heap whose lock another thread held; blocks that thread was reading or
writing are usable. A heap that thread was calling the backend for, or held
with ``locked()`` (``HeapLock``), cannot be trusted in the child (the backend
may hold its own lock for a thread that no longer exists): it and its blocks
raise :class:`~compatheap.InvalidatedError` there instead of hanging. A fork
made by the thread that holds the lock (inside ``locked()``, or from a signal
handler) keeps that hold in the child, where the same thread finishes the
operation.
"""

from __future__ import annotations

import ctypes
import operator
import os
import threading
import weakref
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Type, TypeVar, Union

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
    SIZE_MAX,
    describe_flags,
)
from ._errors import HeapError, InvalidatedError
from ._structs import HEAP_SUMMARY, PROCESS_HEAP_ENTRY
from .block import Block, CData, TypedView, _check_ctype, _Pin, _Pins

__all__ = ["Heap", "HeapEntry", "HeapUsage"]

Result = TypeVar("Result")


def _size(value: Any, what: str) -> int:
    """A size argument as an int in ``0..SIZE_MAX``; refused before any call otherwise."""
    size = operator.index(value)
    if size < 0:
        raise ValueError(f"{what} must be >= 0, not {size}")
    if size > SIZE_MAX:
        raise OverflowError(f"{what} must be <= SIZE_MAX ({SIZE_MAX:#x}), not {size:#x}")
    return size


def _active_backend() -> Any:
    from . import backend

    return backend


#: Every Heap object, for the fork handler.
_HEAPS: "weakref.WeakSet[Heap]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for heap in list(_HEAPS):
        heap._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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


class _Transition(str):
    """A reason to be dead set for the length of one call; its identity says whose it is."""

    def withdraw(self, owner: Union["Heap", Block]) -> None:
        """The call failed: ``owner`` lives again, unless something else marked it since."""
        if owner._gone is self:
            owner._gone = None


class Heap:
    """A Win32 heap: created on entry (or construction), destroyed on exit.

    ``Heap(initial_size=0, maximum_size=0)`` is ``HeapCreate``; a nonzero
    ``maximum_size`` makes a fixed-size heap. ``serialize=False`` is
    ``HEAP_NO_SERIALIZE`` (the caller then keeps threads apart),
    ``executable=True`` is ``HEAP_CREATE_ENABLE_EXECUTE``. ``backend`` runs the
    heap on a given backend object instead of :data:`compatheap.backend`.

    Sizes outside ``0..SIZE_MAX`` raise ``ValueError`` (negative) or
    ``OverflowError`` (too large) before the backend is called. Failed calls
    raise :class:`~compatheap.HeapError` (a :class:`~compatheap.HeapMemoryError`,
    also a ``MemoryError``, when memory ran out) and leave the heap and its
    blocks as they were. Every method may be called from any thread, from a
    signal handler and from a finaliser; see the module docstring for what
    holds then.
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
                f"HeapCreate({describe_flags(flags)}, {initial:#x}, {maximum:#x})", api.GetLastError()
            )
        self._setup(api, int(handle), owned=True)

    def _setup(self, api: Any, handle: int, owned: bool) -> None:
        self._api = api
        self._handle = handle
        self._owned = owned
        self._destroyed = False
        #: Why the heap can no longer be used, or None while it is live.
        self._gone: Optional[str] = None
        #: The live blocks this object handed out, keyed by the Block itself.
        self._blocks: Dict[Block, None] = {}
        #: Backend calls and locked() sections in progress (only the lock's holder has any).
        self._busy = _Pins()
        self._lock = threading.RLock()
        _HEAPS.add(self)

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
        with self._lock:
            self._check()
            return self._handle

    @property
    def destroyed(self) -> bool:
        """Whether :meth:`destroy` (or leaving the ``with`` block) destroyed the heap."""
        return self._destroyed

    def _check(self) -> None:
        if self._gone is not None:
            raise InvalidatedError(f"heap {self._handle:#x} {self._gone}")

    def __enter__(self) -> "Heap":
        self._check()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._owned and self._gone is None:
            self.destroy()

    def _after_fork(self) -> None:
        """In a forked child: drop what threads that do not exist here held."""
        lock = self._lock
        if lock.acquire(blocking=False):  # free, or held by the thread that forked
            lock.release()
            return
        self._lock = threading.RLock()
        if self._busy.count():
            # Mid-call in the backend, or HeapLock held: the backend's own state
            # for this heap belongs to a thread that is gone.
            self._gone = "was in use by another thread (a heap call or locked()) when the process forked"
        self._busy.clear()
        for block in self._blocks:
            block._pins.clear()
            if isinstance(block._gone, _Transition):
                block._gone = f"{block._gone} by another thread when the process forked"

    def _backend_call(self, call: Callable[[], Result]) -> Result:
        """``call()`` (a backend call on this heap), lock held, recorded as in progress."""
        token = _Pin()
        try:
            self._busy.add(token)
            # After the token: a nested destroy either finished before this
            # check (which refuses) or finds the token (and refuses itself).
            self._check()
            return call()
        finally:
            self._busy.discard(token)

    def destroy(self) -> None:
        """``HeapDestroy``: free every block; all its :class:`Block` objects die.

        Refused with ``BufferError`` while a view of one of its blocks is still
        exported (Python 3.12+), and when called from code that interrupted an
        operation on this heap in the same thread (a signal handler or
        finaliser) or from inside :meth:`locked`.
        """
        if not self._owned:
            raise ValueError("the process heap cannot be destroyed")
        with self._lock:
            token = _Pin()
            try:
                self._busy.add(token)
                self._check()
                # Snapshots (list() runs no Python code): a handler that runs
                # during a loop may add a block, until the heap is marked below.
                if self._busy.count() != 1 or any(block._pins.count() for block in list(self._blocks)):
                    raise BufferError(
                        f"heap {self._handle:#x} is in use by an operation this call interrupted, or by "
                        "locked() in this thread; destroy it after that operation ends"
                    )
                mark = _Transition("is being destroyed")
                self._gone = mark
                blocks = list(self._blocks)  # complete: no block can be added from here on
                try:
                    for block in blocks:
                        block._release_views()
                except BufferError:
                    mark.withdraw(self)
                    raise
                api = self._api
                if not api.HeapDestroy(self._handle):
                    code = api.GetLastError()
                    mark.withdraw(self)
                    raise HeapError.from_last_error(f"HeapDestroy({self._handle:#x})", code)
                self._destroyed = True
                self._gone = "was destroyed"
                for block in blocks:
                    if block._gone is None:
                        block._gone = "belongs to a destroyed heap"
                self._blocks.clear()
            finally:
                self._busy.discard(token)

    def __repr__(self) -> str:
        state = self._gone if self._gone is not None else f"{len(self._blocks)} blocks"
        kind = "process heap" if not self._owned else "Heap"
        return f"<compatheap.{kind} {self._handle:#x} on {getattr(self._api, 'name', '?')}, {state}>"

    # -- blocks ------------------------------------------------------------------
    def _own(self, block: Block) -> None:
        """Refuse anything but a Block of this heap (its liveness is checked after pinning)."""
        if not isinstance(block, Block):
            raise TypeError(f"expected a compatheap.Block, not {type(block).__name__}")
        if block._heap is not self:
            raise ValueError(f"{block!r} belongs to another heap, not {self!r}")

    def _claim(self, block: Block, pin: _Pin) -> None:
        """Pin ``block`` for a call that releases its memory: it must be live and pinned by nothing else."""
        block._pins.add(pin)
        block._check()
        if block._pins.count() != 1:
            raise BufferError(
                f"{block!r} is in use by an operation this call interrupted (a signal handler or finaliser "
                "cannot free or reallocate it); do that after the operation ends"
            )

    def alloc(self, size: int, *, zero: bool = False) -> Block:
        """``HeapAlloc``: a new block of ``size`` bytes (zeroed with ``zero=True``)."""
        nbytes = _size(size, "size")
        flags = HEAP_ZERO_MEMORY if zero else 0
        api = self._api
        with self._lock:

            def call() -> Tuple[Optional[int], int]:
                address = api.HeapAlloc(self._handle, flags, nbytes)
                return address, 0 if address else api.GetLastError()

            address, code = self._backend_call(call)
            if not address:
                call_text = f"HeapAlloc({self._handle:#x}, {describe_flags(flags)}, {nbytes})"
                raise HeapError.from_last_error(call_text, code)
            block: Optional[Block] = None
            try:
                block = Block(self, int(address), nbytes)
                self._blocks[block] = None
            except BaseException:
                # Out of Python memory, or interrupted (perhaps after the block
                # was recorded): the block goes back and is never handed out.
                if block is not None:
                    block._gone = "was given back: its allocation was interrupted"
                    self._blocks.pop(block, None)
                self._backend_call(lambda: api.HeapFree(self._handle, 0, address))
                raise
            return block

    def new(self, ctype: Type[CData], *, zero: bool = True) -> Tuple[Block, TypedView[CData]]:
        """A block of ``sizeof(ctype)`` bytes and its :class:`~compatheap.TypedView` as ``ctype``.

        ``ctype`` is a ctypes structure, union or array type; the memory is
        zeroed unless ``zero=False``. Free the block to free the value.
        """
        _check_ctype(ctype)
        block = self.alloc(ctypes.sizeof(ctype), zero=zero)
        return block, TypedView(block, ctype, 0)

    def realloc(self, block: Block, size: int, *, zero: bool = False, in_place: bool = False) -> Block:
        """``HeapReAlloc``: a block of ``size`` bytes with the old contents.

        Returns a new :class:`Block`; the old one can no longer be used (also
        when the memory did not move). ``zero=True`` zeroes bytes past the old
        size; ``in_place=True`` fails rather than move the block. On failure the
        old block is untouched and still usable (its ``view()`` memoryviews
        have been released, though: take new ones).
        """
        nbytes = _size(size, "size")
        flags = (HEAP_ZERO_MEMORY if zero else 0) | (HEAP_REALLOC_IN_PLACE_ONLY if in_place else 0)
        api = self._api

        def call(old: int) -> Tuple[Optional[int], int]:
            address = api.HeapReAlloc(self._handle, flags, old, nbytes)
            return address, 0 if address else api.GetLastError()

        def finish(address: int) -> Block:
            new = Block(self, int(address), nbytes)
            self._blocks[new] = None
            where = "in place" if new._address == block._address else f"to {new._address:#x}"
            block._gone = f"was reallocated ({where}); use the Block that realloc returned"
            return new

        return self._release(
            block,
            "is being reallocated",
            call,
            lambda old: f"HeapReAlloc({self._handle:#x}, {describe_flags(flags)}, {old:#x}, {nbytes})",
            finish,
        )

    def free(self, block: Block) -> None:
        """``HeapFree``: release the block; the :class:`Block` can no longer be used."""
        api = self._api

        def call(address: int) -> Tuple[int, int]:
            ok = api.HeapFree(self._handle, 0, address)
            return ok, 0 if ok else api.GetLastError()

        def finish(ok: int) -> None:
            block._gone = "was freed"

        self._release(
            block, "is being freed", call, lambda address: f"HeapFree({self._handle:#x}, 0, {address:#x})", finish
        )

    def _release(
        self,
        block: Block,
        doing: str,
        call: Callable[[int], Tuple[Any, int]],
        describe: Callable[[int], str],
        finish: Callable[[Any], Result],
    ) -> Result:
        """What free and realloc share: ``call(address)`` releases the block's memory.

        The block is claimed (only this pin on it), marked dead with ``doing``
        and its views released before the call; a failed call (a falsy result)
        restores the mark and raises. On success the block leaves the record
        and ``finish(result)`` runs, still under the lock and the claim.
        """
        self._own(block)
        with self._lock:
            pin = _Pin()
            try:
                self._claim(block, pin)
                mark = _Transition(doing)
                block._gone = mark
                try:
                    block._release_views()
                except BufferError:
                    mark.withdraw(block)
                    raise
                address = block._address
                result, code = self._backend_call(lambda: call(address))
                if not result:
                    mark.withdraw(block)
                    raise HeapError.from_last_error(describe(address), code)
                self._blocks.pop(block, None)
                return finish(result)
            finally:
                block._pins.discard(pin)

    def _on_block(self, block: Block, call: Callable[[int], Result]) -> Result:
        """``call(address)``, a backend call about a live block of this heap, with the block pinned."""
        self._own(block)
        return block._pinned(lambda address: self._backend_call(lambda: call(address)))

    def size(self, block: Block) -> int:
        """``HeapSize``: the block's size as the heap reports it."""
        api = self._api

        def call(address: int) -> Tuple[int, int]:
            result = int(api.HeapSize(self._handle, 0, address))
            return result, api.GetLastError() if result == HEAP_SIZE_FAILURE else 0

        result, code = self._on_block(block, call)
        if result == HEAP_SIZE_FAILURE:
            raise HeapError.from_last_error(f"HeapSize({self._handle:#x}, 0, {block._address:#x})", code)
        return result

    def blocks(self) -> List[Block]:
        """The live blocks this object handed out, in the order they were made."""
        with self._lock:
            self._check()
            return [block for block in list(self._blocks) if block._gone is None]

    # -- the heap as a whole -------------------------------------------------------
    def validate(self, block: Optional[Block] = None) -> bool:
        """``HeapValidate`` of the whole heap, or of one block."""
        api = self._api
        if block is None:
            with self._lock:
                return bool(self._backend_call(lambda: api.HeapValidate(self._handle, 0, None)))
        return bool(self._on_block(block, lambda address: api.HeapValidate(self._handle, 0, address)))

    def compact(self) -> int:
        """``HeapCompact``: the largest free committed block, in bytes."""
        api = self._api

        def call() -> Tuple[int, int]:
            api.SetLastError(0)
            result = int(api.HeapCompact(self._handle, 0))
            return result, api.GetLastError() if result == 0 else 0

        with self._lock:
            result, code = self._backend_call(call)
        if code:
            raise HeapError.from_last_error(f"HeapCompact({self._handle:#x}, 0)", code)
        return result

    @contextmanager
    def locked(self) -> Iterator["Heap"]:
        """``HeapLock`` ... ``HeapUnlock``: other threads' calls on the heap wait.

        The heap object's lock is held for the whole ``with`` body too, so other
        threads' methods of this heap and accesses to its blocks wait as well
        (and the lock order is always this object's lock, then ``HeapLock``).
        Prefer this to calling ``HeapLock(heap.handle)`` yourself: a thread that
        holds ``HeapLock`` that way and then uses the heap object can deadlock
        against another thread inside a method of the same heap.
        """
        api = self._api
        with self._lock:
            token = _Pin()
            try:
                self._busy.add(token)
                self._check()
                if not api.HeapLock(self._handle):
                    raise HeapError.from_last_error(f"HeapLock({self._handle:#x})", api.GetLastError())
                try:
                    yield self
                finally:
                    if not api.HeapUnlock(self._handle):
                        raise HeapError.from_last_error(f"HeapUnlock({self._handle:#x})", api.GetLastError())
            finally:
                self._busy.discard(token)

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
        api = self._api
        summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))

        def call() -> Tuple[int, int]:
            ok = api.HeapSummary(self._handle, 0, ctypes.byref(summary))
            return ok, 0 if ok else api.GetLastError()

        with self._lock:
            ok, code = self._backend_call(call)
        if not ok:
            raise HeapError.from_last_error(f"HeapSummary({self._handle:#x}, 0)", code)
        return HeapUsage(summary.cbAllocated, summary.cbCommitted, summary.cbReserved, summary.cbMaxReserve)
