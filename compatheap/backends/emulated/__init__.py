"""The emulated backend (POSIX): see :class:`EmulatedBackend`."""

from ._backend import EmulatedBackend

__all__ = ["EmulatedBackend"]
