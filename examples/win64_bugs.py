"""Windows ctypes heap code with the classic 64-bit bugs (it worked on 32-bit Windows).

    python -m compatheap run --check-win64 examples/win64_bugs.py

lists the lines marked WIN64 below: on 64-bit Windows each one cuts a pointer
to 32 bits or raises ArgumentError. The comments say the fix.
"""

import ctypes
from ctypes import wintypes

kernel32 = ctypes.windll.kernel32


class BUFFER(ctypes.Structure):
    _fields_ = [("size", wintypes.DWORD), ("data", wintypes.LONG)]  # fix: ("data", ctypes.c_void_p)


heap = kernel32.GetProcessHeap()  # WIN64 (fix: kernel32.GetProcessHeap.restype = wintypes.HANDLE)
kernel32.GetProcessHeap.restype = wintypes.HANDLE
heap = kernel32.GetProcessHeap()
try:
    block = kernel32.HeapAlloc(heap, 0, 64)  # WIN64 (fix: HeapAlloc.argtypes, restype = wintypes.LPVOID)
except ctypes.ArgumentError as error:
    print("refused:", error)
kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
kernel32.HeapAlloc.restype = wintypes.LPVOID
block = kernel32.HeapAlloc(heap, 0, 64)
buffer = BUFFER(64)
buffer.data = block  # WIN64 (a LONG holds 32 bits)
print("stored:", buffer.size)
