"""Unchanged Windows ctypes programs: ``compatheap run``, ``install()`` and ``compatheap.kernel32``.

The corpus in tests/legacy/ is compared line by line with what Windows CPython
prints for it (tests/legacy/expected/, recorded and re-verified under Wine by
tools/legacy_transcripts.py in the wine env).
"""

from __future__ import annotations

import ctypes
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compatheap
from compatheap import legacy
from compatheap.legacy import LayoutError, NotEmulatedError

from .conftest import ROOT, child_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="on Windows ctypes is left alone")

CORPUS = ROOT / "tests" / "legacy"
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


def _transcripts_tool() -> Any:
    spec = importlib.util.spec_from_file_location("_legacy_transcripts", ROOT / "tools" / "legacy_transcripts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _transcripts_tool()
SCRIPTS = TOOL.scripts()
WIN64_SCRIPTS = [*sorted((CORPUS / "win64").glob("*.py")), ROOT / "examples" / "win64_bugs.py"]
#: The bugs --check-win64 finds (pointers cut to a C int or long) cannot happen where
#: pointers are 4 bytes; the corpus's expected outputs are 64-bit Windows CPython's.
IS_64_BIT = ctypes.sizeof(ctypes.c_void_p) == 8
only_64_bit = pytest.mark.skipif(not IS_64_BIT, reason="64-bit Windows behaviour; this process has 4-byte pointers")


def _same_output_as_windows(result: "subprocess.CompletedProcess[str]", script: Path) -> None:
    assert result.returncode == 0, result.stderr
    if not IS_64_BIT:
        pytest.skip("ran; its expected output is 64-bit Windows' (sizes of structures, SIZE_T)")
    expected = (CORPUS / "expected" / f"{script.stem}.txt").read_text(encoding="utf-8")
    assert result.stdout.splitlines() == expected.splitlines()


def run_command(args: List[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "compatheap", *args],
        capture_output=True,
        text=True,
        env=child_env(env),
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


# -- the corpus --------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(SCRIPTS) >= 20
    assert all((CORPUS / "expected" / f"{s.stem}.txt").is_file() for s in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_corpus_script_prints_what_windows_prints(script: Path) -> None:
    _same_output_as_windows(run_command(["run", str(script)]), script)


@pytest.mark.parametrize("script", [s for s in SCRIPTS if TOOL.has_copy(s)], ids=lambda p: p.stem)
def test_corpus_copy_with_compatheap_kernel32(script: Path, tmp_path: Path) -> None:
    copy = TOOL.compatheap_copy(script, tmp_path)
    assert "from compatheap import kernel32" in copy.read_text(encoding="utf-8")
    _same_output_as_windows(run_command(["run", str(copy)]), script)


def _marked_lines(script: Path) -> Set[int]:
    lines = script.read_text(encoding="utf-8").splitlines()
    return {number for number, line in enumerate(lines, 1) if "# WIN64" in line}


@only_64_bit
@pytest.mark.parametrize("script", SCRIPTS + WIN64_SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_check_win64_reports_exactly_the_planted_bugs(script: Path) -> None:
    result = run_command(["run", "--check-win64", str(script)])
    reported = {
        int(match.group(2))
        for match in re.finditer(r"^(.*):(\d+): win64: ", result.stderr, re.MULTILINE)
        if Path(match.group(1)).resolve() == script.resolve()
    }
    assert reported == _marked_lines(script), result.stderr
    assert result.returncode == (1 if reported else 0)
    if not reported:
        assert "no problems found" in result.stderr


@only_64_bit
def test_win64_scripts_plant_every_kind_of_bug() -> None:
    messages = "".join(run_command(["run", "--check-win64", str(s)]).stderr for s in WIN64_SCRIPTS)
    assert "through restype c_int" in messages
    assert "has no argtypes" in messages
    assert "C long field" in messages


# -- the command -------------------------------------------------------------------


def test_example_runs_unchanged() -> None:
    result = run_command(["run", str(EXAMPLE), "one", "--two"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == EXAMPLE_OUTPUT


def test_example_needs_the_command() -> None:
    """Without compatheap the example cannot even import on POSIX."""
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "windll" in result.stderr


def test_missing_script_is_one_line_like_python(tmp_path: Path) -> None:
    missing = tmp_path / "missing.py"
    result = run_command(["run", str(missing)])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"compatheap run: can't open file {str(missing)!r}: [Errno 2] No such file or directory"
    ]


def test_traceback_shows_only_the_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import ctypes\n\ndef f():\n    ctypes.windll.kernel32.VirtualAlloc(0, 10, 0x1000, 4)\n\nf()\n")
    result = run_command(["run", str(script)])
    assert result.returncode == 1
    frames = re.findall(r'^  File "([^"]+)", line (\d+)', result.stderr, re.MULTILINE)
    # Nothing of how the script was started: its own frames first, then where the error was raised.
    assert [(Path(f).name, int(n)) for f, n in frames][:2] == [("bad.py", 6), ("bad.py", 4)]
    assert not any("runpy" in f or f.endswith(("_launch.py", "_cli.py")) for f, _ in frames)
    assert "NotEmulatedError" in result.stderr and "kernel32.VirtualAlloc" in result.stderr
    assert "heap API only" in result.stderr


def test_script_sees_main_argv_and_its_directory(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("import ctypes\nVALUE = 41\nLONG = ctypes.sizeof(ctypes.c_long)\n")
    script = tmp_path / "main.py"
    script.write_text(
        "import sys, ctypes, helper\n"
        "print(__name__, sys.argv[1:], helper.VALUE + 1, helper.LONG)\n"
        "import json.decoder\n"
        "sys.exit(3 if ctypes.windll.kernel32.GetProcessHeap() else 4)\n"
    )
    result = run_command(["run", str(script), "x", "-y"], cwd=ROOT)
    assert result.stdout.split() == ["__main__", "['x',", "'-y']", "42", "4"]
    assert result.returncode == 3, result.stderr


def test_lp64_opt_out_keeps_the_platform_long(tmp_path: Path) -> None:
    script = tmp_path / "size.py"
    script.write_text("import ctypes\nfrom ctypes import wintypes\nprint(ctypes.sizeof(ctypes.c_ulong))\n")
    assert run_command(["run", str(script)]).stdout.split() == ["4"]
    assert run_command(["run", "--lp64", str(script)]).stdout.split() == [str(ctypes.sizeof(ctypes.c_long))]


def test_llp64_view_is_for_the_script_only(tmp_path: Path) -> None:
    script = tmp_path / "view.py"
    script.write_text(
        "import ctypes, ctypes.wintypes, compatheap\n"
        "import ctypes as direct\n"
        "print(ctypes.sizeof(ctypes.c_long), ctypes.sizeof(ctypes.wintypes.DWORD))\n"
        "import sys; real = sys.modules['ctypes']\n"
        "print(real.sizeof(real.c_long) == real.sizeof(real.c_void_p), direct is ctypes)\n"
    )
    result = run_command(["run", str(script)])
    assert result.returncode == 0, result.stderr
    pointer_sized_long = ctypes.sizeof(ctypes.c_long) == ctypes.sizeof(ctypes.c_void_p)
    assert result.stdout.split() == ["4", "4", str(pointer_sized_long), "True"]


def test_run_module(tmp_path: Path) -> None:
    (tmp_path / "legacy_mod.py").write_text(
        "import ctypes\nfrom ctypes import windll\nwindll.kernel32.HeapCreate.restype = ctypes.c_void_p\n"
        "print(__name__, bool(windll.kernel32.HeapCreate(0, 0, 0)))\n"
    )
    result = run_command(["run", "-m", "legacy_mod"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["__main__", "True"]


def test_run_without_a_script_is_a_usage_error() -> None:
    result = run_command(["run"])
    assert result.returncode == 2 and "script" in result.stderr


# -- install() ---------------------------------------------------------------------

WINDOWS_NAMES = [
    "windll",
    "WinDLL",
    "oledll",
    "OleDLL",
    "WINFUNCTYPE",
    "HRESULT",
    "get_last_error",
    "set_last_error",
    "GetLastError",
    "WinError",
    "FormatError",
]


def test_install_adds_windows_names_and_uninstall_removes_them() -> None:
    before = {name: hasattr(ctypes, name) for name in WINDOWS_NAMES}
    assert not any(before.values()), "a POSIX ctypes has none of these"
    real_cdll = ctypes.CDLL
    assert compatheap.install()
    try:
        assert not compatheap.install()  # already in effect
        assert all(hasattr(ctypes, name) for name in WINDOWS_NAMES)
        assert ctypes.CDLL is not real_cdll and issubclass(ctypes.CDLL, real_cdll)
        libc = ctypes.CDLL(None)  # other libraries load as before
        assert not isinstance(libc, legacy.LegacyDLL) and libc.abs(-3) == 3
    finally:
        assert compatheap.uninstall()
    assert not compatheap.uninstall()
    assert {name: hasattr(ctypes, name) for name in WINDOWS_NAMES} == before
    assert ctypes.CDLL is real_cdll


@pytest.mark.usefixtures("installed")
def test_every_dll_spelling_and_loader_gives_kernel32() -> None:
    c: Any = ctypes
    spellings = ("kernel32", "KERNEL32.DLL", "C:\\Windows\\System32\\kernel32.dll", "/some/where/Kernel32.dll")
    for loader in (c.WinDLL, c.CDLL, c.PyDLL, c.OleDLL, c.windll.LoadLibrary, c.cdll.LoadLibrary):
        for spelling in spellings:
            dll = loader(spelling)
            assert isinstance(dll, legacy.LegacyDLL) and isinstance(dll, c.CDLL)
            assert dll.HeapFree(None, 0, None) == 1
    assert c.windll.kernel32 is c.windll.kernel32 and c.windll.kernel32 is not c.windll.KERNEL32
    assert c.oledll.kernel32.HeapFree.restype is c.HRESULT
    with pytest.raises((OSError, AttributeError)):  # a missing DLL: the loader says AttributeError from 3.13
        c.windll.user32  # noqa: B018
    with pytest.raises(OSError):
        c.WinDLL("user32")


@pytest.mark.usefixtures("installed")
def test_last_error_helpers() -> None:
    c: Any = ctypes
    kernel32 = c.windll.kernel32
    kernel32.GetProcessHeap.restype = ctypes.c_void_p
    kernel32.HeapDestroy.argtypes = [ctypes.c_void_p]
    assert kernel32.HeapDestroy(kernel32.GetProcessHeap()) == 0
    code = compatheap.ERROR_INVALID_HANDLE
    assert c.get_last_error() == code == c.GetLastError() == kernel32.GetLastError()
    assert c.set_last_error(0) == code
    assert kernel32.GetLastError() == 0
    assert c.FormatError(code) == "The handle is invalid."
    c.set_last_error(0xC0000017)
    assert c.get_last_error() == -1073741801  # a signed C int, as ctypes keeps it


# -- the exceptions Windows CPython builds ----------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls", "errno", "text"),
    [
        (2, FileNotFoundError, 2, "The system cannot find the file specified."),
        (5, PermissionError, 13, "Access is denied."),
        (8, OSError, 12, "Not enough memory resources are available to process this command."),
        (87, OSError, 22, "The parameter is incorrect."),
        (12345, OSError, 22, "<no description>"),
    ],
)
def test_win_error_is_windows_oserror(code: int, cls: type, errno: int, text: str) -> None:
    from compatheap.legacy._names import WinError

    error = WinError(code)
    assert isinstance(error, OSError)
    assert type(error).__name__ == cls.__name__ and isinstance(error, cls)
    assert (error.errno, error.strerror, getattr(error, "winerror")) == (errno, text, code)  # noqa: B009
    assert str(error) == f"[WinError {code}] {text}"
    custom = WinError(8, "custom")
    assert str(custom) == "[WinError 8] custom" and custom.strerror == "custom"


def test_heap_exception_carries_the_signed_ntstatus() -> None:
    heap = compatheap.HeapCreate(0, 0, 0)
    try:
        with pytest.raises(OSError) as info:
            compatheap.HeapAlloc(heap, compatheap.HEAP_GENERATE_EXCEPTIONS, compatheap.SIZE_MAX)
        assert isinstance(info.value, compatheap.HeapException)
        assert info.value.winerror == -1073741801 and info.value.errno == 22
        assert "HeapAlloc" in str(info.value)
        kernel32: Any = legacy.legacy_kernel32()
        kernel32.HeapAlloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64]
        with pytest.raises(compatheap.HeapException) as again:  # through the thunk
            kernel32.HeapAlloc(heap, compatheap.HEAP_GENERATE_EXCEPTIONS, compatheap.SIZE_MAX)
        assert again.value.winerror == -1073741801
    finally:
        compatheap.HeapDestroy(heap)


# -- compatheap.kernel32 and the legacy function objects --------------------------------


def test_compatheap_kernel32_is_a_windll_of_its_own() -> None:
    kernel32: Any = compatheap.kernel32
    assert isinstance(kernel32, legacy.LegacyDLL)
    assert kernel32.HeapSize is kernel32.HeapSize  # cached per instance
    assert kernel32["HeapSize"] is not kernel32["HeapSize"]  # item access: fresh objects
    fresh: Any = legacy.legacy_kernel32()
    heap = compatheap.HeapCreate(0, 0, 0)
    block = compatheap.HeapAlloc(heap, 0, 70000)
    saved = kernel32.HeapSize.restype, kernel32.HeapSize.argtypes
    try:
        kernel32.HeapSize.restype = ctypes.c_uint16
        kernel32.HeapSize.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
        assert kernel32.HeapSize(heap, 0, block) == 70000 & 0xFFFF
        assert compatheap.HeapSize(heap, 0, block) == 70000  # compatheap's own API is untouched
        assert compatheap.Heap.__name__ and fresh.HeapSize.restype is ctypes.c_int
    finally:
        kernel32.HeapSize.restype, kernel32.HeapSize.argtypes = saved
        compatheap.HeapDestroy(heap)


def test_names_resolve_as_on_windows() -> None:
    kernel32: Any = legacy.legacy_kernel32()
    exported = legacy._dll.exported("kernel32")
    assert {"CreateFileW", "CloseHandle", "VirtualAlloc", "VerSetConditionMask", "HeapAlloc"} <= exported
    for name in sorted(exported):
        assert getattr(kernel32, name).__name__ == name
    with pytest.raises(AttributeError, match="function 'CreateFileZ' not found"):
        kernel32.CreateFileZ  # noqa: B018
    with pytest.raises(AttributeError, match="function 'RtlAllocateHeap' not found"):
        kernel32.RtlAllocateHeap  # noqa: B018
    kernel32.CreateFileW.restype = ctypes.c_void_p
    kernel32.CreateFileW.argtypes = [ctypes.c_wchar_p]
    with pytest.raises(NotEmulatedError, match=r"kernel32\.CreateFileW is not emulated.*heap API only"):
        kernel32.CreateFileW("x")


def test_direct_call_only_when_the_binding_is_exact() -> None:
    kernel32: Any = legacy.legacy_kernel32()
    alloc = kernel32.HeapAlloc
    slow = type(alloc)  # no argtypes yet: through ctypes
    assert slow is not legacy.LegacyFunction and isinstance(alloc, legacy.LegacyFunction)
    alloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t]
    alloc.restype = ctypes.c_void_p
    assert type(alloc) is legacy.LegacyFunction  # the direct class
    heap = compatheap.GetProcessHeap()
    block = alloc(heap, 8, 24)
    assert ctypes.string_at(block, 24) == bytes(24)
    alloc.errcheck = lambda result, func, args: ("checked", func is alloc, args)
    assert type(alloc) is slow
    assert alloc(heap, 0, 1)[:2] == ("checked", True)
    del alloc.errcheck
    alloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint16]  # not the prototype: through ctypes
    assert type(alloc) is slow
    block2 = alloc(heap, 0, 0x10005)
    assert compatheap.HeapSize(heap, 0, block2) == 5
    compatheap.HeapFree(heap, 0, block)
    compatheap.HeapFree(heap, 0, block2)


_INT_TYPES = [ctypes.c_size_t, ctypes.c_uint32, ctypes.c_int32, ctypes.c_int16, ctypes.c_uint8, ctypes.c_int64]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_INT_TYPES), st.integers(min_value=-(1 << 20), max_value=1 << 20))
def test_size_argument_converts_as_ctypes_does(argtype: Any, value: int) -> None:
    """The emulated HeapAlloc sees what ctypes' conversion through the caller's argtype gives."""
    kernel32: Any = legacy.legacy_kernel32()
    kernel32.HeapAlloc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, argtype]
    kernel32.HeapAlloc.restype = ctypes.c_void_p
    bits = argtype(value).value
    # Win64 zero-extends a narrower integer into the 8-byte SIZE_T (as Windows CPython does under
    # Wine); 32-bit x86 widens a signed one to 4 bytes by its sign.
    converted = bits & ((1 << (8 * ctypes.sizeof(argtype))) - 1) if IS_64_BIT else bits & compatheap.SIZE_MAX
    heap = compatheap.HeapCreate(0, 0, 0)
    try:
        block = kernel32.HeapAlloc(heap, 0, value)
        if block is not None:
            assert compatheap.HeapSize(heap, 0, block) == converted
        else:  # only a huge request may fail
            assert converted > 1 << 21 and compatheap.GetLastError() == compatheap.ERROR_NOT_ENOUGH_MEMORY
    finally:
        compatheap.HeapDestroy(heap)


class _Linux8ByteEntry(ctypes.Structure):
    # DWORD written as c_ulong without compatheap run: Linux' 8-byte long.
    _fields_ = [
        ("lpData", ctypes.c_void_p),
        ("cbData", ctypes.c_ulong),
        ("cbOverhead", ctypes.c_ubyte),
        ("iRegionIndex", ctypes.c_ubyte),
        ("wFlags", ctypes.c_ushort),
        ("rest", ctypes.c_ubyte * 24),
    ]


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_long) == 4, reason="C long is 4 bytes here, as on Windows")
def test_c_long_structure_fails_with_the_fix() -> None:
    kernel32: Any = legacy.legacy_kernel32()
    heap = compatheap.GetProcessHeap()
    with pytest.raises(LayoutError) as info:
        kernel32.HeapWalk(ctypes.c_void_p(heap), ctypes.byref(_Linux8ByteEntry()))
    message = str(info.value)
    assert "_Linux8ByteEntry" in message and f"{ctypes.sizeof(_Linux8ByteEntry)} bytes" in message
    assert "cbData" in message and "compatheap run" in message and "c_uint32" in message


def test_undersized_buffer_says_what_is_needed() -> None:
    kernel32: Any = legacy.legacy_kernel32()
    needed = ctypes.sizeof(compatheap.PROCESS_HEAP_ENTRY)  # 40 bytes, 28 on 32-bit
    small = (ctypes.c_ubyte * (needed - 8))()
    with pytest.raises(LayoutError, match=f"needs {needed} bytes.*holds {needed - 8}"):
        kernel32.HeapWalk(ctypes.c_void_p(compatheap.GetProcessHeap()), small)


def test_structure_of_another_class_is_ctypes_argument_error() -> None:
    kernel32: Any = legacy.legacy_kernel32()
    kernel32.HeapWalk.argtypes = [ctypes.c_void_p, ctypes.POINTER(compatheap.PROCESS_HEAP_ENTRY)]
    with pytest.raises(ctypes.ArgumentError):
        kernel32.HeapWalk(compatheap.GetProcessHeap(), compatheap.HEAP_SUMMARY())


def test_int_without_argtypes_is_refused_as_on_windows() -> None:
    kernel32: Any = legacy.legacy_kernel32()
    with pytest.raises(ctypes.ArgumentError, match="argument 1: OverflowError: int too long to convert"):
        kernel32.HeapValidate(1 << 40, 0, None)
    assert kernel32.HeapValidate(ctypes.c_void_p(compatheap.GetProcessHeap()), 0, None) == 1


class _NamesItself:
    @property
    def _as_parameter_(self) -> "_NamesItself":
        return self


def test_as_parameter_naming_itself_raises_instead_of_hanging() -> None:
    # Windows CPython overflows its C stack on this; here it is a Python exception.
    kernel32: Any = legacy.legacy_kernel32()
    with pytest.raises(RecursionError):
        kernel32.HeapSize(ctypes.c_void_p(compatheap.GetProcessHeap()), 0, _NamesItself())
