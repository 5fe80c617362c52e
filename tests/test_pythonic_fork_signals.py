"""The Pythonic API under fork and signals: a child never hangs; a handler may use the same Heap.

Fork tests stop a thread inside every public method (in the backend call, with
:class:`tests.pausing.PausingBackend`, or in user code the method runs with the
heap's lock held), fork, and check what the child can do. Signal tests run in a
child interpreter, so a hang or a crash fails the test instead of the run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from typing import Any, Callable, Dict, List, Tuple

import pytest

import compatheap
from compatheap import Block, Heap, InvalidatedError

from .conftest import child_env
from .pausing import PATIENCE, PausingBackend, Stop

HAS_FORK = hasattr(os, "fork")
HAS_SETITIMER = hasattr(signal, "setitimer")
REAL = compatheap.backend


class Pair(ctypes.Structure):
    _fields_ = [("left", ctypes.c_uint32), ("right", ctypes.c_uint32)]


def in_child(check: Callable[[], None]) -> None:
    """Fork; the child runs ``check`` and must exit cleanly within PATIENCE seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads, 3.12+
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            check()
            code = 0
        except BaseException:  # noqa: BLE001 - reported by the exit code and traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + PATIENCE
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child hung")
        time.sleep(0.005)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"the child failed (status {status:#x})"


def assert_usable(heap: Heap, block: Block) -> None:
    """Everything works: the block, new blocks, freeing, destroying."""
    block[0] = 5
    assert block[0] == 5 and len(bytes(block)) == len(block)
    fresh = heap.alloc(100)
    fresh[:] = b"c" * 100
    assert bytes(fresh) == b"c" * 100
    heap.free(fresh)
    heap.free(block)
    assert heap.validate()
    heap.destroy()


def assert_invalidated(heap: Heap, block: Block) -> None:
    """The heap was mid-call in a thread that does not exist here: refused, never waited for."""
    uses: List[Callable[[], Any]] = [
        lambda: heap.alloc(8),
        lambda: bytes(block),
        heap.blocks,
        heap.validate,
        lambda: heap.free(block),
        heap.destroy,
    ]
    for use in uses:
        with pytest.raises(InvalidatedError, match="forked"):
            use()
    assert not block.alive


def _locked_section(heap: Heap) -> None:
    with heap.locked():
        pass


#: Public methods that call the backend: (name, backend function, when to stop, call).
IN_BACKEND: List[Tuple[str, str, str, Callable[[Heap, Block], Any]]] = [
    ("alloc", "HeapAlloc", "before", lambda h, b: h.alloc(8)),
    ("new", "HeapAlloc", "after", lambda h, b: h.new(Pair)),
    ("realloc", "HeapReAlloc", "before", lambda h, b: h.realloc(b, 99)),
    ("free", "HeapFree", "after", lambda h, b: h.free(b)),
    ("size", "HeapSize", "before", lambda h, b: h.size(b)),
    ("validate", "HeapValidate", "before", lambda h, b: h.validate()),
    ("validate(block)", "HeapValidate", "after", lambda h, b: h.validate(b)),
    ("compact", "HeapCompact", "before", lambda h, b: h.compact()),
    ("locked", "HeapLock", "after", lambda h, b: _locked_section(h)),
    ("walk", "HeapWalk", "before", lambda h, b: h.walk()),
    ("summary", "HeapSummary", "before", lambda h, b: h.summary()),
    ("destroy", "HeapDestroy", "before", lambda h, b: h.destroy()),
]


@pytest.mark.skipif(not HAS_FORK, reason="no os.fork here")
@pytest.mark.parametrize("name, function, when, call", IN_BACKEND, ids=[case[0] for case in IN_BACKEND])
def test_fork_while_another_thread_is_in_a_heap_call(
    name: str, function: str, when: str, call: Callable[[Heap, Block], Any]
) -> None:
    api = PausingBackend(REAL)
    heap = Heap(backend=api)
    block = heap.alloc(32)
    other = Heap(backend=api)
    spare = other.alloc(16)
    stop = api.stop(function, when)
    thread = threading.Thread(target=lambda: call(heap, block), daemon=True)
    thread.start()
    stop.wait_reached()

    def check() -> None:
        assert_invalidated(heap, block)
        assert_usable(other, spare)  # heaps nobody was calling stay usable

    try:
        in_child(check)
    finally:
        stop.go()
        thread.join(PATIENCE)
    assert not thread.is_alive()
    for each in (heap, other):
        if not each.destroyed:
            each.destroy()


class Blocker:
    """An index that holds the thread converting it, with the heap's lock held."""

    def __init__(self) -> None:
        self.stop = Stop()

    def __index__(self) -> int:
        self.stop()
        return 1


#: Public methods that run user code with the heap's lock held and no backend call.
IN_MEMORY_ACCESS: Dict[str, Callable[[Heap, Block, Blocker], Any]] = {
    "block[i] = value": lambda h, b, blocker: b.__setitem__(0, blocker),
    "typed field = value": lambda h, b, blocker: b.as_ctypes(Pair).__setattr__("left", blocker),
    "typed item = value": lambda h, b, blocker: b.as_ctypes(ctypes.c_uint8 * 8).__setitem__(2, blocker),
}


@pytest.mark.skipif(not HAS_FORK, reason="no os.fork here")
@pytest.mark.parametrize("name", list(IN_MEMORY_ACCESS))
def test_fork_while_another_thread_holds_the_heap_lock_reading_or_writing(name: str) -> None:
    """The child used to hang on the heap object's lock; now it gets a fresh one."""
    heap = Heap()
    block = heap.alloc(32)
    blocker = Blocker()
    thread = threading.Thread(target=lambda: IN_MEMORY_ACCESS[name](heap, block, blocker), daemon=True)
    thread.start()
    blocker.stop.wait_reached()
    try:
        in_child(lambda: assert_usable(heap, block))
    finally:
        blocker.stop.go()
        thread.join(PATIENCE)
    assert not thread.is_alive()
    heap.free(block)  # the parent's claim ended with the thread's access
    heap.destroy()


@pytest.mark.skipif(not HAS_FORK, reason="no os.fork here")
def test_fork_inside_locked_keeps_the_hold_in_the_child() -> None:
    heap = Heap()
    block = heap.alloc(16)

    def check() -> None:
        own = heap.alloc(8)  # the forking thread holds HeapLock and the lock: fine
        heap.free(own)

    section = heap.locked()
    section.__enter__()
    try:
        # The child leaves the section it inherited, then uses the heap as usual.
        def leave_and_use() -> None:
            check()
            section.__exit__(None, None, None)
            assert_usable(heap, block)

        in_child(leave_and_use)
    finally:
        section.__exit__(None, None, None)
    heap.free(block)
    heap.destroy()


def _every_method(heap: Heap, block: Block, step: int) -> None:
    """One round of every public method that does not end the heap."""
    fresh = heap.alloc(24 + step % 40)
    fresh[0] = 1
    fresh[1:3] = b"ab"
    bytes(fresh)
    _ = fresh[0], fresh[:2], len(fresh), fresh.address, repr(fresh)
    with fresh.view() as view:
        view[0] = 2
    fresh = heap.realloc(fresh, 300 + step % 7)
    heap.size(fresh)
    heap.validate(fresh)
    heap.free(fresh)
    pair_block, pair = heap.new(Pair)
    pair.left = step
    assert pair.left == step
    heap.free(pair_block)
    _ = block.as_ctypes(Pair).right, heap.blocks(), heap.handle, heap.validate(), heap.compact(), list(heap.walk())
    with heap.locked():
        pass


@pytest.mark.skipif(not HAS_FORK, reason="no os.fork here")
def test_fork_while_threads_run_every_method() -> None:
    """Free-running threads in every public method; each child finds the heap usable or refused, never stuck."""
    heap = Heap()
    block = heap.alloc(64)
    halt = threading.Event()
    errors: List[BaseException] = []

    def run() -> None:
        step = 0
        try:
            while not halt.is_set():
                step += 1
                _every_method(heap, block, step)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    outcomes = {"usable": 0, "refused": 0}

    def check() -> None:
        try:
            heap.alloc(1)
        except InvalidatedError:
            assert_invalidated(heap, block)
            os._exit(3)
        _every_method(heap, block, 1)
        assert_usable(heap, block)

    try:
        for _ in range(25):
            try:
                in_child(check)
                outcomes["usable"] += 1
            except AssertionError as exc:
                if "status 0x300" not in str(exc):
                    raise
                outcomes["refused"] += 1
            time.sleep(0.01)
    finally:
        halt.set()
        for thread in threads:
            thread.join(PATIENCE)
    assert errors == []
    assert sum(outcomes.values()) == 25
    heap.destroy()


# -- signals -------------------------------------------------------------------------

SIGNAL_SCRIPT = r"""
import ctypes, signal, sys, time
from compatheap import Heap, InvalidatedError

raise_every = int(sys.argv[1])
heap = Heap()
shared = [heap.alloc(32) for _ in range(4)]
for block in shared:
    block[:] = b"s" * 32
stats = {"handled": 0, "refused": 0, "raised": 0, "rounds": 0}
running = [False]
armed = [False]  # raise only inside the loop's try; a raise disarms until the next round


class Interrupt(Exception):
    pass


def handler(signum, frame):
    if running[0]:  # a handler interrupted by the next signal: let it finish
        return
    running[0] = True
    try:
        stats["handled"] += 1
        own = heap.alloc(16)
        own[:] = b"h" * 16
        assert bytes(own) == b"h" * 16
        heap.free(own)
        for block in list(shared):
            try:
                data = bytes(block)
            except InvalidatedError:
                stats["refused"] += 1
                continue
            assert data == b"s" * 32, data
    finally:
        running[0] = False
    if raise_every and armed[0] and stats["handled"] % raise_every == 0:
        armed[0] = False
        raise Interrupt


class Pair(ctypes.Structure):
    _fields_ = [("left", ctypes.c_uint32), ("right", ctypes.c_uint32)]


signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 50e-6, 50e-6)
deadline = time.monotonic() + 2.0
while time.monotonic() < deadline:
    try:
        armed[0] = True
        stats["rounds"] += 1
        i = stats["rounds"]
        block = heap.alloc(64 + i % 100)
        block[:64] = b"m" * 64
        block = heap.realloc(block, 400)
        assert block[:64] == b"m" * 64
        view = block.as_ctypes(Pair)
        view.left = i
        assert view.left == i
        heap.free(block)
        pair_block, pair = heap.new(Pair)
        pair.right = 7
        heap.free(pair_block)
        slot = i % len(shared)
        fresh = heap.alloc(32)
        fresh[:] = b"s" * 32
        old, shared[slot] = shared[slot], fresh
        heap.free(old)
        armed[0] = False
    except Interrupt:
        stats["raised"] += 1
signal.setitimer(signal.ITIMER_REAL, 0, 0)
signal.signal(signal.SIGALRM, signal.SIG_IGN)
assert heap.validate()
for block in heap.blocks():
    bytes(block)
heap.destroy()
print(stats)
assert stats["handled"] > 100, stats
"""


@pytest.mark.skipif(not HAS_SETITIMER, reason="no signal.setitimer here")
@pytest.mark.parametrize("raise_every", [0, 7], ids=["handler-returns", "handler-raises"])
def test_signal_handler_uses_the_same_heap_every_50us(raise_every: int) -> None:
    """No deadlock, no freed memory read, and a heap that can still be destroyed afterwards."""
    if sys.version_info < (3, 10):
        # Python 3.9 runs handlers between almost any two instructions, and
        # the emulated backend promises nested calls from a handler from 3.10 on.
        pytest.skip("handlers calling into the heap they interrupted: promised from Python 3.10 on")
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", SIGNAL_SCRIPT, str(raise_every)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
