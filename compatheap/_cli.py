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
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
