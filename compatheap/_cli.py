"""The ``compatheap`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional


def _conformance(args: argparse.Namespace) -> int:
    from .conformance import _runner

    return _runner.run(
        backends=args.backend or None,
        report=args.report,
        extra_args=args.pytest_args,
    )


def _info(args: argparse.Namespace) -> int:
    from . import _info

    return _info.main(as_json=args.json)


def _run(args: argparse.Namespace) -> int:
    from ._launch import run_program

    if args.module is None and not args.argv:
        print("compatheap run: error: give a script (or -m MODULE) to run", file=sys.stderr)
        return 2
    return run_program(args.module, args.argv, llp64=not args.lp64, check_win64=args.check_win64)


def _bench(args: argparse.Namespace) -> int:
    from . import _bench

    return _bench.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compatheap", description="The Win32 heap API on every OS.")
    sub = parser.add_subparsers(dest="command", required=True)
    conf = sub.add_parser(
        "conformance",
        help="run the conformance suite against the backends usable here",
        description="Run compatheap's conformance suite and print a table of results per function family and backend.",
    )
    conf.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        help="test only this backend (repeatable; default: every backend usable here)",
    )
    conf.add_argument("--report", type=Path, help="write the JSON report here (default: the user data dir)")
    conf.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    conf.set_defaults(func=_conformance)
    info = sub.add_parser(
        "info",
        help="show the platform, the active backend and why, the config file and capabilities",
        description="Show what compatheap does on this machine: backend and why, config, debug checks, fallbacks.",
    )
    info.add_argument("--json", action="store_true", help="print JSON for machines")
    info.set_defaults(func=_info)
    run = sub.add_parser(
        "run",
        help="run a Windows ctypes script unchanged, with windll.kernel32 giving compatheap's heap API",
        description="Run SCRIPT (or -m MODULE) with ctypes.windll, WinDLL, get_last_error and WinError "
        "provided by compatheap's heap API and ctypes.wintypes sized as on Windows. On Windows the "
        "script runs with the real ctypes.",
    )
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m does")
    run.add_argument(
        "--check-win64",
        action="store_true",
        help="also report each call site where the program would break on 64-bit Windows",
    )
    run.add_argument(
        "--lp64", action="store_true", help="keep this platform's 8-byte c_long/c_ulong in the script's own modules"
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS]", help="the script and its arguments")
    run.set_defaults(func=_run)
    bench = sub.add_parser(
        "bench",
        help="measure the performance figures and print them against their targets",
        description="Time compatheap against raw ctypes calls, side by side in one run, and print each figure's ratio.",
    )
    from ._bench import add_arguments

    add_arguments(bench)
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from ._errors import BackendUnavailable, ConfigError
    from ._launch import fail

    try:
        # Importing compatheap reads the config: a bad file is reported here in
        # one line (when the command itself imported it, _launch already did).
        import compatheap  # noqa: F401
    except (ConfigError, BackendUnavailable) as exc:
        fail(exc)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, BackendUnavailable) as exc:
        fail(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
