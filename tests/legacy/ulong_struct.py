import ctypes
from ctypes import c_long, c_size_t, c_ubyte, c_ulong, c_ushort, c_void_p, sizeof

kernel32 = ctypes.windll.kernel32  # the DLL


class PROCESS_HEAP_ENTRY(ctypes.Structure):
    _fields_ = [
        ("lpData", c_void_p),
        ("cbData", c_ulong),
        ("cbOverhead", c_ubyte),
        ("iRegionIndex", c_ubyte),
        ("wFlags", c_ushort),
        ("hMem", c_void_p),
        ("dwReserved", c_ulong * 3),
        ("pad", c_long),
    ]


class HEAP_SUMMARY(ctypes.Structure):
    _fields_ = [
        ("cb", c_ulong),
        ("cbAllocated", c_size_t),
        ("cbCommitted", c_size_t),
        ("cbReserved", c_size_t),
        ("cbMaxReserve", c_size_t),
    ]


print("sizes:", sizeof(PROCESS_HEAP_ENTRY), sizeof(HEAP_SUMMARY), sizeof(c_ulong))
kernel32.HeapCreate.restype = c_void_p
kernel32.HeapAlloc.restype = c_void_p
kernel32.HeapAlloc.argtypes = [c_void_p, c_ulong, c_size_t]
kernel32.HeapWalk.argtypes = [c_void_p, ctypes.POINTER(PROCESS_HEAP_ENTRY)]
heap = kernel32.HeapCreate(0, 0, 0)
for n in (5, 70000):
    kernel32.HeapAlloc(heap, 0, n)
entry = PROCESS_HEAP_ENTRY()
busy = []
while kernel32.HeapWalk(heap, ctypes.byref(entry)):
    if entry.wFlags & 4:
        busy.append(entry.cbData)
print("busy:", sorted(busy))
kernel32.HeapDestroy(c_void_p(heap))
