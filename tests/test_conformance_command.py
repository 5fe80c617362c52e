"""``compatheap conformance`` as a user runs it: from any directory, with pytest options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from compatheap.conformance._runner import cache_dir, reports_dir

from .conftest import needs_emulation
from .test_legacy import run_command

pytestmark = needs_emulation


@pytest.fixture
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """Private user cache and data directories: the environment that moves them, set here too.

    platformdirs takes them from XDG_* on Linux and the BSDs and from
    WIN_PD_OVERRIDE_LOCAL_APPDATA on Windows (platformdirs 4.4 and later).
    """
    env = {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "WIN_PD_OVERRIDE_LOCAL_APPDATA": str(tmp_path / "local"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for where in (reports_dir(), cache_dir()):
        if tmp_path not in where.parents:
            pytest.skip(f"platformdirs here cannot be told to use another directory (it chose {where})")
    return env


@pytest.fixture
def hostile_project(tmp_path: Path) -> Path:
    """A project directory whose pytest settings would break a run that used them."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\naddopts = --no-such-option\n")
    (project / "conftest.py").write_text("raise SystemExit('the project conftest.py was imported')\n")
    return project


def conformance(*args: str, cwd: Path, env: Dict[str, str], report: Optional[Path] = None) -> Any:
    command = ["conformance", "--backend", "emulated"]
    command += ["--report", str(report)] if report is not None else []
    return run_command([*command, "--", *args], cwd=cwd, env=env)


def test_runs_the_same_in_any_directory(hostile_project: Path, user_dirs: Dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = conformance("-k", "smoke or stateful", cwd=hostile_project, env=user_dirs, report=report)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "basic cycle" in result.stdout and "random sequences" in result.stdout
    # Nothing left behind in the project: no .hypothesis/, no .pytest_cache/.
    assert sorted(p.name for p in hostile_project.iterdir()) == ["conftest.py", "pytest.ini"]
    assert cache_dir().is_dir()
    assert json.loads(report.read_text())["exit_status"] == 0


@pytest.mark.parametrize("options", [["-v"], ["-q"], ["--tb=short"], ["-rA"], ["-v", "-rA", "--tb=line"]])
def test_pytest_options_pass_through(options: List[str], user_dirs: Dict[str, str], tmp_path: Path) -> None:
    result = conformance("-k", "smoke", *options, cwd=tmp_path, env=user_dirs, report=tmp_path / "r.json")
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("basic cycle"))
    assert "2 ok" in row
    if "-v" in options or "-rA" in options:
        assert "PASSED" in result.stdout  # pytest's own report, as asked
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["pytest_args"] == ["-k", "smoke", *options]


def test_last_failed_reruns_from_the_user_cache(user_dirs: Dict[str, str], tmp_path: Path) -> None:
    first = conformance("-k", "smoke", cwd=tmp_path, env=user_dirs, report=tmp_path / "1.json")
    assert first.returncode == 0, first.stderr
    # Nothing failed last time: --lf runs everything selected again and the table fills.
    again = conformance("-k", "smoke", "--lf", cwd=tmp_path, env=user_dirs, report=tmp_path / "2.json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 ok" in next(line for line in again.stdout.splitlines() if line.startswith("total"))
    assert not (tmp_path / ".pytest_cache").exists()


def test_debug_checks_are_shown_in_table_and_report(user_dirs: Dict[str, str], tmp_path: Path) -> None:
    env = dict(user_dirs, COMPATHEAP_DEBUG="tail,free")
    result = conformance("-k", "smoke", cwd=tmp_path, env=env, report=tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    assert "debug checks: free, tail (from environment)" in result.stdout
    debug = json.loads((tmp_path / "r.json").read_text())["debug_checks"]
    assert debug["enabled"] == ["free", "tail"] and debug["source"] == "environment"
    assert debug["per_backend"]["emulated"] == ["free", "tail"]


@pytest.mark.parametrize("value", ["emulatd", "emulated,kernel33"])
def test_unknown_names_in_the_backends_variable_are_an_error(value: str, tmp_path: Path) -> None:
    env = {"COMPATHEAP_CONFORMANCE_BACKENDS": value}
    result = run_command(["conformance", "--report", str(tmp_path / "r.json")], cwd=tmp_path, env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown backend(s)" in result.stderr and "COMPATHEAP_CONFORMANCE_BACKENDS" in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_default_reports_are_pruned(user_dirs: Dict[str, str], tmp_path: Path) -> None:
    reports = reports_dir()
    reports.mkdir(parents=True)
    for n in range(4):
        (reports / f"conformance-2020010{n}-000000-000000.json").write_text("{}")
    result = run_command(
        ["conformance", "--backend", "emulated", "--keep", "3", "--", "-k", "smoke"], cwd=tmp_path, env=user_dirs
    )
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in reports.iterdir())
    assert len(kept) == 3 and "conformance-20200103-000000-000000.json" in kept
    assert "conformance-20200100-000000-000000.json" not in kept
    newest = Path(result.stdout.strip().splitlines()[-1].split("report: ", 1)[1])
    assert newest.name in kept
