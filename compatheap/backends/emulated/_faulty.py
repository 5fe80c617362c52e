"""A :class:`Native` whose calls fail on demand, and which counts what it hands out.

For fault injection: the N-th failable native call (or every one from the
N-th on) fails the way the C library reports it, so every error path of the
emulation can be driven. It also keeps a ledger of ``malloc`` blocks and mapped
pages, so a test can prove nothing leaks, and refuses (instead of performing)
a ``free`` or ``munmap`` of memory it never handed out.

The plain :class:`Native` is untouched: the wrappers replace the bound C
functions on this instance only.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._oldnative import PAGE_SIZE, Native

_MAP_FAILED = (1 << (8 * ctypes.sizeof(ctypes.c_void_p))) - 1

#: The raw C functions that can fail, and the value each returns when it does.
#: ``free`` is not here: it cannot fail. ``munmap`` fails only when it splits a
#: mapping (the kernel's ENOMEM at its mapping-count limit); unmapping whole
#: mappings cannot fail, so it is never made to.
FAILURE_VALUES: Dict[str, Any] = {
    "malloc": None,
    "realloc": None,
    "_mmap": _MAP_FAILED,
    "_mremap": _MAP_FAILED,
    "_munmap": -1,
}


class NativeMisuse(AssertionError):
    """The emulation freed or unmapped memory the C library never gave it."""


def _page_up(length: int) -> int:
    return (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class FaultyNative(Native):
    """``Native`` with fault injection and an allocation ledger.

    ``fail_at``: the 1-based index of the failable call that fails (None: none
    does). ``persistent``: every failable call from ``fail_at`` on fails, as when
    the system has run out of memory for good. ``only``: restrict failures to
    these raw function names (see :data:`FAILURE_VALUES`).
    """

    def __init__(
        self,
        fail_at: Optional[int] = None,
        *,
        persistent: bool = False,
        only: Optional[Tuple[str, ...]] = None,
        **options: bool,
    ) -> None:
        super().__init__(**options)
        self.fail_at = fail_at
        self.persistent = persistent
        self.only = only
        #: Failable calls made so far, and how many of them were made to fail.
        self.calls = 0
        self.injected = 0
        #: Live ``malloc`` blocks, and mapped pieces (start -> length).
        self.blocks: Dict[int, int] = {}
        self.mappings: Dict[int, int] = {}
        self._raw: Dict[str, Callable[..., Any]] = {}
        for name in FAILURE_VALUES:
            func = getattr(self, name, None)
            if func is not None:
                self._raw[name] = func
        self._libc_free: Callable[[int], None] = self.free
        self.malloc = self._malloc
        self.realloc = self._realloc
        self.free = self._free
        self._mmap = self._do_mmap
        self._munmap = self._do_munmap
        if "_mremap" in self._raw and self._mremap is not None:
            self._mremap = self._do_mremap

    # -- the fault switch ----------------------------------------------------
    def _fails(self, name: str) -> bool:
        if self.only is not None and name not in self.only:
            return False
        self.calls += 1
        if self.fail_at is None:
            return False
        if self.calls == self.fail_at or (self.persistent and self.calls > self.fail_at):
            self.injected += 1
            return True
        return False

    # -- the ledger ------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """``malloc`` blocks plus mapped pages not yet given back."""
        return len(self.blocks) + sum(self.mappings.values()) // PAGE_SIZE

    def _covered(self, start: int, end: int) -> bool:
        pieces = sorted((s, s + n) for s, n in self.mappings.items() if s < end and s + n > start)
        at = start
        for s, e in pieces:
            if s > at:
                return False
            at = max(at, e)
        return at >= end

    def _whole(self, start: int, end: int) -> bool:
        """Whether ``start..end`` consists of whole mapped pieces only."""
        return all(start <= s and s + n <= end for s, n in self.mappings.items() if s < end and s + n > start)

    def _forget(self, start: int, end: int) -> None:
        for s, n in list(self.mappings.items()):
            e = s + n
            if s < end and e > start:
                del self.mappings[s]
                if s < start:
                    self.mappings[s] = start - s
                if e > end:
                    self.mappings[end] = e - end

    # -- wrapped C functions -------------------------------------------------------
    def _malloc(self, size: int) -> Optional[int]:
        if self._fails("malloc"):
            return None
        address: Optional[int] = self._raw["malloc"](size)
        if address:
            self.blocks[address] = size
        return address

    def _realloc(self, address: int, size: int) -> Optional[int]:
        if address not in self.blocks:
            raise NativeMisuse(f"realloc of {address:#x}, which malloc never returned")
        if self._fails("realloc"):
            return None
        moved: Optional[int] = self._raw["realloc"](address, size)
        if moved:
            del self.blocks[address]
            self.blocks[moved] = size
        return moved

    def _free(self, address: int) -> None:
        if address not in self.blocks:
            raise NativeMisuse(f"free of {address:#x}, which malloc never returned (or already freed)")
        del self.blocks[address]
        self._libc_free(address)

    def _do_mmap(self, *args: Any) -> Any:
        if self._fails("_mmap"):
            return _MAP_FAILED
        address = self._raw["_mmap"](*args)
        if address and address != _MAP_FAILED:
            self.mappings[int(address)] = _page_up(int(args[1]))
        return address

    def _do_munmap(self, address: int, length: int) -> int:
        end = address + _page_up(length)
        if not self._covered(address, end):
            raise NativeMisuse(f"munmap of {address:#x}+{length:#x}, not all of it mapped here")
        if not self._whole(address, end) and self._fails("_munmap"):
            return -1
        result: int = self._raw["_munmap"](address, length)
        if result == 0:
            self._forget(address, end)
        return result

    def _do_mremap(self, address: int, old_length: int, new_length: int, flags: int) -> Any:
        if not self._covered(address, address + old_length):
            raise NativeMisuse(f"mremap of {address:#x}+{old_length:#x}, not all of it mapped here")
        if self._fails("_mremap"):
            return _MAP_FAILED
        result = self._raw["_mremap"](address, old_length, new_length, flags)
        if result and result != _MAP_FAILED:
            self._forget(address, address + old_length)
            self.mappings[int(result)] = _page_up(new_length)
        return result

    def leaks(self) -> List[str]:
        """What is still outstanding, described (empty when nothing is)."""
        found = [f"malloc block {a:#x} ({n} bytes)" for a, n in sorted(self.blocks.items())]
        found += [f"mapping {s:#x}+{n:#x}" for s, n in sorted(self.mappings.items())]
        return found
