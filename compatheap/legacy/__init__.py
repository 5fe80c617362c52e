"""Run Windows ctypes heap code unchanged: ``ctypes.windll.kernel32`` on every OS.

``compatheap.install()`` gives ``ctypes`` the names Windows code imports:
``WinDLL``/``windll``, ``OleDLL``/``oledll``, ``WINFUNCTYPE``, ``HRESULT``,
``WinError``, ``FormatError``, ``GetLastError``, ``get_last_error`` and
``set_last_error``, and makes ``CDLL``/``PyDLL``/``cdll`` load ``kernel32``
and ``ntdll`` (any spelling) as legacy DLLs whose heap functions are
compatheap's. ``python -m compatheap run script.py`` does that and, for the
script's own modules, makes ``c_long``/``c_ulong`` 4 bytes as on Windows.
On Windows both leave ctypes alone: there it is the real thing.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import sys
import threading
from typing import Any, Dict, List, Optional

from . import _check, _llp64
from ._dll import ACTIVE, LegacyDLL, WinDLL, legacy_class
from ._function import LayoutError, LegacyFunction, NotEmulatedError

__all__ = [
    "LayoutError",
    "LegacyDLL",
    "LegacyFunction",
    "NotEmulatedError",
    "install",
    "installed",
    "legacy_kernel32",
    "run",
    "uninstall",
]

_MISSING = object()
_lock = threading.Lock()
#: What install() replaced: attribute name -> previous value (or _MISSING).
_saved: Dict[str, Any] = {}


def _is_windows() -> bool:
    return sys.platform == "win32"


def installed() -> bool:
    """Whether :func:`install` is in effect."""
    return bool(_saved)


def legacy_kernel32(backend: Any = None) -> Any:
    """A new ``WinDLL("kernel32")`` whose heap functions are ``backend``'s (default: the active one)."""
    base = legacy_class(WinDLL)
    fixed = ACTIVE if backend is None else backend
    cls = type(base.__name__, (base,), {"_backend": fixed, "__module__": base.__module__})
    return cls("kernel32")


def install(backend: Any = None) -> bool:
    """Give ``ctypes`` Windows' names, with ``kernel32`` holding compatheap's heap API.

    Returns whether anything was installed: False on Windows, where ctypes is
    left alone, and when already installed. ``backend`` defaults to the active one.
    """
    if _is_windows():
        return False
    from ._names import names

    with _lock:
        if _saved:
            return False
        LegacyDLL._backend = backend
        for name, value in names().items():
            _saved[name] = getattr(ctypes, name, _MISSING)
            setattr(ctypes, name, value)
    return True


def uninstall() -> bool:
    """Undo :func:`install`; returns whether there was anything to undo."""
    with _lock:
        if not _saved:
            return False
        for name, value in _saved.items():
            if value is _MISSING:
                delattr(ctypes, name)
            else:
                setattr(ctypes, name, value)
        _saved.clear()
        LegacyDLL._backend = None
    return True


def run(
    target: str, args: List[str], module: bool = False, llp64: bool = True, check_win64: bool = False
) -> Optional[int]:
    """Run a script (or, with ``module=True``, a module) as ``__main__`` with
    :func:`install` in effect, as ``python script.py args`` would run it.

    ``llp64``: the script's own modules see Windows' 4-byte ``c_long``/``c_ulong``.
    ``check_win64``: report where the program would break on 64-bit Windows;
    returns the number of findings then (None otherwise).
    """
    sys.argv = [target, *args]
    if check_win64:
        _check.enable()
    install()
    root = os.getcwd() if module else os.path.dirname(os.path.abspath(target))
    view = _llp64.View([root]) if llp64 and not _is_windows() else None
    init_globals = {"__builtins__": view.namespace} if view is not None else None
    try:
        sys.path.insert(0, root)
        if module:
            runpy.run_module(target, init_globals=init_globals, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, init_globals=init_globals, run_name="__main__")
    finally:
        if view is not None:
            view.close()
        uninstall()
        if check_win64:
            sys.stdout.flush()
            findings = _check.print_report()
    return findings if check_win64 else None
