"""Running code at a chosen step of a call: where a signal handler or a
finaliser could run, picked deterministically through a trace function."""

from __future__ import annotations

import sys
from types import CodeType, FrameType
from typing import Any, Callable, Collection, Tuple, Union

#: Where to count steps: a collection of code objects, or a test on one.
Where = Union[Collection[CodeType], Callable[[CodeType], bool]]


def at_step(
    step: int, where: Where, call: Callable[[], Any], action: Callable[[], object], *, opcodes: bool = False
) -> Tuple[bool, Any]:
    """Run ``call`` with ``action`` run at its ``step``-th executed line (with
    ``opcodes``: bytecode) inside the code ``where`` names, counted over all of
    it; whether that step was reached, and what ``call`` returned. An exception
    ``action`` raises comes out of ``call`` there, as a signal handler's would."""
    wanted = where if callable(where) else where.__contains__
    kind = "opcode" if opcodes else "line"
    seen = 0
    fired = False

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal seen, fired
        if event == kind:
            seen += 1
            if seen == step:
                fired = True
                action()  # (Untraced: a trace function's own calls are not traced.)
        return local

    def enter(frame: FrameType, event: str, arg: Any) -> Any:
        if not wanted(frame.f_code):
            return None
        frame.f_trace_opcodes = opcodes
        return local

    previous = sys.gettrace()
    sys.settrace(enter)
    try:
        result = call()
    finally:
        sys.settrace(previous)
    return fired, result


def opcode_events() -> bool:
    """Whether this interpreter reports bytecodes to a trace function that asks
    for them as a frame starts (CPython 3.13.0 reports only lines)."""

    def probe() -> None:
        return None

    return at_step(1, {probe.__code__}, probe, lambda: None, opcodes=True)[0]
