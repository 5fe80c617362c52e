"""A pointer kept in a LONG/DWORD structure field."""

import ctypes

kernel32 = ctypes.windll.kernel32
kernel32.GetProcessHeap.restype = ctypes.c_void_p
kernel32.HeapAlloc.restype = ctypes.c_void_p
kernel32.HeapAlloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t]


class Record(ctypes.Structure):
    _fields_ = [("size", ctypes.c_ulong), ("data", ctypes.c_long)]


heap = kernel32.GetProcessHeap()
block = kernel32.HeapAlloc(heap, 0, 64)
rec = Record()
rec.size = 64
rec.data = block  # WIN64
other = Record(64, block)  # WIN64
print("size:", rec.size)
