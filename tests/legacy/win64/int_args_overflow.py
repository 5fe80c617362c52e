"""Pointers passed as plain ints to functions without argtypes."""

import ctypes

kernel32 = ctypes.windll.kernel32
kernel32.GetProcessHeap.restype = ctypes.c_void_p
kernel32.HeapAlloc.restype = ctypes.c_void_p
heap = kernel32.GetProcessHeap()
try:
    kernel32.HeapAlloc(heap, 0, 10)  # WIN64
except ctypes.ArgumentError:
    print("refused")
try:
    kernel32.HeapValidate(heap, 0, None)  # WIN64
except ctypes.ArgumentError:
    print("refused")
print("small ints are fine:", kernel32.HeapValidate(ctypes.c_void_p(heap), 0, None))
