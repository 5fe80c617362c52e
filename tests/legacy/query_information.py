import ctypes
from ctypes import wintypes

kernel32 = ctypes.windll.kernel32  # the DLL
kernel32.HeapCreate.restype = wintypes.HANDLE
kernel32.HeapQueryInformation.argtypes = [
    wintypes.HANDLE,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_size_t),
]
heap = kernel32.HeapCreate(0, 0, 0)
info = ctypes.c_ulong()
length = ctypes.c_size_t()
ok = kernel32.HeapQueryInformation(heap, 0, ctypes.byref(info), ctypes.sizeof(info), ctypes.byref(length))
print("query:", ok, info.value, length.value)
ok = kernel32.HeapQueryInformation(heap, 0, None, 0, ctypes.byref(length))
print("no buffer:", ok, kernel32.GetLastError(), length.value)
kernel32.HeapDestroy(wintypes.HANDLE(heap))
