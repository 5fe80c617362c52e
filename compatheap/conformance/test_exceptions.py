"""HEAP_GENERATE_EXCEPTIONS: failures raise compatheap.HeapException."""

from __future__ import annotations

import ctypes
from typing import Any, Iterator, List, Tuple

import pytest

import compatheap
from compatheap import (
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_ZERO_MEMORY,
    SIZE_MAX,
    STATUS_NO_MEMORY,
    HeapException,
)
from compatheap.conformance._support import pattern, read, write

#: A last-error value no heap call sets (fits the C int ctypes.set_last_error takes).
SENTINEL = 0x0BADBEEF
#: Sizes no heap can satisfy; negative ones reach the call as SIZE_T.
IMPOSSIBLE = [SIZE_MAX, SIZE_MAX - 7, -1]


class _AsParameter:
    def __init__(self, value: Any) -> None:
        self._as_parameter_ = value


class _Index:
    """An integer-like object: ctypes converts it through ``__index__``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def requested(size: int) -> int:
    """The byte count the call really asked for (ctypes wraps to SIZE_T)."""
    return size & SIZE_MAX


def check_exception(exc: HeapException, function: str, size: int) -> None:
    """The exception carries STATUS_NO_MEMORY and says what failed."""
    assert isinstance(exc, OSError)
    assert exc.status == STATUS_NO_MEMORY == 0xC0000017
    assert exc.function == function
    assert exc.nbytes == requested(size)
    message = str(exc)
    assert function in message
    assert str(requested(size)) in message


@pytest.fixture
def raising_heap(k32: Any) -> Iterator[int]:
    """A growable heap created with HEAP_GENERATE_EXCEPTIONS."""
    handle = k32.HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0, 0)
    assert handle
    yield handle
    k32.HeapDestroy(handle)


def test_heap_exception_is_an_oserror() -> None:
    """HeapException is an OSError subclass, so `except OSError` catches it."""
    assert issubclass(HeapException, OSError)
    assert compatheap.HeapException is HeapException


# -- HeapAlloc -----------------------------------------------------------------
@pytest.mark.parametrize(
    "size",
    [ctypes.c_size_t(-1), _AsParameter(-1), _Index(-1)],
    ids=["c_size_t", "as_parameter", "__index__"],
)
def test_exception_says_the_size_whatever_form_it_took(k32: Any, heap: int, size: Any) -> None:
    """A size passed as a ctypes object or through ``_as_parameter_`` is reported as converted."""
    with pytest.raises(HeapException) as info:
        k32.HeapAlloc(heap, HEAP_GENERATE_EXCEPTIONS, size)
    check_exception(info.value, "HeapAlloc", -1)


@pytest.mark.parametrize("size", IMPOSSIBLE, ids=["~0", "~0-7", "-1"])
def test_alloc_flag_per_call_raises(k32: Any, heap: int, size: int) -> None:
    """HEAP_GENERATE_EXCEPTIONS on the call turns a failed HeapAlloc into an
    exception with STATUS_NO_MEMORY."""
    with pytest.raises(HeapException) as info:
        k32.HeapAlloc(heap, HEAP_GENERATE_EXCEPTIONS, size)
    check_exception(info.value, "HeapAlloc", size)
    # The heap is unharmed and the flag is per call: without it, NULL again.
    assert k32.HeapValidate(heap, 0, None)
    k32.SetLastError(SENTINEL)
    assert k32.HeapAlloc(heap, 0, size) is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY


@pytest.mark.wine_deviation("Wine raises only for HEAP_GENERATE_EXCEPTIONS passed to the call")
@pytest.mark.parametrize("size", IMPOSSIBLE, ids=["~0", "~0-7", "-1"])
def test_alloc_flag_from_heap_creation_raises(k32: Any, raising_heap: int, size: int) -> None:
    """A heap created with HEAP_GENERATE_EXCEPTIONS raises on every failing
    HeapAlloc, even with dwFlags 0."""
    with pytest.raises(HeapException) as info:
        k32.HeapAlloc(raising_heap, 0, size)
    check_exception(info.value, "HeapAlloc", size)
    assert k32.HeapValidate(raising_heap, 0, None)


def test_alloc_success_does_not_raise(k32: Any, raising_heap: int, heap: int) -> None:
    """The flag only matters on failure: successful calls return pointers."""
    for target, flags in ((heap, HEAP_GENERATE_EXCEPTIONS), (raising_heap, 0)):
        for size in (0, 100, 0x200000):
            block = k32.HeapAlloc(target, flags | HEAP_ZERO_MEMORY, size)
            assert block
            assert k32.HeapSize(target, 0, block) == size
            assert read(block, size) == bytes(size)
            assert k32.HeapFree(target, 0, block)


def _fill_up(k32: Any, heap: int) -> List[int]:
    """Allocate (without the flag) until the fixed-size heap is full."""
    blocks: List[int] = []
    for chunk in (0x4000, 0x400, 0x40):
        while True:
            block = k32.HeapAlloc(heap, 0, chunk)
            if not block:
                break
            blocks.append(block)
            assert len(blocks) < 10000
    return blocks


def test_alloc_raises_on_exhausted_fixed_heap(k32: Any, fixed_heap: int) -> None:
    """Running out of room in a fixed-size heap raises too, not only absurd sizes."""
    _fill_up(k32, fixed_heap)
    with pytest.raises(HeapException) as info:
        k32.HeapAlloc(fixed_heap, HEAP_GENERATE_EXCEPTIONS, 0x8000)
    check_exception(info.value, "HeapAlloc", 0x8000)


@pytest.mark.wine_deviation("Wine raises only for HEAP_GENERATE_EXCEPTIONS passed to the call")
def test_fixed_heap_created_with_flag_raises_when_full(k32: Any) -> None:
    """A fixed-size heap created with HEAP_GENERATE_EXCEPTIONS raises once full."""
    heap = k32.HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0x40000, 0x40000)
    assert heap
    try:
        blocks: List[int] = []
        with pytest.raises(HeapException) as info:
            for _ in range(1000):
                blocks.append(k32.HeapAlloc(heap, 0, 0x1000))
        check_exception(info.value, "HeapAlloc", 0x1000)
        assert blocks and all(blocks)  # every call before the failure succeeded
        assert k32.HeapValidate(heap, 0, None)
    finally:
        assert k32.HeapDestroy(heap)


# -- HeapReAlloc ----------------------------------------------------------------


def _filled(k32: Any, heap: int, size: int) -> Tuple[int, bytes]:
    block = k32.HeapAlloc(heap, 0, size)
    assert block
    contents = pattern(size, 4)
    write(block, contents)
    return block, contents


def _intact(k32: Any, heap: int, block: int, contents: bytes) -> None:
    assert k32.HeapValidate(heap, 0, block)
    assert k32.HeapSize(heap, 0, block) == len(contents)
    assert read(block, len(contents)) == contents


@pytest.mark.parametrize("size", IMPOSSIBLE, ids=["~0", "~0-7", "-1"])
@pytest.mark.parametrize("old", [0, 100, 0x200000])
def test_realloc_flag_per_call_raises_and_keeps_block(k32: Any, heap: int, size: int, old: int) -> None:
    """A failed HeapReAlloc with HEAP_GENERATE_EXCEPTIONS raises STATUS_NO_MEMORY,
    and the block survives: valid, same size, same bytes, still freeable."""
    block, contents = _filled(k32, heap, old)
    with pytest.raises(HeapException) as info:
        k32.HeapReAlloc(heap, HEAP_GENERATE_EXCEPTIONS, block, size)
    check_exception(info.value, "HeapReAlloc", size)
    _intact(k32, heap, block, contents)
    grown = k32.HeapReAlloc(heap, 0, block, old + 64)
    assert grown
    assert read(grown, old) == contents
    assert k32.HeapFree(heap, 0, grown)


@pytest.mark.wine_deviation("Wine raises only for HEAP_GENERATE_EXCEPTIONS passed to the call")
@pytest.mark.parametrize("size", IMPOSSIBLE, ids=["~0", "~0-7", "-1"])
def test_realloc_flag_from_heap_creation_raises(k32: Any, raising_heap: int, size: int) -> None:
    """On a heap created with HEAP_GENERATE_EXCEPTIONS a failing HeapReAlloc
    raises even with dwFlags 0; the block survives."""
    block, contents = _filled(k32, raising_heap, 100)
    with pytest.raises(HeapException) as info:
        k32.HeapReAlloc(raising_heap, 0, block, size)
    check_exception(info.value, "HeapReAlloc", size)
    _intact(k32, raising_heap, block, contents)


def test_realloc_raises_on_exhausted_fixed_heap(k32: Any, fixed_heap: int) -> None:
    """Growth that does not fit in a full fixed-size heap raises; the block survives."""
    block, contents = _filled(k32, fixed_heap, 0x100)
    _fill_up(k32, fixed_heap)
    with pytest.raises(HeapException) as info:
        k32.HeapReAlloc(fixed_heap, HEAP_GENERATE_EXCEPTIONS | HEAP_ZERO_MEMORY, block, 0x8000)
    check_exception(info.value, "HeapReAlloc", 0x8000)
    _intact(k32, fixed_heap, block, contents)


def test_realloc_success_does_not_raise(k32: Any, raising_heap: int) -> None:
    """Successful resizes on a raising heap behave as usual."""
    block, contents = _filled(k32, raising_heap, 100)
    for new in (10, 5000, 0x200000, 50):
        result = k32.HeapReAlloc(raising_heap, HEAP_GENERATE_EXCEPTIONS, block, new)
        assert result
        assert k32.HeapSize(raising_heap, 0, result) == new
        keep = min(len(contents), new)
        assert read(result, keep) == contents[:keep]
        block, contents = result, contents[:keep]


def test_realloc_null_pointer_does_not_raise(k32: Any, raising_heap: int) -> None:
    """A NULL lpMem is not an allocation failure: NULL comes back, no exception."""
    assert k32.HeapReAlloc(raising_heap, HEAP_GENERATE_EXCEPTIONS, None, 100) is None


@pytest.mark.needs("refuses_bad_pointers")
def test_bad_pointer_is_not_an_out_of_memory_exception(k32: Any, raising_heap: int) -> None:
    """Only STATUS_NO_MEMORY failures raise: a freed pointer still gets NULL with
    ERROR_INVALID_PARAMETER."""
    block = k32.HeapAlloc(raising_heap, 0, 64)
    assert k32.HeapFree(raising_heap, 0, block)
    k32.SetLastError(SENTINEL)
    assert k32.HeapReAlloc(raising_heap, HEAP_GENERATE_EXCEPTIONS, block, 128) is None
    assert k32.GetLastError() == ERROR_INVALID_PARAMETER


def test_in_place_failure_raises(k32: Any, heap: int) -> None:
    """A HEAP_REALLOC_IN_PLACE_ONLY growth with no room is an out-of-memory
    failure like any other: it raises, and the block stays where it was."""
    block, contents = _filled(k32, heap, 64)
    neighbour = k32.HeapAlloc(heap, 0, 64)
    assert neighbour
    flags = HEAP_GENERATE_EXCEPTIONS | HEAP_REALLOC_IN_PLACE_ONLY
    with pytest.raises(HeapException) as info:
        k32.HeapReAlloc(heap, flags, block, 0x200000)
    check_exception(info.value, "HeapReAlloc", 0x200000)
    _intact(k32, heap, block, contents)


def test_exception_is_catchable_as_oserror(k32: Any, heap: int) -> None:
    """Code written for plain OSError handles the heap exception too."""
    with pytest.raises(OSError) as info:
        k32.HeapAlloc(heap, HEAP_GENERATE_EXCEPTIONS, SIZE_MAX)
    assert type(info.value) is HeapException
