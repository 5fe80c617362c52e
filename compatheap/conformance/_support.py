"""Helpers shared by the conformance tests."""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import compatheap
from compatheap import backends
from compatheap.backends.kernel32 import wine_version

#: Environment variable restricting the run to some backends (comma-separated).
ENV_BACKENDS = "COMPATHEAP_CONFORMANCE_BACKENDS"


def variants() -> Dict[str, str]:
    """Every variant the available backends declare, with its backend's name."""
    found: Dict[str, str] = {}
    for name in backends.available():
        for variant in backends.get(name).capabilities.variants:
            found[variant] = name
    return found


def known_params() -> List[str]:
    """Every name the suite can be restricted to, usable here or not."""
    return [*backends.NAMES, *variants()]


def requested(environ: Mapping[str, str] = os.environ) -> Optional[List[str]]:
    """The backends ``COMPATHEAP_CONFORMANCE_BACKENDS`` asks for; None when it is unset.

    Raises ``ValueError`` for a name that is no backend: a typo must not
    quietly test nothing.
    """
    chosen = [w.strip().lower() for w in environ.get(ENV_BACKENDS, "").split(",") if w.strip()]
    if not chosen:
        return None
    unknown = [name for name in chosen if name not in known_params()]
    if unknown:
        raise ValueError(
            f"{ENV_BACKENDS} names unknown backend(s) {', '.join(unknown)}; choose from {', '.join(known_params())}"
        )
    return chosen


def backend_params(restrict: bool = True) -> List[str]:
    """The backend names the suite is parametrised over: each backend, then the variants they declare."""
    params = backends.available() + list(variants())
    chosen = requested() if restrict else None
    if chosen is not None:
        params = [p for p in params if p in chosen]
    return params


def unavailable_reason(param: str) -> str:
    """Why ``param`` is not among :func:`backend_params` here."""
    name = base_name(param)
    if name not in backends.NAMES:
        return f"no such backend (choose from {', '.join(backends.NAMES + tuple(variants()))})"
    return backends.probe(name)[1]


def make_backend(param: str) -> compatheap.HeapBackend:
    """The backend (or variant) a suite parameter names."""
    base = variants().get(param)
    if base is not None:
        return backends.get(base).variant(param)
    backend: compatheap.HeapBackend = backends.get(param)
    return backend


def base_name(param: str) -> str:
    """The backend a parameter (a backend's or a variant's name) belongs to."""
    return variants().get(param, param)


def is_wine() -> bool:
    """Whether this process's Windows is Wine."""
    return wine_version() is not None


def walk(k32: Any, heap: int) -> List[Tuple[int, int, int, int]]:
    """A whole HeapWalk as ``(lpData, cbData, cbOverhead, wFlags)`` tuples."""
    entry = compatheap.PROCESS_HEAP_ENTRY()
    entries = []
    while k32.HeapWalk(heap, ctypes.byref(entry)):
        entries.append((entry.lpData or 0, entry.cbData, entry.cbOverhead, entry.wFlags))
        if len(entries) > 1_000_000:
            raise AssertionError("HeapWalk does not end")
    assert k32.GetLastError() == compatheap.ERROR_NO_MORE_ITEMS
    return entries


def write(address: int, data: bytes) -> None:
    ctypes.memmove(address, data, len(data))


def read(address: int, length: int) -> bytes:
    return ctypes.string_at(address, length)


def pattern(length: int, seed: int = 0) -> bytes:
    """Recognisable, non-zero bytes."""
    return bytes((seed + i * 7 + 1) % 251 + 1 for i in range(length))


#: A walk entry as comparable data: ``(lpData, cbData, cbOverhead,
#: iRegionIndex, wFlags, region)``, region being ``(dwCommittedSize,
#: dwUnCommittedSize, lpFirstBlock, lpLastBlock)`` for region entries, else None.
WalkEntry = Tuple[int, int, int, int, int, Optional[Tuple[int, int, int, int]]]


def walk_full(k32: Any, heap: int) -> List[WalkEntry]:
    """A whole HeapWalk, region details included (see :data:`WalkEntry`)."""
    entry = compatheap.PROCESS_HEAP_ENTRY()
    entries: List[WalkEntry] = []
    while k32.HeapWalk(heap, ctypes.byref(entry)):
        region = None
        if entry.wFlags & compatheap.PROCESS_HEAP_REGION:
            r = entry.Region
            region = (r.dwCommittedSize, r.dwUnCommittedSize, r.lpFirstBlock or 0, r.lpLastBlock or 0)
        entries.append((entry.lpData or 0, entry.cbData, entry.cbOverhead, entry.iRegionIndex, entry.wFlags, region))
        if len(entries) > 1_000_000:
            raise AssertionError("HeapWalk does not end")
    assert k32.GetLastError() == compatheap.ERROR_NO_MORE_ITEMS
    return entries


def busy_blocks(entries: List[WalkEntry]) -> Dict[int, int]:
    """``{lpData: cbData}`` of the busy entries of a walk."""
    return {e[0]: e[1] for e in entries if e[4] & compatheap.PROCESS_HEAP_ENTRY_BUSY}


def fill(length: int, seed: int = 0) -> bytes:
    """Like :func:`pattern`, but cheap for long blocks (a repeated 251-byte cycle)."""
    cycle = pattern(251, seed)
    return (cycle * (length // 251 + 1))[:length]


#: How long a thread must stay blocked to count as waiting. Only the
#: "has not finished" side depends on it, and a slow machine only makes that
#: side more certain.
SHORT = 0.2
#: How long a thread that should finish may take; generous for slow emulators.
LONG = 30.0


class Worker:
    """Runs ``action`` on a thread of its own; ``started`` is set right before the call."""

    def __init__(self, action: Callable[[], Any]) -> None:
        self.started = threading.Event()
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(action,), daemon=True)
        self._thread.start()

    def _run(self, action: Callable[[], Any]) -> None:
        self.started.set()
        try:
            self.result = action()
        except BaseException as exc:  # noqa: BLE001 - reported to the test's thread
            self.error = exc
        finally:
            self.done.set()

    def assert_waiting(self) -> None:
        assert self.started.wait(LONG), "worker thread did not start"
        assert not self.done.wait(SHORT), "the call did not wait for the heap lock"

    def assert_finishes(self) -> Any:
        assert self.done.wait(LONG), "the call is still waiting"
        self._thread.join(LONG)
        if self.error is not None:
            raise self.error
        return self.result


class Held:
    """The calling thread's hold on a heap lock, released for sure at the end."""

    def __init__(self, k32: Any, heap: int) -> None:
        self.k32, self.heap, self.depth = k32, heap, 0

    def lock(self) -> None:
        assert self.k32.HeapLock(self.heap)
        self.depth += 1

    def unlock(self) -> None:
        assert self.k32.HeapUnlock(self.heap)
        self.depth -= 1

    def release_all(self) -> None:
        while self.depth:
            self.unlock()
