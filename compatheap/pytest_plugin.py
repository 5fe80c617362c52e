"""pytest plugin: a ``heap_backend`` fixture for users' own test suites.

Installed with compatheap (entry point ``pytest11``). A test that asks for
``heap_backend`` runs once per backend usable on the machine, so code written
against the Win32 heap API can be tested on the emulation and, on Windows, on
the real kernel32::

    def test_my_code(heap_backend):
        heap = heap_backend.HeapCreate(0, 0, 0)
        ...
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "heap_backend" in metafunc.fixturenames:
        # Imported here: loading the plugin must not import compatheap (and
        # read its config) in every pytest run of the environment.
        from compatheap import backends

        metafunc.parametrize("heap_backend", backends.available(), indirect=True)


@pytest.fixture
def heap_backend(request: pytest.FixtureRequest) -> Any:
    """A compatheap backend (``.HeapAlloc`` etc.), once per usable backend."""
    from compatheap import backends

    return backends.get(request.param)
