"""ctypes structures with the Win32 layout.

Built from fixed-width types: ``ctypes.wintypes.DWORD`` is a C ``long`` on
POSIX, 8 bytes on 64-bit Linux, which would break the layout.
"""

from __future__ import annotations

import ctypes

__all__ = ["HEAP_SUMMARY", "PROCESS_HEAP_ENTRY"]


class _PHE_BLOCK(ctypes.Structure):
    _fields_ = [
        ("hMem", ctypes.c_void_p),
        ("dwReserved", ctypes.c_uint32 * 3),
    ]


class _PHE_REGION(ctypes.Structure):
    _fields_ = [
        ("dwCommittedSize", ctypes.c_uint32),
        ("dwUnCommittedSize", ctypes.c_uint32),
        ("lpFirstBlock", ctypes.c_void_p),
        ("lpLastBlock", ctypes.c_void_p),
    ]


class _PHE_UNION(ctypes.Union):
    _fields_ = [("Block", _PHE_BLOCK), ("Region", _PHE_REGION)]


class PROCESS_HEAP_ENTRY(ctypes.Structure):
    """One entry of a :func:`HeapWalk`; ``lpData = None`` starts a walk."""

    _anonymous_ = ("_u",)
    _fields_ = [
        ("lpData", ctypes.c_void_p),
        ("cbData", ctypes.c_uint32),
        ("cbOverhead", ctypes.c_uint8),
        ("iRegionIndex", ctypes.c_uint8),
        ("wFlags", ctypes.c_uint16),
        ("_u", _PHE_UNION),
    ]


class HEAP_SUMMARY(ctypes.Structure):
    """Output of :func:`HeapSummary`; set ``cb`` to ``sizeof(HEAP_SUMMARY)``."""

    _fields_ = [
        ("cb", ctypes.c_uint32),
        ("cbAllocated", ctypes.c_size_t),
        ("cbCommitted", ctypes.c_size_t),
        ("cbReserved", ctypes.c_size_t),
        ("cbMaxReserve", ctypes.c_size_t),
    ]
