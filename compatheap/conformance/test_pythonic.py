"""The Pythonic API (``compatheap.Heap``, ``Block``) on every backend.

Nothing here hands a backend a bad pointer: the wrapper refuses stale and
foreign blocks itself, so these safety tests run on the real kernel32 too.
"""

from __future__ import annotations

import ctypes
import pickle
import sys
import threading
from typing import Any, Callable, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import compatheap
from compatheap import Heap, HeapError, HeapMemoryError, InvalidatedError
from compatheap.conformance._support import pattern

#: Half the address space: no process gets it, and it fits a SIZE_T on 32-bit too.
NO_MEMORY = 1 << (8 * ctypes.sizeof(ctypes.c_void_p) - 1)


def _process_heaps(k32: Any) -> List[int]:
    count = k32.GetProcessHeaps(0, None)
    buf = (ctypes.c_void_p * (count + 8))()
    count = k32.GetProcessHeaps(len(buf), buf)
    return [buf[i] or 0 for i in range(count)]


def test_alloc_read_write(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(64, zero=True)
        assert len(block) == 64 == heap.size(block)
        assert bytes(block) == bytes(64)
        block[0:5] = b"hello"
        block[63] = 0xFF
        assert block[0:5] == b"hello" and block[0] == ord("h") and block[-1] == 0xFF
        assert block[::16] == b"h\0\0\0"
        assert ctypes.string_at(block.address, 5) == b"hello"
        assert block.address % compatheap.MEMORY_ALLOCATION_ALIGNMENT == 0


def test_address_is_usable_with_ctypes(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(8)
        ctypes.memmove(block.address, b"\x01\x02\x03\x04\x05\x06\x07\x08", 8)
        assert bytes(block) == bytes(range(1, 9))
        assert k32.HeapSize(heap.handle, 0, block.address) == 8


def test_bounds_are_enforced(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(10)
        block[:] = pattern(10)
        with pytest.raises(IndexError):
            block[10]  # noqa: B018
        with pytest.raises(IndexError):
            block[-11] = 1
        with pytest.raises(ValueError):
            block[8:12] = b"abcd"  # would run past the end: refused, nothing written
        with pytest.raises(ValueError):
            block[0:2] = b"abc"  # a slice assignment cannot resize
        assert bytes(block) == pattern(10)
        assert block[8:100] == pattern(10)[8:]  # reading clips, like bytes


def test_zero_size_block(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(0)
        assert len(block) == 0 and bytes(block) == b"" and heap.size(block) == 0
        assert block.view().nbytes == 0
        heap.free(block)


def test_sizes_must_be_natural_numbers(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        with pytest.raises(ValueError):
            heap.alloc(-1)
        with pytest.raises(TypeError):
            heap.alloc(1.5)  # type: ignore[arg-type]
        assert heap.blocks() == []


def test_out_of_memory_raises_memory_error(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        with pytest.raises(HeapMemoryError) as info:
            heap.alloc(NO_MEMORY)
        err = info.value
        assert isinstance(err, MemoryError) and isinstance(err, OSError) and isinstance(err, HeapError)
        assert err.winerror == compatheap.ERROR_NOT_ENOUGH_MEMORY
        assert "HeapAlloc" in str(err) and str(NO_MEMORY) in str(err) and f"{heap.handle:#x}" in str(err)
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is HeapMemoryError and str(again) == str(err) and again.winerror == err.winerror


def test_fixed_heap_refuses_what_does_not_fit(k32: Any) -> None:
    with Heap(0, 0x40000, backend=k32) as heap:
        with pytest.raises(HeapMemoryError):
            heap.alloc(0x40000)
        assert len(heap.alloc(0x1000)) == 0x1000


def test_realloc_keeps_contents_and_retires_old_block(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(100)
        block[:] = pattern(100)
        bigger = heap.realloc(block, 0x20000)
        assert len(bigger) == 0x20000 and bigger[:100] == pattern(100)
        with pytest.raises(InvalidatedError, match="reallocated"):
            block[0]  # noqa: B018
        smaller = heap.realloc(bigger, 10)
        assert bytes(smaller) == pattern(10)
        assert heap.blocks() == [smaller]


def test_realloc_zero_clears_the_new_tail(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(64)
        block[:] = pattern(64)
        block = heap.realloc(block, 16)
        block = heap.realloc(block, 64, zero=True)
        assert block[:16] == pattern(16) and block[16:] == bytes(48)


def test_failed_realloc_leaves_block_usable(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(32)
        block[:] = pattern(32)
        address = block.address
        with pytest.raises(HeapMemoryError, match="HeapReAlloc"):
            heap.realloc(block, NO_MEMORY, in_place=True)
        with pytest.raises(HeapMemoryError):
            heap.realloc(block, NO_MEMORY)
        assert block.alive and block.address == address and bytes(block) == pattern(32)
        assert heap.size(block) == 32 and heap.validate(block)


def test_realloc_in_place_shrink_keeps_address(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(3 * 0x1000)
        address = block.address
        smaller = heap.realloc(block, 0x1000, in_place=True)
        assert smaller.address == address and len(smaller) == 0x1000


def test_freed_block_cannot_be_used(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(16)
        heap.free(block)
        assert not block.alive and "freed" in repr(block)
        uses: List[Callable[[], Any]] = [
            lambda: block.address,
            lambda: len(block),
            lambda: bytes(block),
            lambda: block[0],
            lambda: block.__setitem__(0, 1),
            block.view,
            lambda: heap.free(block),
            lambda: heap.realloc(block, 32),
            lambda: heap.size(block),
            lambda: heap.validate(block),
        ]
        for use in uses:
            with pytest.raises(InvalidatedError, match="freed"):
                use()
        assert heap.validate()


def test_block_of_another_heap_is_refused(k32: Any) -> None:
    with Heap(backend=k32) as one, Heap(backend=k32) as two:
        block = one.alloc(16)
        with pytest.raises(ValueError, match="another heap"):
            two.free(block)
        with pytest.raises(ValueError, match="another heap"):
            two.realloc(block, 32)
        assert block.alive and one.size(block) == 16


def test_exit_destroys_heap_and_its_blocks(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        handle = heap.handle
        block = heap.alloc(16)
        assert handle in _process_heaps(k32)
    assert heap.destroyed and handle not in _process_heaps(k32)
    with pytest.raises(InvalidatedError, match="destroyed"):
        bytes(block)
    with pytest.raises(InvalidatedError, match="destroyed"):
        heap.alloc(1)
    with pytest.raises(InvalidatedError):
        heap.walk()


def test_exit_on_exception_still_destroys(k32: Any) -> None:
    with pytest.raises(KeyError):
        with Heap(backend=k32) as heap:
            heap.alloc(10)
            raise KeyError("boom")
    assert heap.destroyed


def test_view_is_the_block_and_dies_with_it(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(12)
        view = block.view()
        assert isinstance(view, memoryview) and view.nbytes == 12 and not view.readonly
        view[0:3] = b"abc"
        assert block[0:3] == b"abc"
        heap.free(block)
        with pytest.raises(ValueError):
            view[0]  # noqa: B018 - released, not a read of freed memory


@pytest.mark.skipif(sys.version_info < (3, 12), reason="derived views are tracked from Python 3.12 on")
@pytest.mark.parametrize("derive", ["slice", "memoryview", "from_buffer"])
def test_derived_view_blocks_free(k32: Any, derive: str) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(8)
        view = block.view()
        makers: Dict[str, Callable[[], Any]] = {
            "slice": lambda: view[2:4],
            "memoryview": lambda: memoryview(view),
            "from_buffer": lambda: (ctypes.c_ubyte * 8).from_buffer(view),
        }
        derived = makers[derive]()
        with pytest.raises(BufferError):
            heap.free(block)
        with pytest.raises(BufferError):
            heap.realloc(block, 100)
        assert block.alive and heap.size(block) == 8
        del derived
        heap.free(block)
        assert not block.alive
        with pytest.raises(ValueError):
            view[0]  # noqa: B018


@pytest.mark.skipif(sys.version_info < (3, 12), reason="the buffer protocol in Python classes needs 3.12")
def test_memoryview_of_block(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(4)
        with memoryview(block) as view:  # type: ignore[arg-type,unused-ignore]
            view[:] = b"wxyz"
            with pytest.raises(BufferError):
                heap.free(block)
        assert bytes(block) == b"wxyz"
        heap.free(block)


def test_walk_lists_blocks_by_name(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        blocks = [heap.alloc(size) for size in (24, 100, 0x2000)]
        entries = list(heap.walk())
        busy = {e.address: e.size for e in entries if e.kind == "block"}
        for block in blocks:
            assert busy[block.address] == len(block)
        assert any(e.kind == "region" for e in entries)
        heap.free(blocks[1])
        assert blocks[2].address in {e.address for e in heap.walk() if e.kind == "block"}


@pytest.mark.needs("heap_summary")
def test_summary_counts_allocated_bytes(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        heap.alloc(100)
        heap.alloc(28)
        usage = heap.summary()
        assert usage.allocated == 128
        assert usage.committed >= usage.allocated and usage.reserved >= usage.committed


def test_validate_and_compact(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(50)
        assert heap.validate() and heap.validate(block)
        assert heap.compact() == k32.HeapCompact(heap.handle, 0)


def test_locked_makes_other_threads_wait(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        done = threading.Event()

        def other() -> None:
            heap.alloc(16)
            done.set()

        with heap.locked():
            thread = threading.Thread(target=other)
            thread.start()
            assert not done.wait(0.2)
        assert done.wait(10)
        thread.join()
        assert len(heap.blocks()) == 1


def test_one_of_two_racing_frees_wins(k32: Any) -> None:
    """Two threads freeing one Block: one succeeds, the other gets a clean error."""
    with Heap(backend=k32) as heap:
        for _ in range(50):
            block = heap.alloc(32)
            outcomes: List[str] = []
            barrier = threading.Barrier(2)

            def free(
                target: compatheap.Block = block, barrier: threading.Barrier = barrier, outcomes: List[str] = outcomes
            ) -> None:
                barrier.wait()
                try:
                    heap.free(target)
                    outcomes.append("freed")
                except InvalidatedError:
                    outcomes.append("refused")

            threads = [threading.Thread(target=free) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(outcomes) == ["freed", "refused"]
        assert heap.blocks() == [] and heap.validate()


def test_process_heap_is_never_destroyed(k32: Any) -> None:
    with Heap.process(backend=k32) as heap:
        assert heap.handle == k32.GetProcessHeap()
        block = heap.alloc(10)
        with pytest.raises(ValueError, match="process heap"):
            heap.destroy()
    assert not heap.destroyed and block.alive
    heap.free(block)


@pytest.mark.parametrize("serialize", [True, False])
@pytest.mark.parametrize("executable", [False, True])
def test_create_options(k32: Any, serialize: bool, executable: bool) -> None:
    with Heap(serialize=serialize, executable=executable, backend=k32) as heap:
        block = heap.alloc(100, zero=True)
        block[0:2] = b"ok"
        assert bytes(block)[:3] == b"ok\0"


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(0, 5000), st.booleans()),
        st.tuples(st.just("write"), st.integers(0, 1000), st.binary(max_size=64)),
        st.tuples(st.just("realloc"), st.integers(0, 1000), st.integers(0, 5000)),
        st.tuples(st.just("free"), st.integers(0, 1000), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops)
def test_blocks_behave_like_bytearrays(k32: Any, ops: List[Any]) -> None:
    """Random allocations, writes, reallocations and frees against a bytearray model."""
    with Heap(backend=k32) as heap:
        model: Dict[int, bytearray] = {}
        live: List[compatheap.Block] = []
        for op, a, b in ops:
            if op == "alloc":
                block = heap.alloc(a, zero=b)
                live.append(block)
                model[id(block)] = bytearray(a) if b else bytearray(bytes(block))
            elif not live:
                continue
            elif op == "write":
                block = live[a % len(live)]
                start = a % (len(block) + 1)
                data = b[: len(block) - start]
                block[start : start + len(data)] = data
                model[id(block)][start : start + len(data)] = data
            elif op == "realloc":
                old = live.pop(a % len(live))
                expected = model.pop(id(old))
                new = heap.realloc(old, b)
                live.append(new)
                keep = expected[:b]
                model[id(new)] = keep + bytearray(bytes(new)[len(keep) :])
            else:
                block = live.pop(a % len(live))
                heap.free(block)
                del model[id(block)]
                with pytest.raises(InvalidatedError):
                    bytes(block)
            for block in live:
                assert bytes(block) == bytes(model[id(block)])
        assert sorted(b.address for b in heap.blocks()) == sorted(b.address for b in live)
        assert heap.validate()


# -- sizes, flags and typed access ---------------------------------------------------


@pytest.mark.parametrize("past", [1, 16], ids=["SIZE_MAX+1", "SIZE_MAX+17"])
def test_sizes_past_size_max_are_refused(k32: Any, past: int) -> None:
    """2**64 (+16) on 64-bit, 2**32 (+16) on 32-bit: refused, not wrapped to a small size."""
    too_large = compatheap.SIZE_MAX + past
    with Heap(backend=k32) as heap:
        block = heap.alloc(8)
        block[:] = pattern(8)
        with pytest.raises(OverflowError, match="size"):
            heap.alloc(too_large)
        with pytest.raises(OverflowError, match="size"):
            heap.realloc(block, too_large)
        assert heap.blocks() == [block] and bytes(block) == pattern(8) and heap.size(block) == 8


def test_heap_flags_has_every_heap_constant() -> None:
    names = [name for name in compatheap._constants.__all__ if name.startswith("HEAP_") and name != "HEAP_SIZE_FAILURE"]
    assert sorted(flag.name or "" for flag in compatheap.HeapFlags) == sorted(names)
    for name in names:
        assert compatheap.HeapFlags[name] == getattr(compatheap, name)


def test_heap_flags_work_wherever_a_flags_int_does(k32: Any) -> None:
    flags = compatheap.HeapFlags
    heap = k32.HeapCreate(flags.HEAP_GROWABLE, 0, 0)
    assert heap
    try:
        block = k32.HeapAlloc(heap, flags.HEAP_ZERO_MEMORY, 64)
        assert block and ctypes.string_at(block, 64) == bytes(64)
        same = k32.HeapReAlloc(heap, flags.HEAP_REALLOC_IN_PLACE_ONLY | flags.HEAP_ZERO_MEMORY, block, 32)
        assert same == block
        assert k32.HeapSize(heap, flags(0), block) == 32
        assert k32.HeapValidate(heap, flags(0), block)
        assert not k32.HeapReAlloc(heap, flags.HEAP_REALLOC_IN_PLACE_ONLY, block, NO_MEMORY)
        assert k32.GetLastError() == compatheap.ERROR_NOT_ENOUGH_MEMORY
        assert k32.HeapFree(heap, flags(0), block)
    finally:
        assert k32.HeapDestroy(heap)


def test_errors_name_the_flags(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(8)
        with pytest.raises(HeapError, match=r"HeapReAlloc\(0x[0-9a-f]+, HEAP_ZERO_MEMORY\|HEAP_REALLOC_IN_PLACE_ONLY"):
            heap.realloc(block, NO_MEMORY, zero=True, in_place=True)


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int32), ("y", ctypes.c_int32)]


class Shape(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_uint8),
        ("flags", ctypes.c_uint8, 3),
        ("origin", Point),
        ("corners", Point * 3),
        ("name", ctypes.c_char * 8),
        ("next", ctypes.c_void_p),
        ("link", ctypes.POINTER(Point)),
    ]


def test_new_gives_a_zeroed_typed_value(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block, shape = heap.new(Shape)
        assert len(block) == ctypes.sizeof(Shape) and heap.blocks() == [block]
        assert bytes(block) == bytes(ctypes.sizeof(Shape))
        assert shape.kind == 0 and shape.origin.x == 0 and shape.name == b"" and shape.next is None
        assert not shape.link
        assert shape.block is block and shape.ctype is Shape


def test_typed_fields_read_and_write_the_block(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block, shape = heap.new(Shape)
        shape.kind = 7
        shape.flags = 5
        shape.origin.x = -3
        shape.origin = Point(10, 20)
        shape.corners[1] = Point(4, 5)
        shape.corners[2].y = 9
        shape.name = b"square"
        copy = shape.copy()
        assert isinstance(copy, Shape) and copy.origin.y == 20 and copy.corners[1].x == 4
        assert (shape.kind, shape.flags, shape.name) == (7, 5, b"square")
        assert [(p.x, p.y) for p in shape.corners] == [(0, 0), (4, 5), (0, 9)]
        assert [(p.x, p.y) for p in shape.corners[1:]] == [(4, 5), (0, 9)]
        assert len(shape.corners) == 3
        assert bytes(shape) == bytes(block)[: ctypes.sizeof(Shape)]
        assert block[0] == 7  # the typed view is the block's memory
        shape.origin = shape.corners[1]  # a view assigned to a field is copied
        assert (shape.origin.x, shape.origin.y) == (4, 5)
        with pytest.raises(AttributeError):
            shape.missing  # noqa: B018
        with pytest.raises(AttributeError):
            shape.missing = 1
        copy.kind = 99  # the copy is independent
        assert shape.kind == 7


def test_typed_arrays(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block, numbers = heap.new(ctypes.c_uint32 * 6, zero=False)
        numbers[:] = [1, 2, 3, 4, 5, 6]
        numbers[-1] = 60
        assert list(numbers) == [1, 2, 3, 4, 5, 60] and numbers[1:3] == [2, 3] and len(numbers) == 6
        with pytest.raises(IndexError):
            numbers[6]  # noqa: B018
        with pytest.raises(IndexError):
            numbers[6] = 1
        with pytest.raises(AttributeError):
            numbers.value  # noqa: B018
        assert bytes(block)[:4] == (1).to_bytes(4, sys.byteorder)


def test_a_pointer_field_comes_back_as_a_copy(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        target = Point(1, 2)
        block, shape = heap.new(Shape)
        shape.link = ctypes.pointer(target)
        link = shape.link
        heap.free(block)
        assert link.contents.y == 2  # the pointer value was copied out; the block is gone


def test_as_ctypes_checks_type_and_size(k32: Any) -> None:
    with Heap(backend=k32) as heap:
        block = heap.alloc(ctypes.sizeof(Point) + 4)
        point = block.as_ctypes(Point)
        point.y = 3
        assert block.as_ctypes(ctypes.c_int32 * 3)[1] == 3
        with pytest.raises(ValueError, match="Shape"):
            block.as_ctypes(Shape)
        for wrong in (ctypes.c_int, int, Point(), "Point"):
            with pytest.raises(TypeError):
                block.as_ctypes(wrong)  # type: ignore[arg-type,type-var]
            with pytest.raises(TypeError):
                heap.new(wrong)  # type: ignore[arg-type,type-var]
        assert heap.blocks() == [block]


@pytest.mark.parametrize("end", ["free", "realloc", "destroy"])
def test_typed_views_die_with_the_block(k32: Any, end: str) -> None:
    heap = Heap(backend=k32)
    block, shape = heap.new(Shape)
    origin, corners = shape.origin, shape.corners
    if end == "free":
        heap.free(block)
    elif end == "realloc":
        heap.realloc(block, 4)
    else:
        heap.destroy()
    uses: List[Callable[[], Any]] = [
        lambda: shape.kind,
        lambda: setattr(shape, "kind", 1),
        lambda: origin.x,
        lambda: setattr(origin, "y", 1),
        lambda: corners[0],
        lambda: corners.__setitem__(0, Point()),
        shape.copy,
        lambda: bytes(shape),
        lambda: block.as_ctypes(Point),
    ]
    for use in uses:
        with pytest.raises(InvalidatedError):
            use()
    assert "dead" in repr(shape)
    if not heap.destroyed:
        assert heap.validate()
        heap.destroy()
