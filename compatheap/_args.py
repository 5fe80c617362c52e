"""Argument conversion with the exact rules of a ctypes call with argtypes.

Ints and ``None`` take a fast path; anything else goes through a real ctypes
conversion, so the emulation accepts and rejects what ``kernel32`` with full
argtypes would, and raises the same ``ctypes.ArgumentError``.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Optional, Tuple

from ._constants import SIZE_MAX

_PTR_MASK = (1 << (8 * ctypes.sizeof(ctypes.c_void_p))) - 1
_DWORD_MASK = 0xFFFFFFFF
_CDATA: Any = ctypes.c_int.__mro__[-2]  # the private common base of ctypes instances


def _echo(ctype: Any) -> Callable[[Any, None, int], Any]:
    # A C function that hands its first argument back as ctypes converted it:
    # memmove of zero bytes returns its destination. A real C call, so a
    # conversion that fails (Python's memory running out, too) raises, where
    # a Python callback's failure would be printed and its result be garbage.
    memmove = ctypes.cast(ctypes.memmove, ctypes.c_void_p).value or 0
    return ctypes.PYFUNCTYPE(ctypes.c_size_t, ctype, ctypes.c_void_p, ctypes.c_size_t)(memmove)


#: The type of what ``ctypes.byref()`` returns.
_BYREF = type(ctypes.byref(ctypes.c_int()))
_via_size = _echo(ctypes.c_size_t)
_via_dword = _echo(ctypes.c_uint32)
_via_ulong_ptr = _echo(ctypes.c_void_p)


#: Windows' DWORD, ``ctypes.wintypes.DWORD``, is ``c_ulong``: 4 bytes there,
#: so ctypes takes its instances for a ``c_uint32`` argument. Where ``c_ulong``
#: is 8 bytes it is another type; a DWORD argument takes it all the same.
_WIDE_ULONG: Any = ctypes.c_ulong if ctypes.sizeof(ctypes.c_ulong) > 4 else None
#: How far a chain of ``_as_parameter_`` is followed (see :func:`passed`).
_AS_PARAMETER_DEPTH = 64
_NOTHING = object()


def _argument_error(position: int, exc: BaseException) -> ctypes.ArgumentError:
    """The error ctypes raises when converting argument ``position`` raised ``exc``."""
    return ctypes.ArgumentError(f"argument {position}: {type(exc).__name__}: {exc}")


def passed(value: Any, position: int = 0) -> Any:
    """What ctypes passes for ``value``: its ``_as_parameter_``, followed to the end
    (ctypes objects, ints, bytes, str and None have none to follow).

    ctypes follows the chain in C with no limit, so a loop overflows the C
    stack; here more than ``_AS_PARAMETER_DEPTH`` steps raise RecursionError.
    With ``position`` (of the argument), that, or what an ``_as_parameter_``
    raises, comes as ctypes reports it: ``ArgumentError``.
    """
    for _ in range(_AS_PARAMETER_DEPTH):
        if value is None or isinstance(value, (_CDATA, _BYREF, int, bytes, str)):
            return value
        try:
            inner = getattr(value, "_as_parameter_", _NOTHING)
        except Exception as exc:  # (A property may raise anything: ctypes reports it so.)
            if not position:
                raise
            raise _argument_error(position, exc) from None
        if inner is _NOTHING:
            return value
        value = inner
    error = RecursionError("a chain of _as_parameter_ that does not end")
    if not position:
        raise error
    raise _argument_error(position, error)


def _slow(conv: Callable[[Any, None, int], Any], value: Any, position: int) -> int:
    # Followed here first: ctypes' own following has no end (see passed()).
    value = passed(value, position)
    try:
        return int(conv(value, None, 0))
    except ctypes.ArgumentError as exc:
        # ctypes numbers the converter's own argument; report the caller's.
        reason = str(exc).split(": ", 1)[-1]
        raise ctypes.ArgumentError(f"argument {position}: {reason}") from None


def size_arg(value: Any, position: int) -> int:
    """A ``SIZE_T`` argument, wrapped to its width as ctypes does."""
    if type(value) is int:
        return value & SIZE_MAX
    return _slow(_via_size, value, position)


def dword_arg(value: Any, position: int) -> int:
    """A ``DWORD`` argument."""
    if type(value) is int:
        return value & _DWORD_MASK
    if type(value) is _WIDE_ULONG:
        return int(value.value) & _DWORD_MASK
    return _slow(_via_dword, value, position) & _DWORD_MASK  # (a 32-bit argument's upper half is undefined)


def pointer_arg(value: Any, position: int) -> int:
    """A ``HANDLE``/``LPVOID`` argument as an address (0 for NULL)."""
    if type(value) is int:
        return value & _PTR_MASK
    if value is None:
        return 0
    return _slow(_via_ulong_ptr, value, position)


#: The last byref() taken as a buffer, with its answer. A byref() cannot
#: change, and only a foreign call can tell its offset, so a caller that passes
#: the same one call after call (a HeapWalk loop) pays for that call once.
#: Only a byref() of an object owning its memory is kept (it stays alive until
#: another comes): one over another object's buffer (``from_buffer`` of an
#: mmap, say) would keep that buffer exported.
_last_byref: Tuple[Any, Any, Tuple[int, Optional[int]]] = (None, None, (0, None))


def buffer_arg(value: Any, position: int, ptr_type: Optional[Any] = None) -> Tuple[int, Optional[int]]:
    """An output-buffer argument: ``(address, bytes known to be there)``.

    With ``ptr_type`` (a ``POINTER(T)`` class) only what that argtype accepts is
    taken. The byte count is ``None`` when the caller passed a bare address,
    whose extent nothing can vouch for.
    """
    if type(value) is _BYREF:
        # The common case, first: byref() of an object of exactly the pointed-to
        # type, or of anything for a plain PVOID (what ctypes accepts there).
        global _last_byref
        last = _last_byref
        if last[0] is value and last[1] is ptr_type:
            return last[2]
        carg: Any = value
        referent: Any = carg._obj
        if ptr_type is None or type(referent) is ptr_type._type_:
            address = pointer_arg(value, position)
            start = ctypes.addressof(referent)
            if address >= start:
                found = address, ctypes.sizeof(referent) - (address - start)
                if referent._b_needsfree_:
                    _last_byref = (value, ptr_type, found)
                return found
    inner = passed(value, position)  # (First: a chain that does not end never reaches ctypes.)
    if ptr_type is not None and value is not None:
        try:
            ptr_type.from_param(value)
        except Exception as exc:  # noqa: BLE001 - ctypes reports whatever the conversion raised
            raise _argument_error(position, exc) from None
    if inner is not value:  # What the object stands for, its type already checked.
        return buffer_arg(inner, position)
    if type(value) is bytes:
        # ctypes passes the object's own buffer, with the NUL after its end.
        return pointer_arg(value, position), len(value) + 1
    if isinstance(value, ctypes.Array) or (
        ptr_type is not None and isinstance(value, (ctypes.Structure, ctypes.Union, ctypes._SimpleCData))
    ):
        # Passed by value where a pointer is expected: ctypes passes its address.
        # A plain PVOID takes arrays so, but not other instances: those go through
        # the real conversion below (c_void_p passes its value, c_uint32 is refused).
        return ctypes.addressof(value), ctypes.sizeof(value)
    address = pointer_arg(value, position)
    if address == 0:
        return 0, 0
    target: Any = getattr(value, "_obj", None)  # byref(obj[, offset])
    if target is not None and isinstance(target, _CDATA):
        start = ctypes.addressof(target)
        if address >= start:
            return address, ctypes.sizeof(target) - (address - start)
        # A negative offset points before the object: only an enclosing one
        # (the structure or array it is a field of) can vouch for that memory.
        while target._b_base_ is not None:
            target = target._b_base_
        return address, _kept_room(target, address, 0)
    if isinstance(value, ctypes._Pointer):
        # Only memory the pointer keeps alive vouches for an extent: a pointer
        # cast from a bare address (or into a smaller buffer) does not.
        return address, _kept_room(value._objects, address, 3)
    return address, None


def _kept_room(kept: Any, address: int, depth: int) -> Optional[int]:
    """Bytes from ``address`` to the end of the ctypes object in ``kept`` holding it."""
    if isinstance(kept, _CDATA):
        start = ctypes.addressof(kept)
        end = start + ctypes.sizeof(kept)
        if start <= address < end:
            return end - address
        kept = kept._objects
    if isinstance(kept, dict) and depth:
        for item in kept.values():
            room = _kept_room(item, address, depth - 1)
            if room is not None:
                return room
    return None
