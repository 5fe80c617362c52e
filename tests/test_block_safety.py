"""Memory safety of the Pythonic API: a Block never reads or writes outside its live bytes.

Run on an emulated backend with tail and free checking, so a stray write is
seen: one past a block's end breaks its tail, one after free breaks the
quarantine pattern, and ``HeapValidate`` reports either.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any, Callable, Iterator, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compatheap import Heap, InvalidatedError
from compatheap.backends.emulated import EmulatedBackend
from tests.conftest import require_emulation

require_emulation()

CHECKED = EmulatedBackend(debug={"tail", "free"})


@pytest.fixture(params=["growable", "fixed"])
def heap(request: pytest.FixtureRequest) -> Iterator[Heap]:
    with Heap(0, 0x400000 if request.param == "fixed" else 0, backend=CHECKED) as h:
        yield h


def _valid(heap: Heap) -> bool:
    return bool(CHECKED.HeapValidate(heap.handle, 0, None))


ACCESSES: List[Callable[[Any], Any]] = [
    bytes,
    len,
    lambda b: b[0],
    lambda b: b[-1],
    lambda b: b[1:3],
    lambda b: b.__setitem__(0, 0x41),
    lambda b: b.__setitem__(slice(0, 2), b"zz"),
    lambda b: b.address,
    lambda b: b.view(),
    lambda b: b.as_ctypes(ctypes.c_uint8 * 4),
]


@pytest.mark.parametrize("end", ["free", "realloc", "realloc-in-place", "destroy"])
@pytest.mark.parametrize("access", range(len(ACCESSES)))
def test_dead_block_refuses_every_access(end: str, access: int) -> None:
    heap = Heap(backend=CHECKED)
    block = heap.alloc(64)
    block[:] = bytes(range(64))
    if end == "free":
        heap.free(block)
    elif end == "realloc":
        heap.realloc(block, 5000)
    elif end == "realloc-in-place":
        heap.realloc(block, 8)
    else:
        heap.destroy()
    with pytest.raises(InvalidatedError):
        ACCESSES[access](block)
    if end != "destroy":
        assert _valid(heap), "the access touched freed memory"
        heap.destroy()


def test_views_die_with_the_block(heap: Heap) -> None:
    """A view taken while the block lived cannot reach the memory after it is freed."""
    block = heap.alloc(32)
    view = block.view()
    view[0] = 7
    heap.free(block)
    with pytest.raises(ValueError):
        view[0] = 1
    with pytest.raises(ValueError):
        bytes(view)
    assert _valid(heap)


def test_block_copies_from_a_block_of_the_same_heap(heap: Heap) -> None:
    """``a[:] = b`` (and ``a[:] = a``) with both blocks on one heap completes.

    From 3.12 on a Block is a buffer, exported under its heap's lock; taking
    that inside the assignment's own hold of the lock would wait forever, so
    the copy runs in a thread the test can give up on.
    """
    a, b = heap.alloc(8), heap.alloc(8)
    b[:] = b"abcdefgh"
    exports = sys.version_info >= (3, 12)  # before 3.12 a Block is no buffer: its view() is
    done = threading.Event()

    def copy() -> None:
        a[:] = b if exports else b.view()
        a[0:4] = a[4:8]
        a[:] = a if exports else a.view()
        done.set()

    worker = threading.Thread(target=copy, daemon=True)
    worker.start()
    assert done.wait(10), "the copy deadlocked on the heap's lock"
    assert bytes(a) == b"efghefgh"
    assert _valid(heap)


indices = st.integers(-300, 300)
steps = st.one_of(st.none(), st.integers(-5, 5).filter(bool))


@settings(max_examples=150, deadline=None)
@given(size=st.integers(0, 200), start=st.one_of(st.none(), indices), stop=st.one_of(st.none(), indices), step=steps)
def test_slicing_is_bounded_like_bytes(size: int, start: Any, stop: Any, step: Any) -> None:
    """Reading a slice gives what ``bytes`` would; assigning never writes past the block."""
    heap = Heap(backend=CHECKED)
    try:
        block = heap.alloc(size)
        model = bytearray(i % 251 for i in range(size))
        block[:] = bytes(model)
        window = slice(start, stop, step)
        assert block[window] == bytes(model)[window]
        wanted = len(model[window])
        block[window] = b"\x99" * wanted
        model[window] = b"\x99" * wanted
        with pytest.raises((ValueError, IndexError, TypeError)):
            block[window] = b"\x99" * (wanted + 1)  # a slice assignment keeps the length
        assert bytes(block) == bytes(model)
        for index in (size, size + 1, -size - 1, 10**6):
            with pytest.raises(IndexError):
                block[index]
            with pytest.raises(IndexError):
                block[index] = 1
        assert _valid(heap), "a write went past the block"
    finally:
        heap.destroy()


def test_reads_racing_free_are_whole_or_refused() -> None:
    """A thread reading a block while another frees it gets the full bytes or InvalidatedError."""
    heap = Heap(backend=CHECKED)
    outcomes = {"whole": 0, "refused": 0}
    for round_ in range(200):
        block = heap.alloc(256)
        contents = bytes([round_ % 250 + 1]) * 256
        block[:] = contents
        go = threading.Event()

        def reader(block: Any = block, contents: bytes = contents, go: threading.Event = go) -> None:
            go.set()
            for _ in range(1_000_000):  # until the free lands
                try:
                    data = bytes(block)
                except InvalidatedError:
                    outcomes["refused"] += 1
                    return
                assert data == contents, "read freed (refilled) memory"
                outcomes["whole"] += 1

        thread = threading.Thread(target=reader)
        thread.start()
        go.wait(10)
        heap.free(block)
        thread.join(10)
        assert not thread.is_alive()
    assert _valid(heap)
    heap.destroy()
    assert outcomes["refused"] > 0


def test_block_of_another_heap_is_refused() -> None:
    one, two = Heap(backend=CHECKED), Heap(backend=CHECKED)
    block = one.alloc(16)
    with pytest.raises(ValueError):
        two.free(block)
    with pytest.raises(ValueError):
        two.realloc(block, 32)
    assert block[0] is not None and len(block) == 16
    one.destroy()
    two.destroy()


def test_raw_address_of_a_freed_block_is_refused_by_the_api() -> None:
    """The address a Block gave out is no key to freed memory through the raw API either."""
    heap = Heap(backend=CHECKED)
    block = heap.alloc(100)
    address = block.address
    heap.free(block)
    assert CHECKED.HeapFree(heap.handle, 0, address) == 0
    assert CHECKED.HeapSize(heap.handle, 0, address) == ctypes.c_size_t(-1).value
    assert _valid(heap)
    heap.destroy()
