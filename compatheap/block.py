"""``Block``: one allocation of a :class:`compatheap.Heap`, as a bounded byte buffer.

``TypedView`` reads and writes a block's memory as a ctypes structure, union
or array, with the same liveness rules. The invariant these classes keep with
:mod:`compatheap.heap` is stated in that module's docstring.
"""

from __future__ import annotations

import ctypes
import sys
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generic,
    Iterator,
    List,
    Optional,
    Type,
    TypeVar,
    Union,
    cast,
    overload,
)

from ._args import _CDATA
from ._errors import InvalidatedError

if TYPE_CHECKING:
    from .heap import Heap

__all__ = ["Block", "TypedView"]

#: Python classes can export buffers (PEP 688) from 3.12 on.
_EXPORTS_TRACKED = sys.version_info >= (3, 12)

CData = TypeVar("CData", bound="Union[ctypes.Structure, ctypes.Union, ctypes.Array[Any]]")
Result = TypeVar("Result")


class _Probe(ctypes.Structure):
    _fields_ = [("field", ctypes.c_int)]


#: The descriptor class of structure and union fields (``ctypes.CField`` from 3.14 on).
_FIELD = type(_Probe.__dict__["field"])
#: The common base of every ctypes instance.
_AGGREGATES = (ctypes.Structure, ctypes.Union, ctypes.Array)


class _Pin:
    """One operation's claim on a block or heap; the operation holds it in a local variable."""

    __slots__ = ("__weakref__",)


class _Pins:
    """The claims of operations in progress.

    Held weakly: a claim whose removal an exception from a signal handler
    skipped (in a ``finally``) stops counting once its operation's frame is
    gone, so an interrupt cannot leave a block or heap claimed for ever.
    """

    __slots__ = ("_refs",)

    def __init__(self) -> None:
        self._refs: List["weakref.ref[_Pin]"] = []

    def add(self, pin: _Pin) -> None:
        self._refs.append(weakref.ref(pin))

    def discard(self, pin: _Pin) -> None:
        # Also when the pin never got in: the try around a claimed section
        # starts before add, so an interrupt between them leaves nothing.
        refs = self._refs
        for index in range(len(refs) - 1, -1, -1):
            if refs[index]() is pin:
                del refs[index]
                return

    def count(self) -> int:
        return sum(1 for ref in self._refs if ref() is not None)

    def clear(self) -> None:
        del self._refs[:]


def _raw_view(address: int, size: int) -> memoryview:
    # A ctypes array over the block's bytes, seen as unsigned bytes; the
    # memoryview keeps the array (not the memory) alive.
    return memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")


class Block:
    """A live block of heap memory.

    ``len(block)`` is its size; ``block[i]``, ``block[a:b]`` and
    ``block[a:b] = data`` read and write it within its bounds (a slice
    assignment must keep the length, as with :class:`memoryview`);
    ``bytes(block)`` copies it; ``block.address`` is the pointer, for ctypes;
    :meth:`as_ctypes` reads and writes it as a ctypes structure or array.

    Once the block is freed, replaced by :meth:`Heap.realloc` or its heap is
    destroyed, every use raises :class:`~compatheap.InvalidatedError` before
    any memory is touched. Blocks come from :meth:`Heap.alloc`; do not
    construct them yourself.
    """

    __slots__ = ("_heap", "_address", "_size", "_gone", "_pins", "_views", "_exports", "__weakref__")

    def __init__(self, heap: "Heap", address: int, size: int) -> None:
        self._heap = heap
        self._address = address
        self._size = size
        #: Why the block can no longer be used, or None while it is live.
        self._gone: Optional[str] = None
        #: Operations in progress on the block's memory (see compatheap.heap).
        self._pins = _Pins()
        self._views: List["weakref.ref[memoryview]"] = []
        self._exports: List["weakref.ref[memoryview]"] = []

    # -- state -----------------------------------------------------------------
    def _reason(self) -> Optional[str]:
        """Why the block cannot be used (itself or its heap), or None if it is live."""
        if self._gone is not None:
            return self._gone
        if self._heap._gone is not None:
            return f"belongs to a heap that {self._heap._gone}"
        return None

    def _check(self) -> None:
        """Raise unless the block is live; called with its heap's lock held."""
        reason = self._reason()
        if reason is not None:
            raise InvalidatedError(f"block at {self._address:#x} ({self._size} bytes) {reason}")

    def _pinned(self, action: "Callable[[int], Result]") -> "Result":
        """Run ``action(address)`` on the live block's memory, under its heap's lock.

        The pin goes in before the liveness check: a handler or finaliser that
        runs in between and frees the block either finishes before the check
        (which then refuses) or finds the pin (and refuses itself).
        """
        with self._heap._lock:
            pin = _Pin()
            try:
                self._pins.add(pin)
                self._check()
                return action(self._address)
            finally:
                self._pins.discard(pin)

    @property
    def alive(self) -> bool:
        """Whether the block can still be used (never raises)."""
        return self._reason() is None

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
        reason = self._reason()
        state = f"{self._size} bytes" if reason is None else reason
        return f"<compatheap.Block at {self._address:#x}, {state}>"

    # -- reading and writing -----------------------------------------------------
    def __bytes__(self) -> bytes:
        return self._pinned(lambda address: ctypes.string_at(address, self._size))

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> bytes: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[int, bytes]:
        def read(address: int) -> Union[int, bytes]:
            with _raw_view(address, self._size) as view:
                item = view[index]
                return item.tobytes() if isinstance(item, memoryview) else int(item)

        return self._pinned(read)

    def __setitem__(self, index: Union[int, slice], value: Any) -> None:
        if isinstance(index, slice):
            # The source's buffer is taken before this heap's lock: taking
            # another heap's lock (a Block source exports under it, 3.12+)
            # while holding this one could deadlock against ``b[:] = a``.
            with memoryview(value) as source:
                self._store(index, source)
        else:
            self._store(index, value)

    def _store(self, index: Union[int, slice], value: Any) -> None:
        def write(address: int) -> None:
            with _raw_view(address, self._size) as view:
                view[index] = value

        self._pinned(write)

    def as_ctypes(self, ctype: Type[CData]) -> "TypedView[CData]":
        """The block's memory as ctypes type ``ctype`` (a structure, union or array type).

        ``sizeof(ctype)`` must not exceed the block. The result reads and
        writes fields and items like a ``ctype`` instance, checking under the
        heap's lock on every access that the block still lives, so it dies
        with the block: afterwards every access raises
        :class:`~compatheap.InvalidatedError`.
        """
        _check_ctype(ctype)
        with self._heap._lock:
            self._check()
            if ctypes.sizeof(ctype) > self._size:
                raise ValueError(
                    f"ctype {ctype.__name__} needs {ctypes.sizeof(ctype)} bytes; the block has {self._size}"
                )
        return TypedView(self, ctype, 0)

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
        _remember(self._views, view)

    def __buffer__(self, flags: int) -> memoryview:
        # Python 3.12+: memoryview(block). The raw view returned here stays
        # exported until every memoryview made from it is released.
        with self._heap._lock:
            self._check()
            raw = _raw_view(self._address, self._size)
            _remember(self._exports, raw)
            return raw

    def _release_views(self) -> None:
        """Release every view handed out; BufferError if one is still exported.

        Called with the heap's lock held, before the block's memory goes away.
        A view released before the error stays released: Python has no way to
        hand it back.
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


def _remember(refs: List["weakref.ref[memoryview]"], view: memoryview) -> None:
    """Add a weak reference to ``view`` and drop the dead ones, in place.

    Never rebuilt as a new list: a handler that runs in between and adds a
    view of its own would have it dropped, and that view never released.
    """
    refs.append(weakref.ref(view))
    for dead in [ref for ref in refs if ref() is None]:
        try:
            refs.remove(dead)  # a dead reference equals only itself
        except ValueError:
            pass


def _check_ctype(ctype: Any) -> None:
    if not (isinstance(ctype, type) and issubclass(ctype, _AGGREGATES)):
        raise TypeError(f"ctype must be a ctypes Structure, Union or Array type, not {ctype!r}")


def _detached(value: Any) -> Any:
    """A value that does not share the block's memory: ctypes instances are copied."""
    if isinstance(value, _CDATA):
        return type(value).from_buffer_copy(value)
    if isinstance(value, list):
        return [_detached(item) for item in value]
    return value


class TypedView(Generic[CData]):
    """A block's memory seen as ctypes type ``CData``; it dies with the block.

    ``view.field`` and ``view.field = value`` (structures and unions),
    ``view[i]``, ``view[a:b]``, ``len(view)`` and iteration (arrays) work as on
    a ``CData`` instance. Each access takes the heap's lock, checks that the
    block still lives and only then builds a ctypes instance over the memory,
    used for that access alone. A nested structure or array comes back as a
    ``TypedView`` of its own; a pointer or other ctypes value comes back as a
    copy. :meth:`copy` returns a detached ``CData`` instance, for foreign calls.

    The names ``block``, ``ctype`` and ``copy`` are the view's own; a field
    with one of those names is reached through ``view.copy()``.
    """

    __slots__ = ("_block", "_ctype", "_offset")

    _block: Block
    _ctype: Type[CData]
    _offset: int

    def __init__(self, block: Block, ctype: Type[CData], offset: int) -> None:
        object.__setattr__(self, "_block", block)
        object.__setattr__(self, "_ctype", ctype)
        object.__setattr__(self, "_offset", offset)

    @property
    def block(self) -> Block:
        """The block whose memory this views."""
        return self._block

    @property
    def ctype(self) -> Type[CData]:
        """The ctypes type the memory is seen as."""
        return self._ctype

    def _access(self, action: "Callable[[Any], Result]") -> "Result":
        # The instance lives for this access alone (so it is Any inside: its
        # fields are only known at run time).
        ctype: Any = self._ctype
        offset = self._offset
        return self._block._pinned(lambda address: action(ctype.from_address(address + offset)))

    def _wrap(self, instance: Any, value: Any) -> Any:
        # Called with the lock held, the block live. A nested aggregate shares
        # the block's memory: it becomes a view of its own, revalidated likewise.
        if isinstance(value, _AGGREGATES):
            offset = self._offset + ctypes.addressof(value) - ctypes.addressof(instance)
            return TypedView(self._block, type(value), offset)
        return _detached(value)

    def copy(self) -> CData:
        """A ``CData`` instance holding a copy of the bytes, independent of the block."""
        return cast(CData, self._access(lambda instance: type(instance).from_buffer_copy(instance)))

    def __bytes__(self) -> bytes:
        return self._access(lambda instance: ctypes.string_at(ctypes.addressof(instance), ctypes.sizeof(instance)))

    def _is_field(self, name: str) -> bool:
        return isinstance(getattr(self._ctype, name, None), _FIELD)

    # Field values are typed by ``CData``'s ``_fields_`` at run time: no static type can say more.
    def __getattr__(self, name: str) -> Any:
        if name in TypedView.__slots__ or not self._is_field(name):  # a slot: not set up yet
            raise AttributeError(f"{self._ctype.__name__} has no field {name!r}")
        return self._access(lambda instance: self._wrap(instance, getattr(instance, name)))

    def __setattr__(self, name: str, value: Any) -> None:
        if not self._is_field(name):
            raise AttributeError(f"{self._ctype.__name__} has no field {name!r}")
        plain = value.copy() if isinstance(value, TypedView) else value  # taken before this lock
        self._access(lambda instance: setattr(instance, name, plain))

    def __len__(self) -> int:
        ctype: Any = self._ctype
        if not issubclass(ctype, ctypes.Array):
            raise TypeError(f"{ctype.__name__} is not an array type")
        return int(ctype._length_)

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if not issubclass(self._ctype, ctypes.Array):
            raise TypeError(f"{self._ctype.__name__} is not an array type")
        return self._access(lambda instance: self._wrap(instance, instance[index]))

    def __setitem__(self, index: Union[int, slice], value: Any) -> None:
        if not issubclass(self._ctype, ctypes.Array):
            raise TypeError(f"{self._ctype.__name__} is not an array type")
        plain = value.copy() if isinstance(value, TypedView) else value

        def store(instance: Any) -> None:
            instance[index] = plain

        self._access(store)

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        state = "live" if self._block.alive else "dead"
        return f"<compatheap.TypedView {self._ctype.__name__} at offset {self._offset} of {self._block!r}, {state}>"
