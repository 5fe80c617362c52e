"""Settings from the environment and the user's config file.

Precedence: environment variables, then ``config.toml`` in
``platformdirs.user_config_path("compatheap")`` (or ``$COMPATHEAP_CONFIG``),
then built-in defaults.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, Mapping, Optional

from ._errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

ENV_BACKEND = "COMPATHEAP_BACKEND"
ENV_DEBUG = "COMPATHEAP_DEBUG"
ENV_CONFIG = "COMPATHEAP_CONFIG"

#: Debug checks that can be switched on, as Windows' global flags do.
DEBUG_CHECKS = frozenset({"tail", "free"})


@dataclass(frozen=True)
class Settings:
    """What compatheap was told, and where each value came from."""

    backend: Optional[str] = None
    backend_source: str = "default"
    debug: FrozenSet[str] = frozenset()
    debug_source: str = "default"
    config_path: Optional[Path] = None
    config_exists: bool = False

    def backend_origin(self) -> str:
        """Where the backend choice came from, and how to change it (for error messages)."""
        if self.backend_source == "environment":
            return f"{ENV_BACKEND}={self.backend} is set in the environment: set it to another backend, or unset it"
        if self.backend_source == "config file":
            return f'backend = "{self.backend}" is set in {self.config_path}: change it, or remove it'
        return "no backend was asked for"


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the config file is looked for."""
    override = environ.get(ENV_CONFIG)
    if override:
        return Path(override)
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - a declared dependency
        return Path.home() / ".config" / "compatheap" / "config.toml"
    return Path(platformdirs.user_config_path("compatheap")) / "config.toml"


def _read_toml(path: Path) -> Dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; a binary file is a bad config, not a crash
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already names the line and column.
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def parse_debug(value: Any, origin: str) -> FrozenSet[str]:
    """``"tail,free"`` or ``["tail", "free"]`` to a set, rejecting unknown checks."""
    if isinstance(value, str):
        items = [part.strip().lower() for part in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = [v.strip().lower() for v in value]
    else:
        raise ConfigError(f"{origin}: debug must be a list of strings, not {value!r}")
    checks = frozenset(item for item in items if item and item not in ("off", "none"))
    unknown = sorted(checks - DEBUG_CHECKS)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown debug check(s) {', '.join(unknown)}; choose from {', '.join(sorted(DEBUG_CHECKS))}"
        )
    return checks


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read the settings. Raises :class:`ConfigError` naming file and line."""
    path = config_path(environ)
    raw = _read_toml(path)
    unknown = sorted(set(raw) - {"backend", "debug"})
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")

    backend, backend_source = None, "default"
    if environ.get(ENV_BACKEND):
        # Names are case-insensitive: "Emulated" and "KERNEL32" mean the backends.
        backend, backend_source = environ[ENV_BACKEND].strip().lower(), "environment"
    elif "backend" in raw:
        if not isinstance(raw["backend"], str):
            raise ConfigError(f"{path}: backend must be a string, not {raw['backend']!r}")
        backend, backend_source = raw["backend"].strip().lower(), "config file"

    debug: FrozenSet[str] = frozenset()
    debug_source = "default"
    if ENV_DEBUG in environ:
        debug, debug_source = parse_debug(environ[ENV_DEBUG], ENV_DEBUG), "environment"
    elif "debug" in raw:
        debug, debug_source = parse_debug(raw["debug"], str(path)), "config file"

    return Settings(
        backend=backend,
        backend_source=backend_source,
        debug=debug,
        debug_source=debug_source,
        config_path=path,
        config_exists=path.is_file(),
    )


def without_backend(environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings minus their backend choice; the defaults when they cannot be read.

    What the ``compatheap`` command starts on when the settings are unusable, so
    that ``info`` and ``--help`` can still run and show the problem.
    """
    try:
        return dataclasses.replace(load(environ), backend=None, backend_source="default")
    except ConfigError:
        return Settings(config_path=config_path(environ))
