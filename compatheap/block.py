"""``Block``: one allocation of a :class:`compatheap.Heap`, as a bounded byte buffer."""

from __future__ import annotations

import ctypes
import sys
import weakref
from typing import TYPE_CHECKING, Any, List, Optional, Union, overload

from ._errors import InvalidatedError

if TYPE_CHECKING:
    from .heap import Heap


#: Python classes can export buffers (PEP 688) from 3.12 on.
_EXPORTS_TRACKED = sys.version_info >= (3, 12)


def _raw_view(address: int, size: int) -> memoryview:
    # A ctypes array over the block's bytes, seen as unsigned bytes; the
    # memoryview keeps the array (not the memory) alive.
    return memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")


class Block:
    """A live block of heap memory.

    ``len(block)`` is its size; ``block[i]``, ``block[a:b]`` and
    ``block[a:b] = data`` read and write it within its bounds (a slice
    assignment must keep the length, as with :class:`memoryview`);
    ``bytes(block)`` copies it; ``block.address`` is the pointer, for ctypes.

    Once the block is freed, replaced by :meth:`Heap.realloc` or its heap is
    destroyed, every use raises :class:`~compatheap.InvalidatedError` before
    any memory is touched. Blocks come from :meth:`Heap.alloc`; do not
    construct them yourself.
    """

    __slots__ = ("_heap", "_address", "_size", "_gone", "_views", "_exports", "__weakref__")

    def __init__(self, heap: "Heap", address: int, size: int) -> None:
        self._heap = heap
        self._address = address
        self._size = size
        #: Why the block can no longer be used, or None while it is live.
        self._gone: Optional[str] = None
        self._views: List["weakref.ref[memoryview]"] = []
        self._exports: List["weakref.ref[memoryview]"] = []

    # -- state -----------------------------------------------------------------
    def _check(self) -> None:
        if self._gone is not None:
            raise InvalidatedError(f"block at {self._address:#x} ({self._size} bytes) {self._gone}")

    @property
    def alive(self) -> bool:
        """Whether the block can still be used (never raises)."""
        return self._gone is None

    @property
    def heap(self) -> "Heap":
        """The heap the block belongs to."""
        return self._heap

    @property
    def address(self) -> int:
        """The block's address, e.g. for ``ctypes.memmove`` or a C function."""
        with self._heap._lock:
            self._check()
            return self._address

    def __len__(self) -> int:
        with self._heap._lock:
            self._check()
            return self._size

    def __repr__(self) -> str:
        state = f"{self._size} bytes" if self._gone is None else self._gone
        return f"<compatheap.Block at {self._address:#x}, {state}>"

    # -- reading and writing -----------------------------------------------------
    # The heap's wrapper lock is held around each access, and free/realloc/
    # destroy mark the block dead under that lock before releasing memory, so an
    # access in another thread either completes first or raises.
    def __bytes__(self) -> bytes:
        with self._heap._lock:
            self._check()
            return ctypes.string_at(self._address, self._size)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> bytes: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[int, bytes]:
        with self._heap._lock:
            self._check()
            with _raw_view(self._address, self._size) as view:
                item = view[index]
                return item.tobytes() if isinstance(item, memoryview) else int(item)

    def __setitem__(self, index: Union[int, slice], value: Any) -> None:
        if isinstance(index, slice):
            # The source's buffer is taken before our lock: a Block source
            # (3.12+) exports through __buffer__, which takes its heap's lock,
            # and that lock is not re-entrant (``a[:] = b``, same heap).
            with memoryview(value) as source:
                self._store(index, source)
        else:
            self._store(index, value)

    def _store(self, index: Union[int, slice], value: Any) -> None:
        with self._heap._lock:
            self._check()
            with _raw_view(self._address, self._size) as view:
                view[index] = value

    def view(self) -> memoryview:
        """A writable :class:`memoryview` of exactly the block's bytes.

        Valid only while the block lives. Freeing, reallocating or destroying
        releases the views ``view()`` handed out, so a later use raises
        ``ValueError`` instead of touching freed memory. On Python 3.12+ views
        derived from one (slices, ``memoryview(view)``, ``ctypes`` ``from_buffer``)
        are counted too: while one is alive, freeing raises ``BufferError`` and
        the block stays allocated, as a ``bytearray`` refuses to resize. Before
        3.12 derived views cannot be tracked: let them go before the block.
        """
        if _EXPORTS_TRACKED:
            # The export goes through __buffer__, which records the underlying
            # view; every view derived from the one returned keeps it exported.
            view = memoryview(self)  # type: ignore[arg-type,unused-ignore]
            with self._heap._lock:
                self._track(view)
            return view
        with self._heap._lock:
            self._check()
            view = _raw_view(self._address, self._size)
            # Recorded in the same locked section: a free in between would
            # not know this view and leave it pointing at freed memory.
            self._track(view)
        return view

    def _track(self, view: memoryview) -> None:
        self._views = [ref for ref in self._views if ref() is not None]
        self._views.append(weakref.ref(view))

    def __buffer__(self, flags: int) -> memoryview:
        # Python 3.12+: memoryview(block). The raw view returned here stays
        # exported until every memoryview made from it is released.
        with self._heap._lock:
            self._check()
            raw = _raw_view(self._address, self._size)
            self._exports = [ref for ref in self._exports if ref() is not None]
            self._exports.append(weakref.ref(raw))
            return raw

    def _release_views(self) -> None:
        """Release every view handed out; BufferError if one is still exported.

        Called with the heap's lock held, before the block's memory goes away.
        """
        for ref in self._views + self._exports:
            view = ref()
            if view is not None:
                try:
                    view.release()
                except BufferError:
                    raise BufferError(
                        f"block at {self._address:#x} has a view still in use (a slice of view(), "
                        "memoryview(block), or a buffer made from one); release it first"
                    ) from None
        self._views = []
        self._exports = []
