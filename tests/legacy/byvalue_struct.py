import ctypes
from ctypes import wintypes

kernel32 = ctypes.WinDLL("kernel32")  # the DLL


class PROCESS_HEAP_ENTRY(ctypes.Structure):
    _fields_ = [
        ("lpData", ctypes.c_void_p),
        ("cbData", ctypes.c_uint32),
        ("cbOverhead", ctypes.c_uint8),
        ("iRegionIndex", ctypes.c_uint8),
        ("wFlags", ctypes.c_uint16),
        ("_rest", ctypes.c_uint8 * 24),
    ]


k = kernel32
k.HeapCreate.restype = wintypes.HANDLE
k.HeapCreate.argtypes = [wintypes.DWORD, ctypes.c_size_t, ctypes.c_size_t]
k.HeapAlloc.restype = ctypes.c_void_p
k.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
k.HeapWalk.argtypes = [wintypes.HANDLE, ctypes.POINTER(PROCESS_HEAP_ENTRY)]
k.HeapDestroy.argtypes = [wintypes.HANDLE]
heap = k.HeapCreate(0, 0, 0)
for n in (100, 200):
    k.HeapAlloc(heap, 0, n)
entry = PROCESS_HEAP_ENTRY()
busy = []
while k.HeapWalk(heap, entry):  # by value: ctypes passes a pointer
    if entry.wFlags & 4:
        busy.append(entry.cbData)
print("by value:", sorted(busy))
entry = PROCESS_HEAP_ENTRY()
count = 0
while k.HeapWalk(heap, ctypes.pointer(entry)):
    count += entry.wFlags & 4 == 4
print("via pointer:", count)
arr = (PROCESS_HEAP_ENTRY * 1)()
print("array ok:", k.HeapWalk(heap, arr), arr[0].lpData is not None)


class Other(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint64 * 5)]


try:
    k.HeapWalk(heap, Other())
except ctypes.ArgumentError as e:
    print("other struct:", type(e).__name__)
print("last error after walk:", k.GetLastError() in (0, 259))
print("destroyed:", k.HeapDestroy(heap))
