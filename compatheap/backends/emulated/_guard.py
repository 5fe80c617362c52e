"""A heap's lock: a reentrant lock, plus a token for the hot paths.

Acquiring and releasing a ``threading.RLock`` costs two method calls that
parse their arguments: as much as everything else a small HeapAlloc does. So
the hot paths (see ``_alloc.py`` and ``_realloc.py``) take a token instead:
the one item of a list, removed with ``list.pop()`` and put back with
``list.append()``. Both are atomic, under the GIL and, per object, on
free-threaded builds; a hot path that finds the list empty takes the full
path instead.

Everything else holds the guard: the RLock and, by its outermost hold, the
token too. So a hot path never runs beside a full path, HeapLock, a walk or
HeapDestroy on the same heap, and a thread holding HeapLock stops the others'
hot paths as well as their full ones.

A hot path holds the token for a few bytecodes and never waits while holding
it, so a full path that finds it gone waits by yielding. One case must not
wait: a signal handler or finaliser that runs inside a hot path and calls into
the same heap from the same thread. The frames of the hot paths say whether
they hold the token (their local ``held``); the nested call then borrows it.
"""

from __future__ import annotations

import sys
import threading
import time
from types import CodeType, FrameType
from typing import Any, Callable, Iterable, List, Set

#: The code of every hot-path function, to recognise their frames.
HOT_CODES: Set[CodeType] = set()
#: Yields before looking at the threads' frames: a holder needs only to be scheduled.
_QUIET_TRIES = 3


def register_hot(functions: Iterable[Callable[..., Any]]) -> None:
    """Declare functions that take a heap's token, holding it while ``held`` is true."""
    HOT_CODES.update(f.__code__ for f in functions)


def _held_by(frame: FrameType, token: List[bool]) -> bool:
    local = frame.f_locals
    return bool(local.get("held")) and local.get("token") is token


def held_here(token: List[bool]) -> bool:
    """Whether a hot path lower on this thread's stack holds ``token``."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        if frame.f_code in HOT_CODES and _held_by(frame, token):
            return True
        frame = frame.f_back
    return False


class HeapGuard:
    """The lock of a heap: an RLock and the hot paths' token, held together.

    Behaves as the RLock does (``acquire``, ``release``, ``with``), releasing
    from a thread that does not hold it raising ``RuntimeError``.
    """

    __slots__ = ("token", "_rlock", "_depth", "_took")

    def __init__(self) -> None:
        self.token: List[bool] = [True]
        self._rlock = threading.RLock()
        #: Holds by the owning thread; only that thread touches these two.
        self._depth = 0
        #: Whether the outermost hold took the token (rather than borrowed it).
        self._took = False

    def acquire(self) -> bool:
        self._rlock.acquire()
        depth = self._depth
        if not depth:
            try:
                self.token.pop()
                self._took = True
            except IndexError:  # A hot path has it for a moment, or this thread's own does.
                self._took = self._take_token()
        self._depth = depth + 1
        return True

    __enter__ = acquire

    def release(self, *_exc: Any) -> None:
        """Release one hold (as ``__exit__`` too, ignoring the exception details)."""
        if not self._rlock._is_owned():  # type: ignore[attr-defined]
            raise RuntimeError("cannot release un-acquired lock")
        depth = self._depth = self._depth - 1
        if not depth and self._took:
            self._took = False
            self.token.append(True)
        self._rlock.release()

    __exit__ = release

    def release_all(self) -> None:
        """Drop every hold this thread has (HeapLock's included)."""
        while self._rlock._is_owned():  # type: ignore[attr-defined]
            self.release()

    def _take_token(self) -> bool:
        """Take the token; False if this thread's own hot path holds it (borrowed)."""
        token = self.token
        tries = 0
        while True:
            try:
                token.pop()
                return True
            except IndexError:
                pass
            tries += 1
            if tries > _QUIET_TRIES:
                if held_here(token):
                    try:  # The holder may have just put it back.
                        token.pop()
                        return True
                    except IndexError:
                        return False
            time.sleep(0)
