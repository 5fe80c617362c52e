import ctypes
from ctypes import wintypes

HEAP_ZERO_MEMORY, HEAP_REALLOC_IN_PLACE_ONLY = 0x8, 0x10
kernel32 = ctypes.windll.kernel32  # the DLL
k = kernel32
k.HeapCreate.restype = wintypes.HANDLE
k.HeapAlloc.restype = k.HeapReAlloc.restype = wintypes.LPVOID
k.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
k.HeapReAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID, ctypes.c_size_t]
k.HeapSize.restype = ctypes.c_size_t
k.HeapSize.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPCVOID]
heap = k.HeapCreate(0, 0, 0)
block = k.HeapAlloc(heap, 0, 3 * 0x40000)
ctypes.memset(block, 0x5A, 100)
small = k.HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, block, 0x60000)
print("shrunk in place:", small == block, k.HeapSize(heap, 0, block))
grown = k.HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, block, 0x80000)
print("grown in place:", grown == block, k.HeapSize(heap, 0, block))
fail = k.HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, block, 1 << 40)
print("refused:", fail, k.GetLastError(), k.HeapSize(heap, 0, block), ctypes.string_at(block, 3))
moved = k.HeapReAlloc(heap, HEAP_ZERO_MEMORY, k.HeapAlloc(heap, 0, 10), 100)
print("zero tail:", ctypes.string_at(moved + 10, 90) == bytes(90))
k.HeapDestroy(wintypes.HANDLE(heap))
