"""The emulated backend (POSIX): see :class:`EmulatedBackend`."""

from ._backend import EmulatedBackend
from ._native import NativeMemory

__all__ = ["EmulatedBackend", "NativeMemory"]
