import ctypes
from ctypes import wintypes

HEAP_GENERATE_EXCEPTIONS = 0x4
kernel32 = ctypes.windll.kernel32  # the DLL
kernel32.HeapCreate.restype = wintypes.HANDLE
kernel32.HeapCreate.argtypes = [wintypes.DWORD, ctypes.c_size_t, ctypes.c_size_t]
kernel32.HeapAlloc.restype = wintypes.LPVOID
kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
kernel32.HeapReAlloc.restype = wintypes.LPVOID
kernel32.HeapReAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID, ctypes.c_size_t]
heap = kernel32.HeapCreate(0, 0, 0)
for name, call in (
    ("HeapAlloc", lambda: kernel32.HeapAlloc(heap, HEAP_GENERATE_EXCEPTIONS, (1 << 64) - 1)),
    (
        "HeapReAlloc",
        lambda: kernel32.HeapReAlloc(heap, HEAP_GENERATE_EXCEPTIONS, kernel32.HeapAlloc(heap, 0, 8), (1 << 64) - 1),
    ),
):
    try:
        call()
        print(name, "no exception")
    except OSError as e:
        print(name, "OSError winerror", e.winerror, hex(e.winerror & 0xFFFFFFFF))
print("still usable:", kernel32.HeapAlloc(heap, 0, 16) is not None)
kernel32.HeapDestroy(wintypes.HANDLE(heap))
