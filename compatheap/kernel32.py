"""``from compatheap import kernel32``: a ``ctypes.WinDLL("kernel32")`` on every OS.

On Windows it is a ``WinDLL("kernel32")`` of its own (the real kernel32, with
function objects nobody else holds). Elsewhere it is a legacy DLL whose heap
functions run on compatheap's active backend with ctypes' own rules for
``argtypes``, ``restype`` and ``errcheck``; the other exported names bind and
raise :class:`compatheap.legacy.NotEmulatedError` when called. Setting
attributes on its functions never changes compatheap's own API.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

__all__ = ["kernel32"]

kernel32: Any
if sys.platform == "win32":
    kernel32 = getattr(ctypes, "WinDLL")("kernel32")  # noqa: B009 - Windows-only name
else:
    from .legacy import legacy_kernel32

    kernel32 = legacy_kernel32()
