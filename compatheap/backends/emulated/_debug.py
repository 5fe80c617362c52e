"""Debug checks as Windows' global flags enable them.

Tail checking pads every small block with ``0xAB`` bytes past the requested
size; free checking fills freed blocks with ``0xFEEEFEEE`` and keeps them out of
circulation for a while (so a write after free can be seen), and fills new
blocks with ``0xBAADF00D``. Both patterns are laid in whole DWORDs on the
block's own 4-byte grid, as Windows lays them: a trailing partial DWORD is left
alone. Large blocks get neither: they read 0.
"""

from __future__ import annotations

import ctypes
from collections import deque
from typing import AbstractSet, Deque, List, Optional, Tuple

from ._native import Address

TAIL_BYTE = 0xAB
#: Pad bytes past the requested size: Windows guarantees at least 8. (Not
#: more: a request grown by 8 keeps the allocator's spacing of blocks, so tail
#: checking does not line blocks up on a coarser grid than Windows does.)
TAIL_SIZE = 8
FREE_FILL = (0xFEEEFEEE).to_bytes(4, "little")
ALLOC_FILL = (0xBAADF00D).to_bytes(4, "little")
#: How many freed blocks are held back to catch writes after free.
QUARANTINE_BLOCKS = 256

_memmove = ctypes.memmove
_string_at = ctypes.string_at
_TAIL = bytes([TAIL_BYTE]) * TAIL_SIZE


def _pattern(fill: bytes, length: int) -> bytes:
    return (fill * (length // len(fill) + 1))[:length]


def _fill(address: Address, fill: bytes, length: int) -> None:
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


def dword_span(start: int, end: int) -> Tuple[int, int]:
    """The whole DWORDs of the 4-byte grid that start at or after ``start`` and end by ``end``."""
    return (start + 3) & ~3, end & ~3


class DebugChecks:
    """The checks switched on for a backend, and their fill operations."""

    def __init__(self, checks: AbstractSet[str]) -> None:
        self.tail = "tail" in checks
        self.free = "free" in checks
        self.enabled = self.tail or self.free
        self.tail_size = TAIL_SIZE if self.tail else 0

    def fill_new(self, address: Address, start: int, end: int) -> None:
        """Mark bytes ``start..end`` of a block as never written (free checking)."""
        if self.free:
            first, last = dword_span(start, end)
            if last > first:
                _fill(address + first, ALLOC_FILL, last - first)

    def write_tail(self, address: Address, size: int) -> None:
        if self.tail:
            _memmove(address + size, _TAIL, TAIL_SIZE)

    def tail_intact(self, address: Address, size: int) -> bool:
        if not self.tail:
            return True
        return _string_at(address + size, TAIL_SIZE) == _TAIL


class Quarantine:
    """Freed blocks filled with the free pattern, released to the allocator later."""

    def __init__(self) -> None:
        self.blocks: Deque[Tuple[Address, int]] = deque()
        self.corrupted = False
        #: While nonzero, intact() is reading the blocks: none is evicted.
        self.reading = 0

    def hold(self, address: Address, length: int) -> Optional[Tuple[Address, int]]:
        """Keep a freed block; returns the one evicted to make room, if any."""
        length &= ~3
        _fill(address, FREE_FILL, length)
        self.blocks.append((address, length))
        if len(self.blocks) > QUARANTINE_BLOCKS and not self.reading:
            evicted = self.blocks.popleft()
            if not self._intact(*evicted):
                self.corrupted = True
            return evicted
        return None

    @staticmethod
    def _intact(address: Address, length: int) -> bool:
        return _string_at(address, length) == _pattern(FREE_FILL, length)

    def intact(self) -> bool:
        if self.corrupted:
            return False
        # A copy, and no block leaves while it is read: a nested call (a
        # finaliser's, a handler's) freeing a block meanwhile would evict one.
        was = self.reading
        try:
            self.reading = was + 1
            return all(self._intact(a, n) for a, n in list(self.blocks))
        finally:
            self.reading = was

    def drain(self) -> List[Tuple[Address, int]]:
        """Let every held block go (their fills checked first)."""
        held = list(self.blocks)
        self.blocks.clear()
        if not all(self._intact(a, n) for a, n in held):
            self.corrupted = True
        return held
