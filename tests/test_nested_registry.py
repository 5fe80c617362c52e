"""A heap function called in the middle of a call that changes or reads the heap registry.

A signal handler (or a finaliser) runs on the thread it interrupted, between
two steps of the interrupted call; docs/reliability.md promises that a
handler calling into the heap does not deadlock. Here the interrupted call is
HeapCreate, HeapDestroy, GetProcessHeap (the first, which makes the process
heap) or GetProcessHeaps, and at each line of it in turn (a trace function
calls in at that line) one of: HeapCreate, HeapDestroy of another heap,
HeapDestroy of the heap the call works on, GetProcessHeap (and an attempt to
destroy it), GetProcessHeaps, and ``os.fork`` (the child checks its registry
and exits). Afterwards GetProcessHeaps lists exactly the live heaps, the one
process heap first, and once they are destroyed nothing the ledger of
:class:`tests.faulty.FaultyMemory` recorded is left.

Each interrupted call runs in a child process with a time limit: a deadlock
fails the test instead of hanging the run.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import subprocess
import sys
import threading
from types import CodeType
from typing import Callable, List, Optional, Set

import pytest

from compatheap import ERROR_INVALID_HANDLE, ERROR_NOT_ENOUGH_MEMORY
from compatheap.backends.emulated import EmulatedBackend, _backend
from compatheap.backends.emulated._heap import EmulatedHeap
from tests.conftest import child_env, require_emulation
from tests.faulty import FaultyMemory, TableWithoutRoom
from tests.test_pythonic_fork_signals import in_child
from tests.tracing import at_step

require_emulation()

INTERRUPTED = ("HeapCreate", "HeapDestroy", "GetProcessHeap", "GetProcessHeaps")
NESTED = ("create", "destroy_other", "destroy_same", "process", "list", "fork")


def _listing(k32: EmulatedBackend) -> List[int]:
    room = 256
    handles = (ctypes.c_void_p * room)()
    total = k32.GetProcessHeaps(room, handles)
    assert 0 < total <= room
    return [handle or 0 for handle in handles[:total]]


def _in_backend(code: CodeType) -> bool:
    return code.co_filename == _backend.__file__


class Case:
    """One interrupted call with one kind of nested call at its ``line``-th line."""

    def __init__(self, interrupted: str, nested: str, line: int) -> None:
        self.interrupted = interrupted
        self.nested = nested
        self.line = line
        self.native = FaultyMemory()
        self.k32 = k32 = EmulatedBackend(memory=self.native)
        if interrupted != "GetProcessHeap":
            assert k32.GetProcessHeap()
        self.target = k32.HeapCreate(0, 0, 0) or 0
        self.other = k32.HeapCreate(0, 0x10000, 0x40000) or 0
        for handle in (self.target, self.other):
            assert handle and k32.HeapAlloc(handle, 0, 100)
        self.created: List[int] = []
        self.destroyed: Set[int] = set()
        self.nested_process: Optional[int] = None
        self.fired = False
        self.failure: Optional[BaseException] = None

    # -- the nested call -------------------------------------------------------------
    def nest(self) -> None:
        """Make the nested call; a failed check is kept for later (raised here,
        it would land in the interrupted call instead)."""
        self.fired = True
        try:
            getattr(self, "nest_" + self.nested)()
        except BaseException as failure:  # noqa: BLE001 - re-raised by check()
            self.failure = failure

    def nest_create(self) -> None:
        handle = self.k32.HeapCreate(0, 0, 0)
        assert handle and self.k32.HeapAlloc(handle, 0, 50)
        self.created.append(handle)

    def nest_destroy_other(self) -> None:
        assert self.k32.HeapDestroy(self.other) == 1
        self.destroyed.add(self.other)

    def nest_destroy_same(self) -> None:
        if self.k32.HeapDestroy(self.target):
            self.destroyed.add(self.target)
        else:  # Only the interrupted HeapDestroy may have it already.
            assert self.interrupted == "HeapDestroy"
            assert self.k32.GetLastError() == ERROR_INVALID_HANDLE

    def nest_process(self) -> None:
        process = self.nested_process = self.k32.GetProcessHeap()
        assert process
        assert self.k32.HeapDestroy(process) == 0
        assert self.k32.GetLastError() == ERROR_INVALID_HANDLE

    def nest_list(self) -> None:
        listing = _listing(self.k32)
        assert listing[0] == self.k32.GetProcessHeap()
        assert len(set(listing)) == len(listing)
        assert self.other in listing
        if self.interrupted != "HeapDestroy":
            assert self.target in listing
        unknown = set(listing[1:]) - {self.target, self.other}
        assert len(unknown) <= (self.interrupted == "HeapCreate"), listing  # the heap being made

    def nest_fork(self) -> None:
        in_child(self.check_child)

    def check_child(self) -> None:
        """The forked child's registry is usable (the child exits right after)."""
        handle = self.k32.HeapCreate(0, 0, 0)
        assert handle and self.k32.HeapDestroy(handle) == 1
        assert self.k32.GetProcessHeap()
        assert self.other in _listing(self.k32)

    # -- the interrupted call ---------------------------------------------------------
    def run(self) -> bool:
        """Make the interrupted call with the nested one at its line; whether it
        got that far (False: the call has fewer lines)."""
        k32 = self.k32
        before = set(_listing(k32)) if self.interrupted != "GetProcessHeap" else set()
        call: Callable[[], object] = {
            "HeapCreate": lambda: k32.HeapCreate(0, 0, 0),
            "HeapDestroy": lambda: k32.HeapDestroy(self.target),
            "GetProcessHeap": k32.GetProcessHeap,
            "GetProcessHeaps": lambda: _listing(k32),
        }[self.interrupted]
        _, result = at_step(self.line, _in_backend, call, self.nest)
        if not self.fired:
            return False
        self.check(result, before)
        return True

    def check(self, result: object, before: Set[int]) -> None:
        where = f"{self.interrupted} with {self.nested} at line {self.line}"
        if self.failure is not None:
            raise AssertionError(f"{where}: the nested call") from self.failure
        k32 = self.k32
        # Destructions first: a new heap may take the handle of one destroyed before it.
        live = {self.target, self.other} - self.destroyed
        if self.interrupted == "HeapDestroy":
            # Exactly one of the two destroyed it.
            assert (result == 1) + (self.target in self.destroyed) == 1, where
            live.discard(self.target)
        live |= set(self.created)
        if self.interrupted == "HeapCreate":
            assert isinstance(result, int) and result, where
            live.add(result)
        elif self.interrupted == "GetProcessHeap":
            assert result and result == k32.GetProcessHeap(), where
            assert self.nested_process in (None, result), where
        process = k32.GetProcessHeap()
        listing = _listing(k32)
        assert listing[0] == process, where
        assert sorted(listing[1:]) == sorted(live), where
        if self.interrupted == "GetProcessHeaps":
            assert isinstance(result, list) and result[0] == process, where
            assert len(set(result)) == len(result), where
            assert set(result) in (before, set(listing)), where
        for handle in live:
            assert k32.HeapDestroy(handle) == 1, where
        assert _listing(k32) == [process], where
        with k32._heaps[process].lock:  # The process heap goes back too: then nothing may be left.
            k32._heaps[process].destroy()
        assert self.native.leaks() == [], (where, self.native.leaks())


def run(interrupted: str) -> None:
    """Every nested call at every line of ``interrupted`` (in a child process)."""
    faulthandler.dump_traceback_later(60, exit=True)  # a deadlock is reported, and ends the child
    for nested in NESTED:
        if nested == "fork" and not hasattr(os, "fork"):
            continue
        line = 0
        while Case(interrupted, nested, line + 1).run():
            line += 1
        assert line >= 3, (interrupted, nested, line)
        print(interrupted, nested, line)


@pytest.mark.parametrize("interrupted", INTERRUPTED)
def test_a_call_nested_at_each_line_of_a_registry_call(interrupted: str) -> None:
    """No deadlock, the registry as the calls left it, nothing leaked."""
    proc = subprocess.run(
        [sys.executable, "-c", f"from tests.test_nested_registry import run; run({interrupted!r})"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = {line.split()[1] for line in proc.stdout.splitlines()}
    assert ran == (set(NESTED) if hasattr(os, "fork") else set(NESTED) - {"fork"})


def _give_back_process_heap(k32: EmulatedBackend, native: FaultyMemory) -> None:
    process = k32.GetProcessHeap()
    assert process and _listing(k32) == [process]
    heap = k32._heaps[process]
    with heap.lock:
        heap.destroy()
    assert native.leaks() == []


def test_a_process_heap_that_could_not_be_registered_is_the_next_calls() -> None:
    """Short of Python's memory for the registry, GetProcessHeap fails, and the
    heap it made waits for the next call: no second one is made."""
    native = FaultyMemory()
    k32 = EmulatedBackend(memory=native)
    registry = TableWithoutRoom[int, EmulatedHeap]()
    registry.full = True
    k32._heaps = registry
    assert k32.GetProcessHeap() is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
    mapped = dict(native.mappings)
    assert mapped
    assert k32.GetProcessHeap() is None
    assert native.mappings == mapped
    registry.full = False
    assert k32.GetProcessHeap()
    assert native.mappings == mapped
    _give_back_process_heap(k32, native)


def _first_calls_together(threads: int) -> None:
    native = FaultyMemory()
    k32 = EmulatedBackend(memory=native)
    start = threading.Barrier(threads)
    answers: List[Optional[int]] = []

    def ask() -> None:
        start.wait()
        answers.append(k32.GetProcessHeap())

    running = [threading.Thread(target=ask) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    assert len(answers) == threads and answers[0] and set(answers) == {answers[0]}
    _give_back_process_heap(k32, native)


def test_threads_asking_first_for_the_process_heap_get_one() -> None:
    """Threads making the first GetProcessHeap together: one heap for all of
    them, the others' heaps given back."""
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # Threads switch inside the calls, not only between them.
    try:
        for _ in range(20):
            _first_calls_together(4)
    finally:
        sys.setswitchinterval(switching)
