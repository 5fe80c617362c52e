"""Every ```python block of the docs and README runs, so none can rot.

Blocks that must not run use another fence (```pycon, ```text, ```console).
Windows code (it uses ``windll`` or ``WinDLL``) runs as the docs say it runs
elsewhere: through ``python -m compatheap run``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from .conftest import EMULATION, EMULATION_WHY, ROOT, child_env

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_WINDOWS_CODE = re.compile(r"\bwindll\b|\bWinDLL\b")


def _blocks() -> List[Tuple[str, str]]:
    pages = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    found = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for number, match in enumerate(_FENCE.finditer(text), start=1):
            line = text.count("\n", 0, match.start()) + 2
            found.append((f"{page.relative_to(ROOT)}:{line}#{number}", match.group(1)))
    return found


BLOCKS = _blocks()


def test_docs_have_python_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_example_runs(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    if not EMULATION and ('"emulated"' in code or "EmulatedBackend" in code):
        pytest.skip(f"this example uses the emulated backend, which cannot run here: {EMULATION_WHY}")
    env = child_env({"COMPATHEAP_CONFIG": str(tmp_path / "no-config.toml")})
    windows_code = bool(_WINDOWS_CODE.search(code)) and "compatheap.install()" not in code
    command = (
        [sys.executable, "-m", "compatheap", "run", str(script)] if windows_code else [sys.executable, str(script)]
    )
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_docs_build_strict(tmp_path: Path) -> None:
    """The tox env ``docs`` is the real check; this runs it where MkDocs is installed."""
    mkdocs = shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("MkDocs is not installed here (the tox env docs installs it and runs this test)")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    assert "InvalidatedError" in reference and "realloc" in reference
    # Cross-references of the docstrings render: no raw reStructuredText roles left.
    raw = re.findall(r":(?:class|func|meth|data|mod|attr|exc):", reference)
    assert not raw, f"{len(raw)} raw roles in the API reference"


def test_readme_lists_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlisted = [page.name for page in sorted((ROOT / "docs").glob("*.md")) if f"(docs/{page.name})" not in readme]
    assert not unlisted, f"README.md does not link {unlisted}"
