"""The ``compatheap`` command and the pytest plugin."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from compatheap import _cli
from compatheap.conformance import _runner

from .conftest import needs_emulation

pytest_plugins = ["pytester"]


@needs_emulation
def test_conformance_prints_table_and_writes_report(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out, progress = io.StringIO(), io.StringIO()
    status = _runner.run(backends=["emulated"], report=report, extra_args=["-k", "smoke"], out=out, progress=progress)
    assert status == 0
    text = out.getvalue()
    assert "function family" in text and "emulated" in text and "total" in text
    assert "basic cycle" in text
    assert "[" in progress.getvalue()  # a progress line was shown
    data = json.loads(report.read_text())
    assert data["schema_version"] == 1 and [b["name"] for b in data["backends"]] == ["emulated"]
    assert data["tests"] and all(t["outcome"] == "passed" for t in data["tests"])
    assert data["summary"]["basic cycle"]["emulated"]["passed"] == len(data["tests"])


@needs_emulation
def test_conformance_fails_on_a_failing_test(tmp_path: Path) -> None:
    out = io.StringIO()
    # A keyword matching nothing: "no test ran" must not pass as success.
    status = _runner.run(
        backends=["emulated"], report=tmp_path / "r.json", extra_args=["-k", "nothing_matches"], out=out, progress=None
    )
    assert status != 0
    assert "no test ran" in out.getvalue()


def test_unknown_backend_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status = _cli.main(["conformance", "--backend", "bogus", "--report", str(tmp_path / "r.json")])
    assert status == 2
    captured = capsys.readouterr()
    assert "bogus" in captured.err and captured.out == ""


def test_table_counts_outcomes_and_explains_skips() -> None:
    results: List[Dict[str, Any]] = [
        {"test": "a", "family": "HeapAlloc", "backend": "emulated", "outcome": "passed", "skip_reason": None},
        {"test": "b", "family": "HeapAlloc", "backend": "kernel32", "outcome": "deviation", "skip_reason": None},
        {"test": "c", "family": "HeapAlloc", "backend": "kernel32", "outcome": "failed", "skip_reason": None},
        {"test": "d", "family": "HeapAlloc", "backend": "common", "outcome": "skipped", "skip_reason": "needs 3.12"},
    ]
    table = _runner.format_table(results)
    row = next(line for line in table.splitlines() if line.startswith("HeapAlloc"))
    assert "1 ok" in row and "1 FAIL" in row and "1 dev" in row and "1 skip" in row
    assert "common = tests that run once" in table
    assert "1 on common: needs 3.12" in table


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["python", "-m", "compatheap", "info"], True),
        (["python", "-mcompatheap"], True),
        (["python", "-X", "dev", "-W", "ignore", "-m", "compatheap"], True),
        (["python", "-Wignore", "-I", "-m", "compatheap"], True),
        (["python", "-X", "dev", "-m", "other"], False),
        (["python", "-c", "import compatheap", "-m", "compatheap"], False),
        (["python", "script.py", "-m", "compatheap"], False),
    ],
)
def test_module_launch_is_recognised_past_interpreter_options(argv: List[str], expected: bool) -> None:
    """``python -X dev -m compatheap`` is the command too: a bad config is one line there."""
    from compatheap._launch import _runs_as_module

    assert _runs_as_module(argv) is expected
