"""Differential check: seeded random workloads give identical transcripts.

The transcripts of the backend that declares itself the reference (the
emulation) are what the others are compared with, in the same process: on
Windows (and under Wine) kernel32's run is compared step by step with the
emulation's; elsewhere the emulation's variants are.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

from compatheap.conformance import _support
from compatheap.conformance._transcript import SEEDS, first_difference, transcript

#: The reference backend and its transcript per seed (which depends on the seed only).
_references: Dict[int, Tuple[Any, List[str]]] = {}


def _reference(seed: int) -> Optional[Tuple[Any, List[str]]]:
    if seed in _references:
        return _references[seed]
    for param in _support.backend_params(restrict=False):
        backend = _support.make_backend(param)
        if backend.capabilities.transcript_reference:
            found = _references[seed] = (backend, transcript(backend, seed))
            return found
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_transcripts_match_the_reference(k32: Any, seed: int) -> None:
    """The same seeded workload observes the same results on every backend."""
    found = _reference(seed)
    if found is None:
        pytest.skip("no backend here is a transcript reference (the emulation cannot run)")
    reference, expected = found
    if reference is k32:
        pytest.skip("this backend is the reference the others are compared with")
    difference = first_difference(expected, transcript(k32, seed))
    assert difference is None, difference


def test_transcripts_are_deterministic(k32: Any) -> None:
    """A transcript depends on the seed only (no addresses, no timing)."""
    assert transcript(k32, 99, 300) == transcript(k32, 99, 300)
