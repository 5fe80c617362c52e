"""The ``compatheap`` command."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import List, Mapping, NoReturn, Optional

#: What the shipped conformance suite runs on: import name -> distribution.
CONFORMANCE_NEEDS = {"pytest": "pytest", "hypothesis": "hypothesis"}


class UsageError(Exception):
    """A command line that cannot work; reported in one line before anything runs."""


def _missing_modules(needs: Mapping[str, str]) -> List[str]:
    return [dist for module, dist in needs.items() if importlib.util.find_spec(module) is None]


def check_writable(path: Path, what: str) -> None:
    """Fail now, not after a long run, when ``path`` cannot be written."""
    if path.is_dir():
        raise UsageError(f"{what} {path} is a directory")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    if not existed:
        path.unlink()


def _conformance(args: argparse.Namespace) -> int:
    missing = _missing_modules(CONFORMANCE_NEEDS)
    if missing:
        raise UsageError(
            f"the conformance suite needs {' and '.join(missing)}, which this Python lacks; "
            f"install them with: {sys.executable} -m pip install 'compatheap[conformance]'"
        )
    if args.report is not None:
        check_writable(args.report, "report")
    from .conformance import _runner

    return _runner.run(
        backends=[name.lower() for name in args.backend] if args.backend else None,
        report=args.report,
        extra_args=args.pytest_args,
        keep=args.keep,
    )


def _info(args: argparse.Namespace) -> int:
    from . import _info

    return _info.main(as_json=args.json)


def _run(args: argparse.Namespace) -> int:
    from ._launch import run_program

    if args.module is None and not args.argv:
        raise UsageError("run: give a script (or -m MODULE) to run")
    return run_program(args.module, args.argv, llp64=not args.lp64, check_win64=args.check_win64)


def _bench(args: argparse.Namespace) -> int:
    from . import _bench

    if args.only is not None:
        # Case-insensitive: "3A" and "l2" name the figures printed as 3a and L2.
        canonical = {label.lower(): label for label in _bench.FIGURE_LABELS}
        given = [part.strip() for part in args.only.split(",") if part.strip()]
        unknown = [label for label in given if label.lower() not in canonical]
        if not given or unknown:
            raise UsageError(
                f"bench --only: unknown figure(s) {', '.join(unknown) or repr(args.only)}; "
                f"choose from {', '.join(_bench.FIGURE_LABELS)}"
            )
        args.only = ",".join(canonical[label.lower()] for label in given)
    if args.plot is not None:
        if _missing_modules({"matplotlib": "matplotlib"}):
            raise UsageError("bench --plot needs matplotlib: python -m pip install 'compatheap[plot]'")
        check_writable(args.plot, "plot")
    if args.json not in (None, "-"):
        check_writable(Path(args.json), "JSON file")
    return _bench.run(args)


def _report(args: argparse.Namespace) -> int:
    from . import _report

    return _report.main(args)


def _version() -> str:
    from . import __version__

    return f"compatheap {__version__}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compatheap", description="The Win32 heap API on every OS.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    conf = sub.add_parser(
        "conformance",
        help="run the conformance suite against the backends usable here",
        description="Run compatheap's conformance suite and print a table of results per function family and "
        "backend. It runs the same in any directory: its own pytest configuration, no local conftest.py, "
        "Hypothesis' database under the user cache directory. Needs compatheap[conformance].",
    )
    conf.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        help="test only this backend (repeatable; default: every backend usable here)",
    )
    conf.add_argument("--report", type=Path, help="write the JSON report here (default: the user data dir)")
    conf.add_argument(
        "--keep",
        type=int,
        default=None,
        metavar="N",
        help="reports kept in the user data dir; older ones are deleted (default: $COMPATHEAP_REPORTS_KEEP or 20)",
    )
    conf.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after -- (e.g. -- -x -v --tb=short)")
    conf.set_defaults(func=_conformance)
    info = sub.add_parser(
        "info",
        help="show the platform, the active backend and why, the config file and capabilities",
        description="Show what compatheap does on this machine: backend and why, config, debug checks, fallbacks. "
        "Runs even when the settings are bad, and shows what is wrong with them (exit status 2).",
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
    from ._report import add_arguments as add_report_arguments

    report = sub.add_parser(
        "report",
        help="compare conformance reports: a matrix of runs (merge) or what changed between two (diff)",
        description="Compare JSON reports of `compatheap conformance` from different machines, Pythons and backends.",
    )
    add_report_arguments(report)
    report.set_defaults(func=_report)
    return parser


def _fail(message: str) -> NoReturn:
    from ._launch import fail

    fail(UsageError(message))


def main(argv: Optional[List[str]] = None) -> int:
    from ._errors import BackendUnavailable, ConfigError

    try:
        # Importing compatheap reads the settings. In the command it records a
        # problem instead of raising (compatheap.startup_error); a program that
        # calls main() gets the exception here.
        import compatheap
    except (ConfigError, BackendUnavailable) as exc:
        _fail(str(exc))
    parser = build_parser()
    args = parser.parse_args(argv)
    # info shows a settings problem itself; the others cannot run with one.
    if compatheap.startup_error is not None and args.command != "info":
        _fail(str(compatheap.startup_error))
    try:
        return int(args.func(args))
    except (ConfigError, BackendUnavailable, UsageError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
