"""Function objects of the legacy kernel32: ctypes' own rules around compatheap's heap.

Each heap function of a legacy ``WinDLL("kernel32")`` owns a real ctypes
function pointer. Its target is a callback thunk with the true Win64
prototype of the function whose body is compatheap's implementation. So a
call converts its arguments with the caller's ``argtypes`` (``from_param``,
by-value structures for ``POINTER(T)``, ``ArgumentError``...), the thunk reads
them as kernel32 would, and the result goes back through the caller's
``restype`` (the default ``c_int`` cuts a 64-bit pointer as on Windows; a
callable restype is called with the C int). Nothing is re-implemented.

The thunk costs a C round trip. When a function is bound the way careful
code binds it (``argtypes`` and ``restype`` exactly the Win32 prototype, no
``errcheck``), ctypes' conversions are the identity on everything the
implementation accepts, so the object then calls the implementation
directly (its class switches to the fast one whenever the attributes change).
That call is the implementation's own: it takes its arguments by position
only, so a keyword or another number of arguments raises TypeError (ctypes'
path ignores keywords, and for a cdecl function passes extra arguments on).

Where the two conventions put different bits in an argument register, the
thunk is told what Win64 would hold: there libffi stores a 1-, 2- or 4-byte
integer zero-extended in its 8-byte slot (``HeapAlloc(heap, 0, -1)`` asks
for 0xFFFFFFFF bytes), where the System V convention sign-extends it. An
argument without argtype that System V would pass elsewhere (a float in a
vector register, a structure on the stack) is given as what its Win64 slot
holds: its bits, or for a structure larger than 8 bytes the address of a copy.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .._args import _CDATA, buffer_arg, passed
from .._structs import HEAP_PROTOTYPES, HEAP_SUMMARY, PROCESS_HEAP_ENTRY
from . import _check

_vp, _dw, _sz, _bool = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_int
#: ctypes' flag of a cdecl function (which may be given more arguments than argtypes).
FUNCFLAG_CDECL = 1

#: The Win32 prototypes of what the legacy object serves: name -> (restype, argtypes).
PROTOTYPES: Dict[str, Tuple[Any, Tuple[Any, ...]]] = {
    **HEAP_PROTOTYPES,
    "GetLastError": (_dw, ()),
    "SetLastError": (None, (_dw,)),
}
#: Functions that take a structure: name -> (argument index, the structure).
_STRUCT_ARGS = {"HeapWalk": (1, PROCESS_HEAP_ENTRY), "HeapSummary": (2, HEAP_SUMMARY)}
#: Restypes under which the implementation's own result is already what ctypes returns.
_SAME_RESULT = {_vp: (_vp,), _sz: (_sz,), _dw: (_dw,), _bool: (_bool,), None: (None,)}

_pending = threading.local()


def _array(ctype: Any) -> Callable[[int, int], Any]:
    def make(address: int, room: int) -> Any:
        count = room // ctypes.sizeof(ctype)
        return (ctype * count).from_address(address) if count else None

    return make


def _struct(cls: Any) -> Callable[[int, int], Any]:
    def make(address: int, room: int) -> Any:
        return cls.from_address(address) if room >= ctypes.sizeof(cls) else None

    return make


#: Output buffers: name -> {argument index: what the implementation gets over the caller's memory}.
#: The thunk only sees addresses; the caller's objects tell how many bytes lie there.
_BUFFERS: Dict[str, Dict[int, Callable[[int, int], Any]]] = {
    "GetProcessHeaps": {1: _array(_vp)},
    "HeapWalk": {1: _struct(PROCESS_HEAP_ENTRY)},
    "HeapSummary": {2: _struct(HEAP_SUMMARY)},
    "HeapQueryInformation": {2: _array(ctypes.c_char), 4: _struct(_sz)},
    "HeapSetInformation": {2: _array(ctypes.c_char)},
}


def _vouch(args: Sequence[Any], indexes: Any) -> Dict[int, int]:
    """Address -> bytes there, for the caller's buffer arguments."""
    rooms: Dict[int, int] = {}
    for index in indexes:
        if index >= len(args):
            continue
        value = args[index]
        target = getattr(value, "_obj", None)  # byref(obj)
        if isinstance(target, _CDATA):
            rooms[ctypes.addressof(target)] = ctypes.sizeof(target)
        if isinstance(value, _CDATA):
            rooms[ctypes.addressof(value)] = ctypes.sizeof(value)
        try:
            address, room = buffer_arg(value, index + 1)
        except (ctypes.ArgumentError, TypeError):
            continue
        if address and room:
            rooms[address] = room
    return rooms


def _address(value: Any) -> int:
    if value is None or type(value) is int:
        return value or 0
    address: int = ctypes.cast(value, ctypes.c_void_p).value or 0
    return address


class LayoutError(TypeError):
    """A structure passed to a heap function does not have Windows' layout or size."""


class NotEmulatedError(NotImplementedError):
    """A kernel32/ntdll function outside the heap API was called."""


def _make_thunk(impl: Callable[..., Any], name: str) -> Any:
    restype, argtypes = PROTOTYPES[name]
    failed = None if restype is None else 0
    buffers = _BUFFERS.get(name)

    def target(*args: Any) -> Any:
        try:
            masks = getattr(_pending, "masks", None)
            if masks:
                # What Win64's slot holds for a narrower integer: its bits, zero-extended.
                given = list(args)
                for index, mask in masks.items():
                    if given[index] is not None:
                        given[index] &= mask
                args = tuple(given)
            rooms = getattr(_pending, "rooms", None)
            if buffers and rooms:
                given = list(args)
                for index, make in buffers.items():
                    address = _address(given[index])
                    room = rooms.get(address)
                    wrapped = make(address, room) if room else None
                    if wrapped is not None:
                        given[index] = wrapped
                args = tuple(given)
            return impl(*args)
        except BaseException as exc:  # noqa: B036 - handed to the caller, who re-raises it
            # ctypes would print and drop an exception raised in a callback;
            # the calling function object raises it once the C call is back.
            _pending.error = exc
            return failed

    return ctypes.CFUNCTYPE(restype, *argtypes)(target)


_thunks: Dict[Tuple[int, str], Any] = {}
_thunks_lock = threading.Lock()


def thunk_address(backend: Any, name: str) -> int:
    """The C address of ``name``'s thunk into ``backend`` (made once, kept alive)."""
    key = (id(backend), name)
    with _thunks_lock:
        thunk = _thunks.get(key)
        if thunk is None:
            thunk = _thunks[key] = (_make_thunk(getattr(backend, name), name), backend)
    address: int = ctypes.cast(thunk[0], ctypes.c_void_p).value or 0
    return address


def _raise_pending() -> None:
    error = _pending.__dict__.pop("error", None)
    if error is not None:
        raise error


def _call_fp(fp: Any, args: Sequence[Any]) -> Any:
    """``fp(*args)``; an exception the thunk caught is raised here, once the C call is back."""
    try:
        result = fp(*args)
    except BaseException:
        _raise_pending()
        raise
    _raise_pending()
    return result


def _count_refused(fp: Any, args: Sequence[Any]) -> bool:
    """Whether ctypes refuses the number of arguments (before converting any): fewer than
    argtypes, or more for a function that is not cdecl (WinDLL, OleDLL, WINFUNCTYPE)."""
    argtypes = fp.argtypes
    if argtypes is None or len(args) == len(argtypes):
        return False
    return len(args) < len(argtypes) or not fp._flags_ & FUNCFLAG_CDECL


class FuncPtrAttribute:
    """``argtypes``/``restype``: ctypes' own attribute of the object's function
    pointer ``_fp`` (so ctypes checks what is set); the object hears of changes."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else getattr(obj._fp, self._name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj._fp, self._name, value)
        obj._changed()

    def __delete__(self, obj: Any) -> None:
        delattr(obj._fp, self._name)
        obj._changed()


class LegacyFunction(functools.partial):  # type: ignore[type-arg]
    """``windll.kernel32.<name>``: a foreign function as ctypes makes it.

    ``argtypes``, ``restype`` and ``errcheck`` are the real ctypes attributes
    of this object's own function pointer; setting them affects this object
    only, never compatheap's API.
    """

    __name__: str
    _fp: Any
    _errcheck: Optional[Callable[..., Any]]
    _proto: Tuple[Any, Tuple[Any, ...]]

    def __new__(cls, name: str, backend: Any, prototype: Any, restype: Any) -> "LegacyFunction":
        fp = prototype(thunk_address(backend, name))
        fp.restype = restype
        self = super().__new__(cls, getattr(backend, name))
        self.__name__ = name
        self._proto = PROTOTYPES[name]
        self._fp = fp
        self._errcheck = None
        self._refresh()
        return self

    # -- ctypes' attributes --------------------------------------------------------
    argtypes = FuncPtrAttribute()
    restype = FuncPtrAttribute()

    @property
    def errcheck(self) -> Optional[Callable[..., Any]]:
        return self._errcheck

    @errcheck.setter
    def errcheck(self, value: Optional[Callable[..., Any]]) -> None:
        if value is not None and not callable(value):
            raise TypeError("the errcheck attribute must be callable")
        self._errcheck = value
        self._refresh()

    @errcheck.deleter
    def errcheck(self) -> None:
        self._errcheck = None
        self._refresh()

    def _changed(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        restype, argtypes = self._proto
        direct = (
            self._errcheck is None
            and self.__name__ not in _BUFFERS
            and not _check.active()
            and self._fp.restype in _SAME_RESULT[restype]
            and self._fp.argtypes is not None
            and len(self._fp.argtypes) == len(argtypes)
            and all(given is wanted for given, wanted in zip(self._fp.argtypes, argtypes))
        )
        self.__class__ = LegacyFunction if direct else _CtypesFunction

    def __repr__(self) -> str:
        return f"<compatheap kernel32.{self.__name__}>"

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle a foreign function")


class _CtypesFunction(LegacyFunction):
    """A legacy function called through its ctypes function pointer and the thunk."""

    def __call__(self, *args: Any, **ignored: Any) -> Any:
        # Keyword arguments: a ctypes function without paramflags ignores them.
        fp = self._fp
        if _count_refused(fp, args):
            return _call_fp(fp, args)  # ctypes' TypeError comes before anything else
        restype, argtypes = self._proto
        if _check.active():
            _check.call(self.__name__, fp.argtypes, fp.restype, restype, argtypes, args)
        _windows_int_args(fp.argtypes, args)
        struct = _STRUCT_ARGS.get(self.__name__)
        if struct is not None and len(args) > struct[0] and self._accepts(struct[0], args[struct[0]]):
            check_structure(self.__name__, args[struct[0]], struct[0] + 1, struct[1])
        passed = _win64_slots(fp.argtypes, args)
        buffers = _BUFFERS.get(self.__name__)
        if buffers:
            _pending.rooms = _vouch(passed, buffers)
        _pending.masks = _win64_masks(fp.argtypes, passed, argtypes)
        try:
            result = _call_fp(fp, passed)
        finally:
            _pending.rooms = _pending.masks = None
        if self._errcheck is not None:
            checked = self._errcheck(result, self, args)
            # Returning the arguments unchanged means "the result stands", as in ctypes.
            return result if checked is args else checked
        return result

    def _accepts(self, index: int, value: Any) -> bool:
        # ctypes' own refusal (ArgumentError) comes first, as on Windows.
        argtypes = self._fp.argtypes
        if argtypes is None or index >= len(argtypes):
            return True
        try:
            argtypes[index].from_param(value)
        except Exception:
            return False
        return True


#: ctypes type codes passed as C integers (c_char and c_bool too).
_INTEGER_CODES = frozenset("bBhHiIlLqQ?c")
#: Whether arguments travel in 8-byte slots here, as on 64-bit Windows.
_WIN64_SLOTS = ctypes.sizeof(ctypes.c_void_p) == 8
#: Parameters the thunk reads as 8-byte integers (on 64-bit systems).
_WIDE_PARAMS = tuple(ctype for ctype in (_vp, _sz) if ctypes.sizeof(ctype) == 8)


def _integer_size(ctype: Any) -> Optional[int]:
    integer = isinstance(ctype, type) and issubclass(ctype, ctypes._SimpleCData)
    return ctypes.sizeof(ctype) if integer and getattr(ctype, "_type_", "") in _INTEGER_CODES else None


def _default_size(value: Any) -> Optional[int]:
    """Bytes of the C integer ctypes' default conversion passes for ``value`` (None: no integer)."""
    given = passed(value)
    if isinstance(given, _CDATA):
        return _integer_size(type(given))
    return ctypes.sizeof(ctypes.c_int) if isinstance(given, int) else None


_UNSIGNED = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}


def _win64_slot(value: Any) -> Any:
    """An argument without argtype as 64-bit Windows' libffi puts it in its 8-byte slot, in
    a form the System V convention passes in the next integer register too: a structure of
    1, 2, 4 or 8 bytes and a float or double as their bits; another structure as the address
    of a copy (where System V would pass it on the stack and shift the later arguments)."""
    # Followed on every system: ctypes' own following has no end (see passed()).
    given = passed(value)
    if not _WIN64_SLOTS:
        return value
    if isinstance(given, (ctypes.Structure, ctypes.Union)):
        size = ctypes.sizeof(given)
        if size in _UNSIGNED:
            return _UNSIGNED[size].from_buffer_copy(given)
        return ctypes.byref(type(given).from_buffer_copy(given))
    code = getattr(type(given), "_type_", None) if isinstance(given, ctypes._SimpleCData) else None
    if code == "f":
        return ctypes.c_uint32.from_buffer_copy(given)
    if code in ("d", "g"):  # Windows' long double is a double
        return ctypes.c_uint64.from_buffer_copy(ctypes.c_double(given.value))
    return value


def _win64_slots(argtypes: Any, args: Tuple[Any, ...]) -> Tuple[Any, ...]:
    start = len(argtypes) if argtypes is not None else 0
    if start >= len(args):
        return args
    return args[:start] + tuple(_win64_slot(value) for value in args[start:])


def _win64_masks(argtypes: Any, args: Sequence[Any], true_argtypes: Sequence[Any]) -> Optional[Dict[int, int]]:
    """Argument index -> mask, where Win64 zero-extends a narrower integer into an 8-byte parameter."""
    masks: Dict[int, int] = {}
    for index, param in enumerate(true_argtypes[: len(args)]):
        if param not in _WIDE_PARAMS:
            continue
        if argtypes is not None and index < len(argtypes):
            size = _integer_size(argtypes[index])
        else:
            size = _default_size(args[index])
        if size is not None and size < 8:
            masks[index] = (1 << (8 * size)) - 1
    return masks or None


def _windows_int_args(argtypes: Any, args: Sequence[Any]) -> None:
    # An int with no argtype becomes a C int; Windows' ctypes refuses what fits
    # neither a 32-bit unsigned nor a 32-bit signed long (where C long is 8
    # bytes ctypes would cut it silently).
    start = len(argtypes) if argtypes is not None else 0
    for position in range(start, len(args)):
        value = args[position]
        if type(value) is int and not -(1 << 31) <= value < (1 << 32):
            raise ctypes.ArgumentError(f"argument {position + 1}: OverflowError: int too long to convert")


class PlainFunction:
    """A foreign function object whose ``errcheck`` is a plain attribute and whose
    ``argtypes``/``restype`` live on ``_fp``."""

    __name__: str
    _fp: Any
    errcheck: Optional[Callable[..., Any]] = None
    argtypes = FuncPtrAttribute()
    restype = FuncPtrAttribute()

    def _changed(self) -> None:
        pass


class NotEmulatedFunction(PlainFunction):
    """An exported kernel32/ntdll function outside the heap API: it binds (with
    ctypes' attributes), and calling it raises :class:`NotEmulatedError`."""

    def __init__(self, dll: str, name: str, prototype: Any, restype: Any) -> None:
        self.__name__ = name
        self._dll = dll
        self._fp = prototype()
        self._fp.restype = restype

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotEmulatedError(
            f"{self._dll}.{self.__name__} is not emulated: compatheap emulates kernel32's heap API only "
            f"({', '.join(PROTOTYPES)}); this program needs Windows for {self.__name__}"
        )

    def __repr__(self) -> str:
        return f"<compatheap {self._dll}.{self.__name__}: not emulated>"


def _long_fields(cls: Any, prefix: str = "") -> List[str]:
    found: List[str] = []
    for field in getattr(cls, "_fields_", ()):
        ftype = field[1]
        while isinstance(ftype, type) and issubclass(ftype, ctypes.Array):
            ftype = ftype._type_
        if ftype in (ctypes.c_long, ctypes.c_ulong):
            found.append(prefix + field[0])
        elif isinstance(ftype, type) and issubclass(ftype, (ctypes.Structure, ctypes.Union)):
            found.extend(_long_fields(ftype, prefix + field[0] + "."))
    return found


def _structure_class(value: Any) -> Any:
    if isinstance(value, (ctypes.Structure, ctypes.Union)):
        return type(value)
    target = getattr(value, "_obj", None)  # byref(obj)
    if isinstance(target, (ctypes.Structure, ctypes.Union)):
        return type(target)
    if isinstance(value, ctypes._Pointer):
        return type(value)._type_
    return None


def check_structure(function: str, value: Any, position: int, windows: Any) -> None:
    """Refuse a structure whose C longs are 8 bytes here, or a buffer too small to hold ``windows``."""
    cls = _structure_class(value)
    if cls is not None and ctypes.sizeof(ctypes.c_long) != 4 and ctypes.sizeof(cls) != ctypes.sizeof(windows):
        longs = _long_fields(cls)
        if longs:
            raise LayoutError(
                f"{function} argument {position}: {cls.__name__} is {ctypes.sizeof(cls)} bytes here, not "
                f"Windows' {ctypes.sizeof(windows)}: its field(s) {', '.join(longs)} are C longs, 4 bytes on "
                f"Windows but {ctypes.sizeof(ctypes.c_long)} on this platform. Run the program with "
                "`compatheap run` (which gives its own modules Windows' 4-byte c_long/c_ulong), or declare "
                "DWORD/LONG fields with ctypes.c_uint32/ctypes.c_int32."
            )
    try:
        _, room = buffer_arg(value, position)
    except (ctypes.ArgumentError, TypeError):
        return  # not a buffer at all: the call's own conversion refuses it
    if room is not None and 0 < room < ctypes.sizeof(windows):
        raise LayoutError(
            f"{function} argument {position}: a {windows.__name__} needs {ctypes.sizeof(windows)} bytes "
            f"on 64-bit Windows; the buffer given holds {room}"
        )
