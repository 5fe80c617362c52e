import ctypes
from ctypes import CDLL, WinDLL, cdll, windll

kernel32 = windll.LoadLibrary("kernel32")  # the DLL
names = [
    WinDLL("KERNEL32.DLL"),
    CDLL("kernel32"),
    cdll.LoadLibrary(r"C:\Windows\System32\kernel32.dll"),
    windll.KERNEL32,
    kernel32,
]
for dll in names:
    dll.GetProcessHeap.restype = ctypes.c_void_p
    dll.HeapSize.restype = ctypes.c_size_t
    dll.HeapSize.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
    dll.HeapAlloc.restype = ctypes.c_void_p
    dll.HeapAlloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t]
    h = dll.GetProcessHeap()
    print(type(dll).__name__, dll.HeapSize(h, 0, dll.HeapAlloc(h, 0, 77)))
print("loader caches:", windll.kernel32 is windll.kernel32, windll.kernel32 is windll.KERNEL32)
print("fresh functions:", WinDLL("kernel32").HeapAlloc is WinDLL("kernel32").HeapAlloc)
print("default restype is c_int:", WinDLL("kernel32").HeapAlloc.restype is ctypes.c_int)
