import ctypes
from ctypes import wintypes

kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # the DLL

CreateFileW = kernel32.CreateFileW
CreateFileW.restype = wintypes.HANDLE
CreateFileW.argtypes = [
    wintypes.LPCWSTR,
    wintypes.DWORD,
    wintypes.DWORD,
    wintypes.LPVOID,
    wintypes.DWORD,
    wintypes.DWORD,
    wintypes.HANDLE,
]
CloseHandle = kernel32.CloseHandle
VerSetConditionMask = kernel32.VerSetConditionMask
VerSetConditionMask.restype = ctypes.c_ulonglong
GlobalMemoryStatusEx = kernel32.GlobalMemoryStatusEx
print("bound:", CreateFileW.__name__, CloseHandle.__name__, VerSetConditionMask.__name__)
print("cached:", kernel32.CreateFileW is CreateFileW, kernel32["CreateFileW"] is CreateFileW)
try:
    kernel32.CreateFileZ  # noqa: B018
except AttributeError as e:
    print("missing:", e)
print("has HeapAlloc:", hasattr(kernel32, "HeapAlloc"), "has malloc:", hasattr(kernel32, "malloc"))
ntdll = ctypes.WinDLL("ntdll")
print("ntdll:", hasattr(ntdll, "RtlAllocateHeap"), hasattr(ntdll, "HeapAlloc"))
