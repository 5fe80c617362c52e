"""The native seam: every call the emulation makes into the system's memory.

Two families of calls, and nothing else:

* the C allocator (``malloc``, ``realloc``, ``free`` and a usable-size query),
  which serves a growable heap's small blocks;
* page mappings (map, unmap, remap, and decommit/commit of pages inside
  one), which hold heap regions, fixed-size heaps and large blocks.

:class:`NativeMemory` states the contract; one module per system implements it
(``_posix.py``: the C library and ``mmap``). A system is added as one more
module with one more subclass, picked in :func:`system_memory`. Fault
injection in the tests is a subclass too.

Every call reports failure by returning 0 (or False) and leaves things as they
were; none raises for a refusal of the system.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, List, Optional, Sequence, Tuple, Type

#: A memory address as the emulation handles it: a plain int, 0 for NULL.
Address = int
#: A C function bound with its argtypes and restype: it returns an int, or None
#: for a NULL pointer (or a void function).
CFunction = Callable[..., Optional[int]]


def bind(lib: Any, name: str, restype: object, argtypes: Sequence[object]) -> Optional[CFunction]:
    """``name`` from ``lib`` with its prototype set, or None where ``lib`` lacks it.

    ``lib`` is a library object of the caller's own (a new ``PyDLL(None)``,
    ``WinDLL("kernel32")``): the prototype goes on its function object, which
    nobody else's calls go through.
    """
    function = getattr(lib, name, None)
    if function is None:
        return None
    function.restype = restype
    function.argtypes = list(argtypes)
    bound: CFunction = function
    return bound


def need(lib: Any, name: str, restype: object, argtypes: Sequence[object]) -> CFunction:
    """:func:`bind` of a function the implementation's probe found: ``OSError`` if it is missing all the same."""
    function = bind(lib, name, restype, argtypes)
    if function is None:
        raise OSError(f"cannot bind {name}()")
    return function


class NativeMemory(abc.ABC):
    """The allocator and mapping calls of one system.

    Subclasses take the keyword arguments ``use_remap`` and
    ``use_usable_size`` (see :func:`system_memory`) and set :attr:`page_size`,
    :attr:`can_remap` and :attr:`usable_size_name` in ``__init__``, which
    raises ``OSError`` when the calls cannot be bound.
    """

    #: What :meth:`map` hands out in whole multiples of.
    page_size: int = 4096
    #: Whether :meth:`remap` can resize a mapping (``mremap``); if not, it
    #: always returns 0 and a large block grows by copying.
    can_remap: bool = False
    #: The name of the C function behind :meth:`usable_size`, or None when the
    #: allocator cannot tell a block's capacity (then the emulation records it).
    usable_size_name: Optional[str] = None

    @classmethod
    @abc.abstractmethod
    def probe(cls) -> Tuple[bool, str]:
        """Whether this system's calls can be bound here, and why (not)."""

    @property
    def knows_usable_size(self) -> bool:
        return self.usable_size_name is not None

    # -- the C allocator -------------------------------------------------------
    @abc.abstractmethod
    def malloc(self, size: int) -> Address:
        """A block of at least ``size`` bytes (``size`` may be 0), or 0.

        Aligned to at least ``MEMORY_ALLOCATION_ALIGNMENT``, whatever the
        allocator itself promises for small sizes.
        """

    @abc.abstractmethod
    def realloc(self, address: Address, size: int) -> Address:
        """The block resized to ``size`` bytes, moved if need be, aligned as :meth:`malloc`'s.

        0 on failure, and then the block is untouched and still allocated.
        """

    @abc.abstractmethod
    def free(self, address: Address) -> None:
        """Give back a block :meth:`malloc` or :meth:`realloc` returned."""

    @abc.abstractmethod
    def usable_size(self, address: Address) -> int:
        """How many bytes the block can hold (only called when :attr:`knows_usable_size`)."""

    # -- page mappings -------------------------------------------------------
    @abc.abstractmethod
    def map(self, length: int, executable: bool = False) -> Address:
        """Fresh zeroed read-write (and executable if asked) pages, or 0."""

    @abc.abstractmethod
    def map_aligned(self, length: int, alignment: int, executable: bool = False) -> Address:
        """Like :meth:`map`, starting at a multiple of ``alignment`` (a power of two)."""

    @abc.abstractmethod
    def unmap(self, address: Address, length: int) -> bool:
        """Give back a whole mapping made by :meth:`map`, :meth:`map_aligned` or :meth:`remap`."""

    @abc.abstractmethod
    def decommit(self, address: Address, length: int) -> bool:
        """Give the pages of ``address..+length`` (whole pages inside one mapping) back to the system.

        The mapping keeps its length and the addresses stay its own (Windows'
        reserve and commit). True means the pages will read zero once
        :meth:`commit` has made them usable again; False that they may still
        hold what they held (the system refused, or does not promise zeros).
        """

    @abc.abstractmethod
    def commit(self, address: Address, length: int, executable: bool = False) -> bool:
        """Make pages that :meth:`decommit` gave back usable again (they read zero); False if refused.

        Pages that are usable already stay as they are.
        """

    @abc.abstractmethod
    def remap(self, address: Address, length: int, new_length: int, may_move: bool) -> Address:
        """The mapping resized to ``new_length`` bytes, its contents kept; 0 if not possible.

        Without ``may_move`` only in place. Pages added read zero. Where the
        system cannot resize mappings (:attr:`can_remap` False) always 0.
        """


def system_memory(*, use_remap: bool = True, use_usable_size: bool = True) -> NativeMemory:
    """This system's :class:`NativeMemory`.

    ``use_remap`` / ``use_usable_size`` set to False force the fallbacks that
    systems without ``mremap`` or a usable-size query take.
    """
    reasons = []
    for cls in implementations():
        ok, why = cls.probe()
        if ok:
            return cls(use_remap=use_remap, use_usable_size=use_usable_size)  # type: ignore[call-arg]
        reasons.append(why)
    raise OSError("; ".join(reasons))


def implementations() -> List[Type[NativeMemory]]:
    """Every system's implementation, in the order they are tried."""
    from ._posix import PosixMemory
    from ._windows import WindowsMemory

    return [PosixMemory, WindowsMemory]


def probe() -> Tuple[bool, str]:
    """Whether some :class:`NativeMemory` works here, and which (or why none does)."""
    reasons = []
    for cls in implementations():
        ok, why = cls.probe()
        if ok:
            return True, why
        reasons.append(why)
    return False, "; ".join(reasons)
