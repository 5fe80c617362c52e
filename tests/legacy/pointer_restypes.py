import ctypes
from ctypes import POINTER, c_char_p, c_size_t, c_ubyte, c_uint32, c_void_p

kernel32 = ctypes.windll.kernel32  # the DLL
kernel32.GetProcessHeap.restype = c_void_p
heap = kernel32.GetProcessHeap()
kernel32.HeapAlloc.argtypes = [c_void_p, c_uint32, c_size_t]
kernel32.HeapAlloc.restype = POINTER(c_ubyte)
buf = kernel32.HeapAlloc(heap, 8, 16)
buf[0] = 65
buf[1] = 66
print(type(buf).__name__, buf[0], buf[1], buf[2], bool(buf))
kernel32.HeapAlloc.restype = c_char_p
text = kernel32.HeapAlloc(heap, 8, 16)
print(repr(text))
kernel32.HeapAlloc.restype = POINTER(c_uint32 * 4)
arr = kernel32.HeapAlloc(heap, 8, 16)
print(list(arr.contents))
kernel32.HeapFree.argtypes = [c_void_p, c_uint32, c_void_p]
print("free by pointer:", kernel32.HeapFree(heap, 0, ctypes.cast(buf, c_void_p)))
print("free by array pointer:", kernel32.HeapFree(heap, 0, arr))
