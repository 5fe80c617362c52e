"""Fault injection: every native call of a realistic workload made to fail, one at a time.

The emulated backend reaches the C library only through ``Native``;
``FaultyMemory`` makes its N-th failable call fail (or every call from the N-th
on, as when memory has run out for good). For every N: the API answers the
Win32 failure (or raises under ``HEAP_GENERATE_EXCEPTIONS``), only a call
during which a fault was injected may fail, the heap stays valid, every live
block keeps its bytes, and after ``HeapDestroy`` nothing native is outstanding.
"""

from __future__ import annotations

import ctypes
from typing import Any, Dict, List, Optional, Tuple

import pytest

from compatheap import (
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_CREATE_ENABLE_EXECUTE,
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_ZERO_MEMORY,
    STATUS_NO_MEMORY,
    HeapException,
)
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._heap import LARGE_THRESHOLD
from tests import campaigns
from tests.conftest import require_emulation
from tests.faulty import FaultyMemory
from tests.fuzz.world import fill, release_backend

require_emulation()

BIG = LARGE_THRESHOLD + 100
#: The workload: heaps of every kind, blocks of every size class, every way a
#: block can grow, shrink or move, frees, and destruction.
SCRIPT: List[Tuple[Any, ...]] = [
    ("create", "g", 0, 0, 0),
    ("create", "x", HEAP_CREATE_ENABLE_EXECUTE, 0, 0),
    ("create", "f", 0, 0, 0x100000),
    ("create", "e", HEAP_GENERATE_EXCEPTIONS, 0, 0),
    ("alloc", "g", "a", 0, 24),
    ("alloc", "g", "b", HEAP_ZERO_MEMORY, 0),
    ("alloc", "g", "c", 0, 4000),
    ("alloc", "g", "d", 0, BIG),
    ("alloc", "g", "d2", HEAP_ZERO_MEMORY, 3 * LARGE_THRESHOLD),
    ("alloc", "x", "xa", 0, 100),
    ("alloc", "x", "xb", 0, 70000),
    ("alloc", "f", "fa", 0, 300),
    ("alloc", "f", "fb", 0, 5000),
    ("alloc", "e", "ea", 0, 64),
    ("alloc", "e", "eb", 0, BIG),
    ("realloc", "a", 0, 5000),  # small -> small, may move
    ("realloc", "c", HEAP_REALLOC_IN_PLACE_ONLY, 4008),  # into the block's slack
    ("realloc", "c", HEAP_ZERO_MEMORY, BIG + 5000),  # small -> large: copy into a mapping
    ("realloc", "d", 0, 2 * BIG),  # large -> larger: mremap
    ("realloc", "d", HEAP_REALLOC_IN_PLACE_ONLY, 2 * BIG + 0x10000),  # mremap in place
    ("realloc", "d", 0, BIG),  # large shrink: unmap the tail
    ("realloc", "d2", 0, 200),  # large shrunk below the threshold, stays mapped
    ("realloc", "xa", HEAP_ZERO_MEMORY, 9000),  # executable: mapped -> mapped
    ("realloc", "fa", 0, 40000),  # fixed heap: grow into the free neighbour or move
    ("realloc", "ea", 0, BIG),  # exceptions heap
    ("realloc", "eb", 0, 3 * BIG),
    ("free", "b"),
    ("free", "d2"),
    ("free", "xb"),
    ("alloc", "g", "h", 0, 128),
    ("realloc", "h", 0, 64),
    ("destroy", "x"),
    ("create", "x", HEAP_CREATE_ENABLE_EXECUTE, 0, 0x40000),
    ("alloc", "x", "xc", 0, 512),
    ("free", "fb"),
    ("free", "eb"),
    ("destroy", "f"),
    ("destroy", "x"),
    ("destroy", "e"),
    ("destroy", "g"),
]

#: variant -> (whether the system's fallbacks are forced, debug checks)
VARIANTS: Dict[str, Tuple[bool, Tuple[str, ...]]] = {
    "plain": (False, ()),
    "debug": (False, ("tail", "free")),
    "fallback": (True, ()),
}


class Outcome:
    def __init__(self) -> None:
        self.failed_calls = 0
        self.divergences: List[str] = []


def run_workload(native: FaultyMemory, debug: Tuple[str, ...]) -> Outcome:
    k32 = EmulatedBackend(debug=debug, memory=native)
    heaps: Dict[str, Tuple[int, int]] = {}  # name -> (handle, flags)
    blocks: Dict[str, Tuple[str, int, bytes]] = {}  # key -> (heap, address, contents)
    out = Outcome()

    def failed(call: Any, args: Tuple[Any, ...], flags: int, what: str, may_fail: bool = False) -> Optional[Any]:
        """``call(*args)``; None (after checking the failure's form) if it failed."""
        before = native.injected
        k32.SetLastError(0)
        try:
            result = call(*args)
        except HeapException as exc:
            if not flags & HEAP_GENERATE_EXCEPTIONS or exc.status != STATUS_NO_MEMORY:
                out.divergences.append(f"{what}: unexpected {exc}")
            result = None
        else:
            if not result:
                if flags & HEAP_GENERATE_EXCEPTIONS:
                    out.divergences.append(f"{what}: NULL under HEAP_GENERATE_EXCEPTIONS")
                if k32.GetLastError() != ERROR_NOT_ENOUGH_MEMORY:
                    out.divergences.append(f"{what}: last error {k32.GetLastError()}")
        if not result:
            out.failed_calls += 1
            if native.injected == before and not may_fail:
                out.divergences.append(f"{what}: failed with no fault injected")
            return None
        return result

    def check(after: str) -> None:
        for name, (handle, _) in heaps.items():
            if not k32.HeapValidate(handle, 0, None):
                out.divergences.append(f"after {after}: heap {name} invalid")
        for key, (name, address, contents) in blocks.items():
            handle = heaps[name][0]
            if k32.HeapSize(handle, 0, address) != len(contents):
                out.divergences.append(f"after {after}: block {key} has the wrong size")
            elif ctypes.string_at(address, len(contents)) != contents:
                out.divergences.append(f"after {after}: block {key} lost its bytes")

    for step, op in enumerate(SCRIPT):
        what = f"step {step} {op}"
        if op[0] == "create":
            _, name, flags, initial, maximum = op
            handle = failed(k32.HeapCreate, (flags, initial, maximum), 0, what)
            if handle:
                heaps[name] = (handle, flags)
        elif op[0] == "alloc":
            _, name, key, flags, size = op
            if name not in heaps:
                continue
            handle, heap_flags = heaps[name]
            address = failed(k32.HeapAlloc, (handle, flags, size), flags | heap_flags, what)
            if address:
                if flags & HEAP_ZERO_MEMORY and ctypes.string_at(address, size) != bytes(size):
                    out.divergences.append(f"{what}: HEAP_ZERO_MEMORY block not zero")
                contents = fill(size, step)
                ctypes.memmove(address, contents, size)
                blocks[key] = (name, address, contents)
        elif op[0] == "realloc":
            _, key, flags, size = op
            if key not in blocks:
                continue
            name, address, old = blocks[key]
            handle, heap_flags = heaps[name]
            # In place, a grow may fail for want of room next to the block.
            in_place = bool(flags & HEAP_REALLOC_IN_PLACE_ONLY)
            args = (handle, flags, address, size)
            moved = failed(k32.HeapReAlloc, args, flags | heap_flags, what, in_place)
            if moved:
                kept = old[:size]
                if ctypes.string_at(moved, len(kept)) != kept:
                    out.divergences.append(f"{what}: contents lost in the move")
                grown = size - len(kept)
                if flags & HEAP_ZERO_MEMORY and ctypes.string_at(moved + len(kept), grown) != bytes(grown):
                    out.divergences.append(f"{what}: grown bytes not zero")
                contents = kept + fill(grown, step)
                ctypes.memmove(moved, contents, size)
                blocks[key] = (name, moved, contents)
        elif op[0] == "free":
            key = op[1]
            if key in blocks:
                name, address, _ = blocks.pop(key)
                if not k32.HeapFree(heaps[name][0], 0, address):
                    out.divergences.append(f"{what}: HeapFree failed")
        elif op[0] == "destroy":
            name = op[1]
            if name in heaps:
                handle, _ = heaps.pop(name)
                for key in [k for k, b in blocks.items() if b[0] == name]:
                    del blocks[key]
                if not k32.HeapDestroy(handle):
                    out.divergences.append(f"{what}: HeapDestroy failed")
        check(what)
    release_backend(k32)
    return out


def _calls(variant: str) -> int:
    fallback, debug = VARIANTS[variant]
    native = FaultyMemory(use_remap=not fallback, use_usable_size=not fallback)
    outcome = run_workload(native, debug)
    assert outcome.divergences == []
    assert native.leaks() == []
    return native.calls


@pytest.mark.parametrize("persistent", [False, True], ids=["one-fault", "from-then-on"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_native_failure_is_clean(variant: str, persistent: bool) -> None:
    """For every N, failing the N-th native call (or all from it on) keeps every promise."""
    fallback, debug = VARIANTS[variant]
    total = _calls(variant)
    assert total > 20, "the workload makes too few native calls to prove anything"
    injected = crashes = divergences = leaks = 0
    problems: List[str] = []
    for n in range(1, total + 1):
        native = FaultyMemory(n, persistent=persistent, use_remap=not fallback, use_usable_size=not fallback)
        try:
            outcome = run_workload(native, debug)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            crashes += 1
            problems.append(f"N={n}: {type(exc).__name__}: {exc}")
            continue
        injected += native.injected
        divergences += len(outcome.divergences)
        problems += [f"N={n}: {d}" for d in outcome.divergences]
        if native.leaks():
            leaks += 1
            problems.append(f"N={n}: leaked {native.leaks()}")
    campaigns.record("faults", injected=injected, crashes=crashes, divergences=divergences, leaks=leaks)
    assert injected >= total
    assert problems == []


def test_ledger_sees_a_leak() -> None:
    """The leak count is real: memory the backend keeps shows up, and goes once given back."""
    native = FaultyMemory()
    k32 = EmulatedBackend(memory=native)
    heap = k32.HeapCreate(0, 0, 0)
    assert native.outstanding > 0
    block = k32.HeapAlloc(heap, 0, BIG)
    with_block = native.outstanding
    assert k32.HeapFree(heap, 0, block)
    assert native.outstanding < with_block
    assert k32.HeapDestroy(heap)
    assert native.outstanding == 0


def test_fault_reaches_the_caller() -> None:
    """An injected malloc failure is HeapAlloc's NULL and ERROR_NOT_ENOUGH_MEMORY."""
    native = FaultyMemory(only=("malloc",))
    k32 = EmulatedBackend(memory=native)
    heap = k32.HeapCreate(0, 0, 0)
    native.fail_at = native.calls + 1
    assert k32.HeapAlloc(heap, 0, 32) is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    assert native.injected == 1
    assert k32.HeapAlloc(heap, 0, 32)  # the next one works
    assert k32.HeapDestroy(heap)
    assert native.leaks() == []
