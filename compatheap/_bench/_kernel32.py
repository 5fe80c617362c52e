"""Figure 7: the kernel32 backend against a raw ctypes kernel32 binding.

Runs where kernel32 exists (Windows, or Windows CPython under Wine). The
operations here are also figure 8's: the same calls timed on the emulated
backend and on kernel32, side by side in the same process.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Dict, List

from ._figures import Figure, Scale
from ._timing import batch, interleaved

TARGET = 1.15

Operation = Callable[[Any, int, int], Callable[[], None]]


def raw_kernel32() -> Any:
    """kernel32 bound as a careful ctypes user binds it: argtypes and restype set."""
    k32: Any = getattr(ctypes, "WinDLL")("kernel32", use_last_error=True)  # noqa: B009 - Windows-only
    vp, sz, dw = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32
    sigs = {
        "HeapAlloc": (vp, [vp, dw, sz]),
        "HeapFree": (ctypes.c_int, [vp, dw, vp]),
        "HeapSize": (sz, [vp, dw, vp]),
        "HeapReAlloc": (vp, [vp, dw, vp, sz]),
    }
    for name, (restype, argtypes) in sigs.items():
        func = getattr(k32, name)
        func.restype, func.argtypes = restype, argtypes
    return k32


def _alloc_free(api: Any, heap: int, calls: int) -> Callable[[], None]:
    alloc, free = api.HeapAlloc, api.HeapFree

    def run() -> None:
        for _ in range(calls):
            free(heap, 0, alloc(heap, 0, 48))

    return run


def _realloc(api: Any, heap: int, calls: int) -> Callable[[], None]:
    realloc = api.HeapReAlloc
    state = [api.HeapAlloc(heap, 0, 16)]

    def run() -> None:
        block = state[0]
        for _ in range(calls // 2):
            block = realloc(heap, 0, realloc(heap, 0, block, 200), 16)
        state[0] = block

    return run


def _size(api: Any, heap: int, calls: int) -> Callable[[], None]:
    size = api.HeapSize
    block = api.HeapAlloc(heap, 0, 48)

    def run() -> None:
        for _ in range(calls):
            size(heap, 0, block)

    return run


def operations() -> Dict[str, Operation]:
    """Figure 7's and 8's operations: label -> maker of a batch of ``calls`` calls."""
    return {"HeapAlloc+HeapFree": _alloc_free, "HeapReAlloc": _realloc, "HeapSize": _size}


def _kernel32_backend() -> Any:
    from ..backends import get

    return get("kernel32")


def figures(scale: Scale) -> List[Figure]:
    ours_api = _kernel32_backend()
    raw = raw_kernel32()
    heap = ours_api.HeapCreate(0, 0, 0)
    found = []
    for n, (label, make) in enumerate(operations().items()):
        t = interleaved(
            {"raw": batch(make(raw, heap, scale.calls)), "ours": batch(make(ours_api, heap, scale.calls))}, scale.rounds
        )
        found.append(
            Figure(
                f"7{'abc'[n]}",
                f"kernel32 backend {label} / raw ctypes kernel32",
                t["ours"] / t["raw"],
                TARGET,
                details={"ns_per_call": {k: v / scale.calls * 1e9 for k, v in t.items()}},
            )
        )
    ours_api.HeapDestroy(heap)
    return found


def against_emulated(scale: Scale) -> List[Figure]:
    """Figure 8: the emulation against kernel32, the same operations, in this one process."""
    from ._emulated import _backend as emulated_backend

    apis = {"emulated": emulated_backend(), "kernel32": _kernel32_backend()}
    heaps = {name: api.HeapCreate(0, 0, 0) for name, api in apis.items()}
    found = []
    for n, (label, make) in enumerate(operations().items()):
        cases = {name: batch(make(api, heaps[name], scale.calls)) for name, api in apis.items()}
        t = interleaved(cases, scale.rounds)
        found.append(
            Figure(
                f"8{'abc'[n]}",
                f"emulated / kernel32, same process: {label}",
                t["emulated"] / t["kernel32"],
                details={"ns_per_call": {k: v / scale.calls * 1e9 for k, v in t.items()}},
            )
        )
    for name, api in apis.items():
        api.HeapDestroy(heaps[name])
    return found


def per_call_curve(scale: Scale, sizes: List[int]) -> Dict[str, float]:
    """Nanoseconds per HeapAlloc+HeapFree pair against block size, for the plot."""
    api = _kernel32_backend()
    heap = api.GetProcessHeap()
    calls = max(200, scale.calls // 10)
    cases = {str(size): batch(_alloc_free_sized(api, heap, calls, size)) for size in sizes}
    return {size: seconds / calls * 1e9 for size, seconds in interleaved(cases, max(3, scale.rounds // 3)).items()}


def _alloc_free_sized(api: Any, heap: int, calls: int, size: int) -> Callable[[], None]:
    alloc, free = api.HeapAlloc, api.HeapFree

    def run() -> None:
        for _ in range(calls):
            free(heap, 0, alloc(heap, 0, size))

    return run
