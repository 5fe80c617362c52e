"""Per-call cost of compatheap's kernel32 backend over a raw ctypes binding.

Runs where kernel32 exists (Windows, or Windows CPython under Wine:
``python tools/winpy.py run benchmarks/kernel32_overhead.py``). Both sides are
timed in the same process, interleaved, and compared by their medians; the
target is a ratio of at most 1.15.
"""

from __future__ import annotations

import ctypes
import statistics
import sys
import time
from typing import Any, Callable, Dict, List

TARGET = 1.15
ROUNDS = 15
CALLS = 20000


def _raw_kernel32() -> Any:
    k32: Any = ctypes.WinDLL("kernel32", use_last_error=True)
    sigs = {
        "HeapAlloc": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t]),
        "HeapFree": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]),
        "HeapSize": (ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]),
        "HeapReAlloc": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]),
    }
    for name, (restype, argtypes) in sigs.items():
        func = getattr(k32, name)
        func.restype, func.argtypes = restype, argtypes
    return k32


def _alloc_free(api: Any, heap: int) -> Callable[[], None]:
    alloc, free = api.HeapAlloc, api.HeapFree

    def run() -> None:
        for _ in range(CALLS):
            free(heap, 0, alloc(heap, 0, 48))

    return run


def _realloc(api: Any, heap: int) -> Callable[[], None]:
    realloc = api.HeapReAlloc
    block = api.HeapAlloc(heap, 0, 16)

    def run() -> None:
        nonlocal block
        for _ in range(CALLS // 2):
            block = realloc(heap, 0, realloc(heap, 0, block, 200), 16)

    return run


def _size(api: Any, heap: int) -> Callable[[], None]:
    size = api.HeapSize
    block = api.HeapAlloc(heap, 0, 48)

    def run() -> None:
        for _ in range(CALLS):
            size(heap, 0, block)

    return run


def measure() -> Dict[str, float]:
    import compatheap

    if compatheap.backend.name != "kernel32":
        raise SystemExit("this benchmark needs the kernel32 backend (Windows or Wine)")
    raw = _raw_kernel32()
    heap = compatheap.HeapCreate(0, 0, 0)
    ratios = {}
    for label, make in (("HeapAlloc+HeapFree", _alloc_free), ("HeapReAlloc", _realloc), ("HeapSize", _size)):
        ours, theirs = make(compatheap, heap), make(raw, heap)
        times: Dict[str, List[float]] = {"ours": [], "raw": []}
        for _ in range(ROUNDS):  # interleaved, so drift hits both sides alike
            for key, fn in (("raw", theirs), ("ours", ours)):
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
        ratios[label] = statistics.median(times["ours"]) / statistics.median(times["raw"])
    compatheap.HeapDestroy(heap)
    return ratios


def main() -> int:
    ratios = measure()
    print(f"{'kernel32 call':<22} {'target':>8} {'ratio':>8}")
    for label, ratio in ratios.items():
        flag = "" if ratio <= TARGET else "  (over target)"
        print(f"{label:<22} {TARGET:>8.2f} {ratio:>8.3f}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
