"""Run compatheap's performance harness from a checkout: ``python benchmarks/run.py [--quick] ...``.

The harness itself lives in ``compatheap._bench`` so that the installed
``compatheap bench`` command has it too; this is the same program, with the
checkout put first on ``sys.path``. See docs/performance.md for the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compatheap._bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
