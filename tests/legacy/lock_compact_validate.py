import ctypes
from ctypes import wintypes

kernel32 = ctypes.windll.kernel32  # the DLL
for name, restype, argtypes in (
    ("HeapCreate", wintypes.HANDLE, [wintypes.DWORD, ctypes.c_size_t, ctypes.c_size_t]),
    ("HeapAlloc", wintypes.LPVOID, [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]),
    ("HeapFree", wintypes.BOOL, [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID]),
    ("HeapLock", wintypes.BOOL, [wintypes.HANDLE]),
    ("HeapUnlock", wintypes.BOOL, [wintypes.HANDLE]),
    ("HeapValidate", wintypes.BOOL, [wintypes.HANDLE, wintypes.DWORD, wintypes.LPCVOID]),
    ("HeapCompact", ctypes.c_size_t, [wintypes.HANDLE, wintypes.DWORD]),
    ("HeapDestroy", wintypes.BOOL, [wintypes.HANDLE]),
):
    func = getattr(kernel32, name)
    func.restype, func.argtypes = restype, argtypes
heap = kernel32.HeapCreate(0, 0, 0)
block = kernel32.HeapAlloc(heap, 0, 64)
print("lock:", kernel32.HeapLock(heap), "unlock:", kernel32.HeapUnlock(heap))
print("valid block:", kernel32.HeapValidate(heap, 0, block), "heap:", kernel32.HeapValidate(heap, 0, None))
print("free:", kernel32.HeapFree(heap, 0, block), "freed valid:", kernel32.HeapValidate(heap, 0, block))
print("compact >= 0:", kernel32.HeapCompact(heap, 0) >= 0)
print("destroy:", kernel32.HeapDestroy(heap))
