"""Handles and pointers through the default c_int restype."""

import ctypes

kernel32 = ctypes.windll.kernel32
kernel32.HeapAlloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t]
heap = kernel32.GetProcessHeap()  # WIN64
block = kernel32.HeapAlloc(ctypes.c_void_p(heap), 0, 10)  # WIN64
size_holder = kernel32.HeapCreate(0, 0, 0)  # WIN64
kernel32.HeapSize.restype = ctypes.c_long
kernel32.HeapSize(ctypes.c_void_p(heap), 0, None)  # WIN64
print("done")
