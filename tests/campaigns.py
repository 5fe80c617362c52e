"""Figures of the reliability campaigns, printed at the end of a pytest run.

Each campaign adds its counts under its name; ``tests/conftest.py`` prints
one line per campaign in the terminal summary (whatever ``-s`` says).
"""

from __future__ import annotations

import threading
from typing import Dict

_lock = threading.Lock()
#: campaign -> figure -> count, in the order first reported.
FIGURES: Dict[str, Dict[str, int]] = {}


def record(campaign: str, **counts: int) -> None:
    """Add ``counts`` to ``campaign``'s figures."""
    with _lock:
        figures = FIGURES.setdefault(campaign, {})
        for name, value in counts.items():
            figures[name] = figures.get(name, 0) + value


def lines() -> "list[str]":
    with _lock:
        return [
            f"{campaign}: " + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in figures.items())
            for campaign, figures in FIGURES.items()
        ]
