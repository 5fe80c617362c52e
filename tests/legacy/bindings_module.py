import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # embeddable Windows Python leaves it out
import _winheap as w  # noqa: E402

heap = w.HeapCreate(0, 0, 0)
block = w.HeapAlloc(heap, 8, 64)
print("zeroed:", ctypes.string_at(block, 64) == bytes(64))
block = w.HeapReAlloc(heap, 0, block, 4096)
print("size:", w.HeapSize(heap, 0, block))
print("free (errcheck returned args):", w.HeapFree(heap, 0, block))
try:
    w.HeapAlloc(heap, 0, (1 << 64) - 1)
except OSError as e:
    print("too large:", type(e).__name__, e.winerror, e.errno, e)
print("destroy:", w.HeapDestroy(heap))
