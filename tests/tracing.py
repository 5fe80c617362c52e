"""Running code at a chosen line of a call: where a signal handler or a
finaliser could run, picked deterministically through a trace function."""

from __future__ import annotations

import sys
from types import CodeType, FrameType
from typing import Any, Callable, Set, Tuple


def at_line(line: int, code: Set[CodeType], call: Callable[[], Any], action: Callable[[], None]) -> Tuple[bool, Any]:
    """Run ``call`` with ``action`` run at its ``line``-th executed line inside
    ``code`` (counted over all of them); whether that line was reached, and
    what ``call`` returned. An exception ``action`` raises comes out of ``call``
    there, as a signal handler's would."""
    seen = 0
    fired = False

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal seen, fired
        if event == "line":
            seen += 1
            if seen == line:
                fired = True
                action()  # (Untraced: a trace function's own calls are not traced.)
        return local

    def enter(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code in code else None

    previous = sys.gettrace()
    sys.settrace(enter)
    try:
        result = call()
    finally:
        sys.settrace(previous)
    return fired, result
