"""Win32 heap constants, with the values Windows' headers give them."""

from __future__ import annotations

import ctypes
import enum

# HeapCreate / HeapAlloc / HeapReAlloc flags.
HEAP_NO_SERIALIZE = 0x00000001
HEAP_GROWABLE = 0x00000002
HEAP_GENERATE_EXCEPTIONS = 0x00000004
HEAP_ZERO_MEMORY = 0x00000008
HEAP_REALLOC_IN_PLACE_ONLY = 0x00000010
HEAP_TAIL_CHECKING_ENABLED = 0x00000020
HEAP_FREE_CHECKING_ENABLED = 0x00000040
HEAP_DISABLE_COALESCE_ON_FREE = 0x00000080
HEAP_CREATE_ALIGN_16 = 0x00010000
HEAP_CREATE_ENABLE_TRACING = 0x00020000
HEAP_CREATE_ENABLE_EXECUTE = 0x00040000


class HeapFlags(enum.IntFlag):
    """Every ``HEAP_*`` flag as one ``IntFlag`` (members keep their Win32 names).

    Accepted wherever a flags ``int`` is, e.g.
    ``HeapAlloc(heap, HeapFlags.HEAP_ZERO_MEMORY, 16)``; the plain ``HEAP_*``
    constants stay ``int`` so existing code sees no change.
    """

    HEAP_NO_SERIALIZE = HEAP_NO_SERIALIZE
    HEAP_GROWABLE = HEAP_GROWABLE
    HEAP_GENERATE_EXCEPTIONS = HEAP_GENERATE_EXCEPTIONS
    HEAP_ZERO_MEMORY = HEAP_ZERO_MEMORY
    HEAP_REALLOC_IN_PLACE_ONLY = HEAP_REALLOC_IN_PLACE_ONLY
    HEAP_TAIL_CHECKING_ENABLED = HEAP_TAIL_CHECKING_ENABLED
    HEAP_FREE_CHECKING_ENABLED = HEAP_FREE_CHECKING_ENABLED
    HEAP_DISABLE_COALESCE_ON_FREE = HEAP_DISABLE_COALESCE_ON_FREE
    HEAP_CREATE_ALIGN_16 = HEAP_CREATE_ALIGN_16
    HEAP_CREATE_ENABLE_TRACING = HEAP_CREATE_ENABLE_TRACING
    HEAP_CREATE_ENABLE_EXECUTE = HEAP_CREATE_ENABLE_EXECUTE


def describe_flags(value: int) -> str:
    """``"HEAP_ZERO_MEMORY|HEAP_REALLOC_IN_PLACE_ONLY"`` for a flags value; ``"0"`` for none.

    Bits no ``HEAP_*`` flag names are added in hex. Spelt out here because
    ``str()`` of an ``IntFlag`` differs between Python versions.
    """
    value = int(value) & 0xFFFFFFFF
    names = [flag.name or "" for flag in HeapFlags if value & flag]
    unknown = value & ~sum(HeapFlags)
    if unknown:
        names.append(f"{unknown:#x}")
    return "|".join(names) if names else "0"


# PROCESS_HEAP_ENTRY.wFlags
PROCESS_HEAP_REGION = 0x0001
PROCESS_HEAP_UNCOMMITTED_RANGE = 0x0002
PROCESS_HEAP_ENTRY_BUSY = 0x0004
PROCESS_HEAP_ENTRY_MOVEABLE = 0x0010
PROCESS_HEAP_ENTRY_DDESHARE = 0x0020

# Last-error codes the heap functions report.
ERROR_SUCCESS = 0
ERROR_INVALID_HANDLE = 6
ERROR_NOT_ENOUGH_MEMORY = 8
ERROR_OUTOFMEMORY = 14
ERROR_GEN_FAILURE = 31
ERROR_INVALID_PARAMETER = 87
ERROR_INSUFFICIENT_BUFFER = 122
ERROR_NO_MORE_ITEMS = 259
ERROR_NOACCESS = 998

# NTSTATUS values raised under HEAP_GENERATE_EXCEPTIONS.
STATUS_NO_MEMORY = 0xC0000017
STATUS_ACCESS_VIOLATION = 0xC0000005

# HEAP_INFORMATION_CLASS
HeapCompatibilityInformation = 0
HeapEnableTerminationOnCorruption = 1

POINTER_SIZE = ctypes.sizeof(ctypes.c_void_p)
#: Every block is aligned to this (16 on 64-bit, 8 on 32-bit).
MEMORY_ALLOCATION_ALIGNMENT = 2 * POINTER_SIZE
SIZE_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1
#: HeapSize's failure value, ``(SIZE_T)-1``.
HEAP_SIZE_FAILURE = SIZE_MAX

__all__ = [
    "HeapFlags",
    "HEAP_NO_SERIALIZE",
    "HEAP_GROWABLE",
    "HEAP_GENERATE_EXCEPTIONS",
    "HEAP_ZERO_MEMORY",
    "HEAP_REALLOC_IN_PLACE_ONLY",
    "HEAP_TAIL_CHECKING_ENABLED",
    "HEAP_FREE_CHECKING_ENABLED",
    "HEAP_DISABLE_COALESCE_ON_FREE",
    "HEAP_CREATE_ALIGN_16",
    "HEAP_CREATE_ENABLE_TRACING",
    "HEAP_CREATE_ENABLE_EXECUTE",
    "PROCESS_HEAP_REGION",
    "PROCESS_HEAP_UNCOMMITTED_RANGE",
    "PROCESS_HEAP_ENTRY_BUSY",
    "PROCESS_HEAP_ENTRY_MOVEABLE",
    "PROCESS_HEAP_ENTRY_DDESHARE",
    "ERROR_SUCCESS",
    "ERROR_INVALID_HANDLE",
    "ERROR_NOT_ENOUGH_MEMORY",
    "ERROR_OUTOFMEMORY",
    "ERROR_GEN_FAILURE",
    "ERROR_INVALID_PARAMETER",
    "ERROR_INSUFFICIENT_BUFFER",
    "ERROR_NO_MORE_ITEMS",
    "ERROR_NOACCESS",
    "STATUS_NO_MEMORY",
    "STATUS_ACCESS_VIOLATION",
    "HeapCompatibilityInformation",
    "HeapEnableTerminationOnCorruption",
    "MEMORY_ALLOCATION_ALIGNMENT",
    "SIZE_MAX",
    "HEAP_SIZE_FAILURE",
]
