"""``WinError``, ``FormatError`` and the last-error copy as Windows CPython's ctypes has them."""

from __future__ import annotations

import errno as _errno
from typing import Any, Dict, Optional, Tuple, Type

#: FormatMessage texts of English Windows for the codes heap code meets.
#: (Wine's own texts are shorter; Windows' are the reference.)
WINDOWS_TEXTS = {
    0: "The operation completed successfully.",
    1: "Incorrect function.",
    2: "The system cannot find the file specified.",
    3: "The system cannot find the path specified.",
    5: "Access is denied.",
    6: "The handle is invalid.",
    8: "Not enough memory resources are available to process this command.",
    14: "Not enough memory resources are available to complete this operation.",
    31: "A device attached to the system is not functioning.",
    87: "The parameter is incorrect.",
    120: "This function is not supported on this system.",
    122: "The data area passed to a system call is too small.",
    259: "No more data is available.",
    998: "Invalid access to memory location.",
}
NO_DESCRIPTION = "<no description>"

# CPython's winerror -> errno table on Windows (ranges of codes sharing an errno);
# any other code below 10000 maps to EINVAL.
_ERRNO_RANGES: Tuple[Tuple[int, int, int], ...] = (
    (2, 3, _errno.ENOENT),
    (4, 4, _errno.EMFILE),
    (5, 5, _errno.EACCES),
    (6, 6, _errno.EBADF),
    (7, 9, _errno.ENOMEM),
    (10, 10, _errno.E2BIG),
    (11, 11, _errno.ENOEXEC),
    (15, 15, _errno.ENOENT),
    (16, 16, _errno.EACCES),
    (17, 17, _errno.EXDEV),
    (18, 18, _errno.ENOENT),
    (19, 36, _errno.EACCES),
    (53, 53, _errno.ENOENT),
    (65, 65, _errno.EACCES),
    (67, 67, _errno.ENOENT),
    (80, 80, _errno.EEXIST),
    (82, 83, _errno.EACCES),
    (89, 89, _errno.EAGAIN),
    (108, 108, _errno.EACCES),
    (109, 109, _errno.EPIPE),
    (112, 112, _errno.ENOSPC),
    (114, 114, _errno.EBADF),
    (128, 129, _errno.ECHILD),
    (130, 130, _errno.EBADF),
    (132, 132, _errno.EACCES),
    (145, 145, _errno.ENOTEMPTY),
    (158, 158, _errno.EACCES),
    (161, 161, _errno.ENOENT),
    (164, 164, _errno.EAGAIN),
    (167, 167, _errno.EACCES),
    (183, 183, _errno.EEXIST),
    (188, 202, _errno.ENOEXEC),
    (206, 206, _errno.ENOENT),
    (215, 215, _errno.EAGAIN),
    (232, 232, _errno.EPIPE),
    (258, 258, 138),  # Windows' own ETIMEDOUT
    (267, 267, _errno.ENOTDIR),
    (1113, 1113, _errno.EILSEQ),
    (1816, 1816, _errno.ENOMEM),
)
# Winsock codes are their own errno, except those that name a C errno.
_WSA_ERRNO = {10004: _errno.EINTR, 10009: _errno.EBADF, 10013: _errno.EACCES, 10014: _errno.EFAULT, 10024: 24}


def errno_of(winerror: int) -> int:
    """The errno Windows CPython gives an ``OSError`` with this winerror."""
    if 10000 <= winerror < 12000:
        return _WSA_ERRNO.get(winerror, winerror)
    for first, last, value in _ERRNO_RANGES:
        if first <= winerror <= last:
            return value
    return _errno.EINVAL


def format_error(code: int) -> str:
    """``ctypes.FormatError(code)`` of English Windows."""
    return WINDOWS_TEXTS.get(code, NO_DESCRIPTION)


_classes: Dict[type, Type[OSError]] = {}


def _windows_class(base: Type[OSError]) -> Type[OSError]:
    cls = _classes.get(base)
    if cls is None:

        def __str__(self: Any) -> str:
            return f"[WinError {self.winerror}] {self.strerror}"

        # Same name as the builtin class Windows picks; str() reads as on Windows.
        cls = type(base.__name__, (base,), {"__str__": __str__, "__module__": "builtins"})
        cls.__qualname__ = base.__qualname__
        _classes[base] = cls
    return cls


def windows_oserror(winerror: int, strerror: str) -> OSError:
    """``OSError(None, strerror, None, winerror)`` as Windows CPython builds it:
    the errno and subclass that match ``winerror``, ``str()`` ``[WinError N] text``."""
    code = errno_of(winerror)
    base = type(OSError(code, strerror))
    error = _windows_class(base)(code, strerror)
    error.winerror = winerror  # type: ignore[attr-defined]
    error.args = (code, strerror, None, winerror, None)
    return error


def make_win_error(get_last_error: Any) -> Any:
    def WinError(code: Optional[int] = None, descr: Optional[str] = None) -> OSError:
        """``ctypes.WinError``: an ``OSError`` for ``code`` (default: the last error)."""
        if code is None:
            code = int(get_last_error())
        if descr is None:
            descr = format_error(code).strip()
        return windows_oserror(code, descr)

    return WinError
