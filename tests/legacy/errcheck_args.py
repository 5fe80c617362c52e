import ctypes
from ctypes import wintypes

kernel32 = ctypes.WinDLL("kernel32")  # the DLL
seen = []


def keep_going(result, func, args):
    seen.append((func.__name__, len(args)))
    return args


def replace(result, func, args):
    return ("replaced", result is not None)


kernel32.GetProcessHeap.restype = wintypes.HANDLE
kernel32.GetProcessHeap.errcheck = keep_going
heap = kernel32.GetProcessHeap()
print("heap is int:", isinstance(heap, int))
kernel32.HeapAlloc.restype = ctypes.c_void_p
kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
kernel32.HeapAlloc.errcheck = replace
print(kernel32.HeapAlloc(heap, 0, 5))
del kernel32.HeapAlloc.errcheck
print("after del:", isinstance(kernel32.HeapAlloc(heap, 0, 5), int))
print(seen)
try:
    kernel32.HeapFree.errcheck = 42
except TypeError as e:
    print("TypeError:", e)
