"""A stand-in for ``ctypes.windll.kernel32`` that holds the heap API.

``from compatheap import kernel32`` then ``kernel32.HeapAlloc(...)``: the same
functions as the ``compatheap`` package, on the active backend.
"""

from __future__ import annotations

from typing import Any

from . import (
    GetLastError,
    GetProcessHeap,
    GetProcessHeaps,
    HeapAlloc,
    HeapCompact,
    HeapCreate,
    HeapDestroy,
    HeapFree,
    HeapLock,
    HeapQueryInformation,
    HeapReAlloc,
    HeapSetInformation,
    HeapSize,
    HeapSummary,
    HeapUnlock,
    HeapValidate,
    HeapWalk,
    SetLastError,
)

__all__ = [
    "GetLastError",
    "GetProcessHeap",
    "GetProcessHeaps",
    "HeapAlloc",
    "HeapCompact",
    "HeapCreate",
    "HeapDestroy",
    "HeapFree",
    "HeapLock",
    "HeapQueryInformation",
    "HeapReAlloc",
    "HeapSetInformation",
    "HeapSize",
    "HeapSummary",
    "HeapUnlock",
    "HeapValidate",
    "HeapWalk",
    "SetLastError",
]


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"compatheap.kernel32 has no {name!r}: only the kernel32 heap API ({', '.join(__all__)}) is provided"
    )
