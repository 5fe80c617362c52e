import ctypes

kernel32 = ctypes.PyDLL("kernel32")  # the DLL

kernel32.GetProcessHeap.restype = ctypes.c_void_p
kernel32.HeapAlloc.restype = ctypes.c_void_p
kernel32.HeapAlloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t]
kernel32.HeapSize.restype = ctypes.c_size_t
kernel32.HeapSize.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
kernel32.HeapFree.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
heap = kernel32.GetProcessHeap()
block = kernel32.HeapAlloc(heap, 0, 300)
print("isinstance CDLL:", isinstance(kernel32, ctypes.CDLL))
print("size:", kernel32.HeapSize(heap, 0, block))
print("free:", kernel32.HeapFree(heap, 0, block))
