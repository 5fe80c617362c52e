"""Backend registry and selection.

``kernel32`` calls the real Windows heap; ``emulated`` reproduces it on POSIX.
Each backend module imports on every OS; whether it can *run* is decided by
its capability probe, not by the platform's name.
"""

from __future__ import annotations

import importlib
import threading
from typing import Dict, List, Optional, Tuple, Type

from .._config import Settings
from .._errors import BackendUnavailable
from ._base import FUNCTIONS, Capabilities, HeapBackend

__all__ = ["FUNCTIONS", "Capabilities", "HeapBackend", "NAMES", "available", "get", "select"]

_MODULES = {
    "kernel32": ("compatheap.backends.kernel32", "Kernel32Backend"),
    "emulated": ("compatheap.backends.emulated", "EmulatedBackend"),
}
#: Every backend name, in order of preference for the default choice.
NAMES = tuple(_MODULES)

_instances: Dict[str, HeapBackend] = {}
_lock = threading.Lock()


def backend_class(name: str) -> Type[HeapBackend]:
    """The class implementing backend ``name``."""
    try:
        module_name, class_name = _MODULES[name]
    except KeyError:
        raise BackendUnavailable(name, "no backend has that name", f"Choose one of: {', '.join(NAMES)}.") from None
    cls: Type[HeapBackend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def probe(name: str) -> Tuple[bool, str]:
    """Whether backend ``name`` can run here, and why not."""
    return backend_class(name).probe()


def available() -> List[str]:
    """The names of the backends usable on this system."""
    return [name for name in NAMES if probe(name)[0]]


def get(name: str, settings: Optional[Settings] = None) -> HeapBackend:
    """The shared instance of backend ``name``; raises if it cannot run here."""
    instance = _instances.get(name)
    if instance is not None:
        return instance
    cls = backend_class(name)
    ok, reason = cls.probe()
    if not ok:
        raise BackendUnavailable(name, reason, cls.fix())
    with _lock:
        instance = _instances.get(name)
        if instance is None:
            if settings is None:
                from .. import _config

                settings = _config.load()
            instance = cls.from_settings(settings)
            _instances[name] = instance
    return instance


def select(settings: Settings) -> Tuple[HeapBackend, str]:
    """The backend the settings ask for, and why it was chosen."""
    if settings.backend:
        try:
            backend = get(settings.backend, settings)
        except BackendUnavailable as exc:
            # Say where the choice came from, and what can run here instead.
            usable = ", ".join(available()) or "none"
            fix = f"{settings.backend_origin()} (usable here: {usable})."
            raise BackendUnavailable(exc.name, exc.reason, fix) from None
        return backend, f"{settings.backend_source} asked for {settings.backend!r}"
    for name in NAMES:
        if probe(name)[0]:
            return get(name, settings), "default: first backend that can run here"
    reasons = "; ".join(f"{n}: {probe(n)[1]}" for n in NAMES)
    raise BackendUnavailable("any", reasons, "compatheap needs Windows or a POSIX C library.")
