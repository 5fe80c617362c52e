"""Calling conventions: every function takes and returns what kernel32 bound with
full argtypes through ctypes takes and returns.

What a ctypes argtype accepts is decided by ctypes itself here (a C callback with
the same argument type serves as the oracle), so the emulation is held to real
ctypes conversion rules, and on Windows the kernel32 backend is checked against
the same oracle.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any, Callable, Dict, List, Tuple

import pytest

import compatheap
from compatheap import (
    ERROR_GEN_FAILURE,
    ERROR_INSUFFICIENT_BUFFER,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_SUMMARY,
    HEAP_ZERO_MEMORY,
    PROCESS_HEAP_ENTRY,
    HeapCompatibilityInformation,
)
from compatheap.conformance._support import pattern, read, walk, write

PTR_BITS = 8 * ctypes.sizeof(ctypes.c_void_p)
SIZE_BITS = 8 * ctypes.sizeof(ctypes.c_size_t)
SIZE_MAX = (1 << SIZE_BITS) - 1
SENTINEL = 0x5EADBEEF

HANDLE = ctypes.c_void_p
DWORD = ctypes.c_uint32
SIZE_T = ctypes.c_size_t
LPVOID = ctypes.c_void_p
P_HANDLE = ctypes.POINTER(ctypes.c_void_p)
P_ENTRY = ctypes.POINTER(PROCESS_HEAP_ENTRY)
P_SUMMARY = ctypes.POINTER(HEAP_SUMMARY)
P_SIZE = ctypes.POINTER(ctypes.c_size_t)

#: Windows' prototypes: the argtypes a full ctypes binding of kernel32 uses.
ARGTYPES: Dict[str, Tuple[Any, ...]] = {
    "GetProcessHeap": (),
    "GetProcessHeaps": (DWORD, P_HANDLE),
    "HeapCreate": (DWORD, SIZE_T, SIZE_T),
    "HeapDestroy": (HANDLE,),
    "HeapAlloc": (HANDLE, DWORD, SIZE_T),
    "HeapReAlloc": (HANDLE, DWORD, LPVOID, SIZE_T),
    "HeapFree": (HANDLE, DWORD, LPVOID),
    "HeapSize": (HANDLE, DWORD, LPVOID),
    "HeapValidate": (HANDLE, DWORD, LPVOID),
    "HeapCompact": (HANDLE, DWORD),
    "HeapLock": (HANDLE,),
    "HeapUnlock": (HANDLE,),
    "HeapWalk": (HANDLE, P_ENTRY),
    "HeapSummary": (HANDLE, DWORD, P_SUMMARY),
    "HeapQueryInformation": (HANDLE, DWORD, LPVOID, SIZE_T, P_SIZE),
    "HeapSetInformation": (HANDLE, DWORD, LPVOID, SIZE_T),
    "GetLastError": (),
    "SetLastError": (DWORD,),
}


def ctypes_accepts(argtype: Any, value: Any) -> bool:
    """Whether a ctypes function with ``argtype`` takes ``value`` (ctypes decides)."""
    if argtype is DWORD and type(value) is ctypes.c_ulong:
        return True  # Windows' DWORD (wintypes.DWORD) is c_ulong, 4 bytes there: c_uint32 itself.
    probe = ctypes.CFUNCTYPE(None, argtype)(lambda _: None)
    try:
        probe(value)
    except ctypes.ArgumentError:
        return False
    return True


class _AsParameter:
    """An object passed through its ``_as_parameter_``, as ctypes allows."""

    def __init__(self, value: Any) -> None:
        self._as_parameter_ = value


#: Candidates for every argument kind. Only the ones ctypes rejects are passed
#: (a rejected argument never reaches the function, so nothing unsafe runs).
CANDIDATES: List[Tuple[str, Callable[[], Any]]] = [
    ("float", lambda: 1.5),
    ("str", lambda: "16"),
    ("bytes", lambda: b"16"),
    ("list", lambda: [16]),
    ("tuple", lambda: (16,)),
    ("dict", dict),
    ("object", lambda: object()),
    ("None", lambda: None),
    ("c_int", lambda: ctypes.c_int(16)),
    ("c_uint32", lambda: ctypes.c_uint32(16)),
    ("c_size_t", lambda: ctypes.c_size_t(16)),
    ("c_double", lambda: ctypes.c_double(16)),
    ("c_void_p", lambda: ctypes.c_void_p(16)),
    ("c_char_p", lambda: ctypes.c_char_p(b"x")),
    ("struct entry", lambda: PROCESS_HEAP_ENTRY()),
    ("struct summary", lambda: HEAP_SUMMARY()),
    ("byref summary", lambda: ctypes.byref(HEAP_SUMMARY())),
    ("size_t array", lambda: (ctypes.c_size_t * 4)()),
    ("as_parameter float", lambda: _AsParameter(1.5)),
]


def _valid_args(k32: Any, heap: int, block: int, holders: List[Any]) -> Dict[str, List[Any]]:
    """Arguments that make each call harmless (what a test substitutes one of)."""
    info = ctypes.c_uint32(0)
    length = ctypes.c_size_t(0)
    entry = PROCESS_HEAP_ENTRY()
    summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
    heaps = (ctypes.c_void_p * 1)()
    holders.extend([info, length, entry, summary, heaps])
    return {
        "GetProcessHeaps": [0, heaps],
        "HeapCreate": [0, 0, 0],
        "HeapDestroy": [heap],
        "HeapAlloc": [heap, 0, 16],
        "HeapReAlloc": [heap, 0, block, 16],
        "HeapFree": [heap, 0, None],
        "HeapSize": [heap, 0, block],
        "HeapValidate": [heap, 0, block],
        "HeapCompact": [heap, 0],
        "HeapLock": [heap],
        "HeapUnlock": [heap],
        "HeapWalk": [heap, ctypes.byref(entry)],
        "HeapSummary": [heap, 0, ctypes.byref(summary)],
        "HeapQueryInformation": [heap, HeapCompatibilityInformation, ctypes.byref(info), 4, ctypes.byref(length)],
        "HeapSetInformation": [heap, HeapCompatibilityInformation, ctypes.byref(info), 4],
        "SetLastError": [0],
    }


_POSITIONS = [(name, index) for name, types in ARGTYPES.items() for index in range(len(types))]


def _type_name(argtype: Any) -> str:
    return getattr(argtype, "__name__", str(argtype))


@pytest.mark.parametrize("function, index", _POSITIONS, ids=[f"{name}-arg{index + 1}" for name, index in _POSITIONS])
def test_rejected_arguments_raise_argument_error(k32: Any, heap: int, function: str, index: int) -> None:
    """Whatever ctypes refuses for an argument raises ctypes.ArgumentError naming its position."""
    argtype = ARGTYPES[function][index]
    block = k32.HeapAlloc(heap, 0, 16)
    holders: List[Any] = []
    args = _valid_args(k32, heap, block, holders)[function]
    rejected = 0
    for label, make in CANDIDATES:
        value = make()
        if ctypes_accepts(argtype, value):
            continue
        rejected += 1
        call_args = list(args)
        call_args[index] = value
        k32.SetLastError(SENTINEL)
        with pytest.raises(ctypes.ArgumentError) as info:
            getattr(k32, function)(*call_args)
        assert str(info.value).startswith(f"argument {index + 1}:"), (label, str(info.value))
        # Refused before the call: the function did not run.
        assert k32.GetLastError() == SENTINEL, label
    assert rejected >= 5, f"too few rejected candidates for {_type_name(argtype)}"
    assert k32.HeapSize(heap, 0, block) == 16
    assert k32.HeapFree(heap, 0, block)


@pytest.mark.parametrize("function", list(ARGTYPES), ids=list(ARGTYPES))
def test_wrong_argument_count_raises_type_error(k32: Any, function: str) -> None:
    """Too few or too many arguments raise TypeError before anything runs."""
    count = len(ARGTYPES[function])
    call = getattr(k32, function)
    if count:
        with pytest.raises(TypeError):
            call(*([0] * (count - 1)))
    with pytest.raises(TypeError):
        call(*([0] * (count + 1)))


@pytest.mark.parametrize("value", [1.5, "16", [16], None, b"16"], ids=["float", "str", "list", "None", "bytes"])
def test_size_argument_type_errors(k32: Any, heap: int, value: Any) -> None:
    """A non-integer size raises ctypes.ArgumentError from HeapAlloc on every backend."""
    assert not ctypes_accepts(SIZE_T, value)
    with pytest.raises(ctypes.ArgumentError):
        k32.HeapAlloc(heap, 0, value)


@pytest.mark.parametrize(
    "value",
    [1.5, [1], ctypes.c_size_t(1), ctypes.c_int(1)],
    ids=["float", "list", "c_size_t", "c_int"],
)
def test_handle_argument_type_errors(k32: Any, value: Any) -> None:
    """A handle that is neither int, None nor pointer-like raises ctypes.ArgumentError."""
    assert not ctypes_accepts(HANDLE, value)
    with pytest.raises(ctypes.ArgumentError):
        k32.HeapAlloc(value, 0, 16)
    with pytest.raises(ctypes.ArgumentError):
        k32.HeapDestroy(value)


# -- accepted forms -----------------------------------------------------------


def test_ctypes_instances_are_accepted(k32: Any, heap: int) -> None:
    """c_void_p handles and pointers, c_uint32 flags and c_size_t sizes work like ints."""
    block = k32.HeapAlloc(ctypes.c_void_p(heap), ctypes.c_uint32(HEAP_ZERO_MEMORY), ctypes.c_size_t(64))
    assert block
    assert read(block, 64) == bytes(64)
    assert k32.HeapSize(ctypes.c_void_p(heap), ctypes.c_uint32(0), ctypes.c_void_p(block)) == 64
    assert k32.HeapValidate(ctypes.c_void_p(heap), 0, ctypes.c_void_p(block))
    moved = k32.HeapReAlloc(ctypes.c_void_p(heap), 0, ctypes.c_void_p(block), ctypes.c_size_t(128))
    assert moved
    assert k32.HeapFree(ctypes.c_void_p(heap), ctypes.c_uint32(0), ctypes.c_void_p(moved))
    other = k32.HeapCreate(ctypes.c_uint32(0), ctypes.c_size_t(0), ctypes.c_size_t(0))
    assert other
    assert k32.HeapDestroy(ctypes.c_void_p(other))


def test_none_is_null(k32: Any, heap: int) -> None:
    """None passes NULL for handles and pointers."""
    assert k32.HeapFree(heap, 0, None)
    assert k32.HeapFree(None, 0, None)
    assert k32.HeapReAlloc(heap, 0, None, 16) is None


def test_as_parameter_objects_are_accepted(k32: Any, heap: int) -> None:
    """Objects carrying _as_parameter_ are converted through it, as ctypes does."""
    block = k32.HeapAlloc(_AsParameter(heap), _AsParameter(0), _AsParameter(24))
    assert block
    assert k32.HeapSize(_AsParameter(heap), 0, _AsParameter(block)) == 24
    assert k32.HeapFree(_AsParameter(heap), 0, _AsParameter(block))


def test_windows_dword_instances_are_accepted(k32: Any, heap: int) -> None:
    """``ctypes.wintypes.DWORD`` (``c_ulong``) instances pass for DWORD arguments, as on
    Windows, where they are ``c_uint32`` itself (elsewhere ``c_ulong`` is 8 bytes)."""
    from ctypes import wintypes

    block = k32.HeapAlloc(heap, wintypes.DWORD(HEAP_ZERO_MEMORY), 32)
    assert block
    assert read(block, 32) == bytes(32)
    assert k32.HeapSize(heap, wintypes.DWORD(0), block) == 32
    k32.SetLastError(wintypes.DWORD(5))
    assert k32.GetLastError() == 5
    assert k32.HeapFree(heap, wintypes.DWORD(0), block)


def test_keyword_arguments_are_refused(k32: Any, heap: int) -> None:
    """The functions take their arguments by position only, as a ctypes function
    does: a keyword raises TypeError and the call does not happen."""
    block = k32.HeapAlloc(heap, 0, 16)
    assert block
    with pytest.raises(TypeError):
        k32.HeapFree(heap, 0, lpMem=block)
    with pytest.raises(TypeError):
        k32.HeapSize(hHeap=heap, dwFlags=0, lpMem=block)
    with pytest.raises(TypeError):
        k32.HeapAlloc(heap, 0, dwBytes=16)
    assert k32.HeapSize(heap, 0, block) == 16
    assert k32.HeapFree(heap, 0, block)


def test_buffers_through_as_parameter(k32: Any, heap: int) -> None:
    """An output or input buffer carried by ``_as_parameter_`` is the buffer it stands for."""
    entry = PROCESS_HEAP_ENTRY()
    assert k32.HeapWalk(heap, _AsParameter(ctypes.byref(entry)))
    assert entry.wFlags  # the heap's region entry, written into the caller's structure
    pointed = PROCESS_HEAP_ENTRY()
    assert k32.HeapWalk(heap, _AsParameter(ctypes.pointer(pointed)))
    assert (pointed.lpData, pointed.wFlags) == (entry.lpData, entry.wFlags)
    info, length = ctypes.c_uint32(SENTINEL), ctypes.c_size_t(0)
    assert k32.HeapQueryInformation(
        heap, HeapCompatibilityInformation, _AsParameter(ctypes.byref(info)), 4, _AsParameter(ctypes.byref(length))
    )
    assert (info.value, length.value) == (0, 4)
    assert k32.HeapSetInformation(heap, HeapCompatibilityInformation, _AsParameter(ctypes.byref(ctypes.c_uint32(0))), 4)
    # Through _as_parameter_ a structure is not passed by reference: ctypes refuses it.
    with pytest.raises(ctypes.ArgumentError, match="^argument 2:"):
        k32.HeapWalk(heap, _AsParameter(PROCESS_HEAP_ENTRY()))


class _Raising:
    """An object whose ``_as_parameter_`` raises."""

    @property
    def _as_parameter_(self) -> Any:
        raise RuntimeError("no parameter")


def test_raising_as_parameter_is_an_argument_error(k32: Any, heap: int) -> None:
    """Whatever the conversion raises, in any position, comes as ctypes.ArgumentError naming it."""
    info = ctypes.c_uint32(0)
    calls: List[Tuple[int, Callable[[], Any]]] = [
        (1, lambda: k32.HeapSize(_Raising(), 0, None)),
        (3, lambda: k32.HeapAlloc(heap, 0, _Raising())),
        (2, lambda: k32.HeapWalk(heap, _Raising())),
        (2, lambda: k32.GetProcessHeaps(1, _Raising())),
        (5, lambda: k32.HeapQueryInformation(heap, HeapCompatibilityInformation, ctypes.byref(info), 4, _Raising())),
    ]
    for position, call in calls:
        k32.SetLastError(SENTINEL)
        with pytest.raises(ctypes.ArgumentError) as raised:
            call()
        assert str(raised.value) == f"argument {position}: RuntimeError: no parameter"
        assert k32.GetLastError() == SENTINEL


@pytest.mark.wine_deviation("HeapSetInformation accepts any mode")
def test_bytes_as_an_input_buffer(k32: Any, heap: int) -> None:
    """A bytes object passed for a PVOID is its own buffer: HeapSetInformation reads it."""
    assert k32.HeapSetInformation(heap, HeapCompatibilityInformation, struct.pack("<I", 2), 4)
    # Read, not refused: the low-fragmentation heap is on and cannot be undone.
    assert k32.HeapSetInformation(heap, HeapCompatibilityInformation, struct.pack("<I", 0), 4) == 0
    assert k32.GetLastError() == ERROR_GEN_FAILURE


def test_bools_are_integers(k32: Any, heap: int) -> None:
    """True and False are ints to ctypes: a size of True is one byte."""
    block = k32.HeapAlloc(heap, False, True)
    assert block
    assert k32.HeapSize(heap, False, block) == 1
    assert k32.HeapFree(heap, False, block)


@pytest.mark.parametrize("size", [-1, -8, SIZE_MAX, SIZE_MAX - 7], ids=["-1", "-8", "SIZE_MAX", "SIZE_MAX-7"])
def test_negative_size_wraps_and_fails_cleanly(k32: Any, heap: int, size: int) -> None:
    """A size of -1 is SIZE_MAX: NULL with ERROR_NOT_ENOUGH_MEMORY, no exception."""
    k32.SetLastError(SENTINEL)
    assert k32.HeapAlloc(heap, 0, size) is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    block = k32.HeapAlloc(heap, 0, 8)
    k32.SetLastError(SENTINEL)
    assert k32.HeapReAlloc(heap, 0, block, size) is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    assert k32.HeapSize(heap, 0, block) == 8
    assert k32.HeapFree(heap, 0, block)


def test_oversized_ints_wrap_to_c_width(k32: Any, heap: int) -> None:
    """Ints wider than the C type keep their low bits: sizes, flags and pointers alike."""
    block = k32.HeapAlloc(heap + (1 << PTR_BITS), 1 << 32, (1 << SIZE_BITS) + 40)
    assert block
    assert k32.HeapSize(heap, 0, block) == 40
    assert k32.HeapSize(heap, 0, block + (1 << PTR_BITS)) == 40
    assert k32.HeapFree(heap, 0, block + (1 << PTR_BITS))


def test_heap_create_sizes_wrap(k32: Any) -> None:
    """HeapCreate's sizes wrap as SIZE_T: 2**N + 0 is a growable heap."""
    heap = k32.HeapCreate(0, 1 << SIZE_BITS, 1 << SIZE_BITS)
    assert heap
    blocks = [k32.HeapAlloc(heap, 0, 0x40000) for _ in range(16)]
    assert all(blocks)
    assert k32.HeapDestroy(heap)


# -- buffers ------------------------------------------------------------------


def test_process_heaps_buffer_forms(k32: Any) -> None:
    """GetProcessHeaps fills a c_void_p array, or a POINTER(c_void_p) into one."""
    total = k32.GetProcessHeaps(0, None)
    array = (ctypes.c_void_p * total)()
    assert k32.GetProcessHeaps(total, array) == total
    listed = list(array)
    assert listed[0] == k32.GetProcessHeap()
    other = (ctypes.c_void_p * (total + 2))()
    pointer = ctypes.cast(other, P_HANDLE)
    assert k32.GetProcessHeaps(total + 2, pointer) == total
    assert list(other)[:total] == listed


@pytest.mark.parametrize(
    "make",
    [lambda n: (ctypes.c_size_t * n)(), lambda n: [0] * n, lambda n: (ctypes.c_uint32 * (2 * n))()],
    ids=["size_t array", "list", "uint32 array"],
)
def test_process_heaps_wrong_buffer_types(k32: Any, make: Callable[[int], Any]) -> None:
    """Buffers of the wrong element type are refused with ctypes.ArgumentError."""
    total = k32.GetProcessHeaps(0, None)
    buffer = make(total)
    assert not ctypes_accepts(P_HANDLE, buffer)
    with pytest.raises(ctypes.ArgumentError):
        k32.GetProcessHeaps(total, buffer)


def test_walk_entry_forms(k32: Any, heap: int) -> None:
    """HeapWalk takes the entry as byref(), pointer() or the Structure itself, with one result."""
    blocks = [k32.HeapAlloc(heap, 0, size) for size in (10, 200, 3000)]
    expected = walk(k32, heap)
    for wrap in (ctypes.byref, ctypes.pointer, lambda entry: entry):
        entry = PROCESS_HEAP_ENTRY()
        seen = []
        while k32.HeapWalk(heap, wrap(entry)):
            seen.append((entry.lpData or 0, entry.cbData, entry.cbOverhead, entry.wFlags))
        assert seen == expected
    for block in blocks:
        assert k32.HeapFree(heap, 0, block)


def test_walk_refuses_other_structures(k32: Any, heap: int) -> None:
    """A HEAP_SUMMARY where a PROCESS_HEAP_ENTRY belongs is an ArgumentError."""
    with pytest.raises(ctypes.ArgumentError):
        k32.HeapWalk(heap, HEAP_SUMMARY())
    with pytest.raises(ctypes.ArgumentError):
        k32.HeapWalk(heap, ctypes.byref(HEAP_SUMMARY()))


@pytest.mark.needs("heap_summary")
def test_summary_forms(k32: Any, heap: int) -> None:
    """HeapSummary takes byref(), pointer() or the Structure itself."""
    block = k32.HeapAlloc(heap, 0, 100)
    for wrap in (ctypes.byref, ctypes.pointer, lambda summary: summary):
        summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
        assert k32.HeapSummary(heap, 0, wrap(summary))
        assert summary.cbAllocated >= 100
    assert k32.HeapFree(heap, 0, block)


def test_query_information_return_length_forms(k32: Any, heap: int) -> None:
    """ReturnLength may be byref(), pointer(), a c_size_t itself, or None."""
    for wrap in (ctypes.byref, ctypes.pointer, lambda length: length):
        info = ctypes.c_uint32(0xFFFF)
        length = ctypes.c_size_t(0)
        info_arg = ctypes.byref(info)
        assert k32.HeapQueryInformation(heap, HeapCompatibilityInformation, info_arg, 4, wrap(length))
        assert info.value == 0
        assert length.value == 4
    info = ctypes.c_uint32(0xFFFF)
    assert k32.HeapQueryInformation(heap, HeapCompatibilityInformation, ctypes.byref(info), 4, None)
    assert info.value == 0


def test_query_information_buffer_forms(k32: Any, heap: int) -> None:
    """The information buffer may be byref(), pointer(), an array, or a block's address."""
    for make in (
        lambda: ctypes.byref(ctypes.c_uint32(0xFFFF)),
        lambda: ctypes.pointer(ctypes.c_uint32(0xFFFF)),
        lambda: (ctypes.c_uint32 * 1)(0xFFFF),
        lambda: (ctypes.c_uint8 * 4)(0xFF, 0xFF, 0, 0),
    ):
        buffer = make()
        assert k32.HeapQueryInformation(heap, HeapCompatibilityInformation, buffer, 4, None)
        target: Any = buffer._obj if hasattr(buffer, "_obj") else buffer
        target = target.contents if isinstance(target, ctypes._Pointer) else target
        assert bytes(memoryview(target).cast("B"))[:4] == bytes(4)
    block = k32.HeapAlloc(heap, 0, 4)
    # A c_void_p passes the address it holds, like a bare int.
    for address in (block, ctypes.c_void_p(block)):
        write(block, pattern(4))
        assert k32.HeapQueryInformation(heap, HeapCompatibilityInformation, address, 4, None)
        assert read(block, 4) == bytes(4)
    assert k32.HeapFree(heap, 0, block)


@pytest.mark.parametrize(
    "make",
    [lambda: ctypes.c_uint32(0), lambda: HEAP_SUMMARY(), lambda: ctypes.c_size_t(0)],
    ids=["c_uint32", "Structure", "c_size_t"],
)
def test_void_pointer_refuses_plain_instances(k32: Any, heap: int, make: Callable[[], Any]) -> None:
    """A PVOID argument refuses a ctypes instance passed by value: byref() it instead."""
    value = make()
    assert not ctypes_accepts(LPVOID, value)
    with pytest.raises(ctypes.ArgumentError):
        k32.HeapQueryInformation(heap, HeapCompatibilityInformation, value, 4, None)
    with pytest.raises(ctypes.ArgumentError):
        k32.HeapSetInformation(heap, HeapCompatibilityInformation, value, 4)


def test_query_information_small_buffer(k32: Any, heap: int) -> None:
    """A NULL buffer is a short one: FALSE, ERROR_INSUFFICIENT_BUFFER, length still 4."""
    length = ctypes.c_size_t(0)
    assert not k32.HeapQueryInformation(heap, HeapCompatibilityInformation, None, 0, ctypes.byref(length))
    assert k32.GetLastError() == ERROR_INSUFFICIENT_BUFFER
    assert length.value == 4


# -- results ------------------------------------------------------------------


def test_result_types(k32: Any, heap: int) -> None:
    """Handles and pointers come back as int (None for NULL), BOOL and sizes as int."""
    created = k32.HeapCreate(0, 0, 0)
    assert type(created) is int
    block = k32.HeapAlloc(heap, 0, 8)
    assert type(block) is int
    assert type(k32.GetProcessHeap()) is int
    assert type(k32.GetProcessHeaps(0, None)) is int
    assert type(k32.HeapSize(heap, 0, block)) is int
    assert type(k32.HeapValidate(heap, 0, block)) is int
    moved = k32.HeapReAlloc(heap, 0, block, 16)
    assert type(moved) is int
    assert k32.HeapAlloc(heap, 0, SIZE_MAX) is None
    assert k32.HeapReAlloc(heap, 0, moved, SIZE_MAX) is None
    assert k32.SetLastError(0) is None
    assert type(k32.GetLastError()) is int
    freed = k32.HeapFree(heap, 0, moved)
    assert type(freed) is int and freed
    destroyed = k32.HeapDestroy(created)
    assert type(destroyed) is int and destroyed
    refused = k32.HeapDestroy(k32.GetProcessHeap())
    assert type(refused) is int and not refused


# -- the kernel32 stand-in ----------------------------------------------------


def test_kernel32_is_a_windll_of_its_own() -> None:
    """``from compatheap import kernel32`` is a ``WinDLL("kernel32")``: every heap
    function, as function objects of its own, cached per attribute."""
    from compatheap import kernel32

    k: Any = kernel32
    for name in compatheap.backends.FUNCTIONS:
        func = getattr(k, name)
        assert func is getattr(k, name), name  # cached: settings stay
        assert func is not getattr(compatheap, name), name  # never compatheap's own
        assert func.restype is ctypes.c_int and func.argtypes is None and func.errcheck is None, name


def test_kernel32_names_are_windows_names() -> None:
    """Exported names bind, names kernel32.dll lacks raise AttributeError."""
    from compatheap import kernel32

    k: Any = kernel32
    assert callable(k.VirtualAlloc) and callable(k.CreateFileW)
    with pytest.raises(AttributeError, match="function 'HeapAllocate' not found"):
        k.HeapAllocate  # noqa: B018 - the lookup is the test


def test_kernel32_attributes_never_change_compatheap() -> None:
    """An old line such as ``kernel32.HeapSize.restype = c_uint16`` stays on that object."""
    from compatheap import kernel32

    k: Any = kernel32
    heap = compatheap.HeapCreate(0, 0, 0)
    saved = k.HeapSize.restype, k.HeapSize.argtypes
    try:
        block = compatheap.HeapAlloc(heap, 0, 70000)
        k.HeapSize.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
        k.HeapSize.restype = ctypes.c_uint16
        assert k.HeapSize(heap, 0, block) == 70000 & 0xFFFF
        assert compatheap.HeapSize(heap, 0, block) == 70000
    finally:
        k.HeapSize.restype, k.HeapSize.argtypes = saved
        compatheap.HeapDestroy(heap)


def test_kernel32_is_a_working_drop_in() -> None:
    """The usual windll.kernel32 code runs unchanged against compatheap.kernel32."""
    from compatheap import kernel32

    k: Any = ctypes.WinDLL("kernel32") if hasattr(ctypes, "WinDLL") else type(kernel32)("kernel32")
    vp, dword, size_t = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t
    k.GetProcessHeap.restype = vp
    k.HeapAlloc.restype, k.HeapAlloc.argtypes = vp, [vp, dword, size_t]
    k.HeapSize.restype, k.HeapSize.argtypes = size_t, [vp, dword, vp]
    k.HeapFree.argtypes = [vp, dword, vp]
    heap = k.GetProcessHeap()
    block = k.HeapAlloc(heap, HEAP_ZERO_MEMORY, 32)
    assert block
    assert read(block, 32) == bytes(32)
    assert k.HeapSize(heap, 0, block) == 32
    assert k.HeapFree(heap, 0, block)
    k.SetLastError(SENTINEL)
    assert k.HeapAlloc(heap, 0, -1) is None
    assert k.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
