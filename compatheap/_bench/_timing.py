"""Side-by-side timing: interleaved repetitions compared by their medians.

Absolute times on a shared machine drift; a ratio of two medians taken in the
same loop, round after round, does not (drift hits both sides alike).
"""

from __future__ import annotations

import ctypes
import statistics
import time
from typing import Any, Callable, Dict, List, Optional

#: One repetition of a case: runs it and returns the seconds it took (setup,
#: when a case needs one per repetition, is left out of that figure).
Case = Callable[[], float]


def batch(fn: Callable[[], None]) -> Case:
    """A case timing one call of ``fn``."""
    clock = time.perf_counter

    def run() -> float:
        start = clock()
        fn()
        return clock() - start

    return run


def interleaved(cases: Dict[str, Case], rounds: int) -> Dict[str, float]:
    """The median seconds of each case over ``rounds`` interleaved repetitions."""
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for case in cases.values():  # one warm-up each: caches, lazy binding
        case()
    names = list(cases)
    for turn in range(rounds):
        # Each case in each place in turn: whatever running first or after
        # another case costs (caches, the allocator's state) falls on all alike.
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(cases[name]())
    return {name: statistics.median(values) for name, values in times.items()}


def _bind(lib: Any, name: str, restype: Any, argtypes: List[Any]) -> Any:
    func: Any = type(getattr(lib, name))((name, lib))  # private: argtypes are ours
    func.restype, func.argtypes = restype, argtypes
    return func


class RawLibc:
    """The C library bound the way a careful ctypes user binds it: argtypes set."""

    def __init__(self) -> None:
        try:
            libc = ctypes.CDLL(None)  # POSIX: the process's own C library
        except (OSError, TypeError):
            libc = ctypes.CDLL("ucrtbase")  # Windows: the Universal CRT, the emulation's allocator there
        vp, sz = ctypes.c_void_p, ctypes.c_size_t
        self.malloc = _bind(libc, "malloc", vp, [sz])
        self.free = _bind(libc, "free", None, [vp])
        self.realloc = _bind(libc, "realloc", vp, [vp, sz])
        self.memmove = ctypes.memmove
        self.memset = ctypes.memset


def raw_libc() -> Optional[RawLibc]:
    """The C library, or None where there is none."""
    try:
        return RawLibc()
    except (OSError, TypeError, AttributeError):
        return None
