#!/usr/bin/env python3
"""Record or verify what Windows CPython prints for each script of tests/legacy/.

    python tools/legacy_transcripts.py --verify   # the recorded transcripts are still Windows' (wine env)
    python tools/legacy_transcripts.py --record   # rewrite tests/legacy/expected/

Each script runs unchanged in Windows CPython under Wine (tools/winpy.py),
twice: as written, and as a copy that takes ``kernel32`` from compatheap.
Windows is the reference, and Wine differs from it in one way these scripts
meet: the message texts of FormatError (Wine's are short). Those are
replaced by Windows' own texts (the table below) before comparing or
recording. Without Wine it prints one line and exits 0 (1 with
COMPATHEAP_REQUIRE_WINE=1), like winpy.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "legacy"
EXPECTED = CORPUS / "expected"
#: FormatMessage texts: Wine 8's -> English Windows'.
WINE_TEXTS: Dict[str, str] = {
    "Success.": "The operation completed successfully.",
    "Invalid function.": "Incorrect function.",
    "File not found.": "The system cannot find the file specified.",
    "Path not found.": "The system cannot find the path specified.",
    "Access denied.": "Access is denied.",
    "Invalid handle.": "The handle is invalid.",
    "Not enough memory.": "Not enough memory resources are available to process this command.",
    "Out of memory.": "Not enough memory resources are available to complete this operation.",
    "General failure.": "A device attached to the system is not functioning.",
    "Invalid parameter.": "The parameter is incorrect.",
    "Call not implemented.": "This function is not supported on this system.",
    "Insufficient buffer.": "The data area passed to a system call is too small.",
    "No more data available.": "No more data is available.",
    "No access to memory location.": "Invalid access to memory location.",
}
DLL_MARK = "# the DLL"


def scripts() -> List[Path]:
    return sorted(p for p in CORPUS.glob("*.py") if not p.name.startswith("_"))


def has_copy(script: Path) -> bool:
    """Whether the script gets a copy using ``compatheap.kernel32``: it stands for
    ``windll.kernel32``, which has no ``use_last_error``, so scripts (and helper
    modules) that ask for it keep their own DLL."""
    text = script.read_text(encoding="utf-8")
    return "use_last_error=True" not in text and "import _winheap" not in text


def compatheap_copy(script: Path, folder: Path) -> Path:
    """The script with its DLL line replaced by ``from compatheap import kernel32``."""
    lines = script.read_text(encoding="utf-8").splitlines()
    out = [
        "from compatheap import kernel32  # the DLL" if DLL_MARK in line and line.startswith("kernel32 =") else line
        for line in lines
    ]
    target = folder / script.name
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return target


def windowsify(text: str) -> str:
    """Wine's FormatError texts replaced by Windows'."""
    for wine, windows in WINE_TEXTS.items():
        text = text.replace(wine, windows)
    return text


def run_in_wine(script: Path) -> str:
    rel = os.path.relpath(script, ROOT)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "winpy.py"), "run", rel],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        return f"FAILED in Windows CPython:\n{result.stdout}{result.stderr}"
    return windowsify(result.stdout.replace("\r\n", "\n"))


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="rewrite the recorded transcripts")
    parser.add_argument("--verify", action="store_true", help="check the recorded transcripts")
    args = parser.parse_args(argv)
    # setup is quick when the cache is ready; it says "ready" only when Wine runs.
    setup = subprocess.run([sys.executable, str(ROOT / "tools" / "winpy.py"), "setup"], capture_output=True, text=True)
    if setup.returncode != 0 or "is ready" not in setup.stderr:
        print(f"legacy transcripts: no Windows CPython under Wine here: {setup.stderr.strip()}")
        return 1 if os.environ.get("COMPATHEAP_REQUIRE_WINE") == "1" else 0
    EXPECTED.mkdir(exist_ok=True)
    failures = 0
    with tempfile.TemporaryDirectory(dir=CORPUS, prefix=".copy-") as tmp:
        for helper in CORPUS.glob("_*.py"):
            compatheap_copy(helper, Path(tmp))
        for script in scripts():
            expected = EXPECTED / f"{script.stem}.txt"
            text = run_in_wine(script)
            copied = run_in_wine(compatheap_copy(script, Path(tmp))) if has_copy(script) else text
            if copied != text:
                print(f"{script.name}: the copy using compatheap.kernel32 prints differently in Windows CPython")
                failures += 1
            if args.record:
                expected.write_text(text, encoding="utf-8")
                print(f"recorded {expected.relative_to(ROOT)}")
            elif not expected.is_file() or expected.read_text(encoding="utf-8") != text:
                print(f"{script.name}: Windows CPython no longer prints {expected.relative_to(ROOT)}")
                failures += 1
    print(f"legacy transcripts: {len(scripts())} scripts, {failures} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
