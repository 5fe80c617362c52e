"""The same program written for 64-bit Windows: nothing to report."""

import ctypes
from ctypes import wintypes

kernel32 = ctypes.windll.kernel32
kernel32.GetProcessHeap.restype = wintypes.HANDLE
kernel32.HeapAlloc.restype = wintypes.LPVOID
kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
kernel32.HeapFree.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID]


class Record(ctypes.Structure):
    _fields_ = [("size", ctypes.c_ulong), ("data", ctypes.c_void_p)]


heap = kernel32.GetProcessHeap()
block = kernel32.HeapAlloc(heap, 0, 64)
rec = Record(64, block)
rec.data = block
print("freed:", kernel32.HeapFree(heap, 0, rec.data))
