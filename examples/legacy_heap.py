"""Windows ctypes code using the kernel32 heap, written as it would be for Windows.

On Windows: ``python legacy_heap.py``. Elsewhere, unchanged:
``python -m compatheap run legacy_heap.py``.
"""

import ctypes
import sys
from ctypes import windll, wintypes

# use_last_error: ctypes keeps each call's last error for get_last_error().
kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
windll.kernel32.GetProcessHeap.restype = wintypes.HANDLE

HEAP_ZERO_MEMORY = 0x00000008
HEAP_REALLOC_IN_PLACE_ONLY = 0x00000010
PROCESS_HEAP_ENTRY_BUSY = 0x0004
ERROR_NOT_ENOUGH_MEMORY = 8


class PROCESS_HEAP_ENTRY(ctypes.Structure):
    _fields_ = [
        ("lpData", wintypes.LPVOID),
        ("cbData", wintypes.DWORD),
        ("cbOverhead", wintypes.BYTE),
        ("iRegionIndex", wintypes.BYTE),
        ("wFlags", wintypes.WORD),
        ("hMem", wintypes.HANDLE),
        ("dwReserved", wintypes.DWORD * 3),
    ]


kernel32.HeapCreate.argtypes = [wintypes.DWORD, ctypes.c_size_t, ctypes.c_size_t]
kernel32.HeapCreate.restype = wintypes.HANDLE
kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
kernel32.HeapAlloc.restype = wintypes.LPVOID
kernel32.HeapReAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID, ctypes.c_size_t]
kernel32.HeapReAlloc.restype = wintypes.LPVOID
kernel32.HeapSize.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPCVOID]
kernel32.HeapSize.restype = ctypes.c_size_t
kernel32.HeapFree.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID]
kernel32.HeapFree.restype = wintypes.BOOL
kernel32.HeapWalk.argtypes = [wintypes.HANDLE, ctypes.POINTER(PROCESS_HEAP_ENTRY)]
kernel32.HeapWalk.restype = wintypes.BOOL
kernel32.HeapDestroy.argtypes = [wintypes.HANDLE]
kernel32.HeapDestroy.restype = wintypes.BOOL


def check(result, func, args):
    if not result:
        raise ctypes.WinError(ctypes.get_last_error())
    return result


kernel32.HeapAlloc.errcheck = check


def main():
    print("process heap:", bool(windll.kernel32.GetProcessHeap()))
    heap = kernel32.HeapCreate(0, 0, 0)
    if not heap:
        raise ctypes.WinError()

    block = kernel32.HeapAlloc(heap, HEAP_ZERO_MEMORY, 100)
    print("zeroed:", ctypes.string_at(block, 100) == bytes(100))
    ctypes.memmove(block, b"legacy code", 11)

    block = kernel32.HeapReAlloc(heap, 0, block, 5000)
    print("kept:", ctypes.string_at(block, 11).decode())
    print("size:", kernel32.HeapSize(heap, 0, block))

    if not kernel32.HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, block, sys.maxsize):
        print("in place refused, error", kernel32.GetLastError())

    entry = PROCESS_HEAP_ENTRY()
    busy = []
    while kernel32.HeapWalk(heap, ctypes.byref(entry)):
        if entry.wFlags & PROCESS_HEAP_ENTRY_BUSY:
            busy.append(entry.cbData)
    print("walk:", busy)

    try:
        kernel32.HeapAlloc(heap, 0, sys.maxsize)
    except OSError as exc:
        print("too large, winerror", exc.winerror, exc.winerror == ERROR_NOT_ENOUGH_MEMORY)

    print("freed:", bool(kernel32.HeapFree(heap, 0, block)))
    print("destroyed:", bool(kernel32.HeapDestroy(heap)))
    print("args:", sys.argv[1:])


if __name__ == "__main__":
    main()
