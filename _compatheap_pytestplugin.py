"""pytest plugin of compatheap: a ``heap_backend`` fixture for users' own test suites.

Installed with compatheap (entry point ``pytest11``). A test that asks for
``heap_backend`` runs once per backend usable on the machine, so code written
against the Win32 heap API can be tested on the emulation and, on Windows, on
the real kernel32::

    def test_my_code(heap_backend):
        heap = heap_backend.HeapCreate(0, 0, 0)
        ...

pytest loads this module in every run of every project in the environment, so
it lives outside the ``compatheap`` package: importing that package reads
compatheap's settings, which can fail. Loading the plugin imports nothing that
can; a test that uses the fixture reports such a problem instead.
"""

from __future__ import annotations

from typing import Any, List

import pytest

#: The parameter of tests that cannot get a backend (the fixture says why).
_UNUSABLE = "compatheap-unusable"


def _usable_backends() -> List[str]:
    from compatheap import backends

    return backends.available()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "heap_backend" in metafunc.fixturenames:
        try:
            names = _usable_backends()
        except (ValueError, RuntimeError, ImportError):
            # A bad setting (ConfigError, BackendUnavailable): the fixture reports it.
            names = [_UNUSABLE]
        metafunc.parametrize("heap_backend", names, indirect=True)


@pytest.fixture
def heap_backend(request: pytest.FixtureRequest) -> Any:
    """A compatheap backend (``.HeapAlloc`` etc.), once per usable backend."""
    try:
        from compatheap import backends
    except (ValueError, RuntimeError, ImportError) as exc:
        pytest.fail(f"compatheap cannot start: {exc}", pytrace=False)
    return backends.get(request.param)
