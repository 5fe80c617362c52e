"""Threads racing on the emulated backend: destruction mid-use, raw buffers freed mid-call.

No promise here may rest on the GIL: every check-then-act on a heap happens
under that heap's lock, and the registry is changed under its own. These
cases crash real Windows (calls on a heap being destroyed), so they run on
the emulated backend only; ``compatheap/conformance/test_threads.py`` has the
races Windows also survives.
"""

from __future__ import annotations

import ctypes
import random
import threading
from functools import partial
from typing import Any, Callable, Dict, List

import pytest

from compatheap import (
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOACCESS,
    HEAP_NO_SERIALIZE,
    HEAP_SIZE_FAILURE,
    HEAP_SUMMARY,
    HEAP_ZERO_MEMORY,
    PROCESS_HEAP_ENTRY,
)
from compatheap.backends.emulated import EmulatedBackend
from tests import campaigns
from tests.conftest import require_emulation
from tests.fuzz.world import fill

require_emulation()

THREADS = 4
ROUNDS = 25
TIMEOUT = 60.0


def _together(targets: List[Callable[[], Any]]) -> List[Any]:
    """Start all targets at once; their results, re-raising the first failure."""
    barrier = threading.Barrier(len(targets))
    results: List[Any] = [None] * len(targets)
    errors: List[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(TIMEOUT)
            results[i] = targets[i]()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread is stuck"
    if errors:
        raise errors[0]
    return results


@pytest.fixture(scope="module")
def emu() -> EmulatedBackend:
    return EmulatedBackend()


def test_destroy_races_with_every_call(emu: EmulatedBackend) -> None:
    """Calls racing HeapDestroy either work (before it) or fail cleanly (after): never a crash or a hang."""
    clean_failures = successes = 0

    def _size_ok(heap: int, block: int) -> bool:
        return bool(emu.HeapSize(heap, 0, block) != HEAP_SIZE_FAILURE)

    def _lock_unlock(heap: int) -> bool:
        return bool(emu.HeapLock(heap) and emu.HeapUnlock(heap))

    for round_ in range(ROUNDS):
        heap = emu.HeapCreate(0, 0, 0x100000 if round_ % 2 else 0)
        assert heap
        seed_blocks = [emu.HeapAlloc(heap, 0, 64) or 0 for _ in range(32)]
        assert all(seed_blocks)
        stop, going = threading.Event(), threading.Event()

        def user(
            index: int,
            heap: int = heap,
            blocks: List[int] = seed_blocks,
            stop: threading.Event = stop,
            going: threading.Event = going,
        ) -> Dict[str, int]:
            rng = random.Random(index)
            counts = {"ok": 0, "failed": 0}
            entry = PROCESS_HEAP_ENTRY()
            summary = HEAP_SUMMARY(cb=ctypes.sizeof(HEAP_SUMMARY))
            while not stop.is_set():
                block = blocks[rng.randrange(len(blocks))]
                calls: List[Callable[[], Any]] = [
                    partial(emu.HeapAlloc, heap, 0, rng.randrange(1, 300)),
                    partial(_size_ok, heap, block),
                    partial(emu.HeapValidate, heap, 0, None),
                    partial(emu.HeapValidate, heap, 0, block),
                    partial(emu.HeapWalk, heap, ctypes.byref(entry)),
                    partial(emu.HeapSummary, heap, 0, ctypes.byref(summary)),
                    partial(emu.HeapCompact, heap, 0),
                    partial(_lock_unlock, heap),
                    partial(emu.HeapReAlloc, heap, HEAP_ZERO_MEMORY, block, 64),
                ]
                emu.SetLastError(0)
                if calls[rng.randrange(len(calls))]():
                    counts["ok"] += 1
                    if counts["ok"] == 20:
                        going.set()
                else:
                    error = emu.GetLastError()
                    # After destruction: the Win32 answers for a bad handle; HeapWalk
                    # may also just have reached its end before that.
                    assert error in (ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER, 259, 0), error
                    counts["failed"] += 1
                    if counts["failed"] > 50:
                        return counts
            return counts

        def destroyer(heap: int = heap, stop: threading.Event = stop, going: threading.Event = going) -> int:
            going.wait(TIMEOUT)  # destroy while the users are in full swing
            result = emu.HeapDestroy(heap)
            stop.set()
            return int(result)

        results = _together([lambda i=i: user(i) for i in range(THREADS)] + [destroyer])
        assert results[-1] == 1
        assert emu.HeapDestroy(heap) == 0 and emu.GetLastError() == ERROR_INVALID_HANDLE
        successes += sum(r["ok"] for r in results[:-1])
        clean_failures += sum(r["failed"] for r in results[:-1])
    campaigns.record("races", rounds=ROUNDS, calls_before_destroy=successes, clean_failures=clean_failures, crashes=0)
    assert clean_failures > 0


def test_unserialised_heap_is_destroyed_exactly_once(emu: EmulatedBackend) -> None:
    """Two threads destroying one HEAP_NO_SERIALIZE heap: one wins, the other gets ERROR_INVALID_HANDLE.

    The heap's own lock excludes no one there, so only the registry decides;
    a second destruction would free every block twice.
    """
    for _ in range(ROUNDS * 4):
        heap = emu.HeapCreate(HEAP_NO_SERIALIZE, 0, 0)
        for size in (16, 100, 2000):
            assert emu.HeapAlloc(heap, 0, size)
        results = _together([partial(emu.HeapDestroy, heap) for _ in range(THREADS)])
        assert sorted(results) == [0] * (THREADS - 1) + [1]


def test_threads_hammer_one_heap_with_inspection(emu: EmulatedBackend) -> None:
    """Allocs, reallocs and frees on one heap, interleaved with walks, validation and HeapLock sections."""
    heap = emu.HeapCreate(0, 0, 0)
    steps = 400

    def worker(index: int) -> int:
        rng = random.Random(100 + index)
        mine: Dict[int, bytes] = {}
        entry = PROCESS_HEAP_ENTRY()
        for step in range(steps):
            roll = rng.random()
            if roll < 0.35 or not mine:
                size = rng.choice((0, 8, rng.randrange(1, 600), rng.randrange(600, 9000)))
                block = emu.HeapAlloc(heap, 0, size)
                assert block and block not in mine
                mine[block] = fill(size, index * 1000 + step)
                ctypes.memmove(block, mine[block], size)
            elif roll < 0.55:
                block = rng.choice(list(mine))
                old = mine.pop(block)
                size = rng.randrange(0, 12000)
                moved = emu.HeapReAlloc(heap, 0, block, size)
                assert moved
                assert ctypes.string_at(moved, min(size, len(old))) == old[:size]
                mine[moved] = fill(size, index * 1000 + step)
                ctypes.memmove(moved, mine[moved], size)
            elif roll < 0.7:
                block = rng.choice(list(mine))
                assert ctypes.string_at(block, len(mine[block])) == mine.pop(block)
                assert emu.HeapFree(heap, 0, block)
            elif roll < 0.8:
                # A walk while others allocate: every block seen is busy or free, never torn.
                assert emu.HeapLock(heap)
                try:
                    entry.lpData = None
                    seen = 0
                    while emu.HeapWalk(heap, ctypes.byref(entry)):
                        seen += 1
                    assert seen >= len(mine)
                    inner = emu.HeapAlloc(heap, 0, 40)  # re-entrant under HeapLock
                    assert inner and emu.HeapFree(heap, 0, inner)
                finally:
                    assert emu.HeapUnlock(heap)
            else:
                assert emu.HeapValidate(heap, 0, None)
                for block, contents in mine.items():
                    assert emu.HeapSize(heap, 0, block) == len(contents)
                    assert ctypes.string_at(block, len(contents)) == contents
        for block, contents in mine.items():
            assert ctypes.string_at(block, len(contents)) == contents
            assert emu.HeapFree(heap, 0, block)
        return steps

    done = _together([partial(worker, i) for i in range(THREADS)])
    campaigns.record("races", shared_heap_steps=sum(done))
    assert emu.HeapValidate(heap, 0, None)
    assert emu.HeapDestroy(heap)


def test_raw_buffer_freed_mid_call_is_never_written() -> None:
    """An output buffer given as a bare address is written only while its block is live.

    With free checking on, freed blocks stay in quarantine filled with a
    pattern: a write by the emulation after the free would break it, and
    HeapValidate would say so.
    """
    emu = EmulatedBackend(debug={"free"})
    heap = emu.HeapCreate(0, 0, 0)
    rounds = 300
    noaccess = written = 0
    for _ in range(rounds):
        target = emu.HeapAlloc(heap, 0, 512)
        assert target
        ready = threading.Event()

        def caller(target: int = target, ready: threading.Event = ready) -> List[int]:
            outcomes = []
            ready.set()
            for _ in range(20):
                emu.SetLastError(0)
                total = emu.GetProcessHeaps(8, ctypes.cast(target, ctypes.POINTER(ctypes.c_void_p)))
                outcomes.append(ERROR_NOACCESS if emu.GetLastError() == ERROR_NOACCESS else total)
            return outcomes

        def freer(target: int = target, ready: threading.Event = ready) -> int:
            ready.wait(TIMEOUT)
            return int(emu.HeapFree(heap, 0, target))

        outcomes, freed = _together([caller, freer])
        assert freed == 1
        noaccess += outcomes.count(ERROR_NOACCESS)
        written += len(outcomes) - outcomes.count(ERROR_NOACCESS)
        # Once refused, never written again: the block stays freed.
        first = outcomes.index(ERROR_NOACCESS) if ERROR_NOACCESS in outcomes else len(outcomes)
        assert ERROR_NOACCESS not in outcomes[:first] and set(outcomes[first:]) <= {ERROR_NOACCESS}
    assert emu.HeapValidate(heap, 0, None), "a freed block was written"
    assert emu.HeapDestroy(heap)
    campaigns.record("races", raw_buffer_calls=written + noaccess)
    assert noaccess > 0


def test_raw_buffer_call_does_not_wait_for_another_heaps_lock() -> None:
    """HeapLock on one heap holds up only calls on that heap's memory.

    The output buffer below is a bare address (a pointer cast from an int) in a
    block of ``mine``; ``theirs`` is locked by another thread the whole time.
    """
    emu = EmulatedBackend()
    theirs, mine = emu.HeapCreate(0, 0, 0), emu.HeapCreate(0, 0, 0)
    target = emu.HeapAlloc(mine, HEAP_ZERO_MEMORY, ctypes.sizeof(PROCESS_HEAP_ENTRY))
    assert target
    entry = ctypes.cast(target, ctypes.POINTER(PROCESS_HEAP_ENTRY))
    locked, release = threading.Event(), threading.Event()

    def holder() -> None:
        assert emu.HeapLock(theirs)
        locked.set()
        release.wait(TIMEOUT)
        assert emu.HeapUnlock(theirs)

    lock_thread = threading.Thread(target=holder, daemon=True)
    lock_thread.start()
    assert locked.wait(TIMEOUT)
    walked: List[int] = []
    walker = threading.Thread(target=lambda: walked.append(emu.HeapWalk(mine, entry)), daemon=True)
    walker.start()
    walker.join(10)
    stalled = walker.is_alive()
    release.set()
    walker.join(TIMEOUT)
    lock_thread.join(TIMEOUT)
    assert not stalled, "HeapWalk on one heap waited for HeapLock on another"
    assert walked == [1] and entry.contents.lpData == mine
    assert emu.HeapDestroy(theirs) and emu.HeapDestroy(mine)
