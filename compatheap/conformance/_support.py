"""Helpers shared by the conformance tests."""

from __future__ import annotations

import ctypes
import os
from typing import Any, List, Tuple

import compatheap
from compatheap import backends
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._native import Native

#: Environment variable restricting the run to some backends (comma-separated).
ENV_BACKENDS = "COMPATHEAP_CONFORMANCE_BACKENDS"

#: Emulated variants run in addition to the real backends: the fallbacks
#: macOS and the BSDs take (no mremap, no malloc_usable_size), forced here.
VARIANTS = {"emulated-fallback": "emulated"}

_instances: dict = {}


def backend_params() -> List[str]:
    """The backend names the suite is parametrised over."""
    names = backends.available()
    params = list(names)
    params += [variant for variant, base in VARIANTS.items() if base in names]
    wanted = os.environ.get(ENV_BACKENDS)
    if wanted:
        chosen = [w.strip() for w in wanted.split(",") if w.strip()]
        params = [p for p in params if p in chosen]
    return params


def make_backend(param: str) -> compatheap.HeapBackend:
    if param == "emulated-fallback":
        if param not in _instances:
            _instances[param] = EmulatedBackend(native=Native(use_mremap=False, use_usable_size=False))
        return _instances[param]
    return backends.get(param)


def base_name(param: str) -> str:
    return VARIANTS.get(param, param)


def is_wine() -> bool:
    """Whether the real kernel32 here is Wine's (it exports wine_get_version)."""
    windll = getattr(ctypes, "WinDLL", None)
    if windll is None:
        return False
    try:
        return hasattr(windll("ntdll"), "wine_get_version")
    except OSError:
        return False


def walk(k32: Any, heap: int) -> List[Tuple[int, int, int, int]]:
    """A whole HeapWalk as ``(lpData, cbData, cbOverhead, wFlags)`` tuples."""
    entry = compatheap.PROCESS_HEAP_ENTRY()
    entries = []
    while k32.HeapWalk(heap, ctypes.byref(entry)):
        entries.append((entry.lpData or 0, entry.cbData, entry.cbOverhead, entry.wFlags))
        if len(entries) > 1_000_000:
            raise AssertionError("HeapWalk does not end")
    assert k32.GetLastError() == compatheap.ERROR_NO_MORE_ITEMS
    return entries


def write(address: int, data: bytes) -> None:
    ctypes.memmove(address, data, len(data))


def read(address: int, length: int) -> bytes:
    return ctypes.string_at(address, length)


def pattern(length: int, seed: int = 0) -> bytes:
    """Recognisable, non-zero bytes."""
    return bytes((seed + i * 7 + 1) % 251 + 1 for i in range(length))
