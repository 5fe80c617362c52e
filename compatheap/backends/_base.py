"""The interface every backend implements: the Win32 heap functions."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Optional, Tuple

if TYPE_CHECKING:
    from .._config import Settings

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

    @classmethod
    def fix(cls) -> str:
        """What a user can do when :meth:`probe` says no."""
        return "Pick another backend with COMPATHEAP_BACKEND."

    @abc.abstractmethod
    def GetProcessHeap(self) -> Optional[int]: ...

    @abc.abstractmethod
    def GetProcessHeaps(self, NumberOfHeaps: Any, ProcessHeaps: Any) -> int: ...

    @abc.abstractmethod
    def HeapCreate(self, flOptions: Any, dwInitialSize: Any, dwMaximumSize: Any) -> Optional[int]: ...

    @abc.abstractmethod
    def HeapDestroy(self, hHeap: Any) -> int: ...

    @abc.abstractmethod
    def HeapAlloc(self, hHeap: Any, dwFlags: Any, dwBytes: Any) -> Optional[int]: ...

    @abc.abstractmethod
    def HeapReAlloc(self, hHeap: Any, dwFlags: Any, lpMem: Any, dwBytes: Any) -> Optional[int]: ...

    @abc.abstractmethod
    def HeapFree(self, hHeap: Any, dwFlags: Any, lpMem: Any) -> int: ...

    @abc.abstractmethod
    def HeapSize(self, hHeap: Any, dwFlags: Any, lpMem: Any) -> int: ...

    @abc.abstractmethod
    def HeapValidate(self, hHeap: Any, dwFlags: Any, lpMem: Any) -> int: ...

    @abc.abstractmethod
    def HeapCompact(self, hHeap: Any, dwFlags: Any) -> int: ...

    @abc.abstractmethod
    def HeapLock(self, hHeap: Any) -> int: ...

    @abc.abstractmethod
    def HeapUnlock(self, hHeap: Any) -> int: ...

    @abc.abstractmethod
    def HeapWalk(self, hHeap: Any, lpEntry: Any) -> int: ...

    @abc.abstractmethod
    def HeapSummary(self, hHeap: Any, dwFlags: Any, lpSummary: Any) -> int: ...

    @abc.abstractmethod
    def HeapQueryInformation(
        self,
        HeapHandle: Any,
        HeapInformationClass: Any,
        HeapInformation: Any,
        HeapInformationLength: Any,
        ReturnLength: Any,
    ) -> int: ...

    @abc.abstractmethod
    def HeapSetInformation(
        self,
        HeapHandle: Any,
        HeapInformationClass: Any,
        HeapInformation: Any,
        HeapInformationLength: Any,
    ) -> int: ...

    @abc.abstractmethod
    def GetLastError(self) -> int: ...

    @abc.abstractmethod
    def SetLastError(self, dwErrCode: Any) -> None: ...

    def __repr__(self) -> str:
        return f"<compatheap backend {self.name!r}>"
