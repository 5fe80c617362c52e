"""``compatheap info`` and the command's one-line startup errors."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from compatheap import backends
from compatheap.backends.emulated._heap import LARGE_THRESHOLD

from .conftest import child_env, needs_emulation
from .test_legacy import run_command


@needs_emulation
def test_info_json_describes_this_machine(config_file: Path) -> None:
    config_file.write_text('debug = ["tail"]\n')
    result = run_command(["info", "--json"], env={"COMPATHEAP_CONFIG": str(config_file)})
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    # The default is the first backend in order of preference that runs here.
    assert info["backend"]["name"] == backends.available()[0] and info["backend"]["source"] == "default"
    assert [b["name"] for b in info["backends"]] == list(backends.NAMES)
    for entry in info["backends"]:
        assert entry["available"] == backends.probe(entry["name"])[0]
        assert entry["reason"] == backends.probe(entry["name"])[1]
    assert info["config_file"] == {"path": str(config_file), "exists": True}
    assert info["debug_checks"] == {"enabled": ["tail"], "source": "config file"}
    assert info["memory_allocation_alignment"] == 2 * ctypes.sizeof(ctypes.c_void_p)
    assert info["page_size"] > 0 and info["page_size"] & (info["page_size"] - 1) == 0
    if info["backend"]["name"] == "emulated":
        assert info["large_block_threshold"] == LARGE_THRESHOLD
        assert "available" in info["fallbacks"]["mremap"] or "fallback" in info["fallbacks"]["mremap"]
    else:  # the real heap: no threshold or fallbacks of the emulation's to show
        assert info["large_block_threshold"] is None and "mremap" not in info["fallbacks"]


@needs_emulation
def test_info_text_names_the_choice_and_its_reason(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    result = run_command(
        ["info"], env={"COMPATHEAP_CONFIG": str(missing), "COMPATHEAP_BACKEND": "emulated", "COMPATHEAP_DEBUG": "free"}
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "backend:          emulated (environment asked for 'emulated')" in text
    assert f"{missing} (not present)" in text
    assert "debug checks:     free (from environment)" in text
    assert "MEMORY_ALLOCATION_ALIGNMENT" in text and "mremap" in text and "malloc_usable_size" in text


@pytest.mark.parametrize(
    "command", [["run", "x.py"], ["conformance"], ["bench", "--quick"], ["report", "diff", "a", "b"]]
)
def test_bad_config_file_is_one_line_naming_file_and_line(config_file: Path, command: List[str]) -> None:
    config_file.write_text('backend = "emulated"\n\ndebug = [tail]\n')
    result = run_command(command, env={"COMPATHEAP_CONFIG": str(config_file)})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(config_file) in lines[0] and "line 3" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "env",
    [{"COMPATHEAP_BACKEND": "nope"}, {"COMPATHEAP_CONFIG": "{config}"}],
    ids=["bad-backend", "bad-config-file"],
)
def test_info_and_help_run_despite_bad_settings(config_file: Path, env: Dict[str, str]) -> None:
    """The diagnostic tools must not refuse to run on the problem they diagnose."""
    config_file.write_text("debug = [tail]\n")
    env = {k: v.format(config=config_file) for k, v in env.items()}
    info = run_command(["info"], env=env)
    assert info.returncode == 2
    assert "SETTINGS ERROR" in info.stdout and "backends:" in info.stdout
    assert len(info.stderr.splitlines()) == 1 and "Traceback" not in info.stderr
    as_json = run_command(["info", "--json"], env=env)
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["settings_error"]
    helped = run_command(["--help"], env=env)
    assert helped.returncode == 0 and "conformance" in helped.stdout and helped.stderr == ""


@needs_emulation
def test_backend_errors_say_where_the_setting_came_from(config_file: Path) -> None:
    from_env = run_command(["conformance"], env={"COMPATHEAP_BACKEND": "nope"})
    assert from_env.returncode == 2 and from_env.stdout == ""
    assert "COMPATHEAP_BACKEND=nope is set in the environment" in from_env.stderr
    assert f"usable here: {', '.join(backends.available())}" in from_env.stderr
    config_file.write_text('backend = "nope"\n')
    from_file = run_command(["conformance"], env={"COMPATHEAP_CONFIG": str(config_file)})
    assert from_file.returncode == 2
    assert f"is set in {config_file}" in from_file.stderr
    # Nothing to unset: the variable is not set.
    assert "COMPATHEAP_BACKEND" not in from_file.stderr


@needs_emulation
def test_backend_names_are_case_insensitive(config_file: Path) -> None:
    result = run_command(["info", "--json"], env={"COMPATHEAP_BACKEND": "Emulated"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backend"]["name"] == "emulated"
    config_file.write_text('backend = "EMULATED"\n')
    result = run_command(["info", "--json"], env={"COMPATHEAP_CONFIG": str(config_file)})
    assert json.loads(result.stdout)["backend"]["name"] == "emulated"


def test_console_script_reports_bad_config_in_one_line(config_file: Path) -> None:
    script = Path(sys.executable).parent / ("compatheap.exe" if os.name == "nt" else "compatheap")
    if not script.exists():
        pytest.skip("the compatheap script is not installed next to this Python (tox -e py installs it)")
    config_file.write_text("backend = [\n")
    env = child_env({"COMPATHEAP_CONFIG": str(config_file)})
    result = subprocess.run([str(script), "info"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and str(config_file) in result.stderr


def test_unavailable_backend_is_one_line() -> None:
    missing = [n for n in backends.NAMES if not backends.probe(n)[0]]
    if not missing:
        pytest.skip("every backend runs here")
    result = run_command(["info"], env={"COMPATHEAP_BACKEND": missing[0]})
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and missing[0] in result.stderr


def test_importing_still_raises_for_programs(config_file: Path) -> None:
    from .conftest import run_python

    config_file.write_text("debug = [tail]\n")
    result = run_python("import compatheap", {"COMPATHEAP_CONFIG": str(config_file)})
    assert result.returncode == 1 and "ConfigError" in result.stderr and "Traceback" in result.stderr
