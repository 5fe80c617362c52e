"""``compatheap run --check-win64``: where a program would break on 64-bit Windows.

The checks run while the program runs here: each finding names the call
site (file:line) in the program's own code, found with
``traceback.extract_stack``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import traceback
from typing import Any, List, Optional, Sequence, Set, TextIO, Tuple

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_findings: List[Tuple[str, str]] = []
_seen: Set[Tuple[str, str]] = set()
_enabled = False
#: What Windows' ctypes takes as an int argument without argtypes.
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 32) - 1
_NAMES = {ctypes.c_void_p: "c_void_p", ctypes.c_size_t: "c_size_t"}
_WIDE_RESULTS = (ctypes.c_void_p, ctypes.c_size_t)


def active() -> bool:
    return _enabled


def enable() -> None:
    global _enabled
    _enabled = True


def _site() -> str:
    # The innermost frame outside compatheap (and outside ctypes) is the program's call.
    for frame in reversed(traceback.extract_stack()):
        filename = os.path.abspath(frame.filename)
        if not filename.startswith(_PACKAGE + os.sep) and os.sep + "ctypes" + os.sep not in filename:
            return f"{frame.filename}:{frame.lineno}"
    return "<unknown>:0"


def report(message: str, site: Optional[str] = None) -> None:
    where = site or _site()
    if (where, message) not in _seen:
        _seen.add((where, message))
        _findings.append((where, message))


def _narrow(ctype: Any) -> bool:
    # An integer type narrower than a pointer. (A program's own c_long is 4
    # bytes under compatheap run, as on Windows; an 8-byte c_ulong left is
    # c_size_t or c_uint64.)
    return (
        isinstance(ctype, type)
        and issubclass(ctype, ctypes._SimpleCData)
        and getattr(ctype, "_type_", "") in "bBhHiIlLqQ?"
        and ctypes.sizeof(ctype) < ctypes.sizeof(ctypes.c_void_p)
    )


def call(name: str, argtypes: Any, restype: Any, true_restype: Any, true_argtypes: Sequence[Any], args: Any) -> None:
    """Check one call of a legacy heap function before it is made."""
    if true_restype in _WIDE_RESULTS and (_narrow(restype) or not isinstance(restype, type) and callable(restype)):
        shown = getattr(restype, "__name__", repr(restype))
        wanted = _NAMES[true_restype]
        report(
            f"{name} returns a {wanted} through restype {shown}: 64-bit Windows cuts it to "
            f"32 bits; set {name}.restype = ctypes.{wanted}"
        )
    start = len(argtypes) if argtypes is not None else 0
    for position, value in enumerate(args, 1):
        if position > start:
            if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
                report(
                    f"{name} argument {position} is an int that does not fit a C int and {name} has no "
                    f"argtypes: 64-bit Windows raises ArgumentError; set {name}.argtypes"
                )


def field_check(structure: Any, name: str, value: Any) -> None:
    """A 4-byte (Windows C long) structure field given a value only a pointer holds."""
    if type(value) is int and not -(1 << 31) <= value < (1 << 32):
        report(
            f"{type(structure).__name__}.{name} is a C long field (4 bytes on Windows) given a pointer-sized "
            f"value: 64-bit Windows cuts it to 32 bits; declare it ctypes.c_void_p or ctypes.c_size_t"
        )


def print_report(out: TextIO = sys.stderr) -> int:
    """Print what was found; the number of findings."""
    if not _findings:
        print("compatheap: Win64 check: no problems found", file=out)
    for where, message in _findings:
        print(f"{where}: win64: {message}", file=out)
    return len(_findings)
