import ctypes

kernel32 = ctypes.windll.kernel32  # the DLL
kernel32.SetLastError(77)
print("last error:", kernel32.GetLastError())
kernel32.HeapCreate.restype = ctypes.c_void_p
heap = ctypes.c_void_p(kernel32.HeapCreate(0, 0, 0))
kernel32.HeapAlloc.restype = ctypes.c_void_p
block = kernel32.HeapAlloc(heap, 0, 100)
print("alloc:", block is not None)
print("small int without argtypes:", kernel32.HeapValidate(heap, 0, 0))
kernel32.HeapSize.restype = ctypes.c_size_t
print("size via c_void_p:", kernel32.HeapSize(heap, 0, ctypes.c_void_p(block)))
print("free via c_void_p:", kernel32.HeapFree(heap, 0, ctypes.c_void_p(block)))
print("destroy:", kernel32.HeapDestroy(heap))
