"""A backend that runs the real one, stopping at chosen calls so races can be played in order.

``PausingBackend(real)`` forwards every heap function to ``real`` unchanged.
``at(name, when, action)`` makes the next call of ``name`` run ``action``
before or after the real call, in the calling thread: either code that the
call's thread runs right there (standing in for a signal handler or a
finaliser), or a :class:`Stop` that holds the thread until the test lets it go.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Tuple

from compatheap.backends import FUNCTIONS

#: Long enough for any step of a test; a test that waits this long has failed.
PATIENCE = 30.0


class Stop:
    """Holds the thread that reaches it until :meth:`go`; :meth:`wait_reached` waits for that."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._go = threading.Event()

    def __call__(self) -> None:
        self.reached.set()
        if not self._go.wait(PATIENCE):
            raise AssertionError("the test never let the stopped call go on")

    def wait_reached(self) -> None:
        assert self.reached.wait(PATIENCE), "no call reached the stop"

    def go(self) -> None:
        self._go.set()


class PausingBackend:
    """The real backend, with one-shot actions before or after chosen calls."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.name = f"{real.name} (pausing)"
        #: Every heap function called, in order, with the thread that called it.
        self.calls: List[Tuple[str, int]] = []
        self._actions: Dict[Tuple[str, str], Callable[[], object]] = {}
        self._lock = threading.Lock()

    def at(self, name: str, when: str, action: Callable[[], object]) -> None:
        """Run ``action`` once, ``"before"`` or ``"after"`` the next call of ``name``."""
        assert name in FUNCTIONS and when in ("before", "after")
        with self._lock:
            self._actions[(name, when)] = action

    def stop(self, name: str, when: str = "before") -> Stop:
        """A :class:`Stop` at the next call of ``name``."""
        stop = Stop()
        self.at(name, when, stop)
        return stop

    def called(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)

    def _take(self, name: str, when: str) -> Any:
        with self._lock:
            return self._actions.pop((name, when), None)

    def __getattr__(self, name: str) -> Any:
        function = getattr(self.real, name)
        if name not in FUNCTIONS or name in ("GetLastError", "SetLastError"):
            return function

        def call(*args: Any) -> Any:
            self.calls.append((name, threading.get_ident()))
            before = self._take(name, "before")
            if before is not None:
                before()
            result = function(*args)
            after = self._take(name, "after")
            if after is not None:
                # The action may call the heap itself: keep this call's last error.
                code = self.real.GetLastError()
                after()
                self.real.SetLastError(code)
            return result

        return call
