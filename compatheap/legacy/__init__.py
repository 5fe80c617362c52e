"""Run Windows ctypes heap code unchanged: ``ctypes.windll.kernel32`` on POSIX.

``compatheap.install()`` (or ``python -m compatheap run script.py``) gives
``ctypes`` what Windows code expects: ``windll``, ``WinDLL``, ``get_last_error``,
``set_last_error``, ``GetLastError``, ``WinError`` and ``FormatError``, with
``windll.kernel32`` holding compatheap's heap functions, and makes
``ctypes.wintypes`` use Windows' 4-byte ``DWORD``/``LONG``/``ULONG``/``BOOL``.
``compatheap.uninstall()`` undoes it. On Windows both do nothing: ctypes there
is the real thing.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import sys
import threading
from typing import Any, Dict, List, Optional

from .._errors import describe_win32_error
from . import _wintypes
from ._dll import LibraryLoader, make_windll_class

__all__ = ["install", "installed", "run", "uninstall"]

_MISSING = object()
_lock = threading.Lock()
#: What install() replaced: attribute name -> previous value (or _MISSING).
_saved: Dict[str, Any] = {}
#: What ``sys.modules["ctypes.wintypes"]`` held before install() replaced it
#: (_MISSING: nothing); _UNTOUCHED where install() left it alone (C long is
#: already 4 bytes, as on 32-bit Linux), so uninstall() must leave it too.
_UNTOUCHED: Any = object()
_saved_wintypes: Any = _UNTOUCHED


def _is_windows() -> bool:
    return sys.platform == "win32"


def installed() -> bool:
    """Whether :func:`install` is in effect."""
    return bool(_saved)


def _names(backend: Any) -> Dict[str, Any]:
    windll_class = make_windll_class(backend)

    def get_last_error() -> int:
        return int(backend.GetLastError())

    def set_last_error(value: int) -> int:
        old = int(backend.GetLastError())
        backend.SetLastError(value)
        return old

    def FormatError(code: Optional[int] = None) -> str:
        return describe_win32_error(int(backend.GetLastError()) if code is None else int(code))

    def WinError(code: Optional[int] = None, descr: Optional[str] = None) -> OSError:
        if code is None:
            code = int(backend.GetLastError())
        if descr is None:
            descr = FormatError(code)
        error = OSError(None, descr)
        setattr(error, "winerror", code)  # noqa: B010 - an attribute only Windows' OSError declares
        return error

    return {
        "WinDLL": windll_class,
        "windll": LibraryLoader(windll_class),
        "get_last_error": get_last_error,
        "set_last_error": set_last_error,
        "GetLastError": get_last_error,
        "FormatError": FormatError,
        "WinError": WinError,
    }


def install(backend: Any = None) -> bool:
    """Make ``ctypes.windll.kernel32`` (and friends) compatheap's heap API.

    Returns whether anything was installed: False on Windows, where ctypes is
    left alone, and when already installed. ``backend`` defaults to the active
    one. Only names ``ctypes`` lacks are added.
    """
    global _saved_wintypes
    if _is_windows():
        return False
    if backend is None:
        from .. import backend as active

        backend = active
    with _lock:
        if _saved:
            return False
        for name, value in _names(backend).items():
            _saved[name] = getattr(ctypes, name, _MISSING)
            setattr(ctypes, name, value)
        if _wintypes.needs_fixing():
            _saved_wintypes = sys.modules.get("ctypes.wintypes", _MISSING)
            module = _wintypes.build()
            sys.modules["ctypes.wintypes"] = module
            setattr(ctypes, "wintypes", module)  # noqa: B010
    return True


def uninstall() -> bool:
    """Undo :func:`install`; returns whether there was anything to undo."""
    global _saved_wintypes
    with _lock:
        if not _saved:
            return False
        for name, value in _saved.items():
            if value is _MISSING:
                delattr(ctypes, name)
            else:
                setattr(ctypes, name, value)
        _saved.clear()
        if _saved_wintypes is _UNTOUCHED:
            pass
        elif _saved_wintypes is not _MISSING:
            sys.modules["ctypes.wintypes"] = _saved_wintypes
            setattr(ctypes, "wintypes", _saved_wintypes)  # noqa: B010
        elif "ctypes.wintypes" in sys.modules:
            del sys.modules["ctypes.wintypes"]
            if hasattr(ctypes, "wintypes"):
                delattr(ctypes, "wintypes")
        _saved_wintypes = _UNTOUCHED
    return True


def run(target: str, args: List[str], module: bool = False) -> None:
    """Run a script (or, with ``module=True``, a module) as ``__main__`` with
    :func:`install` in effect, as ``python script.py args`` would run it."""
    sys.argv = [target, *args]
    install()
    try:
        if module:
            sys.path.insert(0, os.getcwd())
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
    finally:
        uninstall()
