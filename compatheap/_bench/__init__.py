"""The performance harness behind ``compatheap bench``.

Every figure is a ratio of two medians taken side by side in one process run
(interleaved repetitions). Figures 7 and 8 need kernel32: on other systems
``--wine`` runs them in Windows CPython under Wine. Benchmarks report; nothing
here is a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, TextIO

from ._figures import Figure, Scale, skipped

#: Block sizes of the plot's per-call curve.
PLOT_SIZES = [16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds: a smoke run of a few seconds")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the results as JSON to FILE (or, without FILE, to stdout instead of the table)",
    )
    parser.add_argument(
        "--plot", type=Path, metavar="FILE", help="draw per-call time against block size (needs matplotlib)"
    )
    parser.add_argument(
        "--wine",
        action="store_true",
        help="also run the kernel32 figures (7, 8) in Windows CPython under Wine (from a checkout: tools/winpy.py)",
    )
    parser.add_argument(
        "--only",
        metavar="FIGS",
        help="comma-separated figures to run, by number or by the label the table prints, e.g. 1,3a,7,L",
    )
    # The Wine side of --wine --plot: measure the curve, leave drawing to the host.
    parser.add_argument("--curve", action="store_true", help=argparse.SUPPRESS)


#: Every figure label the table can show; ``--only`` takes these and the bare numbers.
FIGURE_LABELS = ["1", "2", "3", "3a", "3b", "3c", "4", "4a", "4b", "5", "5a", "5b", "5c", "5d", "5e", "6", "6a", "6b"]
FIGURE_LABELS += ["7", "7a", "7b", "7c", "8", "8a", "8b", "8c", "L", "L2"]


def _wanted(only: Optional[str]) -> Optional[Set[str]]:
    """The figure numbers to measure ("3a" needs all of figure 3's measurement)."""
    return None if not only else {part.strip()[:1] for part in only.split(",") if part.strip()}


def _selected(figure: Figure, only: Optional[str]) -> bool:
    labels = {part.strip() for part in (only or "").split(",") if part.strip()}
    return not labels or figure.key in labels or figure.key[:1] in labels


def _emulated_figures(scale: Scale, wanted: Optional[Set[str]]) -> List[Figure]:
    from ..backends import probe
    from . import _emulated
    from ._timing import raw_libc

    usable, why = probe("emulated")
    libc = raw_libc()
    groups = [
        ("1", _emulated.alloc_free),
        ("2", _emulated.realloc_ping_pong),
        ("3", _emulated.big_growth),
        ("4", _emulated.fixed_heap),
        ("5", _emulated.heap_growth),
        ("6", _emulated.memory),
    ]
    found: List[Figure] = []
    if not usable or libc is None:
        reason = why if not usable else "no C library to compare with"
        return [skipped(key, f"emulated figure {key}", reason) for key, _ in groups if wanted is None or key in wanted]
    api = _emulated._backend()
    for key, measure in groups:
        if wanted is not None and key not in wanted:
            continue
        found.extend(measure(api, libc, scale))
    return found


def _kernel32_figures(scale: Scale, wanted: Optional[Set[str]]) -> List[Figure]:
    from ..backends import probe
    from . import _kernel32

    found: List[Figure] = []
    usable, why = probe("kernel32")
    if wanted is None or "7" in wanted:
        if usable:
            found += _kernel32.figures(scale)
        else:
            found.append(
                skipped("7", "kernel32 backend / raw ctypes kernel32", f"{why}; run with --wine", _kernel32.TARGET)
            )
    if wanted is None or "8" in wanted:
        emulation, emulation_why = probe("emulated")
        if usable and emulation:
            found += _kernel32.against_emulated(scale)
        else:
            reason = f"{why}; run with --wine" if not usable else emulation_why
            found.append(skipped("8", "emulated / kernel32, same process, same operations", reason))
    return found


def _wine_side(scale: Scale, wanted: Optional[Set[str]], curve: bool) -> Dict[str, Any]:
    """Run this harness in Windows CPython under Wine; its JSON results."""
    root = Path(__file__).resolve().parents[2]
    winpy = root / "tools" / "winpy.py"
    if not winpy.is_file():
        raise SystemExit("--wine needs a source checkout (tools/winpy.py)")
    # A relative path: Wine's python.exe runs in the same directory.
    handle, name = tempfile.mkstemp(prefix=".bench-wine-", suffix=".json", dir=root)
    os.close(handle)
    try:
        cmd = [sys.executable, str(winpy), "run", "-m", "compatheap", "bench", "--json", Path(name).name]
        cmd += ["--quick"] if scale.quick else []
        cmd += ["--curve"] if curve else []
        if wanted is not None:
            cmd += ["--only", ",".join(sorted(wanted))]
        env = dict(os.environ, COMPATHEAP_REQUIRE_WINE=os.environ.get("COMPATHEAP_REQUIRE_WINE", "1"))
        status = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL).returncode
        text = Path(name).read_text(encoding="utf-8")
        if status != 0 or not text:
            raise SystemExit(f"the Wine side of the benchmark failed (exit status {status})")
        data: Dict[str, Any] = json.loads(text)
        return data
    finally:
        os.unlink(name)


def _figure_from(data: Dict[str, Any]) -> Figure:
    return Figure(
        data["figure"],
        data["title"],
        data["value"],
        data["limit"],
        at_least=data["at_least"],
        hard_limit=data["hard_limit"],
        unit=data["unit"],
        note=data["note"],
        details=data["details"],
    )


def collect(scale: Scale, only: Optional[str] = None, wine: bool = False, plot: bool = False) -> Dict[str, Any]:
    """Measure; the results as a JSON-ready dict."""
    from ..backends import probe

    wanted = _wanted(only)
    figures = _emulated_figures(scale, wanted)
    extra: Dict[str, Any] = {}
    wine_data: Optional[Dict[str, Any]] = None
    if wine and not probe("kernel32")[0]:
        wine_data = _wine_side(scale, {"7", "8"} if wanted is None else wanted & {"7", "8"} or {"7"}, plot)
        figures += [_figure_from(f) for f in wine_data["figures"]]
    else:
        figures += _kernel32_figures(scale, wanted)
    if wanted is None or "L" in wanted:
        from . import _legacy

        figures += _legacy.figures(scale)
    if plot:
        extra["curve"] = _curve(scale)
        if wine_data is not None and "curve" in wine_data:
            # Wine's kernel32 is not Windows': the plot must not pass it off as such.
            extra["curve"].update({f"{name} (Wine)": points for name, points in wine_data["curve"].items()})
    return {
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "quick": scale.quick,
        "figures": [f.as_dict() for f in figures if _selected(f, only)],
        **extra,
    }


def _curve(scale: Scale) -> Dict[str, Dict[str, float]]:
    from ..backends import probe

    if probe("kernel32")[0]:
        from . import _kernel32

        return {"kernel32": _kernel32.per_call_curve(scale, PLOT_SIZES)}
    from . import _emulated
    from ._timing import raw_libc

    libc = raw_libc()
    if libc is None:
        return {}
    found = _emulated.per_call_curve(_emulated._backend(), libc, scale, PLOT_SIZES)
    return {name: {str(size): ns for size, ns in points.items()} for name, points in found.items()}


def format_table(results: Dict[str, Any]) -> str:
    rows = [("fig", "what", "target", "measured", "status")]
    for f in results["figures"]:
        value = f["value"]
        if value is None:
            shown = "-"
        elif f["unit"] == "x":
            shown = f"{value:.2f}x" if value < 10 else f"{value:,.0f}x"
        else:
            shown = f"{value:.1f}{f['unit']}"
        status = f["status"] + (f" ({f['note']})" if f["note"] and f["status"] in ("skipped", "report") else "")
        rows.append((f["figure"], f["title"], f["target"], shown, status))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) if j < 4 else cell for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ------")
    if results["quick"]:
        lines.append("(quick run: sizes and rounds too small for the targets to mean anything)")
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    scale = Scale.make(args.quick)
    results = collect(scale, args.only, args.wine, plot=args.plot is not None or args.curve)
    if args.json == "-":
        json.dump(results, out, indent=2)
        out.write("\n")
    else:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        out.write(format_table(results) + "\n")
    if args.plot is not None:
        from ._plot import draw

        draw(results.get("curve", {}), args.plot)
        if args.json != "-":
            out.write(f"plot written to {args.plot}\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="compatheap bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
