"""The interface every backend implements: the Win32 heap functions."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, FrozenSet, Mapping, Optional, Protocol, Tuple, Union

if TYPE_CHECKING:
    from ctypes import _CArgObject, _CData

    from .._config import Settings


class SupportsAsParameter(Protocol):
    """An object ctypes converts through its ``_as_parameter_``."""

    @property
    def _as_parameter_(self) -> object: ...


#: An argument as a ctypes function with argtypes takes it: an int, None, a
#: ctypes instance, ``byref()``, or an object with ``_as_parameter_``. What is
#: refused raises ``ctypes.ArgumentError``, as ctypes would.
CArg = Union[int, None, "_CData", "_CArgObject", SupportsAsParameter]
#: The Win32 parameter types, each a :data:`CArg` converted as its C type is.
HANDLE = CArg
DWORD = CArg
SIZE_T = CArg
LPVOID = CArg
#: An output buffer: a pointer to the structure (or ``byref``), or an address.
OutBuffer = CArg

#: The functions every backend carries, with Win32 names and argument order.
FUNCTIONS = (
    "GetProcessHeap",
    "GetProcessHeaps",
    "HeapCreate",
    "HeapDestroy",
    "HeapAlloc",
    "HeapReAlloc",
    "HeapFree",
    "HeapSize",
    "HeapValidate",
    "HeapCompact",
    "HeapLock",
    "HeapUnlock",
    "HeapWalk",
    "HeapSummary",
    "HeapQueryInformation",
    "HeapSetInformation",
    "GetLastError",
    "SetLastError",
)


@dataclass(frozen=True)
class Capabilities:
    """What a backend promises or offers beyond the Win32 contract.

    The conformance suite runs a test that needs one of these only where it is
    true (``@pytest.mark.needs("refuses_bad_pointers")``), and ``compatheap
    info`` shows them: backends are told apart by what they can do, not by name.
    """

    #: Bad input that Windows may crash on (a freed, foreign or never
    #: allocated pointer, a destroyed or bogus heap handle) gets the Win32
    #: failure instead: a safety promise of an emulation.
    refuses_bad_pointers: bool = False
    #: Blocks are aligned to MEMORY_ALLOCATION_ALIGNMENT and no more: among many
    #: blocks of one size some lie at odd multiples of it, as on Windows. An
    #: emulation can only promise it where its C allocator does the same.
    blocks_not_over_aligned: bool = True
    #: Its heap is Wine's kernel32: Wine 8's known deviations from Windows are
    #: expected there (``@pytest.mark.wine_deviation`` tests fail strictly).
    wine_heap: bool = False
    #: ``HeapSummary`` can be called (Wine 8's kernel32 has none: the call
    #: aborts the process).
    heap_summary: bool = True
    #: Its transcripts of the differential workload are the reference others
    #: are compared against.
    transcript_reference: bool = False
    #: The debug checks (``tail``, ``free``) it can switch on, and those on now.
    debug_checks: FrozenSet[str] = frozenset()
    debug_enabled: FrozenSet[str] = frozenset()
    #: Variants of it the conformance suite also runs: name -> what they force.
    variants: Mapping[str, str] = field(default_factory=dict)
    #: How it works here, for ``compatheap info``: subject -> state.
    features: Mapping[str, str] = field(default_factory=dict)
    #: From this size on a block gets a mapping of its own (None: not known).
    large_block_threshold: Optional[int] = None
    #: The size of a page the backend maps (None: not known).
    page_size: Optional[int] = None


class HeapBackend(abc.ABC):
    """A provider of the Win32 heap API.

    Calling conventions are those of a ctypes binding with full argtypes:
    handles and pointers come back as ``int`` (``None`` for NULL), BOOL results
    as ``int``, and arguments are converted as ctypes converts them.
    """

    #: The name used by ``COMPATHEAP_BACKEND`` and ``backends.get()``.
    name: str = ""

    @classmethod
    @abc.abstractmethod
    def probe(cls) -> Tuple[bool, str]:
        """Whether this backend can run here, and if not, why."""

    @classmethod
    def from_settings(cls, settings: "Settings") -> "HeapBackend":
        """The instance ``backends.get()`` hands out, configured by ``settings``."""
        return cls()

    @property
    def capabilities(self) -> Capabilities:
        """What this backend promises or offers beyond the Win32 contract."""
        return Capabilities()

    def variant(self, name: str) -> "HeapBackend":
        """The variant ``name`` of :attr:`Capabilities.variants` (KeyError if none)."""
        raise KeyError(name)

    @classmethod
    def fix(cls) -> str:
        """What a user can do when :meth:`probe` says no."""
        return "Pick another backend with COMPATHEAP_BACKEND."

    @abc.abstractmethod
    def GetProcessHeap(self) -> Optional[int]: ...

    @abc.abstractmethod
    def GetProcessHeaps(self, NumberOfHeaps: DWORD, ProcessHeaps: OutBuffer, /) -> int: ...

    @abc.abstractmethod
    def HeapCreate(self, flOptions: DWORD, dwInitialSize: SIZE_T, dwMaximumSize: SIZE_T, /) -> Optional[int]: ...

    @abc.abstractmethod
    def HeapDestroy(self, hHeap: HANDLE, /) -> int: ...

    @abc.abstractmethod
    def HeapAlloc(self, hHeap: HANDLE, dwFlags: DWORD, dwBytes: SIZE_T, /) -> Optional[int]: ...

    @abc.abstractmethod
    def HeapReAlloc(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, dwBytes: SIZE_T, /) -> Optional[int]: ...

    @abc.abstractmethod
    def HeapFree(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, /) -> int: ...

    @abc.abstractmethod
    def HeapSize(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, /) -> int: ...

    @abc.abstractmethod
    def HeapValidate(self, hHeap: HANDLE, dwFlags: DWORD, lpMem: LPVOID, /) -> int: ...

    @abc.abstractmethod
    def HeapCompact(self, hHeap: HANDLE, dwFlags: DWORD, /) -> int: ...

    @abc.abstractmethod
    def HeapLock(self, hHeap: HANDLE, /) -> int: ...

    @abc.abstractmethod
    def HeapUnlock(self, hHeap: HANDLE, /) -> int: ...

    @abc.abstractmethod
    def HeapWalk(self, hHeap: HANDLE, lpEntry: OutBuffer, /) -> int: ...

    @abc.abstractmethod
    def HeapSummary(self, hHeap: HANDLE, dwFlags: DWORD, lpSummary: OutBuffer, /) -> int: ...

    @abc.abstractmethod
    def HeapQueryInformation(
        self,
        HeapHandle: HANDLE,
        HeapInformationClass: DWORD,
        HeapInformation: OutBuffer,
        HeapInformationLength: SIZE_T,
        ReturnLength: OutBuffer,
        /,
    ) -> int: ...

    @abc.abstractmethod
    def HeapSetInformation(
        self,
        HeapHandle: HANDLE,
        HeapInformationClass: DWORD,
        HeapInformation: CArg,
        HeapInformationLength: SIZE_T,
        /,
    ) -> int: ...

    @abc.abstractmethod
    def GetLastError(self) -> int: ...

    @abc.abstractmethod
    def SetLastError(self, dwErrCode: DWORD, /) -> None: ...

    def __repr__(self) -> str:
        return f"<compatheap backend {self.name!r}>"
