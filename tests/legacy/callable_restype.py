import ctypes
from ctypes import wintypes

kernel32 = ctypes.windll.kernel32  # the DLL


def nonzero(value):
    if value == 0:
        raise ctypes.WinError()
    return bool(value)


kernel32.GetProcessHeap.restype = ctypes.c_void_p
heap = kernel32.GetProcessHeap()
kernel32.HeapAlloc.restype = ctypes.c_void_p
kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
kernel32.HeapFree.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID]
kernel32.HeapFree.restype = nonzero
block = kernel32.HeapAlloc(heap, 0, 32)
print("free:", kernel32.HeapFree(heap, 0, block))
kernel32.HeapValidate.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPCVOID]
kernel32.HeapValidate.restype = lambda r: "valid" if r else "invalid"
print("whole heap:", kernel32.HeapValidate(heap, 0, None))
kernel32.HeapDestroy.argtypes = [wintypes.HANDLE]
kernel32.HeapDestroy.restype = nonzero
try:
    kernel32.HeapDestroy(heap)
except OSError as e:
    print("process heap:", type(e).__name__, e.winerror)
