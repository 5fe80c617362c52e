"""Figures 1 to 6: the emulated backend against the C library it runs on."""

from __future__ import annotations

import array
import ctypes
import gc
import subprocess
import sys
import time
import tracemalloc
from typing import Any, Callable, Dict, List, Optional, Tuple

from .._constants import HEAP_ZERO_MEMORY
from ._figures import Figure, Scale
from ._resident import resident_bytes
from ._timing import Case, RawLibc, batch, interleaved

_BLOCK = 48
#: Room for figure 4's fragmented heap (two chunks of 64 bytes per live block).
_FIXED_ROOM = 32 << 20


def _backend() -> Any:
    # A fresh instance without debug checks: what compatheap.HeapAlloc is bound
    # to on a POSIX system with the default configuration.
    from ..backends.emulated import EmulatedBackend

    return EmulatedBackend()


def _pairs(api: Any, heap: int, calls: int, size: int = _BLOCK) -> Callable[[], None]:
    alloc, free = api.HeapAlloc, api.HeapFree

    def run() -> None:
        for _ in range(calls):
            free(heap, 0, alloc(heap, 0, size))

    return run


def _raw_pairs(libc: RawLibc, calls: int, size: int = _BLOCK) -> Callable[[], None]:
    malloc, free = libc.malloc, libc.free

    def run() -> None:
        for _ in range(calls):
            free(malloc(size))

    return run


def alloc_free(api: Any, libc: RawLibc, scale: Scale) -> List[Figure]:
    heap = api.GetProcessHeap()
    t = interleaved(
        {"raw": batch(_raw_pairs(libc, scale.calls)), "ours": batch(_pairs(api, heap, scale.calls))}, scale.rounds
    )
    return [
        Figure(
            "1",
            "HeapAlloc+HeapFree, process heap, 48 B / ctypes malloc+free",
            t["ours"] / t["raw"],
            1.5,
            hard_limit=2.0,
            details=_per_call(t, scale.calls),
        )
    ]


def realloc_ping_pong(api: Any, libc: RawLibc, scale: Scale) -> List[Figure]:
    heap = api.GetProcessHeap()
    realloc = api.HeapReAlloc
    raw_realloc = libc.realloc
    half = scale.calls // 2
    state = {"ours": api.HeapAlloc(heap, 0, 16), "raw": libc.malloc(16)}

    def ours() -> None:
        block = state["ours"]
        for _ in range(half):
            block = realloc(heap, 0, realloc(heap, 0, block, 200), 16)
        state["ours"] = block

    def raw() -> None:
        block = state["raw"]
        for _ in range(half):
            block = raw_realloc(raw_realloc(block, 200), 16)
        state["raw"] = block

    t = interleaved({"raw": batch(raw), "ours": batch(ours)}, scale.rounds)
    api.HeapFree(heap, 0, state["ours"])
    libc.free(state["raw"])
    return [
        Figure(
            "2",
            "HeapReAlloc 16 <-> 200 B / ctypes realloc",
            t["ours"] / t["raw"],
            1.5,
            hard_limit=2.0,
            details=_per_call(t, 2 * half),
        )
    ]


def big_growth(api: Any, libc: RawLibc, scale: Scale) -> List[Figure]:
    """Figure 3: a block grown x2, x3 and back, by remapping and by copying."""
    base = scale.big_block
    steps = [2 * base, 3 * base, 2 * base, base]
    heap = api.HeapCreate(0, 0, 0)
    realloc = api.HeapReAlloc
    # A cycle takes microseconds: time several per repetition, above the clock's noise.
    cycles = 5 if scale.quick else 50
    clock = time.perf_counter

    # A fresh block each repetition, resident as a block in use is: what a
    # system call costs depends on where the block lies among the process's
    # mappings, so one block per side would measure its placement, not the code.
    def ours(flags: int, times: int = cycles) -> Case:
        def run() -> float:
            block = api.HeapAlloc(heap, 0, base)
            ctypes.memset(block, 1, base)
            start = clock()
            for _ in range(times):
                for size in steps:
                    block = realloc(heap, flags, block, size)
            seconds = clock() - start
            api.HeapFree(heap, 0, block)
            return seconds

        return run

    def raw() -> float:
        block = libc.malloc(base)
        ctypes.memset(block, 1, base)
        start = clock()
        for _ in range(cycles):
            for size in steps:
                block = libc.realloc(block, size)
        seconds = clock() - start
        libc.free(block)
        return seconds

    def copy() -> float:
        block, size = libc.malloc(base), base
        ctypes.memset(block, 1, base)
        start = clock()
        for new in steps:
            moved = libc.malloc(new)
            libc.memmove(moved, block, min(size, new))
            libc.free(block)
            block, size = moved, new
        seconds = clock() - start
        libc.free(block)
        return seconds

    t = interleaved({"raw": raw, "ours": ours(0), "zero": ours(HEAP_ZERO_MEMORY)}, scale.rounds)
    copied = interleaved({"copy": copy, "ours": ours(0, 1)}, scale.copy_rounds)
    api.HeapDestroy(heap)
    mib = base >> 20
    label = f"{mib}->{2 * mib}->{3 * mib} MiB and back"
    cycle = {name: seconds / (cycles * len(steps)) * 1e6 for name, seconds in t.items()}
    return [
        Figure(
            "3a",
            f"HeapReAlloc {label} / ctypes realloc (mremap)",
            t["ours"] / t["raw"],
            1.2,
            details={"us_per_call": cycle},
        ),
        Figure("3b", "  the same with HEAP_ZERO_MEMORY / ctypes realloc", t["zero"] / t["raw"], 1.2),
        Figure("3c", "  speed-up over malloc+memmove+free", copied["copy"] / copied["ours"], 100, at_least=True),
    ]


def fixed_heap(api: Any, libc: RawLibc, scale: Scale) -> List[Figure]:
    empty = api.HeapCreate(0, 0, _FIXED_ROOM)
    fragmented = api.HeapCreate(0, 0, _FIXED_ROOM)
    # Every other block freed: as many holes as live blocks, none adjacent.
    blocks = [api.HeapAlloc(fragmented, 0, _BLOCK) for _ in range(2 * scale.fragments)]
    if not all(blocks):
        raise RuntimeError("the fixed heap for figure 4 is too small")
    for block in blocks[::2]:
        api.HeapFree(fragmented, 0, block)
    t = interleaved(
        {
            "raw": batch(_raw_pairs(libc, scale.calls)),
            "empty": batch(_pairs(api, empty, scale.calls)),
            "fragmented": batch(_pairs(api, fragmented, scale.calls)),
        },
        scale.rounds,
    )
    api.HeapDestroy(empty)
    api.HeapDestroy(fragmented)
    return [
        Figure(
            "4a",
            "fixed heap HeapAlloc+HeapFree / ctypes malloc+free",
            t["empty"] / t["raw"],
            2.5,
            details=_per_call(t, scale.calls),
        ),
        Figure("4b", f"  with {scale.fragments:,} live blocks / empty fixed heap", t["fragmented"] / t["empty"], 1.5),
    ]


def _fill(api: Any, heap: int, count: int) -> None:
    alloc = api.HeapAlloc
    for _ in range(count):
        alloc(heap, 0, _BLOCK)


def heap_growth(api: Any, libc: RawLibc, scale: Scale) -> List[Figure]:
    """Figure 5: per-call cost, HeapDestroy and HeapWalk as the heap grows."""
    small, large = api.HeapCreate(0, 0, 0), api.HeapCreate(0, 0, 0)
    _fill(api, small, scale.live_small)
    _fill(api, large, scale.live_large)
    t = interleaved(
        {"small": batch(_pairs(api, small, scale.calls)), "large": batch(_pairs(api, large, scale.calls))}, scale.rounds
    )
    api.HeapDestroy(small)
    api.HeapDestroy(large)

    count = scale.live_large

    def destroy() -> float:
        heap = api.HeapCreate(0, 0, 0)
        _fill(api, heap, count)
        start = time.perf_counter()
        api.HeapDestroy(heap)
        return time.perf_counter() - start

    def raw_free() -> float:
        malloc, free = libc.malloc, libc.free
        addresses = array.array("Q", (malloc(_BLOCK) for _ in range(count)))
        start = time.perf_counter()
        for address in addresses:
            free(address)
        return time.perf_counter() - start

    d = interleaved({"raw": raw_free, "destroy": destroy}, scale.destroy_rounds)

    per_entry = _walk_cost(api, (scale.walk_small, scale.walk_large), scale.rounds)
    # The same at a million blocks, fewer rounds (each walk takes a second or two).
    huge_entry = _walk_cost(api, (scale.walk_small, scale.walk_huge), scale.walk_rounds)
    return [
        Figure(
            "5a",
            f"HeapAlloc+HeapFree with {scale.live_large:,} / {scale.live_small:,} live blocks",
            t["large"] / t["small"],
            1.3,
        ),
        Figure(
            "5b",
            f"HeapDestroy of {count:,} blocks / {count:,} ctypes free calls",
            d["destroy"] / d["raw"],
            1.5,
            details={"seconds": d},
        ),
        Figure(
            "5c",
            f"HeapWalk per entry, {scale.walk_large:,} / {scale.walk_small:,} blocks",
            per_entry[scale.walk_large] / per_entry[scale.walk_small],
            1.5,
            note="linear: the cost per entry stays flat",
            details={"ns_per_entry": {str(n): s * 1e9 for n, s in per_entry.items()}},
        ),
        Figure(
            "5d",
            f"HeapWalk per entry, {scale.walk_huge:,} / {scale.walk_small:,} blocks",
            huge_entry[scale.walk_huge] / huge_entry[scale.walk_small],
            1.5,
            details={"ns_per_entry": {str(n): s * 1e9 for n, s in huge_entry.items()}},
        ),
        Figure(
            "5e",
            f"HeapWalk per entry at {scale.walk_huge:,} blocks",
            huge_entry[scale.walk_huge] * 1e6,
            2.0,
            unit=" us",
        ),
    ]


def _walk_cost(api: Any, counts: Tuple[int, int], rounds: int) -> Dict[int, float]:
    """Seconds per entry of a whole HeapWalk, for heaps of each block count, side by side."""
    heaps = {n: api.HeapCreate(0, 0, 0) for n in counts}
    for n, heap in heaps.items():
        _fill(api, heap, n)
    walks = interleaved({str(n): _walker(api, heap) for n, heap in heaps.items()}, rounds)
    for heap in heaps.values():
        api.HeapDestroy(heap)
    return {n: walks[str(n)] / n for n in heaps}


def _walker(api: Any, heap: int) -> Callable[[], float]:
    from .._structs import PROCESS_HEAP_ENTRY

    entry = PROCESS_HEAP_ENTRY()
    ref = ctypes.byref(entry)
    walk = api.HeapWalk

    def run() -> float:
        entry.lpData = None
        start = time.perf_counter()
        while walk(heap, ref):
            pass
        return time.perf_counter() - start

    return run


def memory(api: Any, libc: RawLibc, scale: Scale) -> List[Figure]:
    """Figure 6: what the emulation keeps per live block."""
    count = scale.memory_blocks
    gc.collect()
    heap = api.HeapCreate(0, 0, 0)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    _fill(api, heap, count)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    # Only what the backend's own code allocated: the harness's loop is not bookkeeping.
    only = [tracemalloc.Filter(True, "*compatheap*backends*")]
    grown = sum(s.size_diff for s in after.filter_traces(only).compare_to(before.filter_traces(only), "filename"))
    api.HeapDestroy(heap)
    del before, after
    gc.collect()

    # Resident memory in fresh processes: this one's allocator already holds
    # the memory the earlier figures freed, which would hide any growth.
    ours_rss = _rss_in_child("emulated", count)
    raw_rss = _rss_in_child("raw", count)
    return [
        Figure(
            "6a",
            f"Python-side bookkeeping per live block ({count:,} blocks, tracemalloc)",
            grown / count,
            64,
            unit=" B",
        ),
        Figure(
            "6b",
            "RSS per live 48 B block, emulated / raw malloc",
            ours_rss / raw_rss if ours_rss is not None and raw_rss else None,
            note="" if ours_rss is not None and raw_rss else "resident memory not measurable here",
            details={"emulated_bytes": ours_rss, "raw_malloc_bytes": raw_rss},
        ),
    ]


def _rss_in_child(kind: str, count: int) -> Optional[float]:
    """Resident bytes per live 48-byte block, measured in a new interpreter."""
    code = f"from compatheap._bench._emulated import rss_child; rss_child({kind!r}, {count})"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        return float(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def rss_child(kind: str, count: int) -> None:
    """In the child process: allocate ``count`` blocks, print RSS growth per block."""
    start = resident_bytes()
    if kind == "raw":
        malloc = RawLibc().malloc
        # Addresses in an array, not a list: raw malloc's figure holds no Python ints.
        held = len(array.array("Q", (malloc(_BLOCK) for _ in range(count))))
    else:
        api = _backend()
        _fill(api, api.HeapCreate(0, 0, 0), count)
        held = count
    end = resident_bytes()
    # The blocks are never freed: the process ends right after printing.
    print("nan" if start is None or end is None else (end - start) / held)


def per_call_curve(api: Any, libc: RawLibc, scale: Scale, sizes: List[int]) -> Dict[str, Dict[int, float]]:
    """Nanoseconds per HeapAlloc+HeapFree pair against block size, for the plot."""
    growable = api.GetProcessHeap()
    fixed = api.HeapCreate(0, 0, _FIXED_ROOM)
    calls = max(200, scale.calls // 10)
    curve: Dict[str, Dict[int, float]] = {"raw libc": {}, "emulated": {}, "emulated fixed heap": {}}
    for size in sizes:
        cases = {
            "raw libc": batch(_raw_pairs(libc, calls, size)),
            "emulated": batch(_pairs(api, growable, calls, size)),
        }
        probe = api.HeapAlloc(fixed, 0, size)
        if probe:
            api.HeapFree(fixed, 0, probe)
            cases["emulated fixed heap"] = batch(_pairs(api, fixed, calls, size))
        for name, seconds in interleaved(cases, max(3, scale.rounds // 3)).items():
            curve[name][size] = seconds / calls * 1e9
    api.HeapDestroy(fixed)
    return curve


def _per_call(t: Dict[str, float], calls: int) -> Dict[str, Any]:
    return {"ns_per_call": {name: seconds / calls * 1e9 for name, seconds in t.items()}}
