"""Windows' 4-byte C long for a program's own modules (``compatheap run``).

A Windows program declares ``DWORD``/``LONG`` fields as ``c_ulong``/``c_long``
(directly or through ``ctypes.wintypes``); on 64-bit Linux and macOS those are
8 bytes and its structures get the wrong layout. ``compatheap run`` gives the
script and the modules imported from the script's own folder a view of
``ctypes`` in which ``c_long``/``c_ulong`` are ``c_int32``/``c_uint32`` and
``ctypes.wintypes`` has Windows' sizes. Everything else (the standard library,
installed packages, compatheap) keeps the real ctypes.

How: those modules run with their own ``__builtins__`` whose ``__import__``
hands out the view for ``ctypes`` and ``ctypes.wintypes``.
"""

from __future__ import annotations

import builtins
import ctypes
import importlib.abc
import importlib.machinery
import os
import sys
import types
from typing import Any, Dict, List, Optional, Sequence

from . import _check, _wintypes


class _CtypesView(types.ModuleType):
    """``ctypes`` as a Windows program sees it; whatever is not overridden is the real module's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(ctypes, name)


def _checked_structure(base: Any) -> Any:
    # Under --check-win64: note a pointer-sized value stored in a C long field.
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if name in _long_field_names(type(self)):
            _check.field_check(self, name, value)
        base.__setattr__(self, name, value)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        longs = _long_field_names(type(self))
        names = [f[0] for f in getattr(type(self), "_fields_", ())]
        for name, value in [*zip(names, args), *kwargs.items()]:
            if name in longs:
                _check.field_check(self, name, value)
        base.__init__(self, *args, **kwargs)

    return type(base.__name__, (base,), {"__setattr__": __setattr__, "__init__": __init__, "__module__": "ctypes"})


def _long_field_names(cls: Any) -> List[str]:
    # In the view a C long field is a 4-byte one, as on Windows.
    return [f[0] for f in getattr(cls, "_fields_", ()) if f[1] in (ctypes.c_int32, ctypes.c_uint32)]


def build_view() -> Dict[str, types.ModuleType]:
    """The modules the program's own code gets for ``ctypes`` and ``ctypes.wintypes``."""
    view = _CtypesView("ctypes", ctypes.__doc__)
    view.__dict__.update({k: v for k, v in vars(ctypes).items() if k not in ("__name__", "__doc__")})
    wintypes = _wintypes.build()
    view.__dict__.update(c_long=ctypes.c_int32, c_ulong=ctypes.c_uint32, wintypes=wintypes)
    if _check.active():
        view.__dict__["Structure"] = _checked_structure(ctypes.Structure)
    return {"ctypes": view, "ctypes.wintypes": wintypes}


def make_builtins(modules: Dict[str, types.ModuleType]) -> Dict[str, Any]:
    """A ``__builtins__`` whose ``__import__`` gives ``modules`` for their names."""
    real_import = builtins.__import__
    view = modules["ctypes"]

    def __import__(
        name: str,
        globals: Optional[Dict[str, Any]] = None,
        locals: Optional[Dict[str, Any]] = None,
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> Any:
        module = real_import(name, globals, locals, fromlist, level)
        if level == 0 and (name == "ctypes" or name.startswith("ctypes.")):
            if fromlist and name in modules:
                return modules[name]
            if not fromlist or name == "ctypes":
                return view
        return module

    namespace = dict(vars(builtins))
    namespace["__import__"] = __import__
    return namespace


class _OwnModuleFinder(importlib.abc.MetaPathFinder):
    """Loads the program's own modules (under ``roots``) with the view's builtins."""

    def __init__(self, roots: Sequence[str], namespace: Dict[str, Any]) -> None:
        self._roots = [os.path.abspath(root) + os.sep for root in roots]
        self._namespace = namespace

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname == "compatheap" or fullname.startswith("compatheap."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        origin = getattr(spec, "origin", None)
        if spec is None or not origin or not origin.endswith(".py"):
            return None
        if not any(os.path.abspath(origin).startswith(root) for root in self._roots):
            return None
        if "site-packages" in origin or "dist-packages" in origin:
            return None
        spec.loader = _ViewLoader(fullname, origin, self._namespace)
        return spec


class _ViewLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, namespace: Dict[str, Any]) -> None:
        super().__init__(fullname, path)
        self._namespace = namespace

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = self._namespace
        super().exec_module(module)


class View:
    """The view in effect for one run: its builtins, and the finder to remove afterwards."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.namespace = make_builtins(build_view())
        self._finder = _OwnModuleFinder(roots, self.namespace)
        sys.meta_path.insert(0, self._finder)

    def close(self) -> None:
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
