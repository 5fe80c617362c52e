import ctypes
from ctypes import HRESULT, WINFUNCTYPE, oledll

kernel32 = ctypes.WinDLL("kernel32")  # the DLL
print("HRESULT size:", ctypes.sizeof(HRESULT))
print("oledll kernel32:", type(oledll.kernel32).__name__, oledll.kernel32.HeapAlloc.restype is HRESULT)
proto = WINFUNCTYPE(ctypes.c_int, ctypes.c_int)
doubled = proto(lambda x: 2 * x)
print("callback:", doubled(21))
kernel32.GetProcessHeap.restype = ctypes.c_void_p
kernel32.HeapValidate.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
print("validate:", kernel32.HeapValidate(kernel32.GetProcessHeap(), 0, None))
