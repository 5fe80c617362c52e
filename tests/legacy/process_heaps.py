import ctypes
from ctypes import wintypes

kernel32 = ctypes.windll.kernel32  # the DLL
kernel32.GetProcessHeaps.restype = wintypes.DWORD
kernel32.GetProcessHeaps.argtypes = [wintypes.DWORD, ctypes.POINTER(wintypes.HANDLE)]
kernel32.GetProcessHeap.restype = wintypes.HANDLE
kernel32.HeapCreate.restype = wintypes.HANDLE
kernel32.HeapDestroy.argtypes = [wintypes.HANDLE]
before = kernel32.GetProcessHeaps(0, None)
mine = kernel32.HeapCreate(0, 0, 0)
total = kernel32.GetProcessHeaps(0, None)
print("one more:", total - before)
handles = (wintypes.HANDLE * total)()
print("filled:", kernel32.GetProcessHeaps(total, handles) == total)
print("first is process heap:", handles[0] == kernel32.GetProcessHeap())
print("mine listed:", mine in list(handles))
kernel32.HeapDestroy(mine)
print("after destroy:", kernel32.GetProcessHeaps(0, None) - before)
