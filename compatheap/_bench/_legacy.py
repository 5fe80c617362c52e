"""Figure L: a heap call through the legacy ``windll.kernel32`` against ``compatheap.HeapAlloc``.

Both sides run on the active backend in one process, interleaved. The legacy
functions are bound as careful Windows code binds them (argtypes and restype
set to the Win32 prototype), which lets them call the implementation directly;
the second, reported-only figure binds them otherwise (here: an ``errcheck``),
so that every call goes through ctypes and the callback thunk.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, List

from ._figures import Figure, Scale, skipped
from ._timing import batch, interleaved

TARGET = 1.3
_BLOCK = 48


def _pairs(alloc: Any, free: Any, heap: Any, calls: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(calls):
            free(heap, 0, alloc(heap, 0, _BLOCK))

    return run


def _bound(errcheck: bool) -> Any:
    from ..legacy import legacy_kernel32

    kernel32: Any = legacy_kernel32()
    vp, dword = ctypes.c_void_p, ctypes.c_uint32
    kernel32.HeapAlloc.argtypes = [vp, dword, ctypes.c_size_t]
    kernel32.HeapAlloc.restype = vp
    kernel32.HeapFree.argtypes = [vp, dword, vp]
    kernel32.HeapFree.restype = ctypes.c_int
    if errcheck:
        kernel32.HeapAlloc.errcheck = kernel32.HeapFree.errcheck = lambda result, func, args: result
    return kernel32


def figures(scale: Scale) -> List[Figure]:
    from .. import GetProcessHeap, HeapAlloc, HeapFree
    from ..backends import probe

    title = "legacy windll.kernel32 HeapAlloc+HeapFree / compatheap's"
    if probe("kernel32")[0]:
        return [skipped("L", title, "on Windows the legacy object is ctypes' own WinDLL", TARGET)]
    heap = GetProcessHeap()
    direct, thunk = _bound(False), _bound(True)
    cases = {
        "compatheap": batch(_pairs(HeapAlloc, HeapFree, heap, scale.calls)),
        "legacy": batch(_pairs(direct.HeapAlloc, direct.HeapFree, heap, scale.calls)),
        "thunk": batch(_pairs(thunk.HeapAlloc, thunk.HeapFree, heap, scale.calls)),
    }
    t = interleaved(cases, scale.rounds)
    per_call = {name: seconds / scale.calls * 1e9 for name, seconds in t.items()}
    return [
        Figure("L", title, t["legacy"] / t["compatheap"], TARGET, details={"ns_per_pair": per_call}),
        Figure(
            "L2",
            "the same with an errcheck: through ctypes and the callback thunk / compatheap's",
            t["thunk"] / t["compatheap"],
            note="every ctypes rule applied by ctypes itself",
            details={"ns_per_pair": per_call},
        ),
    ]
