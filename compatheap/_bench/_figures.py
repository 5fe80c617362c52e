"""What a benchmark reports: figures with their targets, and the run's scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class Scale:
    """How big and how often: the full run, or a quick smoke run."""

    quick: bool
    rounds: int  # interleaved repetitions per figure
    calls: int  # operations per repetition of a per-call figure
    big_block: int  # figure 3's starting block size (bytes)
    copy_rounds: int  # repetitions of figure 3's copying baseline
    fragments: int  # figure 4's live blocks in the fragmented heap
    live_small: int  # figure 5's small heap
    live_large: int  # figure 5's large heap (and HeapDestroy's block count)
    destroy_rounds: int
    walk_small: int
    walk_large: int
    memory_blocks: int  # figure 6
    walk_huge: int  # figure 5d's big heap (against walk_small)
    walk_rounds: int  # repetitions of figure 5d

    @classmethod
    def make(cls, quick: bool) -> "Scale":
        if quick:
            return cls(True, 3, 2000, 36 << 20, 1, 2000, 1000, 20000, 1, 1000, 10000, 10000, 20000, 1)
        return cls(False, 15, 20000, 64 << 20, 3, 100000, 1000, 1000000, 3, 10000, 100000, 1000000, 1000000, 3)


@dataclass
class Figure:
    """One line of the table.

    ``limit`` is the bound the measured value is checked against: an upper
    bound for ratios that must stay small, a lower bound when ``at_least``.
    Figures without a limit are reported only.
    """

    key: str
    title: str
    value: Optional[float]
    limit: Optional[float] = None
    at_least: bool = False
    hard_limit: Optional[float] = None  # "never above" bound, when there is one
    unit: str = "x"
    note: str = ""
    details: Dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        if self.limit is None:
            return "report"
        text = f"{'>=' if self.at_least else '<='} {self.limit:g}{self.unit}"
        if self.hard_limit is not None:
            text += f" (never > {self.hard_limit:g})"
        return text

    @property
    def status(self) -> str:
        if self.value is None:
            return "skipped"
        if self.limit is None:
            return "report"
        met = self.value >= self.limit if self.at_least else self.value <= self.limit
        if met:
            return "ok"
        if self.hard_limit is not None and self.value <= self.hard_limit:
            return "over target"
        return "OVER"

    def as_dict(self) -> Dict[str, Any]:
        return {
            "figure": self.key,
            "title": self.title,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "limit": self.limit,
            "at_least": self.at_least,
            "hard_limit": self.hard_limit,
            "status": self.status,
            "note": self.note,
            "details": self.details,
        }


def skipped(key: str, title: str, why: str, limit: Optional[float] = None, unit: str = "x") -> Figure:
    return Figure(key, title, None, limit, unit=unit, note=why)
