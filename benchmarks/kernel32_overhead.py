"""Figure 7 alone: the kernel32 backend's per-call cost over a raw ctypes binding.

Runs where kernel32 exists (Windows, or under Wine:
``python tools/winpy.py run benchmarks/kernel32_overhead.py``). It is the
harness's figure 7 (``compatheap bench --only 7``); the code lives in
``compatheap._bench._kernel32``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compatheap._bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--only", "7", *sys.argv[1:]]))
