"""Conformance reports: what one run records, and how runs are compared.

A report (schema :data:`SCHEMA_VERSION`, documented in docs/conformance.md) is
the JSON that ``compatheap conformance`` writes. ``compatheap report merge``
turns several into one matrix (function family x run) as text, Markdown or a
self-contained HTML page; ``compatheap report diff`` lists what changed
between two runs. A *run* is one backend of one report: a report of a machine
with two usable backends holds two runs.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import html
import json
import os
import platform
import re
import sys
import sysconfig
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .backends.kernel32 import wine_version

if TYPE_CHECKING:
    from .backends import HeapBackend

SCHEMA = "compatheap-conformance-report"
SCHEMA_VERSION = 1
OUTCOMES = ("passed", "failed", "deviation", "skipped")
#: The column of tests that take no backend parameter; explained wherever it is shown.
COMMON = "common"
COMMON_NOTE = "common = tests that run once, not per backend (they check the active backend or need none)"
LEGEND = "ok = passed, FAIL = failed, dev = expected (known) deviation, skip = not applicable here (reasons listed)"
#: Reports kept in the default directory unless told otherwise.
DEFAULT_KEEP = 20
ENV_KEEP = "COMPATHEAP_REPORTS_KEEP"


# --- what a run records ----------------------------------------------------


def _c_library() -> Dict[str, str]:
    """The C library and the malloc implementation the process runs on."""
    if sys.platform == "win32":
        return {"c_library": "msvcrt/ucrt", "allocator": "Windows heap"}
    name, version = platform.libc_ver()
    libc = f"{name} {version}".strip() if name else "unknown"
    try:
        process = ctypes.CDLL(None)
    except (OSError, TypeError):
        return {"c_library": libc, "allocator": "unknown"}
    if not name:
        # musl has no version query; its dynamic loader names itself.
        libc = "musl" if any(Path("/lib").glob("ld-musl-*")) else libc
        if libc == "unknown" and sys.platform == "darwin":
            libc = "libSystem"
    # A replacement malloc (LD_PRELOAD or linked in) exports its own entry points.
    for symbol, allocator in (("mallctl", "jemalloc"), ("tc_malloc", "tcmalloc"), ("mi_malloc", "mimalloc")):
        if hasattr(process, symbol):
            return {"c_library": libc, "allocator": allocator}
    return {"c_library": libc, "allocator": f"{libc.split()[0]} malloc" if libc != "unknown" else "system malloc"}


def _os_name() -> Tuple[str, str, str]:
    """OS name, release and machine. platform.uname() crashes under Wine; these sources do not."""
    if sys.platform == "win32":
        machine = os.environ.get("PROCESSOR_ARCHITECTURE", "unknown")
        if wine_version() is not None:
            return "Windows", "Wine", machine
        version = sys.getwindowsversion()
        return "Windows", f"{version.major}.{version.minor}.{version.build}", machine
    uname = os.uname()
    return uname.sysname, uname.release, uname.machine


def environment() -> Dict[str, Any]:
    """The machine and interpreter a run happened on."""
    os_name, release, machine = _os_name()
    return {
        "os": {"name": os_name, "release": release, "machine": machine, "wine": wine_version()},
        "pointer_bits": 8 * ctypes.sizeof(ctypes.c_void_p),
        **_c_library(),
        "python": {
            "implementation": platform.python_implementation(),
            "version": platform.python_version(),
            "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        },
    }


def backend_variant(backend: HeapBackend) -> str:
    """How a backend ran here, in words (what makes two runs of one backend differ)."""
    return "; ".join(f"{subject}: {state}" for subject, state in backend.capabilities.features.items())


def case_of(nodeid: str, backend: str) -> str:
    """The test's id without its backend parameter: the same test across runs."""
    if backend == COMMON or "[" not in nodeid:
        return nodeid
    head, _, params = nodeid.partition("[")
    params = params.removesuffix("]")
    rest = re.sub(rf"(^|-){re.escape(backend)}(?=-|$)", "", params, count=1).strip("-")
    return f"{head}[{rest}]" if rest else head


def summarise(tests: Iterable[Mapping[str, Any]]) -> Dict[str, Dict[str, Dict[str, int]]]:
    """family -> backend -> outcome -> count."""
    table: Dict[str, Dict[str, Dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: dict.fromkeys(OUTCOMES, 0)))
    for test in tests:
        table[test["family"]][test["backend"]][test["outcome"]] += 1
    return {family: dict(cells) for family, cells in table.items()}


def build(
    tests: Sequence[Mapping[str, Any]],
    backends: Mapping[str, str],
    debug_checks: Mapping[str, Any],
    pytest_args: Sequence[str],
    exit_status: int,
) -> Dict[str, Any]:
    """The report of one ``compatheap conformance`` run."""
    from . import __version__

    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "compatheap": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "backends": [{"name": name, "variant": variant} for name, variant in sorted(backends.items())],
        "debug_checks": dict(debug_checks),
        "pytest_args": list(pytest_args),
        "exit_status": exit_status,
        "summary": summarise(tests),
        "tests": [dict(test) for test in tests],
    }


def prune(directory: Path, keep: int) -> List[Path]:
    """Delete all but the newest ``keep`` reports in ``directory``; the deleted paths."""
    reports = sorted(directory.glob("conformance-*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    doomed = reports[: max(0, len(reports) - keep)]
    for path in doomed:
        path.unlink()
    return doomed


def keep_count(value: Optional[int], environ: Mapping[str, str] = os.environ) -> int:
    """How many reports to keep: ``--keep``, else ``$COMPATHEAP_REPORTS_KEEP``, else 20."""
    if value is None:
        text = environ.get(ENV_KEEP, "").strip()
        if not text:
            return DEFAULT_KEEP
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{ENV_KEEP}={text!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"reports to keep must be at least 1, not {value}")
    return value


# --- comparing runs -----------------------------------------------------------


class ReportError(ValueError):
    """A file that is not a conformance report this version can read."""


@dataclass(frozen=True)
class Run:
    """One backend's results in one report."""

    label: str
    source: str
    report: Mapping[str, Any]
    backend: str
    variant: str
    tests: Mapping[str, Mapping[str, Any]]  # case -> test

    def describe(self, labelled: bool = True) -> str:
        env = self.report["environment"]
        python = env["python"]
        threading = ", free-threaded" if python["free_threaded"] else ""
        wine = f", Wine {env['os']['wine']}" if env["os"].get("wine") else ""
        debug = ", ".join(self.report["debug_checks"].get("enabled", [])) or "off"
        return (
            (f"{self.label}: " if labelled else "")
            + f"{self.source} -- compatheap {self.report['compatheap']}, {env['os']['name']} "
            f"{env['os']['release']} {env['os']['machine']}{wine}, {env['pointer_bits']}-bit, "
            f"{env['c_library']} ({env['allocator']}), {python['implementation']} {python['version']}{threading}; "
            f"backend {self.backend}" + (f" ({self.variant})" if self.variant else "") + f"; debug checks {debug}; "
            f"{self.report['created']}"
        )


def load(path: Path) -> Dict[str, Any]:
    """Read a report, refusing files of another kind or a newer schema."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ReportError(f"{path}: not a compatheap conformance report")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ReportError(f"{path}: report schema version {version!r}; this compatheap reads version {SCHEMA_VERSION}")
    return data


def runs_of(paths: Sequence[Path]) -> List[Run]:
    """Every run of the reports, labelled R1, R2, ... in order."""
    found: List[Run] = []
    for path in paths:
        data = load(path)
        variants = {b["name"]: b["variant"] for b in data["backends"]}
        by_backend: Dict[str, Dict[str, Mapping[str, Any]]] = defaultdict(dict)
        for test in data["tests"]:
            by_backend[test["backend"]][test["case"]] = test
        for backend in sorted(by_backend):
            label = f"R{len(found) + 1}"
            found.append(Run(label, str(path), data, backend, variants.get(backend, ""), by_backend[backend]))
    return found


def _run_heading(run: Run) -> str:
    env = run.report["environment"]
    python = env["python"]
    ft = "t" if python["free_threaded"] else ""
    os_text = "Wine" if env["os"].get("wine") else env["os"]["name"]
    return f"{run.label} {os_text} {env['os']['machine']} py{python['version']}{ft} {run.backend}"


def family_counts(run: Run) -> Dict[str, Dict[str, int]]:
    counts: Dict[str, Dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for test in run.tests.values():
        counts[test["family"]][test["outcome"]] += 1
    return dict(counts)


def cell_text(counts: Optional[Mapping[str, int]]) -> str:
    if not counts or not any(counts.values()):
        return "-"
    parts = [f"{counts['passed']} ok"]
    for outcome, short in (("failed", "FAIL"), ("deviation", "dev"), ("skipped", "skip")):
        if counts[outcome]:
            parts.append(f"{counts[outcome]} {short}")
    return " / ".join(parts)


@dataclass(frozen=True)
class Difference:
    """A test whose outcome is not the same in every run that has it."""

    family: str
    case: str
    results: Mapping[str, Optional[Mapping[str, Any]]]  # run label -> test, None where absent


def differences(runs: Sequence[Run]) -> List[Difference]:
    cases: Dict[str, str] = {}
    for run in runs:
        for case, test in run.tests.items():
            cases.setdefault(case, test["family"])
    found = []
    for case in sorted(cases, key=lambda c: (cases[c], c)):
        results = {run.label: run.tests.get(case) for run in runs}
        # Among the runs that have the test: one that a run did not select
        # (-k, another backend's own tests) is not a difference in behaviour.
        outcomes = {test["outcome"] for test in results.values() if test is not None}
        if len(outcomes) > 1:
            found.append(Difference(cases[case], case, results))
    return found


def not_everywhere(runs: Sequence[Run]) -> Dict[str, int]:
    """Per run, how many tests that other runs have it lacks (not selected or not collected there)."""
    every = set().union(*(run.tests for run in runs)) if runs else set()
    return {run.label: len(every - set(run.tests)) for run in runs}


def skip_reasons(runs: Sequence[Run]) -> List[Tuple[str, str, int]]:
    """``(run label, reason, count)`` of the skipped tests: what each "skip" in the table means."""
    found: List[Tuple[str, str, int]] = []
    for run in runs:
        counts: Dict[str, int] = defaultdict(int)
        for test in run.tests.values():
            if test["outcome"] == "skipped":
                counts[test.get("skip_reason") or "no reason given"] += 1
        found += [(run.label, reason, count) for reason, count in sorted(counts.items())]
    return found


def _absent_note(runs: Sequence[Run]) -> str:
    missing = {label: n for label, n in not_everywhere(runs).items() if n}
    if not missing:
        return ""
    counts = ", ".join(f"{label} lacks {n}" for label, n in missing.items())
    return f"Tests that a run does not have (not selected, or not collected there) are not differences: {counts}."


def detail(test: Optional[Mapping[str, Any]]) -> str:
    """A test's outcome with the message that explains it."""
    if test is None:
        return "not run"
    why = test.get("message") or test.get("skip_reason") or ""
    first = why.strip().splitlines()[-1] if why.strip() else ""
    return f"{test['outcome']}: {first}" if first else test["outcome"]


def families(runs: Sequence[Run]) -> List[str]:
    return sorted({test["family"] for run in runs for test in run.tests.values()})


def format_text(runs: Sequence[Run]) -> str:
    counts = {run.label: family_counts(run) for run in runs}
    rows = [["function family", *(run.label for run in runs)]]
    rows += [[family, *(cell_text(counts[run.label].get(family)) for run in runs)] for family in families(runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.rjust(widths[i]) if i else cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines += ["", "runs:"] + [f"  {run.describe()}" for run in runs]
    skips = skip_reasons(runs)
    if skips:
        lines += ["", "skipped, and why:"] + [f"  {label}: {count} x {reason}" for label, reason, count in skips]
    diffs = differences(runs)
    lines += ["", f"tests that differ between runs: {len(diffs)}"]
    for diff in diffs:
        lines.append(f"  {diff.family}: {diff.case}")
        lines += [f"    {label}: {detail(test)}" for label, test in diff.results.items()]
    lines += ["", LEGEND]
    if any(run.backend == COMMON for run in runs):
        lines.append(COMMON_NOTE)
    note = _absent_note(runs)
    lines += [note] if note else []
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(runs: Sequence[Run]) -> str:
    """GitHub-flavoured Markdown, e.g. for a CI job summary."""
    counts = {run.label: family_counts(run) for run in runs}
    lines = ["## compatheap conformance", ""]
    lines.append("| function family | " + " | ".join(_md(_run_heading(run)) for run in runs) + " |")
    lines.append("| --- |" + " ---: |" * len(runs))
    for family in families(runs):
        cells = [cell_text(counts[run.label].get(family)) for run in runs]
        lines.append(f"| {_md(family)} | " + " | ".join(cells) + " |")
    lines += ["", LEGEND + "."]
    if any(run.backend == COMMON for run in runs):
        lines.append(COMMON_NOTE + ".")
    lines += ["", "### Runs", ""] + [f"* {_md(run.describe())}" for run in runs]
    skips = skip_reasons(runs)
    if skips:
        lines += ["", "### Skipped, and why", ""]
        lines += [f"* {label}: {count} x {_md(reason)}" for label, reason, count in skips]
    diffs = differences(runs)
    lines += ["", f"### Tests that differ between runs ({len(diffs)})", ""]
    note = _absent_note(runs)
    lines += [note, ""] if note else []
    for diff in diffs:
        lines.append(f"<details><summary>{html.escape(diff.family)}: <code>{html.escape(diff.case)}</code></summary>")
        lines.append("")
        lines += [f"* {label}: {_md(detail(test))}" for label, test in diff.results.items()]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
table.matrix { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid #bbb; padding: 4px 8px; }
table.matrix th { background: #eee; vertical-align: bottom; }
table.matrix th[scope=row] { text-align: left; }
td a { color: inherit; }
table.matrix td.num { text-align: right; white-space: nowrap; }
td.ok { background: #d9f2d9; } td.fail { background: #f7c6c6; font-weight: bold; }
td.dev { background: #fbe9c0; } td.none { color: #999; text-align: center; }
td.differs { outline: 2px solid #c60; outline-offset: -2px; }
details { margin: 0.3em 0; } summary { cursor: pointer; }
ul.runs li, .legend { color: #444; }
table.diff td { padding: 2px 8px; vertical-align: top; }
table.diff td.outcome-failed { color: #a00; font-weight: bold; }
pre { white-space: pre-wrap; margin: 0; font-size: 12px; }
"""


def _cell_class(counts: Optional[Mapping[str, int]]) -> str:
    if not counts or not any(counts.values()):
        return "none"
    if counts["failed"]:
        return "fail"
    if counts["deviation"]:
        return "dev"
    return "ok"


def _anchor(family: str) -> str:
    return "family-" + re.sub(r"[^A-Za-z0-9]+", "-", family).strip("-").lower()


def format_html(runs: Sequence[Run]) -> str:
    """One self-contained page (no scripts, no external resources) readable offline."""
    esc = html.escape
    counts = {run.label: family_counts(run) for run in runs}
    diffs = differences(runs)
    differing = {(d.family, label) for d in diffs for label, test in d.results.items() if test is not None}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>compatheap conformance matrix</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>compatheap conformance matrix</h1>",
        '<table class="matrix" id="matrix"><thead><tr><th>function family</th>',
    ]
    out += [f'<th title="{esc(run.describe())}">{esc(_run_heading(run))}</th>' for run in runs]
    out.append("</tr></thead><tbody>")
    for family in families(runs):
        out.append(f'<tr><th scope="row">{esc(family)}</th>')
        for run in runs:
            cell = counts[run.label].get(family)
            classes = _cell_class(cell) + (" differs" if (family, run.label) in differing else "")
            text = esc(cell_text(cell))
            if (family, run.label) in differing:
                text = f'<a href="#{_anchor(family)}">{text}</a>'
            out.append(f'<td class="num {classes}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append(f'<p class="legend">{esc(LEGEND)}. An outlined cell holds tests that differ between runs (below).')
    if any(run.backend == COMMON for run in runs):
        out.append(f" {esc(COMMON_NOTE)}.")
    out.append("</p>")
    out.append('<h2>Runs</h2><ul class="runs">')
    out += [f"<li>{esc(run.describe())}</li>" for run in runs]
    out.append("</ul>")
    skips = skip_reasons(runs)
    if skips:
        out.append('<h2 id="skipped">Skipped, and why</h2><ul class="runs">')
        out += [f"<li>{esc(label)}: {count} x {esc(reason)}</li>" for label, reason, count in skips]
        out.append("</ul>")
    out.append(f'<h2 id="differences">Tests that differ between runs ({len(diffs)})</h2>')
    note = _absent_note(runs)
    if note:
        out.append(f'<p class="legend">{esc(note)}</p>')
    if not diffs:
        out.append("<p>Every test has the same outcome in every run that has it.</p>")
    for family in sorted({d.family for d in diffs}):
        these = [d for d in diffs if d.family == family]
        # Open when short: the page then shows the messages without a click.
        opened = " open" if len(diffs) <= 20 else ""
        out.append(
            f'<details class="family" id="{_anchor(family)}"{opened}>'
            f"<summary>{esc(family)}: {len(these)} test(s)</summary>"
        )
        for diff in these:
            out.append(
                f'<details class="test"{opened}><summary><code>{esc(diff.case)}</code></summary><table class="diff">'
            )
            for label, test in diff.results.items():
                outcome = "not run" if test is None else test["outcome"]
                why = "" if test is None else (test.get("message") or test.get("skip_reason") or "")
                out.append(
                    f'<tr><td>{esc(label)}</td><td class="outcome-{esc(outcome)}">{esc(outcome)}</td>'
                    f"<td><pre>{esc(why)}</pre></td></tr>"
                )
            out.append("</table></details>")
        out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def format_diff(before: Run, after: Run) -> Tuple[str, int]:
    """What changed from ``before`` to ``after``, and how many tests changed."""
    lines = [f"before: {before.describe(labelled=False)}", f"after:  {after.describe(labelled=False)}"]
    env_changes = _environment_changes(before.report, after.report)
    if env_changes:
        lines += ["", "environment:"] + [f"  {line}" for line in env_changes]
    changed = differences([before, after])
    lines += ["", f"tests whose outcome changed: {len(changed)}"]
    for diff in changed:
        old, new = diff.results[before.label], diff.results[after.label]
        lines.append(f"  {diff.family}: {diff.case}")
        lines.append(f"    before: {detail(old)}")
        lines.append(f"    after:  {detail(new)}")
    if not changed:
        lines.append("  (none: the two runs agree on every test both ran)")
    for label, other, run in (("only before", after, before), ("only after", before, after)):
        only = sorted(set(run.tests) - set(other.tests))
        if only:
            lines.append(f"tests {label}: {len(only)}")
            lines += [f"  {case}" for case in only[:10]]
            lines += [f"  ... and {len(only) - 10} more"] if len(only) > 10 else []
    return "\n".join(lines), len(changed)


def _environment_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> List[str]:
    def flat(data: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
        found: Dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, Mapping):
                found.update(flat(value, f"{prefix}{key}."))
            else:
                found[f"{prefix}{key}"] = value
        return found

    keys = ("compatheap", "environment", "debug_checks", "pytest_args")
    old = flat({k: before.get(k) for k in keys})
    new = flat({k: after.get(k) for k in keys})
    return [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


# --- the command -------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report_command", required=True)
    merge = sub.add_parser(
        "merge",
        help="one matrix of several reports: function family x run, and the tests that differ",
        description="Merge conformance reports into one table (function family x run) with the tests whose "
        "outcome differs between runs. Prints text; --html and --markdown write those forms too.",
    )
    merge.add_argument("reports", nargs="+", type=Path, metavar="REPORT", help="JSON reports of compatheap conformance")
    merge.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML page here")
    merge.add_argument("--markdown", type=Path, metavar="FILE", help="write Markdown here ('-' for stdout)")
    diff = sub.add_parser(
        "diff",
        help="what changed between two runs (exit status 1 when a test's outcome changed)",
        description="Compare two conformance reports test by test: outcomes that changed, with their messages, "
        "and what differs in the environment. A report with several backends: pick one with --backend.",
    )
    diff.add_argument("before", type=Path, help="the earlier report")
    diff.add_argument("after", type=Path, help="the later report")
    diff.add_argument("--backend", metavar="NAME", help="compare this backend's runs (needed when there are several)")


def _one_run(path: Path, backend: Optional[str]) -> Run:
    runs = runs_of([path])
    if backend is not None:
        runs = [run for run in runs if run.backend == backend.lower()]
    if len(runs) != 1:
        names = ", ".join(run.backend for run in runs_of([path]))
        raise ReportError(f"{path}: holds the runs of {names or 'no backend'}; choose one with --backend")
    return runs[0]


def main(args: argparse.Namespace, out: Any = None) -> int:
    from ._cli import UsageError, check_writable

    out = out if out is not None else sys.stdout
    try:
        if args.report_command == "diff":
            before = _one_run(args.before, args.backend)
            after = _one_run(args.after, args.backend)
            before = Run("before", before.source, before.report, before.backend, before.variant, before.tests)
            after = Run("after", after.source, after.report, after.backend, after.variant, after.tests)
            text, changed = format_diff(before, after)
            out.write(text + "\n")
            return 1 if changed else 0
        for target in (args.html, args.markdown):
            if target is not None and str(target) != "-":
                check_writable(target, "output file")
        runs = runs_of(args.reports)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    if not runs:
        raise UsageError("the reports hold no test results")
    if args.markdown is not None and str(args.markdown) == "-":
        out.write(format_markdown(runs))
    else:
        out.write(format_text(runs) + "\n")
    if args.markdown is not None and str(args.markdown) != "-":
        args.markdown.write_text(format_markdown(runs), encoding="utf-8")
        out.write(f"markdown written to {args.markdown}\n")
    if args.html is not None:
        args.html.write_text(format_html(runs), encoding="utf-8")
        out.write(f"html written to {args.html}\n")
    return 0
