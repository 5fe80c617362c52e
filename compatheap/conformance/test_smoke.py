"""The basic cycle every backend must get right."""

from __future__ import annotations

import ctypes
from typing import Any

from compatheap.conformance._support import pattern, read, write


def test_alloc_write_realloc_free(k32: Any, heap: int) -> None:
    block = k32.HeapAlloc(heap, 0, 64)
    assert block
    write(block, pattern(64))
    moved = k32.HeapReAlloc(heap, 0, block, 4096)
    assert moved
    assert read(moved, 64) == pattern(64)
    assert k32.HeapSize(heap, 0, moved) == 4096
    assert k32.HeapFree(heap, 0, moved)


def test_process_heap_is_listed_first(k32: Any) -> None:
    process = k32.GetProcessHeap()
    assert process
    count = k32.GetProcessHeaps(0, None)
    assert count >= 1
    buf = (ctypes.c_void_p * count)()
    assert k32.GetProcessHeaps(count, buf) == count
    assert buf[0] == process
