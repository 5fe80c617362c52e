import ctypes

kernel32 = ctypes.windll.kernel32  # the DLL
kernel32.HeapCreate.restype = ctypes.c_void_p
kernel32.HeapAlloc.restype = ctypes.c_void_p
kernel32.HeapAlloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t]
kernel32.HeapFree.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
kernel32.HeapSize.restype = ctypes.c_size_t
kernel32.HeapSize.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
heap = kernel32.HeapCreate(0, 0, 0)
blocks = [kernel32.HeapAlloc(heap, 0, n) for n in range(0, 200, 25)]
print("sizes:", [kernel32.HeapSize(heap, 0, b) for b in blocks])
print("free:", kernel32.HeapFree(heap, 0, blocks[1]), kernel32.HeapValidate(ctypes.c_void_p(heap), 0, None))
print("free NULL:", kernel32.HeapFree(heap, 0, None))
kernel32.HeapDestroy(ctypes.c_void_p(heap))
