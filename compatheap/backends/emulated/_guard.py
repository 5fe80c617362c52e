"""Keeping a heap to one caller: its lock, its token and its gate.

Acquiring and releasing a ``threading.RLock`` costs two method calls that
parse their arguments: as much as everything else a small HeapAlloc does. So
the hot paths (see ``_alloc.py`` and ``_realloc.py``) take a token instead:
the one item of a list, taken with ``del token[-1]`` and put back with
``token.append(True)``. Both are atomic, under the GIL and, per object, on
free-threaded builds. Having taken it, a hot path leaves at once for the full
path if the heap is marked (its ``active`` list is not empty).

Everything else (the full paths, HeapLock, a walk, HeapDestroy) goes through
the heap's gate and then takes its RLock: ``with heap.gate, heap.lock:``. The
gate marks the heap, so hot paths that start from then on step aside, and
waits for the hot paths under way, a few bytecodes each; leaving it removes
the mark. So a hot path never runs beside a full path, HeapLock, a walk or
HeapDestroy on the same heap, and a thread holding HeapLock (which keeps its
mark) stops the others' hot paths as well as their full ones.

Why this order, and why the lock is the RLock itself: a thread waiting at
the gate holds nothing, so a signal handler or finaliser that runs inside a
hot path and calls into the same heap always gets through (its frame's
``held`` says its own hot path has the token, so it does not wait for it);
and the RLock is released by its own C code whatever interrupts the call. An
interrupt that lands in the gate's exit leaves a mark behind, which only
costs speed: the hot paths step aside for good.

A hot path takes the token with ``del token[-1]`` directly followed by
``try:`` and ``held = True``, and gives it back with ``held = False`` directly
followed by ``token.append(True)``. From Python 3.10 on, signal handlers run
(and what they raise, such as KeyboardInterrupt, is raised) only after a call
or at a loop's jump, never between those statements: so an interrupt cannot
take the token away with it, and ``held`` is exact whenever a handler can
look. Python 3.9 runs handlers between almost any two instructions, so there
no lock written in Python, this one included, is safe from interrupts.

Each hot function writes this take-and-give-back out in full rather than
calling a helper: a call would cost about what the lock call it replaces did,
and ``held`` must be a local of the very frame that holds the token.
"""

from __future__ import annotations

import sys
import time
from types import CodeType
from typing import Any, Callable, Iterable, List, Set

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


class HeapGate:
    """A heap's token and mark: see the module docstring.

    ``with gate:`` marks the heap and waits for the hot paths under way; it is
    entered before the heap's RLock is taken and left after it is released.
    """

    __slots__ = ("token", "active")

    def __init__(self) -> None:
        self.token: List[bool] = [True]
        #: One item per caller in (or waiting for) the heap's full paths or HeapLock.
        self.active: List[bool] = []

    def __enter__(self) -> "HeapGate":
        active = self.active
        active.append(True)
        try:
            token = self.token
            tries = 0
            while True:
                # Taken and put straight back, not just looked at: the list's own
                # lock then orders this against the hot paths' take on
                # free-threaded builds, so either they see the mark or we see
                # them holding the token.
                try:
                    del token[-1]
                except IndexError:
                    tries += 1
                    if tries > _QUIET_TRIES and held_here(token):
                        break  # Nested in this thread's own hot path, paused between two statements.
                    time.sleep(0)
                else:
                    token.append(True)
                    break
        except BaseException:  # e.g. KeyboardInterrupt while waiting: leave no mark
            active.pop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.active.pop()
