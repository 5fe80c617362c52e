"""ctypes structures with the Win32 layout.

Built from fixed-width types: ``ctypes.wintypes.DWORD`` is a C ``long`` on
POSIX, 8 bytes on 64-bit Linux, which would break the layout.
"""

from __future__ import annotations

import ctypes

__all__ = ["HEAP_PROTOTYPES", "HEAP_SUMMARY", "PROCESS_HEAP_ENTRY"]


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


_vp, _dw, _sz, _bool = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_int

#: The heap functions' Win32 prototypes (with 64-bit or 32-bit sizes as this
#: process has them): name -> (restype, argtypes).
HEAP_PROTOTYPES = {
    "GetProcessHeap": (_vp, ()),
    "GetProcessHeaps": (_dw, (_dw, ctypes.POINTER(_vp))),
    "HeapCreate": (_vp, (_dw, _sz, _sz)),
    "HeapDestroy": (_bool, (_vp,)),
    "HeapAlloc": (_vp, (_vp, _dw, _sz)),
    "HeapReAlloc": (_vp, (_vp, _dw, _vp, _sz)),
    "HeapFree": (_bool, (_vp, _dw, _vp)),
    "HeapSize": (_sz, (_vp, _dw, _vp)),
    "HeapValidate": (_bool, (_vp, _dw, _vp)),
    "HeapCompact": (_sz, (_vp, _dw)),
    "HeapLock": (_bool, (_vp,)),
    "HeapUnlock": (_bool, (_vp,)),
    "HeapWalk": (_bool, (_vp, ctypes.POINTER(PROCESS_HEAP_ENTRY))),
    "HeapSummary": (_bool, (_vp, _dw, ctypes.POINTER(HEAP_SUMMARY))),
    "HeapQueryInformation": (_bool, (_vp, _dw, _vp, _sz, ctypes.POINTER(_sz))),
    "HeapSetInformation": (_bool, (_vp, _dw, _vp, _sz)),
}
