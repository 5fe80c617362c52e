"""Shared helpers for the tests of compatheap's own machinery."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

import compatheap
from compatheap import backends

ROOT = Path(__file__).resolve().parent.parent

#: Whether the emulated backend can run here (not on Windows), and why not.
EMULATION, EMULATION_WHY = backends.probe("emulated")
#: For tests that exercise the emulation itself.
needs_emulation = pytest.mark.skipif(not EMULATION, reason=f"the emulated backend cannot run here: {EMULATION_WHY}")


def require_emulation() -> None:
    """Skip the calling test module where the emulated backend cannot run."""
    if not EMULATION:
        pytest.skip(f"the emulated backend cannot run here: {EMULATION_WHY}", allow_module_level=True)


class MemoryBasicInformation(ctypes.Structure):
    """MEMORY_BASIC_INFORMATION: what VirtualQuery tells of a range of pages."""

    _fields_ = [
        ("BaseAddress", ctypes.c_void_p),
        ("AllocationBase", ctypes.c_void_p),
        ("AllocationProtect", ctypes.c_uint32),
        ("PartitionId", ctypes.c_uint16),
        ("RegionSize", ctypes.c_size_t),
        ("State", ctypes.c_uint32),
        ("Protect", ctypes.c_uint32),
        ("Type", ctypes.c_uint32),
    ]


#: VirtualQuery where kernel32 exists, else None.
VIRTUAL_QUERY: Any = None
if getattr(ctypes, "WinDLL", None) is not None:
    # Bound once, on a handle of its own: a query must not itself map memory
    # (a new arena) where a freed block was, nor change others' argtypes.
    VIRTUAL_QUERY = ctypes.WinDLL("kernel32").VirtualQuery  # type: ignore[attr-defined]
    VIRTUAL_QUERY.argtypes = [ctypes.c_void_p, ctypes.POINTER(MemoryBasicInformation), ctypes.c_size_t]
    VIRTUAL_QUERY.restype = ctypes.c_size_t


def virtual_query(address: int) -> MemoryBasicInformation:
    """What VirtualQuery tells of the pages at ``address`` (where kernel32 exists)."""
    info = MemoryBasicInformation()
    assert VIRTUAL_QUERY(address, ctypes.byref(info), ctypes.sizeof(info))
    return info


#: Variables that steer compatheap; a child process must not inherit ours.
SETTINGS_VARIABLES = (
    "COMPATHEAP_BACKEND",
    "COMPATHEAP_CONFIG",
    "COMPATHEAP_DEBUG",
    "COMPATHEAP_CONFORMANCE_BACKENDS",
)


#: Where the compatheap under test was imported from: the installed wheel under
#: tox, the checkout otherwise. Children import the same one.
TESTED = Path(compatheap.__file__).resolve().parent.parent


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """This environment for a child interpreter: no compatheap settings, the tested compatheap importable."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    # The checkout after the tested package: children find the tests package there.
    env["PYTHONPATH"] = os.pathsep.join([str(TESTED), str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra or {})
    return env


def run_python(code: str, env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess[str]":
    """Run ``code`` in a fresh interpreter (import-time behaviour needs one)."""
    full_env = child_env(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


@pytest.fixture(autouse=True)
def _restore_tracer() -> Iterator[None]:
    """Give back the trace function a test replaced (sys.settrace(None) would end coverage measurement)."""
    tracer = sys.gettrace()
    yield
    if sys.gettrace() is not tracer:
        sys.settrace(tracer)


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
