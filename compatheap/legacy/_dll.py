"""Stand-ins for ``ctypes.WinDLL`` and ``ctypes.windll`` that hold kernel32's heap API."""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Dict, Optional, Tuple

from .._args import buffer_arg
from .._structs import HEAP_SUMMARY, PROCESS_HEAP_ENTRY
from ..backends import FUNCTIONS

_INTEGER_CODES = frozenset("bBhHiIlLqQ")
#: Structure-pointer parameters: function -> (index, compatheap's structure).
_STRUCT_PARAMS: Dict[str, Tuple[int, Any]] = {
    "HeapWalk": (1, PROCESS_HEAP_ENTRY),
    "HeapSummary": (2, HEAP_SUMMARY),
}


def _dll_key(name: Any) -> str:
    text = str(name).replace("\\", "/").rsplit("/", 1)[-1].lower()
    return text[:-4] if text.endswith(".dll") else text


def _plain(value: Any) -> Any:
    # wintypes.DWORD(5) and friends are C longs here but 4-byte types on
    # Windows, where kernel32's DWORD parameters take them: pass the number.
    if isinstance(value, ctypes._SimpleCData) and getattr(type(value), "_type_", "") in _INTEGER_CODES:
        return value.value
    return value


def _own_struct(value: Any, struct: Any) -> Any:
    # A script declares its own PROCESS_HEAP_ENTRY/HEAP_SUMMARY, as Windows code
    # must; hand the backend compatheap's type over the same memory, when it is
    # large enough to hold it.
    if value is None or isinstance(value, int):
        return value
    try:
        address, room = buffer_arg(value, 0)
    except ctypes.ArgumentError:
        return value
    if address and room is not None and room >= ctypes.sizeof(struct):
        return ctypes.byref(struct.from_address(address))
    return value


class LegacyFunction:
    """One heap function as ``windll.kernel32.<name>``: callable, and accepting
    the ``argtypes``, ``restype`` and ``errcheck`` that ctypes code sets.

    ``argtypes`` and ``restype`` are kept but not used: the function already
    converts its arguments as kernel32 does and returns what a full ctypes
    binding returns. ``errcheck``, when set, is called as ctypes calls it.
    """

    def __init__(self, name: str, impl: Callable[..., Any]) -> None:
        self.__name__ = name
        self._impl = impl
        self.argtypes: Any = None
        self.restype: Any = ctypes.c_int
        self.errcheck: Optional[Callable[..., Any]] = None

    def __call__(self, *args: Any) -> Any:
        converted = [_plain(arg) for arg in args]
        struct = _STRUCT_PARAMS.get(self.__name__)
        if struct is not None and len(converted) > struct[0]:
            converted[struct[0]] = _own_struct(converted[struct[0]], struct[1])
        result = self._impl(*converted)
        if self.errcheck is not None:
            return self.errcheck(result, self, args)
        return result

    def __repr__(self) -> str:
        return f"<compatheap stand-in for kernel32.{self.__name__}>"


class Kernel32:
    """``WinDLL("kernel32")`` with only the heap API."""

    def __init__(self, name: str, backend: Any) -> None:
        self._name = name
        self._handle = 0
        self._backend = backend

    def _function(self, name: str) -> LegacyFunction:
        if name not in FUNCTIONS:
            raise AttributeError(
                f"function {name!r} not found: outside Windows compatheap provides only kernel32's heap API "
                f"({', '.join(FUNCTIONS)})"
            )
        return LegacyFunction(name, getattr(self._backend, name))

    def __getattr__(self, name: str) -> LegacyFunction:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        function = self._function(name)
        # Cached, as ctypes does: argtypes set once stay on the object.
        setattr(self, name, function)
        return function

    def __getitem__(self, name: str) -> LegacyFunction:
        return self._function(name)  # a fresh object each time, as in ctypes

    def __repr__(self) -> str:
        return f"<compatheap stand-in for WinDLL {self._name!r}: the heap API only>"


def make_windll_class(backend: Any) -> Any:
    """A ``WinDLL`` replacement bound to ``backend``."""

    class WinDLL:
        """Loads ``kernel32`` (the heap API only); every other DLL raises ``OSError``."""

        def __new__(cls, name: Any, *args: Any, **kwargs: Any) -> Any:
            if _dll_key(name) != "kernel32":
                raise OSError(f"cannot load {name!r}: outside Windows compatheap provides only kernel32's heap API")
            return Kernel32(str(name), backend)

    return WinDLL


class LibraryLoader:
    """``ctypes.windll``: ``windll.kernel32`` and ``windll.LoadLibrary("kernel32")``."""

    def __init__(self, dlltype: Any) -> None:
        self._dlltype = dlltype

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        dll = self._dlltype(name)
        setattr(self, name, dll)
        return dll

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def LoadLibrary(self, name: str) -> Any:
        return self._dlltype(name)
