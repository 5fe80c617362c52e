"""Stateful fuzzing: every heap function and flag against a model, bad input on every turn.

Emulated backend only: the bad inputs (wild pointers, destroyed handles, ...)
crash real Windows. Hypothesis drives the model of ``tests/fuzz/world.py``;
after every step every live block's size and bytes must match the model and
every heap must validate. ``COMPATHEAP_FUZZ=long`` (the ``fuzz`` tox env) runs
the long profile.
"""

from __future__ import annotations

import os
from typing import Optional

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from tests import campaigns
from tests.conftest import require_emulation
from tests.fuzz.world import KINDS, World, make_op, new_backend, release_backend

require_emulation()

LONG = os.environ.get("COMPATHEAP_FUZZ") == "long"
#: Per backend variant: CI's bounded run, and the long campaign (3 variants x
#: 1500 examples x 100 steps = 450,000 steps).
EXAMPLES, STEPS = (1500, 100) if LONG else (200, 50)

numbers = st.integers(0, 2**32 - 1)


class HeapFuzz(RuleBasedStateMachine):
    variant = "plain"

    def __init__(self) -> None:
        super().__init__()
        self.world = World(new_backend(self.variant))

    def _do(self, kind: str, a: int, b: int, c: int, d: int) -> None:
        op = make_op(self.world, kind, a, b, c, d)
        if op is not None:
            self.world.run(op)

    @initialize(kind=st.sampled_from(sorted(KINDS)), flags=numbers)
    def first_heap(self, kind: str, flags: int) -> None:
        self._do("create", flags, flags >> 4, sorted(KINDS).index(kind), 0)

    @rule(a=numbers, b=numbers, c=numbers)
    def create(self, a: int, b: int, c: int) -> None:
        self._do("create", a, b, c, 0)

    @rule(a=numbers)
    def destroy(self, a: int) -> None:
        self._do("destroy", a, 0, 0, 0)

    @rule(a=numbers, b=numbers, c=numbers, d=numbers)
    def alloc(self, a: int, b: int, c: int, d: int) -> None:
        self._do("alloc", a, b, c, d)

    @rule(a=numbers, b=numbers, c=numbers, d=numbers)
    def realloc(self, a: int, b: int, c: int, d: int) -> None:
        self._do("realloc", a, b, c, d)

    @rule(a=numbers, b=numbers)
    def free(self, a: int, b: int) -> None:
        self._do("free", a, b, 0, 0)

    @rule(a=numbers, b=numbers)
    def rewrite(self, a: int, b: int) -> None:
        self._do("rewrite", a, b, 0, 0)

    @rule(a=numbers, b=numbers, c=numbers)
    def inspect(self, a: int, b: int, c: int) -> None:
        self._do("inspect", a, b, c, 0)

    @rule(a=numbers, b=numbers, c=numbers, d=numbers)
    def bad(self, a: int, b: int, c: int, d: int) -> None:
        self._do("bad", a, b, c, d)

    def teardown(self) -> None:
        world = self.world
        campaigns.record("fuzz", steps=world.steps, bad_inputs=world.bad_inputs)
        try:
            world.teardown()
        finally:
            release_backend(world.k32)


@pytest.mark.parametrize("variant", ["plain", "debug", "fallback"])
def test_heap_api_survives_bad_input(variant: str) -> None:
    """Any interleaving of calls, good and bad, keeps every block's bytes and every heap valid."""
    machine = type(f"HeapFuzz_{variant}", (HeapFuzz,), {"variant": variant})
    failure: Optional[BaseException] = None
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    except BaseException as exc:
        failure = exc
        raise
    finally:
        campaigns.record("fuzz", failures=int(failure is not None))
