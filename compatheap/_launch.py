"""Startup errors of the ``compatheap`` command: one line and exit status 2.

``python -m compatheap`` and the ``compatheap`` script both import the package,
which reads the config file, before the command's own code runs. A bad config
file must still give the command's one-line error, not a traceback, while a
program that imports compatheap keeps getting the exception.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, NoReturn, Optional, Sequence

EXIT_STARTUP = 2


def _runs_as_module(orig_argv: Sequence[str]) -> bool:
    # ``python [options] -m compatheap ...`` (also ``-mcompatheap``); the
    # interpreter's own options come first, -W and -X with a separate value.
    args = iter(orig_argv[1:])
    for arg in args:
        if arg == "-m":
            return next(args, None) == "compatheap"
        if arg.startswith("-m"):
            return arg[2:] == "compatheap"
        if arg in ("-W", "-X"):
            next(args, None)
        elif arg == "-c" or not arg.startswith("-"):
            return False
    return False


def launched_as_command() -> bool:
    """Whether this process is the ``compatheap`` command starting up."""
    orig_argv = getattr(sys, "orig_argv", None)  # 3.10+
    if orig_argv is not None and _runs_as_module(orig_argv):
        return True
    if orig_argv is None and sys.argv[:1] == ["-m"]:  # 3.9, while runpy imports the package
        return True
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    return script.lower() in ("compatheap", "compatheap.exe", "compatheap-script.py")


def fail(error: Exception) -> NoReturn:
    message = " ".join(str(error).split())
    print(f"compatheap: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_STARTUP)


def _own_traceback(tb: Any) -> Any:
    # The program's traceback starts at its own first frame: compatheap's and
    # runpy's frames above it are how it was started, not where it failed.
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    while tb is not None and tb.tb_next is not None:
        filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if not (filename.startswith(package) or "runpy" in os.path.basename(filename)):
            break
        tb = tb.tb_next
    return tb


def run_program(module: Optional[str], argv: List[str], llp64: bool = True, check_win64: bool = False) -> int:
    """``compatheap run``: the exit status ``python script.py`` would give."""
    from . import legacy

    if module is None and not os.path.isfile(argv[0]):
        path = os.path.abspath(argv[0])
        print(f"compatheap run: can't open file {path!r}: [Errno 2] No such file or directory", file=sys.stderr)
        return 2
    try:
        if module is not None:
            findings = legacy.run(module, argv, module=True, llp64=llp64, check_win64=check_win64)
        else:
            findings = legacy.run(argv[0], argv[1:], llp64=llp64, check_win64=check_win64)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: B036 - printed as Python prints an uncaught exception
        trimmed = _own_traceback(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(trimmed), trimmed)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    return 1 if findings else 0
