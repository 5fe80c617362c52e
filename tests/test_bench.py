"""The performance harness runs end to end (its shape, not its numbers)."""

from __future__ import annotations

import io
import json

from compatheap import _bench, _cli
from compatheap._bench import collect, format_table
from compatheap._bench._figures import Scale

from .conftest import needs_emulation

EMULATED_FIGURES = {"1", "2", "3a", "3b", "3c", "4a", "4b", "5a", "5b", "5c", "6a", "6b"}


@needs_emulation
def test_quick_run_reports_every_figure_with_a_target() -> None:
    results = collect(Scale.make(quick=True))
    figures = {f["figure"]: f for f in results["figures"]}
    assert EMULATED_FIGURES <= set(figures)
    # Figures 7 and 8 need kernel32: here they are listed, and say why they did not run.
    assert {"7", "8"} <= set(figures)
    for key in EMULATED_FIGURES - {"6b"}:
        figure = figures[key]
        assert isinstance(figure["value"], float) and figure["value"] > 0, figure
        assert figure["limit"] is not None and figure["status"] in ("ok", "over target", "OVER"), figure
    assert figures["7"]["status"] == "skipped" and "--wine" in figures["7"]["note"]
    table = format_table(results)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["fig", "what", "target"]
    assert all(any(line.startswith(key + " ") for line in lines) for key in EMULATED_FIGURES)


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
