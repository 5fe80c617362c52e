"""Exceptions raised by compatheap."""

from __future__ import annotations

from typing import Optional

from ._constants import STATUS_ACCESS_VIOLATION, STATUS_NO_MEMORY

_STATUS_NAMES = {
    STATUS_NO_MEMORY: "STATUS_NO_MEMORY",
    STATUS_ACCESS_VIOLATION: "STATUS_ACCESS_VIOLATION",
}


class HeapException(OSError):
    """A heap call failed under ``HEAP_GENERATE_EXCEPTIONS``.

    Windows raises a structured exception instead of returning NULL; this is
    its Python form. ``status`` is the NTSTATUS code (``STATUS_NO_MEMORY`` for
    an allocation that could not be satisfied).
    """

    def __init__(self, status: int, function: str, nbytes: Optional[int] = None) -> None:
        status &= 0xFFFFFFFF
        name = _STATUS_NAMES.get(status, "NTSTATUS")
        what = f"{function} failed with {name} (0x{status:08X})"
        if nbytes is not None:
            what += f" asking for {nbytes} bytes"
        super().__init__(what)
        self.status = status
        self.function = function
        self.nbytes = nbytes

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.status, self.function, self.nbytes))


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this system."""

    def __init__(self, name: str, reason: str, fix: str) -> None:
        super().__init__(f"compatheap backend {name!r} is not available: {reason}. {fix}")
        self.name = name
        self.reason = reason
        self.fix = fix


class ConfigError(ValueError):
    """The configuration file or environment holds a value compatheap cannot use."""
