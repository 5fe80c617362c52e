import ctypes
from ctypes import byref, sizeof

kernel32 = ctypes.windll.kernel32  # the DLL


class _BLOCK(ctypes.Structure):
    _fields_ = [("hMem", ctypes.c_void_p), ("dwReserved", ctypes.c_uint32 * 3)]


class _REGION(ctypes.Structure):
    _fields_ = [
        ("dwCommittedSize", ctypes.c_uint32),
        ("dwUnCommittedSize", ctypes.c_uint32),
        ("lpFirstBlock", ctypes.c_void_p),
        ("lpLastBlock", ctypes.c_void_p),
    ]


class _U(ctypes.Union):
    _fields_ = [("Block", _BLOCK), ("Region", _REGION)]


class PROCESS_HEAP_ENTRY(ctypes.Structure):
    _anonymous_ = ("u",)
    _fields_ = [
        ("lpData", ctypes.c_void_p),
        ("cbData", ctypes.c_uint32),
        ("cbOverhead", ctypes.c_ubyte),
        ("iRegionIndex", ctypes.c_ubyte),
        ("wFlags", ctypes.c_ushort),
        ("u", _U),
    ]


print("sizeof:", sizeof(PROCESS_HEAP_ENTRY))
kernel32.HeapCreate.restype = ctypes.c_void_p
kernel32.HeapAlloc.restype = ctypes.c_void_p
kernel32.HeapAlloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t]
kernel32.HeapWalk.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
heap = kernel32.HeapCreate(0, 0, 0)
kernel32.HeapAlloc(heap, 0, 1234)
e = PROCESS_HEAP_ENTRY()
kinds = []
while kernel32.HeapWalk(ctypes.c_void_p(heap), byref(e)):
    if e.wFlags & 1:
        kinds.append(("region", e.lpData == heap, e.Region.dwCommittedSize > 0))
    elif e.wFlags & 4:
        kinds.append(("busy", e.cbData))
print(kinds[0], [k for k in kinds if k[0] == "busy"])
print("end:", kernel32.GetLastError())
kernel32.HeapDestroy(ctypes.c_void_p(heap))
