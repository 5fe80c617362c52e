"""The performance harness runs end to end (its shape, not its numbers)."""

from __future__ import annotations

import io
import json

from compatheap import _bench, _cli, backends
from compatheap._bench import collect, format_table
from compatheap._bench._figures import Scale

from .conftest import needs_emulation

EMULATED_FIGURES = {"1", "2", "3a", "3b", "3c", "4a", "4b", "5a", "5b", "5c", "6a", "6b"}
KERNEL32_FIGURES = {"7a", "7b", "7c", "8a", "8b", "8c"}


@needs_emulation
def test_quick_run_reports_every_figure_with_a_target() -> None:
    results = collect(Scale.make(quick=True))
    figures = {f["figure"]: f for f in results["figures"]}
    assert EMULATED_FIGURES <= set(figures)
    for key in EMULATED_FIGURES - {"6b"}:
        figure = figures[key]
        assert isinstance(figure["value"], float) and figure["value"] > 0, figure
        assert figure["limit"] is not None and figure["status"] in ("ok", "over target", "OVER"), figure
    if backends.probe("kernel32")[0]:
        # Beside kernel32, figure 8 sets the emulation against it in this process.
        for key in KERNEL32_FIGURES:
            assert isinstance(figures[key]["value"], float) and figures[key]["value"] > 0, figures[key]
        assert figures["7a"]["limit"] is not None and figures["8a"]["status"] == "report"
    else:
        # Figures 7 and 8 need kernel32: here they are listed, and say why they did not run.
        for key in ("7", "8"):
            assert figures[key]["status"] == "skipped" and "--wine" in figures[key]["note"], figures[key]
    table = format_table(results)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["fig", "what", "target"]
    assert all(any(line.startswith(key + " ") for line in lines) for key in EMULATED_FIGURES)
    # `--only` takes every label the table prints.
    assert set(figures) <= set(_bench.FIGURE_LABELS), set(figures) - set(_bench.FIGURE_LABELS)


@needs_emulation
def test_bench_command_prints_json() -> None:
    out = io.StringIO()
    parser = _cli.build_parser()
    args = parser.parse_args(["bench", "--quick", "--json", "--only", "1,4"])
    assert args.command == "bench"
    assert _bench.run(args, out=out) == 0
    data = json.loads(out.getvalue())
    assert [f["figure"] for f in data["figures"]] == ["1", "4a", "4b"]
    assert data["quick"] is True
