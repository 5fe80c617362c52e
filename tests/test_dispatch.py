"""Backend registry, selection and its error messages."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import compatheap
from compatheap import backends
from compatheap._config import Settings
from compatheap.backends.emulated import EmulatedBackend

from .conftest import needs_emulation, run_python


def test_every_backend_module_imports_here() -> None:
    """Backend modules import on every OS; only probing says whether they run."""
    for name in backends.NAMES:
        module = importlib.import_module(f"compatheap.backends.{name}")
        cls = backends.backend_class(name)
        ok, reason = cls.probe()
        assert isinstance(ok, bool) and reason
        assert module is not None


def test_available_lists_runnable_backends() -> None:
    names = backends.available()
    assert names, "some backend must run here"
    for name in names:
        assert backends.probe(name)[0]
    for name in set(backends.NAMES) - set(names):
        assert not backends.probe(name)[0]


def test_active_backend_carries_every_function() -> None:
    assert compatheap.backend.name in backends.available()
    for fname in backends.FUNCTIONS:
        assert callable(getattr(compatheap.backend, fname))
        assert callable(getattr(compatheap, fname))
        assert callable(getattr(compatheap.kernel32, fname))


def test_kernel32_refuses_names_kernel32_lacks() -> None:
    with pytest.raises(AttributeError, match="function 'HeapAllocate' not found"):
        compatheap.kernel32.HeapAllocate  # noqa: B018


def test_unknown_backend_name() -> None:
    with pytest.raises(compatheap.BackendUnavailable) as info:
        backends.get("nonsense")
    assert "nonsense" in str(info.value)
    assert "emulated" in str(info.value)  # the fix lists the real names


def test_unavailable_backend_error_names_reason_and_fix() -> None:
    missing = [n for n in backends.NAMES if not backends.probe(n)[0]]
    if not missing:
        pytest.skip("every backend runs here")
    with pytest.raises(compatheap.BackendUnavailable) as info:
        backends.get(missing[0])
    err = info.value
    assert err.name == missing[0]
    assert err.reason == backends.probe(missing[0])[1]
    assert "COMPATHEAP_BACKEND" in err.fix
    assert missing[0] in str(err) and err.reason in str(err)


@needs_emulation
def test_select_honours_the_settings() -> None:
    backend, why = backends.select(Settings(backend="emulated", backend_source="environment"))
    assert isinstance(backend, EmulatedBackend)
    assert "environment" in why
    backend, why = backends.select(Settings())
    assert backend.name == backends.available()[0]
    assert why.startswith("default")


@needs_emulation
def test_environment_selects_backend_at_import() -> None:
    result = run_python(
        "import compatheap; print(compatheap.backend.name, '|', compatheap.backend_reason)",
        {"COMPATHEAP_BACKEND": "emulated"},
    )
    assert result.returncode == 0, result.stderr
    name, why = result.stdout.strip().split(" | ")
    assert name == "emulated" and "environment" in why


@needs_emulation
def test_config_file_selects_backend(config_file: Path) -> None:
    config_file.write_text('backend = "emulated"\n')
    result = run_python("import compatheap; print(compatheap.backend_reason)", {"COMPATHEAP_CONFIG": str(config_file)})
    assert result.returncode == 0, result.stderr
    assert "config file" in result.stdout


@needs_emulation
def test_environment_wins_over_config_file(config_file: Path) -> None:
    config_file.write_text('backend = "nonsense"\n')
    result = run_python(
        "import compatheap; print(compatheap.backend.name)",
        {"COMPATHEAP_CONFIG": str(config_file), "COMPATHEAP_BACKEND": "emulated"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "emulated"


def test_unusable_backend_fails_at_import_not_on_first_call() -> None:
    missing = [n for n in backends.NAMES if not backends.probe(n)[0]]
    if not missing:
        pytest.skip("every backend runs here")
    result = run_python("import compatheap", {"COMPATHEAP_BACKEND": missing[0]})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "BackendUnavailable" in last and missing[0] in last and "COMPATHEAP_BACKEND" in last
