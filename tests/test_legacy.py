"""Unchanged Windows ctypes scripts on POSIX: ``compatheap run`` and ``install()``."""

from __future__ import annotations

import ctypes
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

import compatheap
from compatheap import legacy

from .conftest import ROOT, child_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="on Windows ctypes is left alone")

EXAMPLE = ROOT / "examples" / "legacy_heap.py"
#: What the example prints; Windows CPython under Wine prints the same.
EXAMPLE_OUTPUT = [
    "process heap: True",
    "zeroed: True",
    "kept: legacy code",
    "size: 5000",
    "in place refused, error 8",
    "walk: [5000]",
    "too large, winerror 8 True",
    "freed: True",
    "destroyed: True",
    "args: ['one', '--two']",
]


def run_command(args: List[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None) -> Any:
    full_env = child_env(env)
    return subprocess.run(
        [sys.executable, "-m", "compatheap", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def installed() -> Iterator[None]:
    assert legacy.install()
    try:
        yield
    finally:
        legacy.uninstall()


def test_example_runs_unchanged() -> None:
    result = run_command(["run", str(EXAMPLE), "one", "--two"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == EXAMPLE_OUTPUT


def test_example_needs_the_command() -> None:
    """Without compatheap the example cannot even import on POSIX."""
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "windll" in result.stderr


def _wine_python() -> Optional[Any]:
    spec = importlib.util.spec_from_file_location("_winpy", ROOT / "tools" / "winpy.py")
    assert spec is not None and spec.loader is not None
    winpy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(winpy)
    if winpy.find_wine() is None or not winpy.is_ready(winpy.cache_dir()):
        return None
    return winpy


def test_example_output_matches_real_windows_python() -> None:
    winpy = _wine_python()
    if winpy is None:
        pytest.skip("Windows CPython under Wine is not set up here (tox -e wine sets it up)")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "winpy.py"), "run", str(EXAMPLE), "one", "--two"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.replace("\r", "").splitlines() == EXAMPLE_OUTPUT


def test_script_sees_main_argv_and_its_directory(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("VALUE = 41\n")
    script = tmp_path / "main.py"
    script.write_text(
        "import sys, ctypes, helper\n"
        "print(__name__, sys.argv[1:], helper.VALUE + 1)\n"
        "heap = ctypes.windll.kernel32.GetProcessHeap()\n"
        "sys.exit(3 if heap else 4)\n"
    )
    result = run_command(["run", str(script), "x", "-y"], cwd=ROOT)
    assert result.stdout.split() == ["__main__", "['x',", "'-y']", "42"]
    assert result.returncode == 3, result.stderr


def test_run_module(tmp_path: Path) -> None:
    (tmp_path / "legacy_mod.py").write_text(
        "from ctypes import windll\nprint(__name__, bool(windll.kernel32.HeapCreate(0, 0, 0)))\n"
    )
    result = run_command(["run", "-m", "legacy_mod"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["__main__", "True"]


def test_script_errors_keep_their_traceback(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import ctypes\nctypes.windll.kernel32.VirtualAlloc(0, 10, 0x1000, 4)\n")
    result = run_command(["run", str(script)])
    assert result.returncode == 1
    assert "AttributeError" in result.stderr and "only kernel32's heap API" in result.stderr
    assert "VirtualAlloc" in result.stderr


def test_run_without_a_script_is_a_usage_error() -> None:
    result = run_command(["run"])
    assert result.returncode == 2 and "script" in result.stderr


def test_install_adds_windows_names_and_uninstall_removes_them() -> None:
    names = ["windll", "WinDLL", "get_last_error", "set_last_error", "GetLastError", "WinError", "FormatError"]
    before = {name: hasattr(ctypes, name) for name in names}
    assert not any(before.values()), "a POSIX ctypes has none of these"
    import ctypes.wintypes as real_wintypes

    assert compatheap.install()
    try:
        assert not compatheap.install()  # already in effect
        assert all(hasattr(ctypes, name) for name in names)
        from ctypes import wintypes

        # Only where C long is not Windows' 4 bytes (64-bit Linux, macOS) is there anything to replace.
        assert (wintypes is not real_wintypes) == (ctypes.sizeof(ctypes.c_long) != 4)
        assert ctypes.sizeof(wintypes.DWORD) == 4 and ctypes.sizeof(wintypes.BOOL) == 4
        assert ctypes.sizeof(wintypes.WPARAM) == ctypes.sizeof(ctypes.c_void_p)
        assert ctypes.sizeof(wintypes.MSG) == (48 if ctypes.sizeof(ctypes.c_void_p) == 8 else 28)
        assert ctypes.sizeof(wintypes.LARGE_INTEGER) == 8
    finally:
        assert compatheap.uninstall()
    assert not compatheap.uninstall()
    assert {name: hasattr(ctypes, name) for name in names} == before
    import ctypes.wintypes as again

    assert again is real_wintypes


@pytest.mark.usefixtures("installed")
def test_kernel32_refuses_other_functions_and_dlls() -> None:
    kernel32: Any = ctypes.windll.kernel32  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="only kernel32's heap API"):
        kernel32.CreateFileW  # noqa: B018
    with pytest.raises(OSError, match="user32"):
        ctypes.windll.user32  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(OSError):
        ctypes.WinDLL("ntdll")  # type: ignore[attr-defined]
    for spelling in ("kernel32", "KERNEL32.DLL", "C:\\Windows\\System32\\kernel32.dll"):
        assert ctypes.WinDLL(spelling).HeapFree(None, 0, None) == 1  # type: ignore[attr-defined]


@pytest.mark.usefixtures("installed")
def test_functions_take_argtypes_restype_and_errcheck() -> None:
    from ctypes import wintypes

    kernel32: Any = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    assert kernel32.HeapAlloc is kernel32.HeapAlloc  # cached: settings stay
    assert kernel32["HeapAlloc"] is not kernel32["HeapAlloc"]
    kernel32.HeapAlloc.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.c_size_t]
    kernel32.HeapAlloc.restype = wintypes.LPVOID
    seen = []

    def errcheck(result: Any, func: Any, args: Any) -> Any:
        seen.append((result, func, args))
        if not result:
            raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]
        return result

    kernel32.HeapAlloc.errcheck = errcheck
    heap = kernel32.HeapCreate(0, 0, 0)
    block = kernel32.HeapAlloc(heap, wintypes.DWORD(8), ctypes.c_size_t(24))
    assert block and ctypes.string_at(block, 24) == bytes(24)  # DWORD(8) is HEAP_ZERO_MEMORY
    assert seen[0][1] is kernel32.HeapAlloc and seen[0][0] == block
    with pytest.raises(OSError) as info:
        kernel32.HeapAlloc(heap, 0, sys.maxsize)  # half the address space
    assert info.value.winerror == compatheap.ERROR_NOT_ENOUGH_MEMORY  # type: ignore[attr-defined]
    assert "ERROR_NOT_ENOUGH_MEMORY" in str(info.value)
    assert kernel32.HeapDestroy(heap)


@pytest.mark.usefixtures("installed")
def test_last_error_helpers() -> None:
    kernel32: Any = ctypes.windll.kernel32  # type: ignore[attr-defined]
    assert kernel32.HeapDestroy(kernel32.GetProcessHeap()) == 0
    code = compatheap.ERROR_INVALID_HANDLE
    assert ctypes.get_last_error() == code == ctypes.GetLastError() == kernel32.GetLastError()  # type: ignore[attr-defined]
    assert ctypes.set_last_error(0) == code  # type: ignore[attr-defined]
    assert kernel32.GetLastError() == 0
    assert "ERROR_INVALID_HANDLE" in ctypes.FormatError(code)  # type: ignore[attr-defined]


@pytest.mark.usefixtures("installed")
def test_script_declared_structures_work_with_heap_walk() -> None:
    from ctypes import wintypes

    class ENTRY(ctypes.Structure):
        _fields_ = [
            ("lpData", wintypes.LPVOID),
            ("cbData", wintypes.DWORD),
            ("cbOverhead", wintypes.BYTE),
            ("iRegionIndex", wintypes.BYTE),
            ("wFlags", wintypes.WORD),
            ("hMem", wintypes.HANDLE),
            ("dwReserved", wintypes.DWORD * 3),
        ]

    class SUMMARY(ctypes.Structure):
        _fields_ = [("cb", wintypes.DWORD)] + [
            (name, ctypes.c_size_t) for name in ("cbAllocated", "cbCommitted", "cbReserved", "cbMaxReserve")
        ]

    assert ctypes.sizeof(ENTRY) == ctypes.sizeof(compatheap.PROCESS_HEAP_ENTRY)
    kernel32: Any = ctypes.windll.kernel32  # type: ignore[attr-defined]
    heap = kernel32.HeapCreate(0, 0, 0)
    blocks = {kernel32.HeapAlloc(heap, 0, size): size for size in (10, 333, 0x100000)}
    entry = ENTRY()
    busy = {}
    while kernel32.HeapWalk(heap, ctypes.byref(entry)):
        if entry.wFlags & compatheap.PROCESS_HEAP_ENTRY_BUSY:
            busy[entry.lpData] = entry.cbData
    assert busy == blocks
    summary = SUMMARY(cb=ctypes.sizeof(SUMMARY))
    assert kernel32.HeapSummary(heap, 0, ctypes.pointer(summary))
    assert summary.cbAllocated == sum(blocks.values())
    assert kernel32.HeapDestroy(heap)
