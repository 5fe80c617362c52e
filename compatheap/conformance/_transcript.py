"""Seeded random heap workloads, recorded as transcripts of observables.

A transcript holds only what Windows defines: whether a call failed, the last
error, ``HeapSize``, a digest of the bytes whose contents are defined, and, for
``HEAP_REALLOC_IN_PLACE_ONLY`` shrinks, that the pointer stayed. Addresses never
appear, so two correct backends produce identical transcripts for a seed.
"""

from __future__ import annotations

import ctypes
import hashlib
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .._constants import HEAP_REALLOC_IN_PLACE_ONLY, HEAP_ZERO_MEMORY, POINTER_SIZE, SIZE_MAX

#: Seeds and length of the workloads the differential test compares.
SEEDS = (1, 2, 3, 4, 5)
STEPS = 2000
_SENTINEL_ERROR = 0x5EED
_LARGE = 0xFF000
#: Half the address space: no process gets it (a fixed 1 << 62 would wrap to 0 on 32-bit).
_HALF_SPACE = 1 << (8 * POINTER_SIZE - 1)


def _size(rng: random.Random) -> int:
    bucket = rng.random()
    if bucket < 0.05:
        return 0
    if bucket < 0.55:
        return rng.randint(1, 64)
    if bucket < 0.85:
        return rng.randint(65, 4096)
    if bucket < 0.97:
        return rng.randint(4097, 0x20000)
    return rng.randint(0xFF000, 0x180000)  # large blocks


_RAMP = bytes(range(256)) * (0x180000 // 256 + 2)


def _fill(address: int, start: int, end: int, tag: int) -> None:
    """Write bytes that depend on ``tag`` only, not on where the block is."""
    if end > start:
        offset = tag & 0xFF
        ctypes.memmove(address + start, _RAMP[offset : offset + end - start], end - start)


def _digest(address: int, start: int, end: int) -> str:
    if end <= start:
        return "-"
    return hashlib.sha1(ctypes.string_at(address + start, end - start)).hexdigest()[:12]


def transcript(k32: Any, seed: int, steps: int = STEPS) -> List[str]:
    """Run the workload for ``seed`` on backend ``k32``; return its transcript."""
    rng = random.Random(seed)
    heap = k32.HeapCreate(0, 0, 0)
    if not heap:
        raise RuntimeError("HeapCreate failed")
    slots: Dict[int, Tuple[int, int]] = {}  # slot -> (address, size)
    next_slot = 0
    lines: List[str] = []

    def call(func: Any, *args: Any) -> Tuple[Any, int]:
        k32.SetLastError(_SENTINEL_ERROR)
        result = func(*args)
        return result, k32.GetLastError()

    try:
        for step in range(steps):
            roll = rng.random()
            if not slots or roll < 0.3:
                size = _size(rng)
                flags = HEAP_ZERO_MEMORY if rng.random() < 0.3 else 0
                address, err = call(k32.HeapAlloc, heap, flags, size)
                line = f"alloc {size} {flags:#x} -> {'ok' if address else 'NULL'} err={err:#x}"
                if address:
                    zeroed = _digest(address, 0, size) if flags else "-"
                    line += f" size={k32.HeapSize(heap, 0, address)} zero={zeroed}"
                    _fill(address, 0, size, step)
                    slots[next_slot] = (address, size)
                    next_slot += 1
                lines.append(line)
                continue
            slot = rng.choice(sorted(slots))
            address, old = slots[slot]
            if roll < 0.55:
                new = _size(rng)
                flags = HEAP_ZERO_MEMORY if rng.random() < 0.4 else 0
                # In-place shrinks of small blocks only: Wine 8 moves large
                # ones (a known deviation, tested on its own in test_realloc).
                if new < old < _LARGE and rng.random() < 0.5:
                    flags |= HEAP_REALLOC_IN_PLACE_ONLY
                moved, err = call(k32.HeapReAlloc, heap, flags, address, new)
                line = f"realloc #{slot} {old}->{new} {flags:#x} -> {'ok' if moved else 'NULL'} err={err:#x}"
                if moved:
                    if flags & HEAP_REALLOC_IN_PLACE_ONLY:
                        line += f" same={moved == address}"
                    line += f" size={k32.HeapSize(heap, 0, moved)} kept={_digest(moved, 0, min(old, new))}"
                    if flags & HEAP_ZERO_MEMORY:
                        line += f" zero={_digest(moved, old, new)}"
                    _fill(moved, min(old, new), new, step)
                    slots[slot] = (moved, new)
                lines.append(line)
            elif roll < 0.62:
                huge = rng.choice([SIZE_MAX, SIZE_MAX - 7, _HALF_SPACE])
                flags = rng.choice([0, HEAP_ZERO_MEMORY, HEAP_REALLOC_IN_PLACE_ONLY])
                moved, err = call(k32.HeapReAlloc, heap, flags, address, huge)
                lines.append(
                    f"realloc-huge #{slot} {huge:#x} {flags:#x} -> {'ok' if moved else 'NULL'} err={err:#x}"
                    f" size={k32.HeapSize(heap, 0, address)} kept={_digest(address, 0, old)}"
                    f" valid={bool(k32.HeapValidate(heap, 0, address))}"
                )
            elif roll < 0.9:
                ok, err = call(k32.HeapFree, heap, 0, address)
                lines.append(f"free #{slot} -> {bool(ok)} err={err:#x}")
                del slots[slot]
            else:
                size, err = call(k32.HeapSize, heap, 0, address)
                lines.append(
                    f"check #{slot} size={size} err={err:#x} kept={_digest(address, 0, old)}"
                    f" valid={bool(k32.HeapValidate(heap, 0, address))}"
                )
        lines.append(f"end live={len(slots)} heap-valid={bool(k32.HeapValidate(heap, 0, None))}")
    finally:
        k32.HeapDestroy(heap)
    return lines


def first_difference(a: Sequence[str], b: Sequence[str]) -> Optional[str]:
    """A readable account of where two transcripts part, or None if equal."""
    for step, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"step {step}:\n  reference: {x}\n  this one:  {y}"
    if len(a) != len(b):
        return f"lengths differ: {len(a)} vs {len(b)}"
    return None
