"""A :class:`NativeMemory` whose calls fail on demand, and which counts what it hands out.

For fault injection: the N-th failable native call (or every one from the N-th
on) fails the way the seam reports failure (0 or False), so every error path of
the emulation can be driven. It also keeps a ledger of allocator blocks and
mappings, so a test can prove nothing leaks, and refuses (instead of
performing) a ``free`` or ``unmap`` of memory it never handed out.

It wraps this system's real :class:`NativeMemory`, so it works on any system
the emulation runs on.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, TypeVar

from compatheap.backends.emulated._native import Address, NativeMemory, system_memory

#: The calls that can fail. ``free`` and ``unmap`` of a whole mapping cannot;
#: ``decommit`` and ``commit`` can (the system may refuse, or not promise zeros).
FAILABLE = ("malloc", "realloc", "map", "map_aligned", "decommit", "commit", "remap")


class NativeMisuse(AssertionError):
    """The emulation freed or unmapped memory the system never gave it."""


class FaultyMemory(NativeMemory):
    """This system's memory calls, with fault injection and an allocation ledger.

    ``fail_at``: the 1-based index of the failable call that fails (None: none
    does). ``persistent``: every failable call from ``fail_at`` on fails, as when
    the system has run out of memory for good. ``only``: restrict failures to
    these calls (see :data:`FAILABLE`).
    """

    @classmethod
    def probe(cls) -> Tuple[bool, str]:
        return True, "wraps the system's memory calls"

    def __init__(
        self,
        fail_at: Optional[int] = None,
        *,
        persistent: bool = False,
        only: Optional[Tuple[str, ...]] = None,
        use_remap: bool = True,
        use_usable_size: bool = True,
    ) -> None:
        unknown = set(only or ()) - set(FAILABLE)
        if unknown:
            raise ValueError(f"not failable: {sorted(unknown)}")
        self.real = system_memory(use_remap=use_remap, use_usable_size=use_usable_size)
        self.page_size = self.real.page_size
        self.can_remap = self.real.can_remap
        self.usable_size_name = self.real.usable_size_name
        self.fail_at = fail_at
        self.persistent = persistent
        self.only = only
        #: Failable calls made so far, and how many of them were made to fail.
        self.calls = 0
        self.injected = 0
        #: Live allocator blocks (address -> size), and mappings (start -> length).
        self.blocks: Dict[Address, int] = {}
        self.mappings: Dict[Address, int] = {}

    # -- the fault switch ----------------------------------------------------------
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

    # -- the ledger ----------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Allocator blocks plus mapped pages not yet given back."""
        return len(self.blocks) + sum(self.mappings.values()) // self.page_size

    def leaks(self) -> List[str]:
        """What is still outstanding, described (empty when nothing is)."""
        found = [f"malloc block {a:#x} ({n} bytes)" for a, n in sorted(self.blocks.items())]
        found += [f"mapping {s:#x}+{n:#x}" for s, n in sorted(self.mappings.items())]
        return found

    def _mapping(self, address: Address, length: int, what: str) -> None:
        if self.mappings.get(address) != length:
            raise NativeMisuse(f"{what} of {address:#x}+{length:#x}, which is not a mapping made here")

    def _inside(self, address: Address, length: int, what: str) -> None:
        page = self.page_size
        if address & (page - 1) or length & (page - 1) or length <= 0:
            raise NativeMisuse(f"{what} of {address:#x}+{length:#x}: not whole pages")
        if not any(start <= address and address + length <= start + n for start, n in self.mappings.items()):
            raise NativeMisuse(f"{what} of {address:#x}+{length:#x}, which is not inside a mapping made here")

    # -- the seam ------------------------------------------------------------------
    def malloc(self, size: int) -> Address:
        if self._fails("malloc"):
            return 0
        address = self.real.malloc(size)
        if address:
            self.blocks[address] = size
        return address

    def realloc(self, address: Address, size: int) -> Address:
        if address not in self.blocks:
            raise NativeMisuse(f"realloc of {address:#x}, which malloc never returned")
        if self._fails("realloc"):
            return 0
        moved = self.real.realloc(address, size)
        if moved:
            del self.blocks[address]
            self.blocks[moved] = size
        return moved

    def free(self, address: Address) -> None:
        if address not in self.blocks:
            raise NativeMisuse(f"free of {address:#x}, which malloc never returned (or already freed)")
        del self.blocks[address]
        self.real.free(address)

    def usable_size(self, address: Address) -> int:
        if address not in self.blocks:
            raise NativeMisuse(f"usable size of {address:#x}, which malloc never returned")
        return self.real.usable_size(address)

    def map(self, length: int, executable: bool = False) -> Address:
        if self._fails("map"):
            return 0
        address = self.real.map(length, executable)
        if address:
            self.mappings[address] = self._pages(length)
        return address

    def map_aligned(self, length: int, alignment: int, executable: bool = False) -> Address:
        if self._fails("map_aligned"):
            return 0
        address = self.real.map_aligned(length, alignment, executable)
        if address:
            self.mappings[address] = self._pages(length)
        return address

    def unmap(self, address: Address, length: int) -> bool:
        self._mapping(address, self._pages(length), "unmap")
        done = self.real.unmap(address, length)
        if done:
            del self.mappings[address]
        return done

    def decommit(self, address: Address, length: int) -> bool:
        self._inside(address, length, "decommit")
        if self._fails("decommit"):
            return False
        return self.real.decommit(address, length)

    def commit(self, address: Address, length: int, executable: bool = False) -> bool:
        self._inside(address, length, "commit")
        if self._fails("commit"):
            return False
        return self.real.commit(address, length, executable)

    def remap(self, address: Address, length: int, new_length: int, may_move: bool) -> Address:
        self._mapping(address, length, "remap")
        if self._fails("remap"):
            return 0
        moved = self.real.remap(address, length, new_length, may_move)
        if moved:
            del self.mappings[address]
            self.mappings[moved] = new_length
        return moved

    def _pages(self, length: int) -> int:
        page = self.page_size
        return (length + page - 1) & ~(page - 1)


_K = TypeVar("_K")
_V = TypeVar("_V")


class TableWithoutRoom(Dict[_K, _V]):
    """A dict that takes no new key while ``full``, as one Python's memory cannot grow."""

    full = False

    def __setitem__(self, key: _K, value: _V) -> None:
        if self.full and key not in self:
            raise MemoryError
        super().__setitem__(key, value)

    def setdefault(self, key: _K, default: _V) -> _V:
        if self.full and key not in self:
            raise MemoryError
        return super().setdefault(key, default)
