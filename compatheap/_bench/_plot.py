"""The picture: per-call time against block size, per backend and raw libc."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Dict


def draw(curve: Dict[str, Dict[str, float]], path: Path) -> None:
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'compatheap[plot]'") from None
    matplotlib.use("Agg")  # files only, no display needed
    pyplot: Any = importlib.import_module("matplotlib.pyplot")
    fig, ax = pyplot.subplots(figsize=(7, 4.5))
    for name, points in curve.items():
        sizes = sorted(points, key=int)
        ax.plot([int(s) for s in sizes], [points[s] for s in sizes], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("block size (bytes)")
    ax.set_ylabel("ns per HeapAlloc+HeapFree (malloc+free)")
    ax.set_title("compatheap: per-call cost against block size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
