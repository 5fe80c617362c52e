"""The emulation's hot paths: same results as the full paths, and their token.

HeapAlloc, HeapFree, HeapSize and HeapReAlloc each have a hot path in front
of the full one (``_alloc.py``, ``_realloc.py``), serialised by a token
instead of the heap's RLock (``_guard.py``). Here: the two paths agree on
every result, byte and last error; a steady alloc/free pattern stays on the
hot path; HeapLock stops the hot paths of other threads; a call nested in a
hot path on the same thread (a signal handler, a finaliser) does not deadlock.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import require_emulation

require_emulation()

from compatheap import (  # noqa: E402
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    HEAP_NO_SERIALIZE,
    HEAP_SIZE_FAILURE,
    HEAP_ZERO_MEMORY,
)
from compatheap.backends.emulated import EmulatedBackend, _alloc  # noqa: E402
from compatheap.backends.emulated._guard import HeapGuard  # noqa: E402
from compatheap.backends.emulated._heap import LARGE_THRESHOLD  # noqa: E402

FULL = EmulatedBackend  # its methods are the full paths; instances call the hot ones

# -- the hot and full paths agree ----------------------------------------------

sizes = st.one_of(
    st.integers(0, 300),  # spare-list sizes
    st.integers(301, 5000),
    st.integers(LARGE_THRESHOLD - 64, LARGE_THRESHOLD + 3 * 4096),  # across the mapping threshold
)
flags = st.sampled_from([0, HEAP_NO_SERIALIZE, HEAP_ZERO_MEMORY, HEAP_NO_SERIALIZE | HEAP_ZERO_MEMORY])
ops = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), sizes, flags),
        st.tuples(st.just("free"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("realloc"), st.integers(0, 20), sizes, flags),
        st.tuples(st.just("size"), st.integers(0, 20)),
    ),
    max_size=60,
)


class Side:
    """One backend driven through either its hot paths or its full paths only."""

    def __init__(self, hot: bool, kind: str) -> None:
        self.api = EmulatedBackend()
        self.hot = hot
        if kind == "process":
            self.heap = self.api.GetProcessHeap()
        else:
            self.heap = self.api.HeapCreate(0, 0, 0 if kind == "growable" else 8 << 20)
        self.blocks: List[int] = []

    def call(self, name: str, *args: Any) -> Any:
        function = getattr(self.api, name) if self.hot else getattr(FULL, name).__get__(self.api)
        return function(self.heap, *args)

    def contents(self) -> List[Tuple[int, bytes]]:
        return [(self.call("HeapSize", 0, b), ctypes.string_at(b, self.call("HeapSize", 0, b))) for b in self.blocks]

    def close(self) -> None:
        for block in self.blocks:
            self.call("HeapFree", 0, block)
        if self.heap != self.api.GetProcessHeap():
            self.api.HeapDestroy(self.heap)


def _fill(address: int, size: int, seed: int) -> None:
    if size:
        ctypes.memmove(address, bytes((seed + i) & 0xFF for i in range(min(size, 64))) * (size // 64 + 1), size)


def _step(side: Side, op: Tuple[Any, ...], seed: int) -> Tuple[Any, ...]:
    """Run one operation; what it returned, as far as both sides must agree."""
    kind = op[0]
    if kind == "alloc":
        _, size, flag = op
        block = side.call("HeapAlloc", flag, size)
        if not block:
            return (None, side.api.GetLastError())
        zeroed = ctypes.string_at(block, size) == bytes(size) if flag & HEAP_ZERO_MEMORY else None
        _fill(block, size, seed)
        side.blocks.append(block)
        return (True, zeroed)
    if not side.blocks:
        return ("no block",)
    index = op[1] % len(side.blocks)
    block = side.blocks[index]
    if kind == "free":
        del side.blocks[index]
        return (side.call("HeapFree", 0, block),)
    if kind == "size":
        return (side.call("HeapSize", 0, block),)
    _, _, size, flag = op
    old = side.call("HeapSize", 0, block)
    moved = side.call("HeapReAlloc", flag, block, size)
    if not moved:
        return (None, side.api.GetLastError())
    side.blocks[index] = moved
    grown = flag & HEAP_ZERO_MEMORY and size > old
    tail = ctypes.string_at(moved + old, size - old) == bytes(size - old) if grown else None
    _fill(moved, size, seed)
    return (True, tail)


@pytest.mark.parametrize("kind", ["process", "growable", "fixed"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=ops)
def test_hot_and_full_paths_agree(kind: str, program: List[Tuple[Any, ...]]) -> None:
    hot, full = Side(True, kind), Side(False, kind)
    try:
        for seed, op in enumerate(program):
            assert _step(hot, op, seed) == _step(full, op, seed), op
            assert hot.contents() == full.contents()
            assert hot.api.HeapValidate(hot.heap, 0, None) and full.api.HeapValidate(full.heap, 0, None)
    finally:
        hot.close()
        full.close()


def test_bad_arguments_take_the_full_path() -> None:
    """Whatever the hot path does not serve gets the full path's answer, ctypes errors included."""
    api = EmulatedBackend()
    heap = api.GetProcessHeap()
    block = api.HeapAlloc(heap, 0, 48)
    api.HeapFree(heap, 0, block)  # a spare block of 48 bytes is waiting
    with pytest.raises(ctypes.ArgumentError):
        api.HeapAlloc(heap, 0, 48.0)
    with pytest.raises(ctypes.ArgumentError):
        api.HeapAlloc(float(heap), 0, 48)
    assert api.HeapAlloc(heap + 16, 0, 48) is None and api.GetLastError() == ERROR_INVALID_HANDLE
    # A freed block waiting for reuse is no live block.
    assert api.HeapSize(heap, 0, block) == HEAP_SIZE_FAILURE and api.GetLastError() == ERROR_INVALID_PARAMETER
    assert not api.HeapFree(heap, 0, block) and api.GetLastError() == ERROR_INVALID_PARAMETER
    again = api.HeapAlloc(heap, 0, 48)
    with pytest.raises(ctypes.ArgumentError):
        api.HeapFree(heap, 0, float(again))
    with pytest.raises(ctypes.ArgumentError):
        api.HeapReAlloc(heap, 0, again, "64")
    assert api.HeapSize(heap, True, again) == 48  # a bool is an int to ctypes: HEAP_NO_SERIALIZE
    assert api.HeapFree(heap, 0, again)


@pytest.mark.parametrize("size", [48, 1000, LARGE_THRESHOLD + 1])
def test_plain_calls_stay_on_the_hot_path(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """Plain alloc, size and free calls on heaps without debug checks never reach the full path."""
    calls: Dict[str, int] = {"alloc": 0, "free": 0, "size": 0}

    def counting(name: str, full: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any) -> Any:
            calls[name] += 1
            return full(*args)

        return spy

    for name in calls:
        monkeypatch.setattr(_alloc, f"heap_{name}", counting(name, getattr(_alloc, f"heap_{name}")))
    api = EmulatedBackend()
    heaps = [api.GetProcessHeap(), api.HeapCreate(0, 0, 0)]
    if size < LARGE_THRESHOLD:
        heaps.append(api.HeapCreate(0, 0, 1 << 20))
    for heap in heaps:
        for flag in (0, HEAP_ZERO_MEMORY, HEAP_NO_SERIALIZE):
            for _ in range(20):
                block = api.HeapAlloc(heap, flag, size)
                if flag & HEAP_ZERO_MEMORY:
                    assert ctypes.string_at(block, size) == bytes(size)
                ctypes.memset(block, 0xAB, size)
                assert api.HeapSize(heap, 0, block) == size
                assert api.HeapFree(heap, flag & HEAP_NO_SERIALIZE, block)
    assert calls == {"alloc": 0, "free": 0, "size": 0}


# -- the token -------------------------------------------------------------------


def test_heap_lock_stops_other_threads_hot_paths() -> None:
    api = EmulatedBackend()
    heap = api.HeapCreate(0, 0, 0)
    api.HeapFree(heap, 0, api.HeapAlloc(heap, 0, 48))  # the next 48-byte HeapAlloc is a hot one
    assert api.HeapLock(heap)
    done = threading.Event()
    result: List[Optional[int]] = []

    def other() -> None:
        result.append(api.HeapAlloc(heap, 0, 48))
        done.set()

    worker = threading.Thread(target=other, daemon=True)
    worker.start()
    assert not done.wait(0.3), "HeapAlloc ran while another thread held HeapLock"
    assert api.HeapUnlock(heap)
    assert done.wait(10)
    assert result[0] and api.HeapSize(heap, 0, result[0]) == 48
    assert api.HeapDestroy(heap)


def test_call_nested_in_a_hot_path_does_not_deadlock() -> None:
    """A signal handler or finaliser may call in while this thread's hot path holds the token."""
    api = EmulatedBackend()
    heap = api.GetProcessHeap()
    other = api.HeapAlloc(heap, 0, 100)
    api.HeapFree(heap, 0, api.HeapAlloc(heap, 0, 48))
    nested: List[int] = []

    def interrupt(frame: FrameType, event: str, arg: Any) -> None:
        # Runs Python code in the middle of the hot path, as a signal handler would.
        if event == "c_call" and frame.f_code.co_name == "HeapAlloc" and frame.f_locals.get("held"):
            sys.setprofile(None)
            nested.append(api.HeapSize(heap, 0, other))
            nested.append(api.HeapFree(heap, 0, other))

    outcome: List[Optional[int]] = []

    def run() -> None:
        sys.setprofile(interrupt)
        try:
            outcome.append(api.HeapAlloc(heap, 0, 48))
        finally:
            sys.setprofile(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the nested call deadlocked"
    assert nested == [100, 1]
    assert outcome[0] and api.HeapSize(heap, 0, outcome[0]) == 48
    # The token came back exactly once: another thread's calls still run, and exclusively.
    assert api._heaps[heap].token == [True]
    assert api.HeapFree(heap, 0, outcome[0])


def test_full_path_waits_for_a_token_held_elsewhere() -> None:
    guard = HeapGuard()
    guard.token.pop()  # as another thread's hot path would, for a moment
    handed_back = threading.Timer(0.2, guard.token.append, (True,))
    handed_back.start()
    start = time.monotonic()
    with guard:
        assert guard.token == []  # now ours
        waited = time.monotonic() - start
    handed_back.join()
    assert waited >= 0.15
    assert guard.token == [True]


def test_guard_behaves_as_a_reentrant_lock() -> None:
    guard = HeapGuard()
    with pytest.raises(RuntimeError):
        guard.release()
    guard.acquire()
    guard.acquire()
    assert guard.token == []
    guard.release()
    assert guard.token == []  # still held once
    errors: List[BaseException] = []

    def stranger() -> None:
        try:
            guard.release()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=stranger)
    thread.start()
    thread.join()
    assert len(errors) == 1 and guard.token == []
    guard.acquire()
    guard.release_all()
    assert guard.token == [True]
    with pytest.raises(RuntimeError):
        guard.release()


def _hammer(api: EmulatedBackend, heap: int, stop: threading.Event, failures: List[int]) -> None:
    while not stop.is_set():
        block = api.HeapAlloc(heap, 0, 48)
        if block is None:
            failures.append(api.GetLastError())
            return
        # (Not written to: HeapDestroy may free it at any moment, as on Windows.)
        api.HeapFree(heap, 0, block)


def test_destroy_stops_hot_paths_in_other_threads() -> None:
    """HeapDestroy while other threads run hot alloc/free pairs: clean failures after, no crash."""
    api = EmulatedBackend()
    for _ in range(20):
        heap = api.HeapCreate(0, 0, 0)
        api.HeapFree(heap, 0, api.HeapAlloc(heap, 0, 48))
        failures: List[int] = []
        stop = threading.Event()
        workers = [threading.Thread(target=_hammer, args=(api, heap, stop, failures)) for _ in range(3)]
        for worker in workers:
            worker.start()
        time.sleep(0.01)
        assert api.HeapDestroy(heap)
        stop.set()
        for worker in workers:
            worker.join(10)
        assert all(error == ERROR_INVALID_HANDLE for error in failures)
        assert api.HeapAlloc(heap, 0, 48) is None and api.GetLastError() == ERROR_INVALID_HANDLE
