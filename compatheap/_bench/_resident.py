"""This process's resident memory, for figure 6b (and tests that watch memory go back)."""

from __future__ import annotations

import ctypes
import os
from typing import Optional


def resident_bytes() -> Optional[int]:
    """This process's resident memory in bytes, or None where it cannot be read."""
    windll = getattr(ctypes, "WinDLL", None)
    if windll is not None:

        class _Counters(ctypes.Structure):
            _fields_ = [("cb", ctypes.c_uint32), ("PageFaultCount", ctypes.c_uint32)] + [
                (name, ctypes.c_size_t)
                for name in (
                    "PeakWorkingSetSize",
                    "WorkingSetSize",
                    "QuotaPeakPagedPoolUsage",
                    "QuotaPagedPoolUsage",
                    "QuotaPeakNonPagedPoolUsage",
                    "QuotaNonPagedPoolUsage",
                    "PagefileUsage",
                    "PeakPagefileUsage",
                )
            ]

        kernel32 = windll("kernel32")
        query = kernel32.K32GetProcessMemoryInfo
        query.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Counters), ctypes.c_uint32]
        query.restype = ctypes.c_int
        kernel32.GetCurrentProcess.restype = ctypes.c_void_p
        counters = _Counters(cb=ctypes.sizeof(_Counters))
        if not query(kernel32.GetCurrentProcess(), ctypes.byref(counters), counters.cb):
            return None
        return int(counters.WorkingSetSize)
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
