"""Exceptions raised by compatheap."""

from __future__ import annotations

import errno
from typing import Optional

from ._constants import STATUS_ACCESS_VIOLATION, STATUS_NO_MEMORY

_STATUS_NAMES = {
    STATUS_NO_MEMORY: "STATUS_NO_MEMORY",
    STATUS_ACCESS_VIOLATION: "STATUS_ACCESS_VIOLATION",
}


class HeapException(OSError):
    """A heap call failed under ``HEAP_GENERATE_EXCEPTIONS``.

    Windows raises a structured exception instead of returning NULL; this is
    its Python form. ``status`` is the NTSTATUS code (``STATUS_NO_MEMORY`` for
    an allocation that could not be satisfied); ``winerror`` is the same code as
    a signed 32-bit int (-1073741801) and ``errno`` is ``EINVAL``, as in the
    ``OSError`` Windows CPython's ctypes raises for the structured exception.
    """

    winerror: int

    def __init__(self, status: int, function: str, nbytes: Optional[int] = None) -> None:
        status &= 0xFFFFFFFF
        name = _STATUS_NAMES.get(status, "NTSTATUS")
        what = f"{function} failed with {name} (0x{status:08X})"
        if nbytes is not None:
            what += f" asking for {nbytes} bytes"
        super().__init__(what)
        self.status = status
        self.winerror = status - (1 << 32) if status & 0x80000000 else status
        self.errno = errno.EINVAL  # what Windows CPython maps that winerror to
        self.function = function
        self.nbytes = nbytes

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.status, self.function, self.nbytes))


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this system."""

    def __init__(self, name: str, reason: str, fix: str) -> None:
        super().__init__(f"compatheap backend {name!r} is not available: {reason}. {fix}")
        self.name = name
        self.reason = reason
        self.fix = fix


class ConfigError(ValueError):
    """The configuration file or environment holds a value compatheap cannot use."""


#: Win32 error code -> (constant name, what it means, closest errno).
_WIN32_ERRORS = {
    6: ("ERROR_INVALID_HANDLE", "the handle is not a live heap", errno.EBADF),
    8: ("ERROR_NOT_ENOUGH_MEMORY", "not enough memory", errno.ENOMEM),
    14: ("ERROR_OUTOFMEMORY", "out of memory", errno.ENOMEM),
    31: ("ERROR_GEN_FAILURE", "the operation is not possible now", errno.EIO),
    87: ("ERROR_INVALID_PARAMETER", "an argument is not valid", errno.EINVAL),
    122: ("ERROR_INSUFFICIENT_BUFFER", "the buffer is too small", errno.EINVAL),
    259: ("ERROR_NO_MORE_ITEMS", "no more items", errno.ENOENT),
    998: ("ERROR_NOACCESS", "invalid access to memory", errno.EFAULT),
}
_NO_MEMORY = frozenset({8, 14})


def describe_win32_error(code: int) -> str:
    """``"ERROR_NOT_ENOUGH_MEMORY (8): not enough memory"`` for a last-error code."""
    name, text, _ = _WIN32_ERRORS.get(code, ("Win32 error", "unknown error", 0))
    return f"{name} ({code}): {text}"


class HeapError(OSError):
    """A heap call of the Pythonic API failed.

    ``winerror`` is the Win32 last-error code, ``call`` the failed call with its
    arguments; ``errno`` is the closest POSIX code.
    """

    winerror: int

    def __init__(self, call: str, winerror: int) -> None:
        code = winerror & 0xFFFFFFFF
        posix = _WIN32_ERRORS.get(code, ("", "", errno.EIO))[2]
        super().__init__(posix, f"{call} failed: {describe_win32_error(code)}")
        self.winerror = code
        self.call = call

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.call, self.winerror))

    @staticmethod
    def from_last_error(call: str, winerror: int) -> "HeapError":
        """The right class for ``winerror``: :class:`HeapMemoryError` when memory ran out."""
        cls = HeapMemoryError if winerror in _NO_MEMORY else HeapError
        return cls(call, winerror)


class HeapMemoryError(HeapError, MemoryError):
    """A heap call failed for lack of memory; also a :class:`MemoryError`."""


class InvalidatedError(ValueError):
    """A :class:`~compatheap.Block` or :class:`~compatheap.Heap` was used after it was
    freed, moved by ``realloc``, or destroyed. Nothing was read or written."""
