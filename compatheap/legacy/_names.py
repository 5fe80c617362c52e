"""The ctypes names Windows code imports, as ``install()`` provides them."""

from __future__ import annotations

import ctypes
from typing import Any, Dict, Optional

from . import _dll, _winerror


def _backend() -> Any:
    from .. import backend

    return backend


def get_last_error() -> int:
    """``ctypes.get_last_error``: the calling thread's last-error code (a signed C int)."""
    code = int(_backend().GetLastError()) & 0xFFFFFFFF
    return code - (1 << 32) if code & 0x80000000 else code


def set_last_error(value: int) -> int:
    """``ctypes.set_last_error``: set the last-error code; returns the previous one."""
    old = get_last_error()
    _backend().SetLastError(value & 0xFFFFFFFF)
    return old


def FormatError(code: Optional[int] = None) -> str:
    """``ctypes.FormatError``: Windows' message text for a last-error code."""
    return _winerror.format_error(int(_backend().GetLastError()) if code is None else int(code))


def GetLastError() -> int:
    """``ctypes.GetLastError``."""
    return int(_backend().GetLastError())


WinError = _winerror.make_win_error(GetLastError)


def names() -> Dict[str, Any]:
    """Name -> object for the ``ctypes`` module: what Windows CPython's ctypes has and POSIX lacks."""
    return {
        "CDLL": _dll.CDLL,
        "PyDLL": _dll.PyDLL,
        "WinDLL": _dll.WinDLL,
        "OleDLL": _dll.OleDLL,
        "cdll": ctypes.LibraryLoader(_dll.CDLL),
        "pydll": ctypes.LibraryLoader(_dll.PyDLL),
        "windll": ctypes.LibraryLoader(_dll.WinDLL),
        "oledll": ctypes.LibraryLoader(_dll.OleDLL),
        "HRESULT": _dll.HRESULT,
        "WINFUNCTYPE": _dll.WINFUNCTYPE,
        "WinError": WinError,
        "FormatError": FormatError,
        "GetLastError": GetLastError,
        "get_last_error": get_last_error,
        "set_last_error": set_last_error,
    }
