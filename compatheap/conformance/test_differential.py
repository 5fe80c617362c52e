"""Differential check: seeded random workloads give identical transcripts.

The transcripts of the backend that declares itself the reference (the
emulation) are what the others are compared with; under Wine they are
recorded on the Linux side first (``tox -e wine`` does it) and named by
``COMPATHEAP_TRANSCRIPTS``, so kernel32's own run is compared step by step.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from compatheap.conformance import _support
from compatheap.conformance._transcript import ENV_REFERENCE, SEEDS, STEPS, first_difference, transcript


def _reference(seed: int) -> Any:
    path = os.environ.get(ENV_REFERENCE)
    if path:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        assert data["steps"] == STEPS, "reference transcripts were made with another workload length"
        return data["transcripts"][str(seed)]
    for param in _support.backend_params(restrict=False):
        backend = _support.make_backend(param)
        if backend.capabilities.transcript_reference:
            return transcript(backend, seed)
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_transcripts_match_the_reference(k32: Any, seed: int) -> None:
    """The same seeded workload observes the same results on every backend."""
    reference = _reference(seed)
    if reference is None:
        pytest.skip(f"no reference transcripts: set {ENV_REFERENCE} (tox -e wine does)")
    mine = transcript(k32, seed)
    difference = first_difference(reference, mine)
    assert difference is None, difference


def test_transcripts_are_deterministic(k32: Any) -> None:
    """A transcript depends on the seed only (no addresses, no timing)."""
    assert transcript(k32, 99, 300) == transcript(k32, 99, 300)
