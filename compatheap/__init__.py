"""The Win32 heap API with Windows' semantics on every operating system.

``compatheap.HeapAlloc`` and friends behave like ``kernel32`` functions bound
through ctypes with full argtypes. On Windows they are the real kernel32; on
other systems an emulation gives the same results, last-error codes included.
``from compatheap import kernel32`` is a drop-in for ``ctypes.windll.kernel32``.
"""

from __future__ import annotations

from typing import Optional

from . import _config, _launch, backends
from ._constants import *  # noqa: F403 - the Win32 constants are public API
from ._constants import __all__ as _constant_names
from ._errors import BackendUnavailable, ConfigError, HeapError, HeapException, HeapMemoryError, InvalidatedError
from ._structs import HEAP_SUMMARY, PROCESS_HEAP_ENTRY
from .backends import HeapBackend

__version__ = "0.1.0"

#: What the environment and config file said (see :mod:`compatheap._config`).
settings: _config.Settings
#: The active backend, and why it was chosen.
backend: HeapBackend
backend_reason: str
#: In the ``compatheap`` command only: why the settings could not be used.
startup_error: Optional[Exception] = None
try:
    settings = _config.load()
    backend, backend_reason = backends.select(settings)
except (ConfigError, BackendUnavailable) as _error:
    if not _launch.launched_as_command():
        raise  # importers get it raised
    # The command starts on the default choice: ``info`` and ``--help`` show the
    # problem, every other subcommand stops on it in one line (see _cli).
    startup_error = _error
    settings = _config.without_backend()
    try:
        backend, backend_reason = backends.select(settings)
    except BackendUnavailable:
        _launch.fail(_error)

# Bound once: a call goes straight to the backend, with no dispatch per call.
GetProcessHeap = backend.GetProcessHeap
GetProcessHeaps = backend.GetProcessHeaps
HeapCreate = backend.HeapCreate
HeapDestroy = backend.HeapDestroy
HeapAlloc = backend.HeapAlloc
HeapReAlloc = backend.HeapReAlloc
HeapFree = backend.HeapFree
HeapSize = backend.HeapSize
HeapValidate = backend.HeapValidate
HeapCompact = backend.HeapCompact
HeapLock = backend.HeapLock
HeapUnlock = backend.HeapUnlock
HeapWalk = backend.HeapWalk
HeapSummary = backend.HeapSummary
HeapQueryInformation = backend.HeapQueryInformation
HeapSetInformation = backend.HeapSetInformation
GetLastError = backend.GetLastError
SetLastError = backend.SetLastError

from .block import Block, TypedView  # noqa: E402
from .heap import Heap, HeapEntry, HeapUsage  # noqa: E402
from .kernel32 import kernel32  # noqa: E402 - a WinDLL("kernel32"); needs the functions above
from .legacy import install, uninstall  # noqa: E402

__all__ = [
    *_constant_names,
    *backends.FUNCTIONS,
    "BackendUnavailable",
    "Block",
    "ConfigError",
    "HEAP_SUMMARY",
    "Heap",
    "HeapBackend",
    "HeapEntry",
    "HeapError",
    "HeapException",
    "HeapMemoryError",
    "HeapUsage",
    "InvalidatedError",
    "PROCESS_HEAP_ENTRY",
    "TypedView",
    "backend",
    "backend_reason",
    "backends",
    "install",
    "kernel32",
    "settings",
    "startup_error",
    "uninstall",
]
