"""tools/platforms.py: the parts that decide what it builds from (apt sources, the compiler wrapper)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("_platforms_tool", ROOT / "tools" / "platforms.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


TOOL = _tool()

DEB822 = """\
Types: deb
# a comment line inside the stanza
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.invalid/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://other.invalid/apt
Suites: stable
Enabled: no
Components: main
"""

ONE_LINE = """\
# deb http://commented.invalid/debian bookworm main
deb [arch=amd64 signed-by=/etc/keys/k.gpg] http://mirror.invalid/debian bookworm main non-free
deb-src http://mirror.invalid/debian bookworm main
deb http://security.invalid/debian-security bookworm-security main
"""


def test_deb822_stanzas_give_binary_sources_only() -> None:
    found = list(TOOL._deb822_sources(DEB822))
    assert [(s.uris, s.suites, s.components, s.signed_by) for s in found] == [
        (
            ("http://mirror.invalid/debian",),
            ("bookworm", "bookworm-updates"),
            ("main", "contrib"),
            "/usr/share/keyrings/debian-archive-keyring.gpg",
        )
    ]


def test_one_line_entries_with_options() -> None:
    found = list(TOOL._one_line_sources(ONE_LINE))
    assert [(s.uris, s.suites, s.components, s.signed_by) for s in found] == [
        (("http://mirror.invalid/debian",), ("bookworm",), ("main", "non-free"), "/etc/keys/k.gpg"),
        (("http://security.invalid/debian-security",), ("bookworm-security",), ("main",), None),
    ]


def test_this_machines_mirror_serves_its_release() -> None:
    if not Path("/etc/apt").is_dir():
        pytest.skip("no apt configuration here")
    try:
        mirror = TOOL.debian_mirror()
    except SystemExit as exc:
        pytest.skip(str(exc))
    assert any(TOOL.codename() in s.suites and mirror in s.uris for s in TOOL.debian_sources())


@pytest.mark.skipif(shutil.which("musl-gcc") is None or shutil.which("gcc") is None, reason="musl-gcc is not installed")
def test_musl_compiler_wrapper(tmp_path: Path) -> None:
    """configure asks the compiler for its multiarch triplet; the kernel headers are on its path."""
    wrapper = TOOL.Musl(tmp_path).compiler(tmp_path)
    for option in ("-print-multiarch", "--print-multiarch"):
        answer = subprocess.run([str(wrapper), option], capture_output=True, text=True, check=True).stdout
        assert answer.strip().endswith("-linux-musl")
    source = tmp_path / "probe.c"
    source.write_text("#include <linux/mman.h>\n#include <stdlib.h>\nint main(void) { return MREMAP_MAYMOVE - 1; }\n")
    subprocess.run([str(wrapper), str(source), "-o", str(tmp_path / "probe")], check=True)
    assert subprocess.run([str(tmp_path / "probe")]).returncode == 0
