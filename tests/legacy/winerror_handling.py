import ctypes
from ctypes import wintypes

kernel32 = ctypes.windll.kernel32  # the DLL

for code in (2, 5, 6, 8, 87, 122, 259, 998, 0, 54321):
    err = ctypes.WinError(code)
    print(code, type(err).__name__, err.errno, err.winerror, str(err))
    print("  ", ctypes.FormatError(code))
err = ctypes.WinError(8, "custom text")
print(err.strerror, err.winerror, err)
try:
    raise ctypes.WinError(2)
except FileNotFoundError as e:
    print("caught as FileNotFoundError:", e.winerror)
kernel32.HeapAlloc.restype = ctypes.c_void_p
kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
kernel32.GetProcessHeap.restype = wintypes.HANDLE
if not kernel32.HeapAlloc(kernel32.GetProcessHeap(), 0, (1 << 64) - 1):
    e = ctypes.WinError()
    print("from last error:", e.winerror, isinstance(e, MemoryError), e)
