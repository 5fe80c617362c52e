"""Where figure 1's time goes: ``python benchmarks/pieces.py``.

Times the pieces of an emulated ``HeapAlloc``+``HeapFree`` pair side by side in
one run, interleaved like every figure of ``compatheap bench``, and prints
nanoseconds per pair and each piece's share of the raw ctypes pair. The
pieces are the real ones (the backend, its heap's templates, the heap's lock),
plus two reference points: empty calls, and the lock taken without ``with``.
docs/performance.md quotes its output.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Callable, Dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compatheap._bench._timing import RawLibc, batch, interleaved  # noqa: E402
from compatheap.backends.emulated import EmulatedBackend  # noqa: E402

CALLS = 200_000
ROUNDS = 15
SIZE = 48


def cases() -> Dict[str, Callable[[], None]]:
    libc = RawLibc()
    backend = EmulatedBackend()
    handle = backend.GetProcessHeap()
    heap = backend._heaps[handle]  # the process heap's emulation, for its templates
    lock = threading.RLock()

    def raw() -> None:
        malloc, free = libc.malloc, libc.free
        for _ in range(CALLS):
            free(malloc(SIZE))

    def api() -> None:
        alloc, free = backend.HeapAlloc, backend.HeapFree
        for _ in range(CALLS):
            free(handle, 0, alloc(handle, 0, SIZE))

    def templates() -> None:
        alloc, free = heap.alloc, heap.free
        for _ in range(CALLS):
            free(alloc(SIZE, 0))

    def nothing(a: int, b: int, c: int) -> int:
        return c

    def empty_calls() -> None:
        for _ in range(CALLS):
            nothing(handle, 0, nothing(handle, 0, SIZE))

    def with_lock() -> None:
        for _ in range(CALLS):
            with lock:
                pass
            with lock:
                pass

    def acquire_release() -> None:
        acquire, release = lock.acquire, lock.release
        for _ in range(CALLS):
            acquire()
            release()
            acquire()
            release()

    return {
        "raw ctypes malloc+free (the baseline)": raw,
        "HeapAlloc+HeapFree": api,
        "the two heap templates alone": templates,
        "two empty calls of three arguments": empty_calls,
        "two empty `with` blocks on an RLock": with_lock,
        "two acquire()/release() pairs (no `with`)": acquire_release,
    }


def main() -> int:
    found = interleaved({name: batch(run) for name, run in cases().items()}, ROUNDS)
    raw = next(iter(found.values()))
    print(f"CPython {sys.version.split()[0]}, ns per pair of calls (median of {ROUNDS} interleaved rounds)")
    for name, seconds in found.items():
        print(f"{name:45} {seconds / CALLS * 1e9:6.0f} ns  {seconds / raw:5.2f}x raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
