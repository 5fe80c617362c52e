"""A heap's lock: a reentrant lock, plus a token for the hot paths.

Acquiring and releasing a ``threading.RLock`` costs two method calls that
parse their arguments: as much as everything else a small HeapAlloc does. So
the hot paths (see ``_alloc.py`` and ``_realloc.py``) take a token instead:
the one item of a list, taken with ``del token[-1]`` and put back with
``token.append(True)``. Both are atomic, under the GIL and, per object, on
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
they hold the token (their local ``held``); the nested call then borrows it,
and does not wait for the RLock either (its owner may be waiting for that very
token).

A hot path takes the token with ``del token[-1]`` directly followed by
``try:`` and ``held = True``, and gives it back with ``held = False`` directly
followed by ``token.append(True)``. From Python 3.10 on, signal handlers run
(and what they raise, such as KeyboardInterrupt, is raised) only after a call
or at a loop's jump, never between those statements: so an interrupt cannot
take the token away with it, and ``held`` is exact whenever a handler can
look. Python 3.9 runs handlers between almost any two instructions, so there
no lock written in Python, this one included, is safe from interrupts.
"""

from __future__ import annotations

import sys
import threading
import time
from types import CodeType
from typing import Any, Callable, Dict, Iterable, List, Set

#: The code of every hot-path function, to recognise their frames.
HOT_CODES: Set[CodeType] = set()
#: Yields before looking at this thread's frames: a holder elsewhere needs only to be scheduled.
_QUIET_TRIES = 3


def register_hot(functions: Iterable[Callable[..., Any]]) -> None:
    """Declare functions that take a heap's token, holding it while ``held`` is true."""
    HOT_CODES.update(function.__code__ for function in functions)


def held_here(token: List[bool]) -> bool:
    """Whether a hot path lower on this thread's stack holds ``token``."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        if frame.f_code in HOT_CODES:
            local = frame.f_locals
            if local.get("held") and local.get("token") is token:
                return True
        frame = frame.f_back
    return False


class HeapGuard:
    """The lock of a heap: an RLock and the hot paths' token, held together.

    Behaves as the RLock does (``acquire``, ``release``, ``with``), releasing
    from a thread that does not hold it raising ``RuntimeError``.
    """

    __slots__ = ("token", "_rlock", "_depth", "_took", "_borrowers")

    def __init__(self) -> None:
        self.token: List[bool] = [True]
        self._rlock = threading.RLock()
        #: Holds by the owning thread (the RLock itself is taken once); only
        #: that thread touches these two.
        self._depth = 0
        #: Whether the outermost hold took the token (rather than borrowed it).
        self._took = False
        #: Holds by threads nested in their own hot path while another thread
        #: owns the RLock (and waits for the token they have): thread -> holds.
        self._borrowers: Dict[int, int] = {}

    def acquire(self) -> bool:
        rlock = self._rlock
        if rlock._is_owned():  # type: ignore[attr-defined]
            self._depth += 1  # Re-entered: the token (or its borrow) is ours already.
            return True
        try:
            if not rlock.acquire(False):
                if held_here(self.token):
                    # Nested in this thread's hot path: the RLock's owner is
                    # waiting for our token, so waiting for the RLock would deadlock.
                    me = threading.get_ident()
                    self._borrowers[me] = self._borrowers.get(me, 0) + 1
                    return True
                rlock.acquire()
            self._take_token()
            self._depth = 1
        except BaseException:  # e.g. KeyboardInterrupt while waiting: hold nothing
            if rlock._is_owned():  # type: ignore[attr-defined]
                if self._took:
                    self._took = False
                    self.token.append(True)
                rlock.release()
            raise
        return True

    __enter__ = acquire

    def release(self, *_exc: Any) -> None:
        """Release one hold (as ``__exit__`` too, ignoring the exception details)."""
        if self._borrowers and self._drop_borrowed():
            return
        if not self._rlock._is_owned():  # type: ignore[attr-defined]
            raise RuntimeError("cannot release un-acquired lock")
        depth = self._depth = self._depth - 1
        if depth:
            return
        try:
            if self._took:
                self._took = False
                self.token.append(True)
        finally:
            self._rlock.release()

    __exit__ = release

    def release_all(self) -> None:
        """Drop every hold this thread has (HeapLock's included)."""
        self._borrowers.pop(threading.get_ident(), None)
        while self._rlock._is_owned():  # type: ignore[attr-defined]
            self.release()

    def _drop_borrowed(self) -> bool:
        me = threading.get_ident()
        holds = self._borrowers.get(me)
        if not holds:
            return False
        if holds == 1:
            del self._borrowers[me]
        else:
            self._borrowers[me] = holds - 1
        return True

    def _take_token(self) -> None:
        """Take the token into ``_took`` (False: borrowed from this thread's own hot path)."""
        token = self.token
        tries = 0
        while True:
            try:
                del token[-1]
            except IndexError:
                tries += 1
                if tries > _QUIET_TRIES and held_here(token):
                    self._took = False
                    return
                time.sleep(0)
                continue
            self._took = True  # (3.10+: no signal handler runs between the two)
            return
