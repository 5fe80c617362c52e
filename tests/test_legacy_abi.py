"""The legacy kernel32's calls as Windows CPython's ctypes makes them: argument counts,
keyword arguments, paramflags, and what a 64-bit parameter receives.

Each expected value is what Windows CPython 3.13 does on 64-bit Windows (run under
Wine). On Windows these tests run against ctypes' own ``WinDLL``/``WINFUNCTYPE`` and
the real kernel32 (the wine tox env), so the expectations are checked there too.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, Iterator

import pytest

import compatheap
from compatheap import PROCESS_HEAP_ENTRY

ON_WINDOWS = sys.platform == "win32"
IS_64_BIT = ctypes.sizeof(ctypes.c_void_p) == 8
only_64_bit = pytest.mark.skipif(not IS_64_BIT, reason="Win64's 8-byte argument slots; this process has 4-byte ones")

if ON_WINDOWS:
    CDLL: Any = ctypes.CDLL
    WinDLL: Any = ctypes.WinDLL  # type: ignore[attr-defined]
    OleDLL: Any = ctypes.OleDLL  # type: ignore[attr-defined]
    WINFUNCTYPE: Any = ctypes.WINFUNCTYPE  # type: ignore[attr-defined]
else:
    from compatheap.legacy import _dll

    CDLL, WinDLL, OleDLL, WINFUNCTYPE = _dll.CDLL, _dll.WinDLL, _dll.OleDLL, _dll.WINFUNCTYPE

vp, dw, sz = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t
HEAP_FREE = (ctypes.c_int, [vp, dw, vp])  # the Win32 prototype (restype, argtypes)


@pytest.fixture
def heap() -> Iterator[int]:
    handle = compatheap.HeapCreate(0, 0, 0)
    assert handle
    try:
        yield handle
    finally:
        compatheap.HeapDestroy(handle)


def _block(heap: int) -> int:
    block = compatheap.HeapAlloc(heap, 0, 16)
    assert block is not None
    return block


def _live(heap: int, block: int) -> bool:
    return bool(compatheap.HeapValidate(heap, 0, block))


def _count_error(message: str, direct: bool) -> Any:
    """``pytest.raises`` for a wrong argument count: ctypes' exact message, except
    on the direct path of a function bound with the Win32 prototype (calls
    there go straight to compatheap's function, which refuses with Python's
    own TypeError; the call does not happen either way)."""
    if direct and not ON_WINDOWS:
        return pytest.raises(TypeError)
    return pytest.raises(TypeError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$")


def _bound(dll: Any, name: str, restype: Any, argtypes: Any) -> Any:
    function = getattr(dll, name)
    function.restype, function.argtypes = restype, argtypes
    return function


# -- argument counts: WinDLL, OleDLL and WINFUNCTYPE functions are stdcall to ctypes --------


@pytest.mark.parametrize("loader", [WinDLL, OleDLL], ids=["WinDLL", "OleDLL"])
@pytest.mark.parametrize(
    "argtypes", [[vp, dw, vp], [vp, dw, ctypes.c_uint64]], ids=["Win32 prototype", "other argtypes"]
)
def test_stdcall_function_takes_exactly_its_argtypes(heap: int, loader: Any, argtypes: Any) -> None:
    free = _bound(loader("kernel32"), "HeapFree", ctypes.c_int, argtypes)
    block = _block(heap)
    direct = argtypes == HEAP_FREE[1]
    # Windows: "this function takes 3 arguments (4 given)", and nothing is freed.
    with _count_error("this function takes 3 arguments (4 given)", direct):
        free(heap, 0, block, 99)
    with _count_error("this function takes 3 arguments (2 given)", direct):
        free(heap, 0)
    assert _live(heap, block)
    assert free(heap, 0, block) == 1


def test_walk_with_an_extra_argument_is_refused_before_it_runs(heap: int) -> None:
    walk = _bound(WinDLL("kernel32"), "HeapWalk", ctypes.c_int, [vp, ctypes.POINTER(PROCESS_HEAP_ENTRY)])
    entry = PROCESS_HEAP_ENTRY()
    with pytest.raises(TypeError, match=r"^this function takes 2 arguments \(3 given\)$"):
        walk(heap, ctypes.byref(entry), 99)
    assert entry.lpData is None and entry.wFlags == 0  # the walk did not run
    with pytest.raises(TypeError, match=r"^this function takes 2 arguments \(1 given\)$"):
        walk(heap)
    assert walk(heap, ctypes.byref(entry)) == 1


def test_winfunctype_binding_takes_exactly_its_argtypes(heap: int) -> None:
    free = WINFUNCTYPE(ctypes.c_int, vp, dw, vp)(("HeapFree", CDLL("kernel32")))
    block = _block(heap)
    with _count_error("this function takes 3 arguments (4 given)", direct=True):
        free(heap, 0, block, 99)
    assert _live(heap, block)
    assert free(heap, 0, block) == 1


def test_cdecl_function_passes_extra_arguments_on(heap: int) -> None:
    # (Not with the Win32 prototype: that binding calls compatheap's HeapFree
    # directly, which refuses a fourth argument; see docs/porting.md.)
    free = _bound(CDLL("kernel32"), "HeapFree", ctypes.c_int, [vp, dw, ctypes.c_uint64])
    block = _block(heap)
    with pytest.raises(TypeError, match=r"^this function takes at least 3 arguments \(2 given\)$"):
        free(heap, 0)
    assert free(heap, 0, block, 99) == 1  # the callee never reads the fourth argument
    assert not _live(heap, block)


# -- keyword arguments: ignored by a function without paramflags ------------------------------


def test_keyword_arguments_are_ignored(heap: int) -> None:
    free = _bound(WinDLL("kernel32"), "HeapFree", *HEAP_FREE)
    free.errcheck = lambda result, func, args: result  # through ctypes, not the direct path
    block = _block(heap)
    # Windows: only the positional arguments count...
    with pytest.raises(TypeError, match=r"^this function takes 3 arguments \(2 given\)$"):
        free(heap, 0, lpMem=block)
    with pytest.raises(TypeError, match=r"^this function takes 3 arguments \(0 given\)$"):
        free(hHeap=heap, dwFlags=0, lpMem=block)
    assert _live(heap, block)
    # ...and any keyword is dropped: this frees the block.
    assert free(heap, 0, block, extra=1) == 1
    assert not _live(heap, block)


@pytest.mark.skipif(ON_WINDOWS, reason="the direct path is compatheap's")
def test_keyword_arguments_on_the_direct_path_are_refused(heap: int) -> None:
    """Bound with the Win32 prototype, a legacy function is compatheap's own: a
    keyword argument raises TypeError (where Windows ignores it) and the call
    does not happen."""
    free = _bound(WinDLL("kernel32"), "HeapFree", *HEAP_FREE)
    block = _block(heap)
    with pytest.raises(TypeError):
        free(heap, 0, lpMem=block)
    with pytest.raises(TypeError):
        free(heap, 0, block, extra=1)
    assert _live(heap, block)
    assert free(heap, 0, block) == 1


# -- paramflags: ctypes' count of the parameters filled ---------------------------------------


def test_paramflags_count_includes_keyword_filled_parameters(heap: int) -> None:
    alloc = WINFUNCTYPE(vp, vp, dw, sz)(
        ("HeapAlloc", WinDLL("kernel32")), ((1, "hHeap"), (1, "dwFlags", 0), (1, "dwBytes"))
    )
    # Windows counts hHeap and dwBytes as taken, against three given.
    with pytest.raises(TypeError, match=r"^call takes exactly 2 arguments \(3 given\)$"):
        alloc(heap, dwBytes=8, bogus=1)
    with pytest.raises(TypeError, match=r"^call takes exactly 3 arguments \(4 given\)$"):
        alloc(heap, 0, 8, 9)
    block = alloc(heap, dwBytes=8)
    assert compatheap.HeapSize(heap, 0, block) == 8


# -- a narrower integer in a 64-bit parameter: zero-extended in Win64's slot --------------


class _AsParameter:
    def __init__(self, value: Any) -> None:
        self._as_parameter_ = value


def _allocated(alloc: Any, heap: int, size: Any) -> int:
    """HeapSize of what ``alloc(heap, 0, size)`` returned (the block is freed), or -1 for NULL."""
    block = alloc(heap if alloc.argtypes else vp(heap), 0, size)
    if not block:
        return -1
    got = compatheap.HeapSize(heap, 0, block)
    assert compatheap.HeapFree(heap, 0, block)
    return int(got)


#: Windows CPython under Wine: HeapAlloc's SIZE_T receives these, without argtypes.
WITHOUT_ARGTYPES = [
    pytest.param(lambda: ctypes.c_short(-1), 0xFFFF, id="c_short(-1)"),
    pytest.param(lambda: ctypes.c_ushort(0xFFFF), 0xFFFF, id="c_ushort(0xFFFF)"),
    pytest.param(lambda: ctypes.c_byte(-1), 0xFF, id="c_byte(-1)"),
    pytest.param(lambda: ctypes.c_int8(-128), 0x80, id="c_int8(-128)"),
    pytest.param(lambda: ctypes.c_char(b"\xff"), 0xFF, id="c_char(0xff)"),
    pytest.param(lambda: ctypes.c_bool(True), 1, id="c_bool(True)"),
    pytest.param(lambda: _AsParameter(ctypes.c_short(-2)), 0xFFFE, id="_as_parameter_ c_short(-2)"),
    pytest.param(lambda: 2**31, 0x80000000, id="int 2**31"),  # a C int -2**31: 2 GiB, not SIZE_MAX
    pytest.param(lambda: ctypes.c_int(-(2**31)), 0x80000000, id="c_int(-2**31)"),
]


@only_64_bit
@pytest.mark.parametrize(("make", "expected"), WITHOUT_ARGTYPES)
def test_narrow_integer_without_argtypes_is_zero_extended(heap: int, make: Any, expected: int) -> None:
    alloc = _bound(WinDLL("kernel32"), "HeapAlloc", vp, None)
    assert _allocated(alloc, heap, make()) == expected


#: Windows CPython under Wine: HeapAlloc bound with a narrow argtype for its size.
WITH_ARGTYPES = [
    (ctypes.c_int16, -1, 0xFFFF),
    (ctypes.c_int8, -1, 0xFF),
    (ctypes.c_uint16, -1, 0xFFFF),
    (ctypes.c_char, b"\xff", 0xFF),
    (ctypes.c_int32, -(2**31), 0x80000000),
    (ctypes.c_int64, 0x10000, 0x10000),
]


@only_64_bit
@pytest.mark.parametrize(("argtype", "value", "expected"), WITH_ARGTYPES)
def test_narrow_argtype_is_zero_extended(heap: int, argtype: Any, value: Any, expected: int) -> None:
    alloc = _bound(WinDLL("kernel32"), "HeapAlloc", vp, [vp, dw, argtype])
    assert _allocated(alloc, heap, value) == expected


@only_64_bit
def test_narrow_integer_reaches_other_size_parameters_zero_extended(heap: int) -> None:
    kernel32 = WinDLL("kernel32")
    realloc = _bound(kernel32, "HeapReAlloc", vp, None)
    block = _block(heap)
    moved = realloc(vp(heap), 0, vp(block), ctypes.c_short(-1))
    assert moved and compatheap.HeapSize(heap, 0, moved) == 0xFFFF
    create = _bound(kernel32, "HeapCreate", vp, None)
    capped = create(0, 0, ctypes.c_short(-2))  # a heap that grows to 0xFFFE bytes, not SIZE_MAX - 1
    assert capped
    try:
        assert compatheap.HeapAlloc(capped, 0, 0x20000) is None
        assert compatheap.GetLastError() == compatheap.ERROR_NOT_ENOUGH_MEMORY
    finally:
        compatheap.HeapDestroy(capped)


# -- a structure or a float without argtypes: Win64 keeps every argument in its own slot ------


class _Eight(ctypes.Structure):
    _fields_ = [("low", ctypes.c_uint32), ("high", ctypes.c_uint32)]


#: Windows CPython under Wine: these in HeapFree's dwFlags leave lpMem in its place (freed).
IN_DWFLAGS = [
    pytest.param(lambda: ctypes.c_double(0.0), id="c_double"),
    pytest.param(lambda: ctypes.c_float(0.0), id="c_float"),
    pytest.param(lambda: _Eight(), id="8-byte structure"),
    pytest.param(lambda: _AsParameter(ctypes.c_double(0.0)), id="_as_parameter_ c_double"),
]


@only_64_bit
@pytest.mark.parametrize("make", IN_DWFLAGS)
def test_float_or_small_structure_keeps_later_arguments_in_place(heap: int, make: Any) -> None:
    free = WinDLL("kernel32").HeapFree
    block = _block(heap)
    assert free(vp(heap), make(), vp(block)) == 1
    assert not _live(heap, block)


@only_64_bit
def test_float_bits_fill_a_size_parameter(heap: int) -> None:
    alloc = _bound(WinDLL("kernel32"), "HeapAlloc", vp, None)
    # Windows CPython under Wine: a c_float(1.5)'s bits, 0x3FC00000, are the size.
    assert _allocated(alloc, heap, ctypes.c_float(1.5)) == 0x3FC00000


@only_64_bit
def test_large_structure_by_value_is_a_pointer_to_a_copy(heap: int) -> None:
    walk = WinDLL("kernel32").HeapWalk
    entry = PROCESS_HEAP_ENTRY()
    # Windows CPython under Wine: the walk succeeds on a copy; the caller's entry stays as it was.
    assert walk(vp(heap), entry) == 1
    assert entry.lpData is None and entry.wFlags == 0
    assert walk(vp(heap), ctypes.byref(entry)) == 1
    assert entry.lpData is not None
