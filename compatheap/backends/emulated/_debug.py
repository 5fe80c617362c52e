"""Debug checks as Windows' global flags enable them.

Tail checking pads every small block with ``0xAB`` bytes past the requested
size; free checking fills freed blocks with ``0xFEEEFEEE`` and keeps them out of
circulation for a while (so a write after free can be seen), and fills new
blocks with ``0xBAADF00D``.
"""

from __future__ import annotations

import ctypes
from collections import deque
from typing import Deque, FrozenSet, Tuple

TAIL_BYTE = 0xAB
#: Pad bytes past the requested size; Windows guarantees at least 8.
TAIL_SIZE = 2 * ctypes.sizeof(ctypes.c_void_p)
FREE_FILL = (0xFEEEFEEE).to_bytes(4, "little")
ALLOC_FILL = (0xBAADF00D).to_bytes(4, "little")
#: How many freed blocks are held back to catch writes after free.
QUARANTINE_BLOCKS = 256

_memmove = ctypes.memmove
_string_at = ctypes.string_at
_TAIL = bytes([TAIL_BYTE]) * TAIL_SIZE


def _pattern(fill: bytes, length: int) -> bytes:
    return (fill * (length // len(fill) + 1))[:length]


def _fill(address: int, fill: bytes, length: int) -> None:
    """Repeat ``fill`` over ``length`` bytes in place, doubling the filled part.

    No temporary of the block's size: filling must work when memory is short.
    """
    if length <= 4096:
        _memmove(address, _pattern(fill, length), length)
        return
    _memmove(address, _pattern(fill, 4096), 4096)
    done = 4096
    while done < length:
        step = min(done, length - done)
        _memmove(address + done, address, step)
        done += step


class DebugChecks:
    """The checks switched on for a backend, and their fill operations."""

    def __init__(self, checks: FrozenSet[str]) -> None:
        self.tail = "tail" in checks
        self.free = "free" in checks
        self.tail_size = TAIL_SIZE if self.tail else 0

    def __bool__(self) -> bool:
        return self.tail or self.free

    def fill_new(self, address: int, length: int) -> None:
        if self.free and length:
            _fill(address, ALLOC_FILL, length)

    def write_tail(self, address: int, size: int) -> None:
        if self.tail:
            _memmove(address + size, _TAIL, TAIL_SIZE)

    def tail_intact(self, address: int, size: int) -> bool:
        if not self.tail:
            return True
        return _string_at(address + size, TAIL_SIZE) == _TAIL


class Quarantine:
    """Freed blocks filled with the free pattern, released to the allocator later."""

    def __init__(self) -> None:
        self.blocks: Deque[Tuple[int, int]] = deque()
        self.corrupted = False

    def hold(self, address: int, length: int) -> "Tuple[int, int] | None":
        """Keep a freed block; returns the one evicted to make room, if any."""
        _fill(address, FREE_FILL, length)
        self.blocks.append((address, length))
        if len(self.blocks) > QUARANTINE_BLOCKS:
            evicted = self.blocks.popleft()
            if not self._intact(*evicted):
                self.corrupted = True
            return evicted
        return None

    @staticmethod
    def _intact(address: int, length: int) -> bool:
        return _string_at(address, length) == _pattern(FREE_FILL, length)

    def intact(self) -> bool:
        if self.corrupted:
            return False
        return all(self._intact(a, n) for a, n in self.blocks)

    def drain(self) -> "list[Tuple[int, int]]":
        held = list(self.blocks)
        self.blocks.clear()
        return held
