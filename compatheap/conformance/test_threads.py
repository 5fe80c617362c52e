"""Several threads at once: one serialised heap shared, or one unserialised heap each."""

from __future__ import annotations

import queue
import random
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from compatheap import HEAP_NO_SERIALIZE, HEAP_ZERO_MEMORY
from compatheap.conformance._support import fill, read, write

THREADS = 4
STEPS = 300
#: How long all threads together may take; generous for slow emulators.
TIMEOUT = 120.0


def _run_threads(target: Callable[[int], Any], count: int = THREADS) -> List[Any]:
    """Runs ``target(index)`` on ``count`` threads started together; returns results, re-raises failures."""
    barrier = threading.Barrier(count)
    results: List[Any] = [None] * count
    errors: List[Optional[BaseException]] = [None] * count

    def body(index: int) -> None:
        try:
            barrier.wait(TIMEOUT)
            results[index] = target(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors[index] = exc

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread is stuck"
    for error in errors:
        if error is not None:
            raise error
    return results


def _workload(k32: Any, heap: int, seed: int, flags: int = 0) -> Dict[int, bytes]:
    """Random alloc/realloc/free on ``heap``, checking this thread's blocks at every step.

    Each thread writes its own byte patterns, so a block handed out twice or
    overwritten by a neighbour shows up as wrong contents. Returns the blocks
    still live at the end (pointer -> contents).
    """
    rng = random.Random(seed)
    mine: Dict[int, bytes] = {}
    counter = seed * 100_000
    for _ in range(STEPS):
        counter += 1
        roll = rng.random()
        if roll < 0.45 or not mine:
            size = rng.choice((0, 1, rng.randrange(2, 300), rng.randrange(300, 5000)))
            block = k32.HeapAlloc(heap, flags, size)
            assert block
            assert block not in mine
            contents = fill(size, counter)
            write(block, contents)
            mine[block] = contents
        elif roll < 0.75:
            block = rng.choice(list(mine))
            old = mine.pop(block)
            size = rng.randrange(0, 6000)
            moved = k32.HeapReAlloc(heap, flags | HEAP_ZERO_MEMORY, block, size)
            assert moved
            assert moved not in mine
            kept = old[:size]
            assert read(moved, len(kept)) == kept
            assert read(moved + len(kept), size - len(kept)) == bytes(size - len(kept))
            contents = fill(size, counter)
            write(moved, contents)
            mine[moved] = contents
        else:
            block = rng.choice(list(mine))
            assert read(block, len(mine[block])) == mine.pop(block)
            assert k32.HeapFree(heap, flags, block)
        # Every block of this thread, every step: other threads never touch them.
        for block, contents in mine.items():
            assert k32.HeapSize(heap, flags, block) == len(contents)
            assert read(block, len(contents)) == contents
    return mine


def _assert_disjoint(blocks: Dict[int, bytes]) -> None:
    spans = sorted((address, len(contents)) for address, contents in blocks.items())
    for (start, length), (following, _) in zip(spans, spans[1:]):
        assert start + length <= following, "two live blocks overlap"


def test_threads_share_a_serialised_heap(k32: Any, heap: int) -> None:
    """Threads hammering one serialised heap never get overlapping blocks or lose each other's bytes."""
    results = _run_threads(lambda i: _workload(k32, heap, seed=i + 1))
    everything: Dict[int, bytes] = {}
    for mine in results:
        assert not set(mine) & set(everything), "one block handed to two threads"
        everything.update(mine)
    _assert_disjoint(everything)
    assert k32.HeapValidate(heap, 0, None)
    for block, contents in everything.items():
        assert read(block, len(contents)) == contents
        assert k32.HeapFree(heap, 0, block)
    assert k32.HeapValidate(heap, 0, None)


def test_threads_share_a_fixed_heap(k32: Any) -> None:
    """The same holds on one fixed-size heap shared by all threads."""
    heap = k32.HeapCreate(0, 0x400000, 0x400000)
    assert heap
    try:
        results = _run_threads(lambda i: _workload(k32, heap, seed=i + 11))
        everything: Dict[int, bytes] = {}
        for mine in results:
            everything.update(mine)
        assert sum(len(mine) for mine in results) == len(everything)
        _assert_disjoint(everything)
        assert k32.HeapValidate(heap, 0, None)
    finally:
        assert k32.HeapDestroy(heap)


def test_blocks_freed_by_another_thread(k32: Any, heap: int) -> None:
    """Blocks allocated on some threads can be freed on others."""
    handoff: queue.Queue[Optional[Tuple[int, bytes]]] = queue.Queue()
    producers = THREADS - 1

    def role(index: int) -> int:
        if index < producers:
            for n in range(STEPS):
                size = (index * 131 + n * 17) % 700
                block = k32.HeapAlloc(heap, 0, size)
                assert block
                contents = fill(size, index * 1000 + n)
                write(block, contents)
                handoff.put((block, contents))
            handoff.put(None)
            return 0
        freed, finished = 0, 0
        while finished < producers:
            item = handoff.get(timeout=TIMEOUT)
            if item is None:
                finished += 1
                continue
            block, contents = item
            assert k32.HeapSize(heap, 0, block) == len(contents)
            assert read(block, len(contents)) == contents
            assert k32.HeapFree(heap, 0, block)
            freed += 1
        return freed

    results = _run_threads(role)
    assert results[-1] == producers * STEPS
    assert k32.HeapValidate(heap, 0, None)


def test_threads_each_with_an_unserialised_heap(k32: Any) -> None:
    """Each thread on a HEAP_NO_SERIALIZE heap of its own works undisturbed by the others."""

    def own_heap(index: int) -> int:
        heap = k32.HeapCreate(HEAP_NO_SERIALIZE, 0, 0)
        assert heap
        try:
            mine = _workload(k32, heap, seed=index + 21, flags=HEAP_NO_SERIALIZE)
            _assert_disjoint(mine)
            assert k32.HeapValidate(heap, 0, None)
            for block in mine:
                assert k32.HeapFree(heap, HEAP_NO_SERIALIZE, block)
            return len(mine)
        finally:
            assert k32.HeapDestroy(heap)

    _run_threads(own_heap)
