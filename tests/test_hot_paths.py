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
import signal
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
    HEAP_GENERATE_EXCEPTIONS,
    HEAP_NO_SERIALIZE,
    HEAP_SIZE_FAILURE,
    HEAP_ZERO_MEMORY,
)
from compatheap.backends.emulated import EmulatedBackend, _alloc  # noqa: E402
from compatheap.backends.emulated._guard import HeapGate  # noqa: E402
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


def _finishes_in_a_thread(hook: Callable[[Any], Any], tracer: Any, call: Callable[[], Any]) -> None:
    """``call()`` in a new thread with ``tracer`` set by ``hook`` (sys.settrace, sys.setprofile): no deadlock."""

    def run() -> None:
        hook(tracer)
        try:
            call()
        finally:
            hook(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the nested call deadlocked"


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

    _finishes_in_a_thread(sys.setprofile, interrupt, lambda: outcome.append(api.HeapAlloc(heap, 0, 48)))
    assert nested == [100, 1]
    assert outcome[0] and api.HeapSize(heap, 0, outcome[0]) == 48
    # The token came back exactly once: another thread's calls still run, and exclusively.
    assert api._heaps[heap].token == [True]
    assert api.HeapFree(heap, 0, outcome[0])


def test_gate_waits_for_a_token_held_elsewhere() -> None:
    gate = HeapGate()
    del gate.token[-1]  # as another thread's hot path would, for a moment
    handed_back = threading.Timer(0.2, gate.token.append, (True,))
    handed_back.start()
    start = time.monotonic()
    with gate:
        assert gate.active == [True]  # marked: hot paths from now on step aside
        assert gate.token == [True]  # and the one under way has finished
        waited = time.monotonic() - start
    handed_back.join()
    assert waited >= 0.15
    assert gate.active == []


def test_full_paths_and_heap_lock_mark_the_heap() -> None:
    """While a full path or HeapLock has the heap, hot paths step aside; after, they run again."""
    api = EmulatedBackend()
    heap = api.HeapCreate(0, 0, 0)
    state = api._heaps[heap]
    assert api.HeapLock(heap)
    assert state.active == [True]
    assert api.HeapLock(heap)  # re-entrant, one more mark
    assert api.HeapUnlock(heap)
    assert state.active == [True]
    block = api.HeapAlloc(heap, 0, 48)  # this thread holds the lock: served by the full path
    assert block and api.HeapFree(heap, 0, block)
    assert api.HeapUnlock(heap)
    assert state.active == [] and state.token == [True]
    assert not api.HeapUnlock(heap) and api.GetLastError() == ERROR_INVALID_PARAMETER
    errors: List[int] = []

    def stranger() -> None:
        errors.append(api.HeapUnlock(heap))

    assert api.HeapLock(heap)
    thread = threading.Thread(target=stranger)
    thread.start()
    thread.join()
    assert errors == [0] and state.active == [True]  # another thread cannot unlock
    assert api.HeapUnlock(heap)
    assert api.HeapDestroy(heap)


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


# -- found by review: each a regression test ---------------------------------------


def _pause_in(function: Callable[..., Any], when: Callable[[FrameType], bool], action: Callable[[], None]) -> Any:
    """A tracer running ``action`` once, inside ``function``'s frame, at the first line where ``when`` holds."""
    done: List[bool] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and not done and when(frame):
            done.append(True)
            action()
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code is function.__code__ else None

    return tracer


@pytest.mark.parametrize("maximum", [0, 1 << 20])
@pytest.mark.parametrize("flag", [0, HEAP_ZERO_MEMORY])
def test_hot_alloc_on_a_heap_destroyed_meanwhile_fails(maximum: int, flag: int) -> None:
    """HeapDestroy between a hot HeapAlloc's handle lookup and its token: the call fails cleanly."""
    api = EmulatedBackend()
    heap = api.HeapCreate(0, 0, maximum)
    api.HeapFree(heap, 0, api.HeapAlloc(heap, 0, 64))
    destroyed: List[int] = []
    sys.settrace(
        _pause_in(
            api.HeapAlloc,
            lambda f: "heap" in f.f_locals and "token" not in f.f_locals,
            lambda: destroyed.append(api.HeapDestroy(heap)),
        )
    )
    try:
        block = api.HeapAlloc(heap, flag, 64)
    finally:
        sys.settrace(None)
    assert destroyed == [1]
    assert block is None and api.GetLastError() == ERROR_INVALID_HANDLE


def test_nested_calls_at_every_held_line_keep_the_heap_consistent() -> None:
    """A nested alloc/free at each line of a hot path that holds the token: no block handed out twice."""
    api = EmulatedBackend()
    heap = api.GetProcessHeap()
    for function in (api.HeapAlloc, api.HeapFree, api.HeapSize, api.HeapReAlloc):
        line = 0
        while True:
            line += 1
            seen: List[int] = []
            nested: List[int] = []

            def at_line(frame: FrameType, want: int = line, seen: List[int] = seen) -> bool:
                if not frame.f_locals.get("held"):
                    return False
                seen.append(1)
                return len(seen) == want

            def nest(nested: List[int] = nested) -> None:
                inner = api.HeapAlloc(heap, 0, 48)
                nested.append(inner)
                assert api.HeapFree(heap, 0, inner)

            keep = api.HeapAlloc(heap, 0, 48)
            api.HeapFree(heap, 0, api.HeapAlloc(heap, 0, 48))
            sys.settrace(_pause_in(function, at_line, nest))
            try:
                if function is api.HeapAlloc:
                    extra = api.HeapAlloc(heap, 0, 48)
                elif function is api.HeapReAlloc:
                    keep = api.HeapReAlloc(heap, 0, keep, 40)
                    extra = None
                elif function is api.HeapSize:
                    assert api.HeapSize(heap, 0, keep) == 48
                    extra = None
                else:
                    assert api.HeapFree(heap, 0, keep)
                    keep = extra = None
            finally:
                sys.settrace(None)
            live = [b for b in (keep, extra) if b]
            for block in live:
                assert api.HeapSize(heap, 0, block) in (40, 48)
            fresh = [api.HeapAlloc(heap, 0, 48) for _ in range(20)]
            assert len(set(fresh + live)) == len(fresh) + len(live)  # nothing handed out twice
            for block in fresh + live:
                assert api.HeapFree(heap, 0, block)
            assert api._heaps[heap].token == [True]
            if len(seen) < line:
                break  # every held line of this function has had its nested call


def test_nested_call_while_another_thread_waits_for_the_token() -> None:
    """A handler nested in a hot path, while another thread's full path waits: no deadlock."""
    api = EmulatedBackend()
    heap = api.GetProcessHeap()
    api.HeapFree(heap, 0, api.HeapAlloc(heap, 0, 48))
    other = api.HeapAlloc(heap, 0, 100)
    waiting = threading.Event()
    results: Dict[str, Any] = {}

    def full_path_call() -> None:
        waiting.set()
        # A flag the hot path does not serve: the full path, waiting for the token.
        results["other"] = api.HeapAlloc(heap, HEAP_GENERATE_EXCEPTIONS, 32)

    def nest() -> None:
        thread = threading.Thread(target=full_path_call, daemon=True)
        thread.start()
        waiting.wait(5)
        time.sleep(0.1)  # the other thread now holds the RLock and waits for our token
        results["nested"] = api.HeapSize(heap, HEAP_GENERATE_EXCEPTIONS, other)
        results["thread"] = thread

    _finishes_in_a_thread(
        sys.settrace,
        _pause_in(api.HeapAlloc, lambda f: bool(f.f_locals.get("held")), nest),
        lambda: results.update(outer=api.HeapAlloc(heap, 0, 48)),
    )
    results["thread"].join(10)
    assert results["nested"] == 100
    assert results["outer"] and results["other"]
    assert api._heaps[heap].token == [True]


_STORM = r"""
import signal, threading, time
from compatheap.backends.emulated import EmulatedBackend

class Tick(Exception):
    pass

armed = [False]
ticks = [0]

def handler(signum, frame):
    if armed[0]:  # only inside the heap calls, never in this script's own bookkeeping
        armed[0] = False
        raise Tick

def call(function, *args):
    try:
        armed[0] = True
        return function(*args)
    except Tick:
        ticks[0] += 1
        return None
    finally:
        armed[0] = False

api = EmulatedBackend()
heaps = [api.GetProcessHeap(), api.HeapCreate(0, 0, 0)]
held = {h: [] for h in heaps}
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
deadline = time.monotonic() + 3.0
while time.monotonic() < deadline:
    for h in heaps:
        # Flag 0: the hot paths; HEAP_GENERATE_EXCEPTIONS (4): the full paths.
        for size, flags in ((48, 0), (48, 4), (100, 0), (2000, 4)):
            block = call(api.HeapAlloc, h, flags, size)
            if block:
                held[h].append(block)
        while len(held[h]) > 6:
            call(api.HeapSize, h, 4, held[h][0])
            call(api.HeapFree, h, len(held[h]) & 4, held[h].pop(0))
signal.setitimer(signal.ITIMER_REAL, 0)
signal.signal(signal.SIGALRM, signal.SIG_DFL)

def elsewhere(h):
    out = []
    worker = threading.Thread(target=lambda: out.append(api.HeapAlloc(h, 4, 48)), daemon=True)
    worker.start()
    worker.join(10)
    return out

for h in heaps:
    assert api._heaps[h].token == [True], "a token was lost"
    assert elsewhere(h), "the heap was left locked"
    fresh = [api.HeapAlloc(h, 0, 48) for _ in range(50)]
    assert all(fresh) and len(set(fresh)) == 50
for h in heaps[1:]:
    assert api.HeapDestroy(h)
print(ticks[0])
"""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
@pytest.mark.skipif(sys.version_info < (3, 10), reason="Python 3.9 runs signal handlers between any two instructions")
def test_interrupts_never_take_a_token_away() -> None:
    """Exceptions raised by signal handlers, thousands of them, land anywhere in the calls.

    None leaves a heap's token taken (later calls would wait forever), and the
    heaps go on serving. (What an interrupted call leaves behind is another
    matter: see "Interrupted calls" in docs/reliability.md.)
    """
    from tests.conftest import run_python

    done = run_python(_STORM)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) > 1000  # interrupts really landed


class _Finaliser:
    """Cyclic garbage whose finaliser calls into a heap: runs whenever a collection does."""

    calls: List[Callable[[], Any]] = []

    def __init__(self) -> None:
        self.cycle = self

    def __del__(self) -> None:
        for call in self.calls:
            call()


def test_finaliser_in_a_hot_path_beside_a_heap_lock_holder() -> None:
    """A holds HeapLock; B's hot HeapFree of a bad pointer runs a finaliser that calls in; A calls again."""
    import gc

    api = EmulatedBackend()
    heap = api.HeapCreate(0, 0, 0)
    locked, in_finaliser = threading.Event(), threading.Event()
    done: Dict[str, Any] = {}

    def finaliser_call() -> None:
        if threading.current_thread().name == "B" and not in_finaliser.is_set():
            in_finaliser.set()
            done["finaliser"] = api.HeapAlloc(heap, 0, 100000)

    def holder() -> None:
        api.HeapLock(heap)
        locked.set()
        in_finaliser.wait(2)
        time.sleep(0.1)
        done["holder"] = api.HeapAlloc(heap, 0, 16)
        api.HeapUnlock(heap)

    def freer() -> None:
        locked.wait(5)
        for _ in range(50):
            _Finaliser()
        threshold = gc.get_threshold()
        gc.set_threshold(1)
        try:
            done["free"] = api.HeapFree(heap, 0, 0x1234560)  # no block: a KeyError in the hot path
        finally:
            gc.set_threshold(*threshold)

    _Finaliser.calls = [finaliser_call]
    try:
        a = threading.Thread(target=holder, name="A", daemon=True)
        b = threading.Thread(target=freer, name="B", daemon=True)
        a.start()
        b.start()
        a.join(10)
        b.join(10)
        assert not a.is_alive() and not b.is_alive(), "deadlock"
    finally:
        _Finaliser.calls = []
        gc.collect()
    assert done["free"] == 0 and done["holder"]
    state = api._heaps[heap]
    assert state.token == [True] and state.active == []
    assert api.HeapDestroy(heap)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
@pytest.mark.skipif(sys.version_info < (3, 10), reason="Python 3.9 runs signal handlers between any two instructions")
def test_interrupted_heap_lock_leaves_no_lock_behind() -> None:
    from tests.conftest import run_python

    code = r"""
import signal, threading
from compatheap.backends.emulated import EmulatedBackend

class Tick(Exception):
    pass

armed = [False]

def handler(signum, frame):
    if armed[0]:
        armed[0] = False
        raise Tick

api = EmulatedBackend()
heap = api.HeapCreate(0, 0, 0)
state = api._heaps[heap]
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.00005, 0.00005)
ticks = 0
for _ in range(20000):
    try:
        armed[0] = True
        locked = api.HeapLock(heap)
        armed[0] = False
    except Tick as tick:
        ticks += 1
        frames = []
        tb = tick.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        if frames[-2] == "<module>":
            # Landed after HeapLock returned (Python 3.10 checks there): it had succeeded.
            if state.rlock._is_owned():
                api.HeapUnlock(heap)
        else:
            assert not state.rlock._is_owned(), "an interrupted HeapLock kept the lock"
        continue
    assert locked and api.HeapUnlock(heap)
signal.setitimer(signal.ITIMER_REAL, 0)
assert not state.rlock._is_owned(), "an interrupted HeapLock kept the lock"
out = []
worker = threading.Thread(target=lambda: out.append(api.HeapAlloc(heap, 4, 64)), daemon=True)
worker.start()
worker.join(10)
assert out and out[0], "the heap was left locked"
print(ticks)
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) > 0
