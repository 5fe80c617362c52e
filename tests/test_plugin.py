"""The pytest plugin: a ``heap_backend`` fixture, and harmless to every other pytest run."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import List

import pytest

import _compatheap_pytestplugin
import compatheap
from compatheap import backends

pytest_plugins = ["pytester"]

USES_FIXTURE = """
def test_uses_backend(heap_backend):
    heap = heap_backend.HeapCreate(0, 0, 0)
    block = heap_backend.HeapAlloc(heap, 0, 10)
    assert heap_backend.HeapSize(heap, 0, block) == 10
    assert heap_backend.HeapDestroy(heap)
"""
UNRELATED = """
def test_unrelated():
    assert 1 + 1 == 2
"""


def _installed() -> bool:
    eps = entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", ())  # type: ignore[arg-type,unused-ignore]
    return any(ep.value == "_compatheap_pytestplugin" for ep in group)


def _plugin_args() -> List[str]:
    # Installed, the entry point loads it; in a bare checkout, name it.
    return [] if _installed() else ["-p", "_compatheap_pytestplugin"]


@pytest.fixture
def child_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child pytest imports the plugin and compatheap from where this one did."""
    paths = {str(Path(_compatheap_pytestplugin.__file__).parent), str(Path(compatheap.__file__).parent.parent)}
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]))
    for name in ("COMPATHEAP_BACKEND", "COMPATHEAP_CONFIG", "COMPATHEAP_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def test_plugin_gives_heap_backend_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_FIXTURE)
    result = pytester.runpytest("-v", *_plugin_args())
    result.assert_outcomes(passed=len(backends.available()))


@pytest.mark.parametrize("setting", ["COMPATHEAP_BACKEND=nope", "COMPATHEAP_BACKEND=kernel32", "config"])
def test_bad_settings_do_not_break_other_projects_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, child_paths: None, setting: str
) -> None:
    if setting == "config":
        bad = pytester.path / "bad.toml"
        bad.write_text("backend = [\n")
        monkeypatch.setenv("COMPATHEAP_CONFIG", str(bad))
    else:
        name, _, value = setting.partition("=")
        if value in backends.NAMES and backends.probe(value)[0]:
            pytest.skip(f"{value} can run here, so it is not a bad setting")
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_unrelated=UNRELATED, test_user=USES_FIXTURE)
    result = pytester.runpytest_subprocess(*_plugin_args())
    # The unrelated test passes; the one that needs compatheap says why it cannot run.
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*compatheap cannot start: *"])
    assert "Traceback" not in result.stdout.str()
