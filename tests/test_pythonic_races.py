"""The Pythonic API under races: threads, nested code (signal handlers, finalisers) and sizes.

Races are played in a chosen order with :class:`tests.pausing.PausingBackend`,
which runs the active backend and stops a call where the test says; free-running
threads then look for what the ordered cases missed. Each issue found in the
stress runs that motivated the current design is a test here.
"""

from __future__ import annotations

import ctypes
import gc
import threading
from functools import partial
from typing import Any, Callable, Iterator, List, Optional

import pytest

import compatheap
from compatheap import Block, Heap, HeapError, HeapFlags, HeapMemoryError, InvalidatedError

from .pausing import PATIENCE, PausingBackend

REAL = compatheap.backend
#: Refused by every heap (also on 32-bit), so realloc to it fails and leaves the block.
NO_MEMORY = compatheap.SIZE_MAX - 0x1000


@pytest.fixture
def api() -> PausingBackend:
    return PausingBackend(REAL)


@pytest.fixture
def heap(api: PausingBackend) -> Iterator[Heap]:
    heap = Heap(backend=api)
    yield heap
    if not heap.destroyed and getattr(heap, "_gone", None) is None:
        heap.destroy()


class Worker(threading.Thread):
    """Runs ``target`` and keeps its result or exception for the test to look at."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._target_call = target
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self._target_call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            self.done.set()

    def finish(self) -> Any:
        self.join(PATIENCE)
        assert not self.is_alive(), "the thread hung"
        return self.result


def started(target: Callable[[], Any]) -> Worker:
    worker = Worker(target)
    worker.start()
    return worker


def assert_waits(worker: Worker) -> None:
    """The worker has not finished: it waits for the heap object's lock."""
    assert not worker.done.wait(0.2), "the call ran while another operation on the heap was half done"


def assert_dead(block: Block) -> None:
    assert not block.alive
    with pytest.raises(InvalidatedError):
        bytes(block)
    with pytest.raises(InvalidatedError):
        block[0] = 1


# -- one operation racing destroy, in each order ------------------------------------


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("operation", ["free", "realloc", "failed realloc"])
def test_destroy_waits_for_a_free_or_realloc_in_progress(
    api: PausingBackend, heap: Heap, operation: str, when: str
) -> None:
    """free/realloc racing destroy: the block never claims to live over freed memory."""
    block = heap.alloc(64)
    block[:] = b"x" * 64
    function = "HeapFree" if operation == "free" else "HeapReAlloc"
    stop = api.stop(function, when)
    calls: Any = {
        "free": lambda: heap.free(block),
        "realloc": lambda: heap.realloc(block, 5000),
        "failed realloc": lambda: heap.realloc(block, NO_MEMORY),
    }
    first = started(calls[operation])
    stop.wait_reached()
    destroyer = started(heap.destroy)
    assert_waits(destroyer)
    assert api.called("HeapDestroy") == 0
    stop.go()
    result = first.finish()
    destroyer.finish()
    assert destroyer.error is None and heap.destroyed
    if operation == "failed realloc":
        assert isinstance(first.error, HeapMemoryError)
    else:
        assert first.error is None
    assert_dead(block)
    if isinstance(result, Block):
        assert_dead(result)


@pytest.mark.parametrize("operation", ["free", "realloc", "alloc", "read", "size"])
def test_operations_wait_for_destroy_in_progress(api: PausingBackend, heap: Heap, operation: str) -> None:
    block = heap.alloc(32)
    stop = api.stop("HeapDestroy")
    destroyer = started(heap.destroy)
    stop.wait_reached()
    calls: Any = {
        "free": lambda: heap.free(block),
        "realloc": lambda: heap.realloc(block, 100),
        "alloc": lambda: heap.alloc(8),
        "read": lambda: bytes(block),
        "size": lambda: heap.size(block),
    }
    second = started(calls[operation])
    assert_waits(second)
    stop.go()
    destroyer.finish()
    second.finish()
    assert isinstance(second.error, InvalidatedError)
    assert_dead(block)
    assert api.called("HeapFree") == api.called("HeapReAlloc") == 0


def test_a_read_waits_for_a_free_in_progress(api: PausingBackend, heap: Heap) -> None:
    block = heap.alloc(32)
    stop = api.stop("HeapFree")
    freer = started(lambda: heap.free(block))
    stop.wait_reached()
    reader = started(lambda: bytes(block))
    assert_waits(reader)
    stop.go()
    freer.finish()
    reader.finish()
    assert isinstance(reader.error, InvalidatedError)


def test_a_failed_free_or_realloc_restores_the_block(api: PausingBackend, heap: Heap) -> None:
    block = heap.alloc(16)
    block[:] = bytes(range(16))
    with pytest.raises(HeapMemoryError, match="HEAP_REALLOC_IN_PLACE_ONLY"):
        heap.realloc(block, NO_MEMORY, in_place=True)
    with pytest.raises(HeapMemoryError):
        heap.realloc(block, NO_MEMORY)
    assert block.alive and bytes(block) == bytes(range(16)) and heap.blocks() == [block]
    assert heap.size(block) == 16


# -- bookkeeping never keyed by address ----------------------------------------------


def _same_address(heap: Heap, address: int, size: int) -> Optional[Block]:
    """Allocate until the heap hands out ``address`` again (None if it does not)."""
    extra = []
    found = None
    for _ in range(64):
        block = heap.alloc(size)
        if block.address == address:
            found = block
            break
        extra.append(block)
    for block in extra:
        heap.free(block)
    return found


@pytest.mark.parametrize("operation", ["free", "realloc"])
def test_address_reuse_does_not_clobber_another_blocks_record(api: PausingBackend, heap: Heap, operation: str) -> None:
    """The address a free releases is handed out again before free finishes its bookkeeping."""
    block = heap.alloc(48)
    old = block.address
    reused: List[Optional[Block]] = []
    function = "HeapFree" if operation == "free" else "HeapReAlloc"
    api.at(function, "after", lambda: reused.append(_same_address(heap, old, 48)))
    if operation == "free":
        heap.free(block)
    else:
        block = heap.realloc(block, 0x30000)  # large: it moves
    newcomer = reused[0]
    if newcomer is None:
        pytest.skip("this backend did not hand the address out again")
    assert newcomer.alive and newcomer in heap.blocks()
    newcomer[:] = b"n" * 48
    heap.destroy()
    assert_dead(newcomer)


# -- code that runs in the middle of an operation, in the same thread ---------------


class Interrupt:
    """What a signal handler or finaliser does while an operation on ``block`` is half done."""

    def __init__(self, heap: Heap, block: Block) -> None:
        self.heap = heap
        self.block = block
        self.outcomes: List[str] = []

    def __call__(self) -> None:
        heap, block = self.heap, self.block
        own = heap.alloc(24)  # a block of its own works
        own[:] = b"h" * 24
        assert bytes(own) == b"h" * 24
        heap.free(own)
        for name, use in (
            ("read", lambda: bytes(block)),
            ("free", lambda: heap.free(block)),
            ("realloc", lambda: heap.realloc(block, 99)),
            ("destroy", heap.destroy),
        ):
            try:
                use()
                self.outcomes.append(f"{name}: done")
            except (InvalidatedError, BufferError) as exc:
                self.outcomes.append(f"{name}: {type(exc).__name__}")

    def __index__(self) -> int:
        self()
        return 0x42


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("operation", ["free", "realloc", "size", "validate", "alloc"])
def test_nested_code_during_a_backend_call(api: PausingBackend, heap: Heap, operation: str, when: str) -> None:
    """A handler or finaliser using the same Heap mid-call: no deadlock, never freed memory."""
    block = heap.alloc(40)
    block[:] = b"b" * 40
    nested = Interrupt(heap, block)
    function = {
        "free": "HeapFree",
        "realloc": "HeapReAlloc",
        "size": "HeapSize",
        "validate": "HeapValidate",
        "alloc": "HeapAlloc",
    }[operation]
    api.at(function, when, nested)
    worker = started(
        {
            "free": lambda: heap.free(block),
            "realloc": lambda: heap.realloc(block, 200),
            "size": lambda: heap.size(block),
            "validate": lambda: heap.validate(block),
            "alloc": lambda: heap.alloc(16),
        }[operation]
    )
    worker.finish()
    assert worker.error is None, worker.error
    # The heap is in use by the interrupted call: nobody destroys it under it.
    assert "destroy: BufferError" in nested.outcomes
    if operation in ("free", "realloc"):
        # The block is on its way out: refused, not read.
        assert nested.outcomes[:3] == ["read: InvalidatedError", "free: InvalidatedError", "realloc: InvalidatedError"]
        assert_dead(block)
    elif operation == "alloc":
        # Another block is being made: this one is the nested code's to free.
        assert nested.outcomes[:3] == ["read: done", "free: done", "realloc: InvalidatedError"]
    else:
        # The block is pinned by the call: readable, not freeable.
        assert nested.outcomes[0] == "read: done"
        assert block.alive and bytes(block) == b"b" * 40
    assert heap.validate()


def test_nested_code_during_a_write_cannot_free_the_block(heap: Heap) -> None:
    """``block[i] = value`` runs ``value.__index__`` with the block's memory in use."""
    block = heap.alloc(16)
    nested = Interrupt(heap, block)
    block[3] = nested
    assert nested.outcomes == ["read: done", "free: BufferError", "realloc: BufferError", "destroy: BufferError"]
    assert block[3] == 0x42 and block.alive
    heap.free(block)


class Pair(ctypes.Structure):
    _fields_ = [("left", ctypes.c_uint32), ("right", ctypes.c_uint32)]


def test_nested_code_during_a_typed_write_cannot_free_the_block(heap: Heap) -> None:
    block, pair = heap.new(Pair)
    nested = Interrupt(heap, block)
    pair.left = nested
    assert nested.outcomes == ["read: done", "free: BufferError", "realloc: BufferError", "destroy: BufferError"]
    assert pair.left == 0x42
    heap.free(block)
    with pytest.raises(InvalidatedError):
        pair.right  # noqa: B018


class Finalised:
    """Frees a block of the heap from its finaliser (a reference cycle keeps it for the collector)."""

    def __init__(self, heap: Heap, block: Block, log: List[str]) -> None:
        self.heap, self.block, self.log = heap, block, log
        self.cycle = self

    def __del__(self) -> None:
        self.block[0] = 7
        self.heap.free(self.block)
        self.log.append("freed in finaliser")


def test_finaliser_using_the_same_heap_mid_operation(api: PausingBackend, heap: Heap) -> None:
    """The collector runs a finaliser that uses the heap while this thread holds its lock."""
    victim = heap.alloc(8)
    log: List[str] = []
    Finalised(heap, heap.alloc(8), log)
    api.at("HeapFree", "before", gc.collect)
    worker = started(lambda: heap.free(victim))
    worker.finish()
    assert worker.error is None and log == ["freed in finaliser"]
    assert heap.blocks() == []


# -- free-running threads ------------------------------------------------------------


def test_free_and_realloc_racing_destroy_leave_no_block_alive() -> None:
    """The stress run behind the redesign: two plain threads, 300 rounds."""
    seen: List[Block] = []
    for round_ in range(300):
        heap = Heap()
        blocks = [heap.alloc(32 + i) for i in range(6)]
        barrier = threading.Barrier(2)

        def churn(blocks: List[Block] = blocks, heap: Heap = heap, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            for i, block in enumerate(blocks):
                try:
                    if i % 2:
                        seen.append(heap.realloc(block, 0x100 * i))
                    else:
                        heap.free(block)
                except InvalidatedError:
                    pass

        def destroy(heap: Heap = heap, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            heap.destroy()

        workers = [started(churn), started(destroy)]
        for worker in workers:
            worker.finish()
            assert worker.error is None, worker.error
        seen.extend(blocks)
        assert heap.destroyed, round_
    alive = [block for block in seen if block.alive]
    assert alive == []
    for block in seen[:200]:
        assert_dead(block)


def test_threads_sharing_blocks_see_whole_contents() -> None:
    """Writers fill whole blocks under the heap's lock; readers never see a mix or freed memory."""
    heap = Heap()
    slots: List[Block] = [heap.alloc(64) for _ in range(8)]
    for index, block in enumerate(slots):
        block[:] = bytes([index]) * 64
    stop = threading.Event()
    problems: List[str] = []

    def writer(seed: int) -> None:
        step = 0
        while not stop.is_set():
            step += 1
            index = (seed + step) % len(slots)
            block = slots[index]
            try:
                if step % 3 == 0:
                    slots[index] = heap.realloc(block, 64 + step % 50)
                elif step % 3 == 1:
                    fresh = heap.alloc(64)
                    fresh[:] = bytes([step % 251]) * 64
                    slots[index] = fresh
                    heap.free(block)
                else:
                    block[:] = bytes([step % 251]) * len(block)
            except InvalidatedError:
                pass

    def reader() -> None:
        while not stop.is_set():
            for block in list(slots):
                try:
                    data = bytes(block)
                except InvalidatedError:
                    continue
                if len(set(data[:64])) > 1:
                    problems.append(f"mixed bytes {data[:8]!r}")

    workers = [started(partial(writer, seed)) for seed in range(2)] + [started(reader) for _ in range(2)]
    stop.wait(1.5)
    stop.set()
    for worker in workers:
        worker.finish()
        assert worker.error is None, worker.error
    assert problems == []
    assert heap.validate()
    heap.destroy()


# -- sizes ------------------------------------------------------------------------------

#: 2**64 + 16 and 2**64 on 64-bit, 2**32 + 16 and 2**32 on 32-bit.
TOO_LARGE = [compatheap.SIZE_MAX + 1 + 16, compatheap.SIZE_MAX + 1]


@pytest.mark.parametrize("size", TOO_LARGE)
def test_sizes_past_size_max_are_refused_before_any_call(api: PausingBackend, heap: Heap, size: int) -> None:
    block = heap.alloc(16)
    block[:] = b"k" * 16
    before = list(api.calls)
    with pytest.raises(OverflowError, match="size"):
        heap.alloc(size)
    with pytest.raises(OverflowError, match="size"):
        heap.realloc(block, size)
    with pytest.raises(OverflowError, match="initial_size"):
        Heap(size, backend=api)
    with pytest.raises(OverflowError, match="maximum_size"):
        Heap(0, size, backend=api)
    assert api.calls == before
    assert block.alive and len(block) == 16 and bytes(block) == b"k" * 16
    assert heap.size(block) == 16


def test_negative_sizes_are_refused(api: PausingBackend, heap: Heap) -> None:
    block = heap.alloc(4)
    before = list(api.calls)
    with pytest.raises(ValueError, match="size"):
        heap.alloc(-1)
    with pytest.raises(ValueError, match="size"):
        heap.realloc(block, -16)
    with pytest.raises(ValueError, match="initial_size"):
        Heap(-1, backend=api)
    assert api.calls == before and block.alive


def test_size_max_itself_reaches_the_heap_and_fails_cleanly(heap: Heap) -> None:
    block = heap.alloc(8)
    with pytest.raises(HeapMemoryError):
        heap.alloc(compatheap.SIZE_MAX)
    with pytest.raises(HeapMemoryError):
        heap.realloc(block, compatheap.SIZE_MAX)
    assert block.alive and heap.size(block) == 8


# -- flags by name ---------------------------------------------------------------------


def test_errors_name_the_flags(heap: Heap) -> None:
    block = heap.alloc(8)
    with pytest.raises(HeapError) as info:
        heap.realloc(block, NO_MEMORY, zero=True, in_place=True)
    assert "HEAP_ZERO_MEMORY|HEAP_REALLOC_IN_PLACE_ONLY" in str(info.value)
    assert compatheap._constants.describe_flags(HeapFlags.HEAP_NO_SERIALIZE | 0x100) == "HEAP_NO_SERIALIZE|0x100"
