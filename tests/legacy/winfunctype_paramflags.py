import ctypes
from ctypes import POINTER, WINFUNCTYPE, c_size_t
from ctypes.wintypes import BOOL, BYTE, DWORD, HANDLE, LPVOID, WORD

kernel32 = ctypes.windll.kernel32  # the DLL


class PROCESS_HEAP_ENTRY(ctypes.Structure):
    _fields_ = [
        ("lpData", LPVOID),
        ("cbData", DWORD),
        ("cbOverhead", BYTE),
        ("iRegionIndex", BYTE),
        ("wFlags", WORD),
        ("_rest", BYTE * 24),
    ]


HeapCreate = WINFUNCTYPE(HANDLE, DWORD, c_size_t, c_size_t)(
    ("HeapCreate", kernel32), ((1, "flOptions", 0), (1, "dwInitialSize", 0), (1, "dwMaximumSize", 0))
)
HeapAlloc = WINFUNCTYPE(LPVOID, HANDLE, DWORD, c_size_t)(
    ("HeapAlloc", kernel32), ((1, "hHeap"), (1, "dwFlags", 0), (1, "dwBytes"))
)
HeapWalk = WINFUNCTYPE(BOOL, HANDLE, POINTER(PROCESS_HEAP_ENTRY))(
    ("HeapWalk", kernel32), ((1, "hHeap"), (1, "lpEntry"))
)
HeapDestroy = WINFUNCTYPE(BOOL, HANDLE)(("HeapDestroy", kernel32), ((1, "hHeap"),))

heap = HeapCreate()
for n in (10, 20, 30):
    HeapAlloc(heap, dwBytes=n)
HeapAlloc(hHeap=heap, dwFlags=8, dwBytes=40)
entry = PROCESS_HEAP_ENTRY()
sizes = []
while HeapWalk(hHeap=heap, lpEntry=entry):
    if entry.wFlags & 4:
        sizes.append(entry.cbData)
print("busy:", sorted(sizes))
try:
    HeapAlloc(heap)
except TypeError as e:
    print("missing:", e)
HeapQueryInformation = WINFUNCTYPE(BOOL, HANDLE, ctypes.c_int, ctypes.c_void_p, c_size_t, POINTER(c_size_t))(
    ("HeapQueryInformation", kernel32),
    (
        (1, "HeapHandle"),
        (1, "HeapInformationClass", 0),
        (1, "HeapInformation"),
        (1, "HeapInformationLength"),
        (2, "ReturnLength"),
    ),
)
info = ctypes.c_uint32(7)
print("out parameter:", HeapQueryInformation(heap, HeapInformation=ctypes.byref(info), HeapInformationLength=4))
print("compatibility:", info.value)
seen = []
HeapQueryInformation.errcheck = lambda result, func, args: seen.append((result, len(args))) or args
print("with errcheck returning args:", HeapQueryInformation(heap, 0, ctypes.byref(info), 4), seen)
print("destroyed:", HeapDestroy(heap))
