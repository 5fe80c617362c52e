"""Run the conformance suite and summarise it per function family and backend."""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from . import _support

#: Test module -> the function family it covers, as shown in the table.
FAMILIES = {
    "alloc": "HeapAlloc",
    "realloc": "HeapReAlloc",
    "free": "HeapFree",
    "size": "HeapSize",
    "create": "HeapCreate/Destroy",
    "walk": "HeapWalk",
    "validate": "HeapValidate",
    "summary": "HeapSummary",
    "compact": "HeapCompact",
    "information": "Heap*Information",
    "lock": "HeapLock/Unlock",
    "lasterror": "Get/SetLastError",
    "exceptions": "HEAP_GENERATE_EXCEPTIONS",
    "arguments": "argument conventions",
    "threads": "threads",
    "stateful": "random sequences",
    "smoke": "basic cycle",
    "pythonic": "Pythonic API",
}
OUTCOMES = ("passed", "failed", "deviation", "skipped")


class _Collector:
    """A pytest plugin that records every test's outcome."""

    def __init__(self, progress: Optional[TextIO]) -> None:
        self.progress = progress
        self.total = 0
        self.done = 0
        self.results: List[Dict[str, str]] = []
        self.failures: List[str] = []
        self.meta: Dict[str, Tuple[str, str]] = {}
        self.step = 1

    def pytest_collection_finish(self, session: Any) -> None:
        # After deselection (-k, -m): these are the tests that will run.
        items = session.items
        self.total = len(items)
        self.step = max(1, self.total // 10)
        for item in items:
            stem = item.module.__name__.rpartition(".")[2] if getattr(item, "module", None) else item.name
            module = stem[len("test_") :] if stem.startswith("test_") else stem
            callspec = getattr(item, "callspec", None)
            backend = callspec.params.get("k32", "common") if callspec is not None else "common"
            self.meta[item.nodeid] = (FAMILIES.get(module, module), str(backend))

    def pytest_runtest_logreport(self, report: Any) -> None:
        if (
            report.when == "call"
            or (report.when == "setup" and report.outcome != "passed")
            or (report.when == "teardown" and report.outcome == "failed")
        ):
            outcome = report.outcome
            if hasattr(report, "wasxfail"):
                outcome = "deviation" if report.skipped else "failed"
            if outcome == "failed":
                self.failures.append(f"{report.nodeid}\n{report.longreprtext}")
            if report.when == "teardown":
                # The call was already counted; a failing teardown turns it red.
                self.results[-1]["outcome"] = "failed"
                return
            family, backend = self.meta.get(report.nodeid, ("-", "-"))
            self.results.append({"test": report.nodeid, "family": family, "backend": backend, "outcome": outcome})
            self.done += 1
            self._show_progress()

    def _show_progress(self) -> None:
        progress = self.progress
        if progress is None:
            return
        tty = progress.isatty()
        if not tty and self.done % self.step and self.done != self.total:
            return
        counts: Dict[str, int] = defaultdict(int)
        for r in self.results:
            counts[r["outcome"]] += 1
        line = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])
        # On a terminal one line is rewritten; in a log, a line every tenth.
        progress.write(f"\r[{self.done}/{self.total}] {line}\x1b[K" if tty else f"[{self.done}/{self.total}] {line}\n")
        progress.flush()


def summarise(results: Sequence[Dict[str, str]]) -> Dict[str, Dict[str, Dict[str, int]]]:
    table: Dict[str, Dict[str, Dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: dict.fromkeys(OUTCOMES, 0)))
    for r in results:
        table[r["family"]][r["backend"]][r["outcome"]] += 1
    return {family: dict(cells) for family, cells in table.items()}


def format_table(results: Sequence[Dict[str, str]]) -> str:
    """Function family x backend: passed / failed / expected deviation, with totals."""
    table = summarise(results)
    backends = sorted({r["backend"] for r in results})
    totals = {b: dict.fromkeys(OUTCOMES, 0) for b in backends}
    width = max([len("function family"), len("total")] + [len(f) for f in table])
    cell = max([22] + [len(b) for b in backends])
    lines = [f"{'function family':<{width}}  " + "  ".join(f"{b:>{cell}}" for b in backends)]
    lines.append("-" * len(lines[0]))

    def fmt(counts: Dict[str, int]) -> str:
        text = f"{counts['passed']} ok"
        if counts["failed"]:
            text += f" / {counts['failed']} FAIL"
        if counts["deviation"]:
            text += f" / {counts['deviation']} dev"
        if counts["skipped"]:
            text += f" / {counts['skipped']} skip"
        return text

    for family in sorted(table):
        row = []
        for b in backends:
            counts = table[family].get(b, dict.fromkeys(OUTCOMES, 0))
            for o in OUTCOMES:
                totals[b][o] += counts[o]
            row.append(f"{fmt(counts):>{cell}}")
        lines.append(f"{family:<{width}}  " + "  ".join(row))
    lines.append("-" * len(lines[0]))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{fmt(totals[b]):>{cell}}" for b in backends))
    lines.append("ok = passed, FAIL = failed, dev = expected (known) deviation, skip = not applicable")
    return "\n".join(lines)


def default_report_path() -> Path:
    import platformdirs

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(platformdirs.user_data_path("compatheap")) / "reports" / f"conformance-{stamp}.json"


def run(
    backends: Optional[Sequence[str]] = None,
    report: Optional[Path] = None,
    extra_args: Sequence[str] = (),
    out: Optional[TextIO] = None,
    progress: Any = "stderr",
) -> int:
    """Run the suite; print the table; write the JSON report. Returns the exit status.

    ``progress`` is where the progress line goes (``None`` for nowhere).
    """
    import pytest

    # Looked up now, not at import: callers (and pytest's capture) swap them.
    out = out if out is not None else sys.stdout
    progress = sys.stderr if progress == "stderr" else progress

    if backends:
        usable = _support.backend_params(restrict=False)
        for name in backends:
            if name not in usable:
                why = _support.unavailable_reason(name)
                out.write(f"compatheap: backend {name!r} cannot be tested here: {why}\n")
                return 2
    collector = _Collector(progress)
    # The terminal plugin is off (the table replaces it), so the options it
    # owns must not come in through a project's addopts.
    args = ["-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:terminal"]
    if _support.is_wine():
        # Heap exceptions are caught, but faulthandler would print each one.
        args += ["-p", "no:faulthandler"]
    args += ["--pyargs", "compatheap.conformance", *extra_args]
    saved = os.environ.get(_support.ENV_BACKENDS)
    try:
        if backends:
            os.environ[_support.ENV_BACKENDS] = ",".join(backends)
        code = pytest.main(args, plugins=[collector])
    finally:
        if saved is None:
            os.environ.pop(_support.ENV_BACKENDS, None)
        else:
            os.environ[_support.ENV_BACKENDS] = saved
    if progress is not None and progress.isatty():
        progress.write("\n")
    for failure in collector.failures:
        out.write(f"FAILED {failure}\n\n")
    out.write(format_table(collector.results) + "\n")
    path = report if report is not None else default_report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "platform": sys.platform,
        "python": sys.version.split()[0],
        "wine": _support.is_wine(),
        "backends": sorted({r["backend"] for r in collector.results}),
        "summary": summarise(collector.results),
        "results": collector.results,
        "exit_status": int(code),
    }
    path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    out.write(f"report: {path}\n")
    if not collector.results:
        out.write("no test ran\n")
        return 1
    return 0 if int(code) == 0 and not collector.failures else 1
