#!/usr/bin/env python3
"""Write the names kernel32.dll and ntdll.dll export, read from the PE files' export tables.

    python tools/gen_exports.py [--dll-dir DIR]

The legacy ``WinDLL("kernel32")`` resolves exactly these names, as Windows
does: a module that binds ``CreateFileW`` at import must load, a misspelt name
must raise AttributeError. The DLLs read are Wine's 64-bit builds (the wine
tox env installs them); the lists are written to compatheap/legacy/ as
package data, one name per line, sorted.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "compatheap" / "legacy"
DLLS = ("kernel32", "ntdll")
DEFAULT_DIRS = (
    Path("/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"),
    Path("/usr/lib/wine/x86_64-windows"),
    Path("/usr/lib64/wine/x86_64-windows"),
    Path("/opt/wine-stable/lib64/wine/x86_64-windows"),
)


def _sections(data: bytes, pe: int) -> List[Tuple[int, int, int]]:
    count = struct.unpack_from("<H", data, pe + 6)[0]
    optional_size = struct.unpack_from("<H", data, pe + 20)[0]
    table = pe + 24 + optional_size
    found = []
    for n in range(count):
        virtual_size, rva, raw_size, raw_offset = struct.unpack_from("<IIII", data, table + 40 * n + 8)
        found.append((rva, max(virtual_size, raw_size), raw_offset))
    return found


def export_names(path: Path) -> List[str]:
    """The names in a PE file's export table (forwarded exports included)."""
    data = path.read_bytes()
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\0\0":
        raise ValueError(f"{path} is not a PE file")
    magic = struct.unpack_from("<H", data, pe + 24)[0]
    directories = pe + 24 + (112 if magic == 0x20B else 96)
    export_rva = struct.unpack_from("<I", data, directories)[0]
    sections = _sections(data, pe)

    def offset(rva: int) -> int:
        for start, size, raw in sections:
            if start <= rva < start + size:
                return raw + rva - start
        raise ValueError(f"{path}: RVA {rva:#x} lies in no section")

    directory = offset(export_rva)
    name_count, _, names_rva = struct.unpack_from("<III", data, directory + 24)
    names = []
    table = offset(names_rva)
    for n in range(name_count):
        start = offset(struct.unpack_from("<I", data, table + 4 * n)[0])
        names.append(data[start : data.index(b"\0", start)].decode("ascii"))
    return sorted(set(names))


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dll-dir", type=Path, help="the folder holding 64-bit kernel32.dll and ntdll.dll")
    args = parser.parse_args(argv)
    dirs = [args.dll_dir] if args.dll_dir else [d for d in DEFAULT_DIRS if (d / "kernel32.dll").is_file()]
    if not dirs:
        print("gen_exports: no 64-bit Wine DLL folder found; give --dll-dir", file=sys.stderr)
        return 1
    for dll in DLLS:
        names = export_names(dirs[0] / f"{dll}.dll")
        target = OUT_DIR / f"{dll}.exports"
        target.write_text("".join(name + "\n" for name in names), encoding="ascii")
        print(f"{target.relative_to(ROOT)}: {len(names)} names")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
