import ctypes
from ctypes import wintypes

kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # the DLL

kernel32.HeapAlloc.restype = ctypes.c_void_p
kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
kernel32.HeapFree.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID]
kernel32.GetProcessHeap.restype = wintypes.HANDLE
heap = kernel32.GetProcessHeap()
print("set returns old:", ctypes.set_last_error(0))
print("alloc ok:", kernel32.HeapAlloc(heap, 0, 10) is not None, ctypes.get_last_error())
print("alloc fail:", kernel32.HeapAlloc(heap, 0, (1 << 64) - 1), ctypes.get_last_error())
print("set:", ctypes.set_last_error(1234), ctypes.get_last_error())
