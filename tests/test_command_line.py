"""Arguments of the ``compatheap`` command that must fail up front, in one line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import pytest

import compatheap

from .conftest import needs_emulation, run_python
from .test_legacy import run_command


def _one_line_error(result: "object", *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("compatheap: error: "), lines
    for needle in needles:
        assert needle in lines[0]


def test_version() -> None:
    result = run_command(["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"compatheap {compatheap.__version__}"


@needs_emulation
def test_bench_only_takes_the_figure_labels_it_prints() -> None:
    result = run_command(["bench", "--quick", "--only", "3A,1"])
    assert result.returncode == 0, result.stderr
    figures = [line.split()[0] for line in result.stdout.splitlines()[2:] if line and not line.startswith("(")]
    assert figures == ["1", "3a"]


@pytest.mark.parametrize("only", ["9", "3d", "one", ","])
def test_bench_only_refuses_unknown_figures(only: str) -> None:
    _one_line_error(run_command(["bench", "--quick", "--only", only]), "--only", "3a")


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "--quick", "--json", "{blocked}/out.json"],
        ["bench", "--quick", "--only", "1", "--plot", "{dir}"],
        ["conformance", "--report", "{blocked}/r.json"],
        ["report", "merge", "{dir}/none.json", "--html", "{blocked}/m.html"],
    ],
    ids=["bench-json", "bench-plot-dir", "conformance-report", "merge-html"],
)
def test_unwritable_outputs_fail_before_the_run(tmp_path: Path, args: List[str]) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    argv = [a.format(blocked=blocked, dir=tmp_path) for a in args]
    if "--plot" in argv and not _has("matplotlib"):
        pytest.skip("matplotlib is absent: --plot is refused for that reason first")
    _one_line_error(run_command(argv), str(tmp_path))


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_plot_without_matplotlib_fails_up_front(tmp_path: Path) -> None:
    # matplotlib made unimportable, as on a machine without it.
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from compatheap._cli import main\n"
        f"sys.exit(main(['bench', '--only', '1', '--plot', {str(tmp_path / 'p.png')!r}]))\n"
    )
    result = run_python(code)
    _one_line_error(result, "matplotlib", "compatheap[plot]")


def test_conformance_without_its_extra_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None; sys.modules['hypothesis'] = None\n"
        "from compatheap._cli import main\n"
        "sys.exit(main(['conformance']))\n"
    )
    result = run_python(code)
    _one_line_error(result, "pytest and hypothesis", "-m pip install 'compatheap[conformance]'", sys.executable)


def test_run_without_a_script_is_an_error_on_stderr() -> None:
    _one_line_error(run_command(["run"]), "give a script")
