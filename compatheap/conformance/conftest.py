"""Fixtures of the conformance suite: every test runs on every backend."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from compatheap.conformance import _support


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(capability): runs only on backends whose capabilities have it (see backends.Capabilities)"
    )
    config.addinivalue_line("markers", "wine_deviation(reason): Windows behaviour Wine 8 lacks")
    try:
        _support.requested()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # At collection, not import: a second run in one process may restrict
    # the backends differently (compatheap conformance --backend).
    if "k32" in metafunc.fixturenames:
        metafunc.parametrize("k32", _support.backend_params(), indirect=True)


@pytest.fixture
def k32(request: pytest.FixtureRequest) -> Any:
    """The backend under test, used like ``ctypes.windll.kernel32``."""
    backend = _support.make_backend(request.param)
    capabilities = backend.capabilities
    for marker in request.node.iter_markers("needs"):
        for capability in marker.args:
            if not getattr(capabilities, capability):
                pytest.skip(f"{request.param} lacks the capability {capability} (see backends.Capabilities)")
    deviation = request.node.get_closest_marker("wine_deviation")
    if deviation is not None and capabilities.wine_heap:
        reason = deviation.args[0] if deviation.args else "known Wine deviation"
        request.applymarker(pytest.mark.xfail(reason=f"Wine deviation: {reason}", strict=True))
    return backend


@pytest.fixture
def heap(k32: Any) -> Iterator[int]:
    """A fresh growable heap, destroyed afterwards."""
    handle = k32.HeapCreate(0, 0, 0)
    assert handle
    yield handle
    k32.HeapDestroy(handle)


@pytest.fixture
def fixed_heap(k32: Any) -> Iterator[int]:
    """A fresh fixed-size heap of 0x40000 bytes, destroyed afterwards."""
    handle = k32.HeapCreate(0, 0x40000, 0x40000)
    assert handle
    yield handle
    k32.HeapDestroy(handle)
