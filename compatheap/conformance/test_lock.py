"""HeapLock / HeapUnlock: what a held heap lock makes other threads wait for."""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Dict, Iterator

import pytest

from compatheap import ERROR_INVALID_HANDLE, HEAP_NO_SERIALIZE
from compatheap.conformance._support import SHORT, Held, Worker, busy_blocks, walk_full


@pytest.fixture
def held(k32: Any, heap: int) -> Iterator[Held]:
    hold = Held(k32, heap)
    yield hold
    hold.release_all()  # never leave a waiting thread behind


def _lock_unlock(k32: Any, heap: int) -> Callable[[], int]:
    def action() -> int:
        assert k32.HeapLock(heap)
        return int(k32.HeapUnlock(heap))

    return action


def _actions(k32: Any, heap: int, flags: int) -> Dict[str, Callable[[], Any]]:
    """Heap calls another thread makes, each a complete and harmless operation."""
    spare = k32.HeapAlloc(heap, 0, 48)
    spare2 = k32.HeapAlloc(heap, 0, 48)
    assert spare and spare2
    return {
        "HeapAlloc": lambda: k32.HeapFree(heap, flags, k32.HeapAlloc(heap, flags, 32)),
        "HeapFree": lambda: k32.HeapFree(heap, flags, spare),
        "HeapReAlloc": lambda: k32.HeapReAlloc(heap, flags, spare2, 4000),
    }


@pytest.mark.parametrize("call", ["HeapLock", "HeapAlloc", "HeapFree", "HeapReAlloc"])
def test_locked_heap_makes_other_threads_wait(k32: Any, heap: int, held: Held, call: str) -> None:
    """While one thread holds HeapLock, another thread's HeapLock/HeapAlloc/HeapFree/HeapReAlloc
    waits for HeapUnlock."""
    action = _lock_unlock(k32, heap) if call == "HeapLock" else _actions(k32, heap, 0)[call]
    held.lock()
    worker = Worker(action)
    worker.assert_waiting()
    held.unlock()
    assert worker.assert_finishes()


@pytest.mark.parametrize("call", ["HeapAlloc", "HeapFree", "HeapReAlloc"])
def test_no_serialize_call_does_not_wait(k32: Any, heap: int, held: Held, call: str) -> None:
    """A call passing HEAP_NO_SERIALIZE goes through while another thread holds the lock."""
    action = _actions(k32, heap, HEAP_NO_SERIALIZE)[call]
    held.lock()
    worker = Worker(action)
    assert worker.assert_finishes()
    assert held.depth == 1  # and it finished while the lock was still held
    held.unlock()


def test_unserialised_heap_lock_blocks_nothing(k32: Any) -> None:
    """On a HEAP_NO_SERIALIZE heap HeapLock succeeds but other threads' calls do not wait."""
    heap = k32.HeapCreate(HEAP_NO_SERIALIZE, 0, 0)
    assert heap
    hold = Held(k32, heap)
    try:
        hold.lock()
        actions = _actions(k32, heap, 0)
        actions["HeapLock"] = _lock_unlock(k32, heap)
        for name, action in actions.items():
            assert Worker(action).assert_finishes(), name
        hold.unlock()
    finally:
        hold.release_all()
        assert k32.HeapDestroy(heap)


def test_lock_is_reentrant(k32: Any, heap: int, held: Held) -> None:
    """The owning thread may lock again; the heap stays locked until every lock is undone."""
    held.lock()
    held.lock()
    worker = Worker(lambda: k32.HeapFree(heap, 0, k32.HeapAlloc(heap, 0, 8)))
    worker.assert_waiting()
    held.unlock()
    assert not worker.done.wait(SHORT), "one HeapUnlock released a doubly locked heap"
    held.unlock()
    assert worker.assert_finishes()


def test_owner_keeps_using_a_locked_heap(k32: Any, heap: int) -> None:
    """The thread holding the lock can still allocate, resize and free (no self-deadlock)."""

    def owner() -> bool:
        assert k32.HeapLock(heap)
        try:
            block = k32.HeapAlloc(heap, 0, 16)
            assert block
            block = k32.HeapReAlloc(heap, 0, block, 5000)
            assert block and k32.HeapSize(heap, 0, block) == 5000
            assert k32.HeapValidate(heap, 0, block)
            return bool(k32.HeapFree(heap, 0, block))
        finally:
            assert k32.HeapUnlock(heap)

    assert Worker(owner).assert_finishes()


def test_lock_serialises_a_sequence(k32: Any, heap: int, held: Held) -> None:
    """Between HeapLock and HeapUnlock another thread cannot slip a block in: a walk sees only the owner's blocks."""
    mine = k32.HeapAlloc(heap, 0, 64)
    assert mine
    held.lock()
    worker = Worker(lambda: k32.HeapAlloc(heap, 0, 96))
    worker.assert_waiting()
    assert list(busy_blocks(walk_full(k32, heap))) == [mine]
    held.unlock()
    theirs = worker.assert_finishes()
    assert theirs
    assert k32.HeapSize(heap, 0, theirs) == 96


@pytest.mark.needs("refuses_bad_pointers")
def test_lock_of_destroyed_or_bogus_heap_fails(k32: Any) -> None:
    """HeapLock and HeapUnlock of a destroyed or bogus handle fail with ERROR_INVALID_HANDLE."""
    heap = k32.HeapCreate(0, 0, 0)
    assert k32.HeapDestroy(heap)
    buffer = ctypes.create_string_buffer(64)
    for bogus in (heap, ctypes.addressof(buffer), 0x7FFF0000, None):
        for function in (k32.HeapLock, k32.HeapUnlock):
            k32.SetLastError(0)
            assert not function(bogus)
            assert k32.GetLastError() == ERROR_INVALID_HANDLE
