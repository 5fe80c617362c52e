"""Run the conformance suite and summarise it per function family and backend.

The run does not depend on the current directory: pytest gets the suite's own
configuration file and root directory (a project's ``pytest.ini``,
``conftest.py`` and ``addopts`` stay out), and the pytest cache and
Hypothesis' example database live under the user cache directory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

import pytest

from .. import _report
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
    "differential": "differential (transcripts)",
}
OUTCOMES = _report.OUTCOMES
SUITE = Path(__file__).resolve().parent
#: The suite's own pytest configuration: markers, no addopts, no filterwarnings.
CONFIG_FILE = SUITE / "conformance.ini"
#: pytest's default ``-r`` characters: anything else asks for pytest's own summary.
_DEFAULT_REPORTCHARS = ("fE", "")
_ENV_NO_AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
#: A failure message longer than this is cut in the report (its tail is kept).
_MESSAGE_LIMIT = 4000


class _Collector:
    """A pytest plugin that records every test's outcome."""

    def __init__(self, progress: Optional[TextIO]) -> None:
        self.progress = progress
        self.total = 0
        self.done = 0
        self.results: List[Dict[str, Any]] = []
        self.failures: List[str] = []
        self.meta: Dict[str, Tuple[str, str]] = {}
        self.step = 1
        #: Whether pytest's own terminal output is on (the user asked for it, e.g. -v or -rA).
        self.pytest_output = False

    @pytest.hookimpl(trylast=True)  # after the terminal plugin's
    def pytest_configure(self, config: Any) -> None:
        verbose = int(config.option.verbose)
        self.pytest_output = verbose > 0 or config.option.reportchars not in _DEFAULT_REPORTCHARS
        if not self.pytest_output:
            # The table replaces pytest's report; -q, --tb, -x and the like still apply.
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                config.pluginmanager.unregister(reporter)
        if verbose < 0 or self.pytest_output:
            self.progress = None

    def pytest_collection_finish(self, session: Any) -> None:
        # After deselection (-k, -m, --lf): these are the tests that will run.
        items = session.items
        self.total = len(items)
        self.step = max(1, self.total // 10)
        for item in items:
            stem = item.module.__name__.rpartition(".")[2] if getattr(item, "module", None) else item.name
            module = stem.removeprefix("test_")
            callspec = getattr(item, "callspec", None)
            backend = callspec.params.get("k32", _report.COMMON) if callspec is not None else _report.COMMON
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
            message = None
            if outcome == "failed":
                text = report.longreprtext
                self.failures.append(f"{report.nodeid}\n{text}")
                message = text if len(text) <= _MESSAGE_LIMIT else "...\n" + text[-_MESSAGE_LIMIT:]
            if report.when == "teardown":
                # The call was already counted; a failing teardown turns it red.
                self.results[-1]["outcome"] = "failed"
                self.results[-1]["message"] = message
                return
            family, backend = self.meta.get(report.nodeid, ("-", "-"))
            skip_reason = None
            if outcome == "skipped" and isinstance(report.longrepr, tuple):
                skip_reason = str(report.longrepr[2]).replace("Skipped: ", "", 1)
            if outcome == "deviation":
                message = str(report.wasxfail)
            self.results.append(
                {
                    "test": report.nodeid,
                    "case": _report.case_of(report.nodeid, backend),
                    "family": family,
                    "backend": backend,
                    "outcome": outcome,
                    "duration": round(float(report.duration), 6),
                    "message": message,
                    "skip_reason": skip_reason,
                }
            )
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


def summarise(results: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Dict[str, int]]]:
    return _report.summarise(results)


def format_table(results: Sequence[Dict[str, Any]], debug: str = "") -> str:
    """Function family x backend: passed / failed / expected deviation, with totals."""
    table = summarise(results)
    backends = sorted({r["backend"] for r in results})
    totals = {b: dict.fromkeys(OUTCOMES, 0) for b in backends}
    width = max([len("function family"), len("total")] + [len(f) for f in table])
    cell = max([22] + [len(b) for b in backends])
    lines = [f"{'function family':<{width}}  " + "  ".join(f"{b:>{cell}}" for b in backends)]
    lines.append("-" * len(lines[0]))
    for family in sorted(table):
        row = []
        for b in backends:
            counts = table[family].get(b, dict.fromkeys(OUTCOMES, 0))
            for o in OUTCOMES:
                totals[b][o] += counts[o]
            row.append(f"{_report.cell_text(counts):>{cell}}")
        lines.append(f"{family:<{width}}  " + "  ".join(row))
    lines.append("-" * len(lines[0]))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{_report.cell_text(totals[b]):>{cell}}" for b in backends))
    lines.append(_report.LEGEND)
    if _report.COMMON in backends:
        lines.append(_report.COMMON_NOTE)
    if debug:
        lines.append(f"debug checks: {debug}")
    reasons = Counter(
        (r["backend"], r["skip_reason"] or "no reason given") for r in results if r["outcome"] == "skipped"
    )
    if reasons:
        lines.append("skipped, and why:")
        lines += [f"  {count:>4} on {backend}: {reason}" for (backend, reason), count in sorted(reasons.items())]
    return "\n".join(lines)


def reports_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_path("compatheap")) / "reports"


def default_report_path() -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    return reports_dir() / f"conformance-{stamp}.json"


def cache_dir() -> Path:
    """Where the suite's pytest cache (for --lf) and Hypothesis database live."""
    import platformdirs

    return Path(platformdirs.user_cache_path("compatheap")) / "conformance"


def _debug_checks(backend_names: Sequence[str]) -> Dict[str, Any]:
    import compatheap

    settings = compatheap.settings
    per_backend = {}
    for name in backend_names:
        if name == _report.COMMON:
            continue
        checks = getattr(_support.make_backend(name), "debug_checks", None)
        per_backend[name] = sorted(checks) if checks is not None else None
    return {"enabled": sorted(settings.debug), "source": settings.debug_source, "per_backend": per_backend}


def _describe_debug(debug: Dict[str, Any]) -> str:
    if not debug["enabled"]:
        return ""
    text = f"{', '.join(debug['enabled'])} (from {debug['source']})"
    without = [name for name, checks in debug["per_backend"].items() if checks is not None and not checks]
    if without:
        text += f"; not applied on {', '.join(without)}"
    return text


def _check_backends(backends: Optional[Sequence[str]]) -> Optional[str]:
    """Why the requested backends cannot be tested, or None when they can."""
    try:
        requested = list(backends) if backends else _support.requested()
    except ValueError as exc:
        return str(exc)
    usable = _support.backend_params(restrict=False)
    for name in requested or ():
        if name not in usable:
            return f"backend {name!r} cannot be tested here: {_support.unavailable_reason(name)}"
    return None


def pytest_arguments(extra_args: Sequence[str]) -> List[str]:
    """The pytest command line of a run: the suite's own config, rootdir and cache."""
    args = ["-c", str(CONFIG_FILE), "--rootdir", str(SUITE), "--confcutdir", str(SUITE)]
    args += ["-o", f"cache_dir={cache_dir() / 'pytest-cache'}", "-p", "_hypothesis_pytestplugin"]
    if _support.is_wine():
        # Heap exceptions are caught, but faulthandler would print each one.
        args += ["-p", "no:faulthandler"]
    return [*args, *extra_args, str(SUITE)]


def run(
    backends: Optional[Sequence[str]] = None,
    report: Optional[Path] = None,
    extra_args: Sequence[str] = (),
    out: Optional[TextIO] = None,
    progress: Any = "stderr",
    keep: Optional[int] = None,
) -> int:
    """Run the suite; print the table; write the JSON report. Returns the exit status.

    ``progress`` is where the progress line goes (``None`` for nowhere).
    Problems with the request go to stderr with exit status 2.
    """
    from hypothesis import configuration as hypothesis_configuration

    # Looked up now, not at import: callers (and pytest's capture) swap them.
    out = out if out is not None else sys.stdout
    progress = sys.stderr if progress == "stderr" else progress
    problem = _check_backends(backends)
    kept = _report.DEFAULT_KEEP
    try:
        kept = _report.keep_count(keep)
    except ValueError as exc:
        problem = problem or str(exc)
    if problem is not None:
        sys.stderr.write(f"compatheap: error: {problem}\n")
        return 2

    collector = _Collector(progress)
    # Third-party plugins installed here stay out (name one with -- -p NAME):
    # what the suite checks must not depend on them.
    environ = {_ENV_NO_AUTOLOAD: "1"}
    if backends:
        environ[_support.ENV_BACKENDS] = ",".join(backends)
    saved = {name: os.environ.get(name) for name in environ}
    # Not .hypothesis/ in the current directory: the user cache directory.
    hypothesis_configuration.set_hypothesis_home_dir(cache_dir() / "hypothesis")
    try:
        os.environ.update(environ)
        code = pytest.main(pytest_arguments(extra_args), plugins=[collector])
    finally:
        hypothesis_configuration.set_hypothesis_home_dir(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if progress is not None and collector.progress is not None and progress.isatty():
        progress.write("\n")
    if int(code) in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        sys.stderr.write(f"compatheap: error: pytest could not run the suite (exit status {int(code)})\n")
        return 2
    if not collector.pytest_output:
        for failure in collector.failures:
            out.write(f"FAILED {failure}\n\n")
    tested = sorted({r["backend"] for r in collector.results})
    debug = _debug_checks(tested)
    out.write(format_table(collector.results, _describe_debug(debug)) + "\n")
    variants = {name: _report.backend_variant(_support.make_backend(name)) for name in tested if name != _report.COMMON}
    data = _report.build(collector.results, variants, debug, list(extra_args), int(code))
    path = report if report is not None else default_report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    out.write(f"report: {path}\n")
    if report is None:
        _report.prune(path.parent, kept)
    if not collector.results:
        out.write("no test ran\n")
        return 1
    return 0 if int(code) == 0 and not collector.failures else 1
