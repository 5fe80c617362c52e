"""Check that the sdist in DIST can run its own tests: ``python tools/check_sdist.py DIST``.

The wheel holds the package only; the sdist must also carry what tox.ini and
the tests use (tests, fuzz corpus, docs, examples, tools), or a downstream
packager cannot test what they build.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path
from typing import List

#: Paths (relative to the sdist's top directory) that must be present.
REQUIRED = [
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "tox.ini",
    "mkdocs.yml",
    "pyproject.toml",
    "_compatheap_pytestplugin.py",
    "compatheap/conformance/conformance.ini",
    "tests/conftest.py",
    "tests/fuzz/corpus/seed-0",
    "docs/index.md",
    "examples/legacy_heap.py",
    "tools/winpy.py",
]


def missing(sdist: Path) -> List[str]:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    return [path for path in REQUIRED if path not in names]


def main(argv: List[str]) -> int:
    dist = Path(argv[0]) if argv else Path("dist")
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(sdists) != 1:
        print(f"check_sdist: expected one sdist in {dist}, found {len(sdists)}", file=sys.stderr)
        return 2
    lacking = missing(sdists[0])
    for path in lacking:
        print(f"check_sdist: {sdists[0].name} lacks {path}", file=sys.stderr)
    if not lacking:
        print(f"check_sdist: {sdists[0].name} carries its tests, docs and tools")
    return 1 if lacking else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
