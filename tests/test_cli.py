"""The ``compatheap`` command and the pytest plugin."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import List

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
    assert data["backends"] == ["emulated"]
    assert data["results"] and all(r["outcome"] == "passed" for r in data["results"])
    assert data["summary"]["basic cycle"]["emulated"]["passed"] == len(data["results"])


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
    assert "bogus" in capsys.readouterr().out


def test_table_counts_outcomes() -> None:
    results = [
        {"test": "a", "family": "HeapAlloc", "backend": "emulated", "outcome": "passed"},
        {"test": "b", "family": "HeapAlloc", "backend": "kernel32", "outcome": "deviation"},
        {"test": "c", "family": "HeapAlloc", "backend": "kernel32", "outcome": "failed"},
    ]
    table = _runner.format_table(results)
    row = next(line for line in table.splitlines() if line.startswith("HeapAlloc"))
    assert "1 ok" in row and "1 FAIL" in row and "1 dev" in row


def test_plugin_gives_heap_backend_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_uses_backend(heap_backend):
            heap = heap_backend.HeapCreate(0, 0, 0)
            block = heap_backend.HeapAlloc(heap, 0, 10)
            assert heap_backend.HeapSize(heap, 0, block) == 10
            assert heap_backend.HeapDestroy(heap)
        """
    )
    from importlib.metadata import entry_points

    from compatheap import backends

    eps = entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])  # type: ignore[arg-type]
    installed = any(ep.value == "compatheap.pytest_plugin" for ep in group)
    # Installed, the entry point loads it; in a bare checkout, name it.
    result = pytester.runpytest("-v") if installed else pytester.runpytest("-p", "compatheap.pytest_plugin", "-v")
    result.assert_outcomes(passed=len(backends.available()))


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
