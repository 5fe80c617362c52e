"""Shared helpers for the tests of compatheap's own machinery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess[str]":
    """Run ``code`` in a fresh interpreter (import-time behaviour needs one)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COMPATHEAP_")}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line of figures per reliability campaign that ran."""
    from tests import campaigns

    found = campaigns.lines()
    if found:
        terminalreporter.section("reliability campaigns")
        for line in found:
            terminalreporter.write_line(line)
