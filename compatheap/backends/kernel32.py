"""The kernel32 backend: the real Windows heap through ctypes.

Every function is bound once, on a private ``WinDLL`` handle with
``use_last_error=True`` (so ``GetLastError`` sees what the heap call set, even
across Python's own API calls), with full argtypes and restype. Functions that
cannot raise a structured exception are handed out as the raw ctypes function
objects; the allocating ones get a thin wrapper that turns the SEH exception of
``HEAP_GENERATE_EXCEPTIONS`` into :class:`compatheap.HeapException`.
"""

from __future__ import annotations

import ctypes
from typing import Any, Optional, Tuple

from .._args import dword_arg, size_arg
from .._constants import STATUS_ACCESS_VIOLATION
from .._errors import HeapException
from .._structs import HEAP_PROTOTYPES
from ._base import DWORD, HANDLE, LPVOID, SIZE_T, Capabilities, HeapBackend

_BOOL = ctypes.c_int


def _load() -> Any:
    windll: Any = getattr(ctypes, "WinDLL", None)
    if windll is None:
        raise OSError("ctypes has no WinDLL here (not a Windows Python)")
    return windll("kernel32", use_last_error=True)


def wine_version() -> Optional[str]:
    """Wine's version when this process's Windows is Wine (its ntdll says so), else None."""
    windll: Any = getattr(ctypes, "WinDLL", None)
    if windll is None:
        return None
    try:
        query = windll("ntdll").wine_get_version  # a WinDLL of our own: private function objects
    except (OSError, AttributeError):
        return None
    query.restype = ctypes.c_char_p
    query.argtypes = []
    version: bytes = query()
    return version.decode("ascii", "replace")


def _seh_status(exc: OSError) -> Optional[int]:
    # ctypes reports an SEH exception as OSError with the signed NTSTATUS in
    # winerror (STATUS_NO_MEMORY arrives as winerror -1073741801); ordinary
    # Win32 errors do not reach us this way. An access violation is the
    # exception: ctypes words it ("exception: access violation reading 0x...")
    # and leaves winerror unset.
    code: Optional[int] = getattr(exc, "winerror", None)
    if code is None:
        if str(exc).startswith("exception: access violation"):
            return STATUS_ACCESS_VIOLATION
        return None
    return code & 0xFFFFFFFF


class Kernel32Backend(HeapBackend):
    """The real Windows heap."""

    name = "kernel32"

    def __init__(self) -> None:
        dll = _load()
        self._dll = dll
        self._wine = wine_version()
        funcs = {}
        for fname, (restype, argtypes) in HEAP_PROTOTYPES.items():
            func = getattr(dll, fname)
            func.restype = restype
            func.argtypes = argtypes
            funcs[fname] = func
        # Raw ctypes objects on the instance shadow the class's methods: no
        # Python frame between the caller and kernel32.
        for fname in HEAP_PROTOTYPES:
            if fname not in ("HeapAlloc", "HeapReAlloc", "HeapCreate"):
                setattr(self, fname, funcs[fname])
        # ctypes' per-thread copy of the last error, saved right after each
        # call of a use_last_error function and restored before the next.
        self._get_last_error = getattr(ctypes, "get_last_error")  # noqa: B009 - Windows-only
        self._set_last_error = getattr(ctypes, "set_last_error")  # noqa: B009
        self._alloc = funcs["HeapAlloc"]
        self._realloc = funcs["HeapReAlloc"]
        self._create = funcs["HeapCreate"]

    @classmethod
    def probe(cls) -> Tuple[bool, str]:
        try:
            dll = _load()
        except OSError as exc:
            return False, str(exc)
        if not hasattr(dll, "HeapAlloc"):
            return False, "kernel32.dll has no HeapAlloc"
        return True, "kernel32.dll is loadable"

    @classmethod
    def fix(cls) -> str:
        return "Outside Windows use the 'emulated' backend (unset COMPATHEAP_BACKEND)."

    @property
    def capabilities(self) -> Capabilities:
        # Windows' own heap: no promise past Windows', its debug checks are
        # the system's global flags, and its memory is Windows' business.
        wine = self._wine
        heap = f"Wine {wine} kernel32.dll" if wine else "the real kernel32 heap"
        return Capabilities(wine_heap=wine is not None, heap_summary=wine is None, features={"heap": heap})

    def HeapAlloc(self, hHeap: HANDLE, dwFlags: DWORD, dwBytes: SIZE_T, /) -> Optional[int]:
        try:
            result: Optional[int] = self._alloc(hHeap, dwFlags, dwBytes)
        except OSError as exc:
            raise self._translate(exc, "HeapAlloc", dwBytes) from None
        return result

    def HeapReAlloc(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, dwBytes: SIZE_T, /) -> Optional[int]:
        try:
            result: Optional[int] = self._realloc(hHeap, dwFlags, lpMem, dwBytes)
        except OSError as exc:
            raise self._translate(exc, "HeapReAlloc", dwBytes) from None
        return result

    def HeapCreate(self, flOptions: DWORD, dwInitialSize: SIZE_T, dwMaximumSize: SIZE_T, /) -> Optional[int]:
        try:
            result: Optional[int] = self._create(flOptions, dwInitialSize, dwMaximumSize)
        except OSError as exc:
            raise self._translate(exc, "HeapCreate", dwInitialSize) from None
        return result

    @staticmethod
    def _translate(exc: OSError, function: str, nbytes: SIZE_T) -> Exception:
        status = _seh_status(exc)
        if status is None:
            return exc
        # The call converted it already: converting it again cannot fail.
        return HeapException(status, function, size_arg(nbytes, 3))

    # The class must define every function; instances replace these with the
    # bound ctypes functions in __init__.
    def _unbound(self, *args: Any) -> Any:  # pragma: no cover - never reached
        raise RuntimeError("kernel32 function not bound")

    GetProcessHeap = GetProcessHeaps = HeapDestroy = HeapFree = HeapSize = _unbound
    HeapValidate = HeapCompact = HeapLock = HeapUnlock = HeapWalk = _unbound
    HeapSummary = HeapQueryInformation = HeapSetInformation = _unbound

    def GetLastError(self) -> int:
        # ctypes keeps it as a signed C int; a DWORD is unsigned.
        code: int = self._get_last_error()
        return code & 0xFFFFFFFF

    def SetLastError(self, dwErrCode: DWORD, /) -> None:
        code = dword_arg(dwErrCode, 1)
        self._set_last_error(code - (1 << 32) if code & 0x80000000 else code)
