"""A model-based check: random sequences of heap calls against a model of the live blocks."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from compatheap import (
    ERROR_NOT_ENOUGH_MEMORY,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_SIZE_FAILURE,
    HEAP_ZERO_MEMORY,
)
from compatheap.conformance._support import busy_blocks, fill, read, walk_full, write

#: Live blocks stay few and small: both heaps always have room for all of them
#: (20 × 4 KiB is well inside a fixed heap's 0x40000 bytes), so only an
#: in-place-only growth may fail.
MAX_LIVE = 20
sizes = st.integers(0, 4096)
picks = st.integers(0, 10**6)

_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class HeapModel(RuleBasedStateMachine):
    """The heap must agree with ``blocks``: pointer -> exact contents (its length is the size)."""

    def __init__(self, k32: Any, fixed: bool) -> None:
        super().__init__()
        self.k32 = k32
        self.fixed = fixed
        self.heap = k32.HeapCreate(0, 0x40000, 0x40000) if fixed else k32.HeapCreate(0, 0, 0)
        assert self.heap
        self.blocks: Dict[int, bytes] = {}
        self.seed = 0

    def _pick(self, pick: int) -> int:
        return sorted(self.blocks)[pick % len(self.blocks)]

    def _fresh(self, length: int) -> bytes:
        self.seed += 1
        return fill(length, self.seed)

    # -- rules -----------------------------------------------------------------
    @precondition(lambda self: len(self.blocks) < MAX_LIVE)
    @rule(size=sizes, zero=st.booleans())
    def alloc(self, size: int, zero: bool) -> None:
        block = self.k32.HeapAlloc(self.heap, HEAP_ZERO_MEMORY if zero else 0, size)
        assert block
        assert block not in self.blocks
        if zero:
            assert read(block, size) == bytes(size)
            contents = bytes(size)
        else:
            contents = self._fresh(size)
            write(block, contents)
        self.blocks[block] = contents

    @precondition(lambda self: self.blocks)
    @rule(pick=picks, size=sizes, zero=st.booleans(), in_place=st.booleans())
    def realloc(self, pick: int, size: int, zero: bool, in_place: bool) -> None:
        block = self._pick(pick)
        old = self.blocks[block]
        flags = (HEAP_ZERO_MEMORY if zero else 0) | (HEAP_REALLOC_IN_PLACE_ONLY if in_place else 0)
        self.k32.SetLastError(0)
        moved = self.k32.HeapReAlloc(self.heap, flags, block, size)
        if not moved:
            # Only an in-place growth may fail; the block must be as it was.
            assert in_place and size > len(old)
            assert self.k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
            assert self.k32.HeapValidate(self.heap, 0, block)
            return
        if in_place:
            assert moved == block
        kept = old[:size]
        if size > len(old):
            if zero:
                assert read(moved + len(old), size - len(old)) == bytes(size - len(old))
                grown = bytes(size - len(old))
            else:
                grown = self._fresh(size - len(old))
                write(moved + len(old), grown)
            kept += grown
        del self.blocks[block]
        assert moved not in self.blocks
        self.blocks[moved] = kept

    @precondition(lambda self: self.blocks)
    @rule(pick=picks)
    def free(self, pick: int) -> None:
        block = self._pick(pick)
        assert self.k32.HeapFree(self.heap, 0, block)
        del self.blocks[block]

    @precondition(lambda self: self.blocks)
    @rule(pick=picks)
    def rewrite(self, pick: int) -> None:
        block = self._pick(pick)
        contents = self._fresh(len(self.blocks[block]))
        write(block, contents)
        self.blocks[block] = contents

    @rule()
    def walk(self) -> None:
        sizes_seen = busy_blocks(walk_full(self.k32, self.heap))
        assert sizes_seen == {block: len(data) for block, data in self.blocks.items()}

    @precondition(lambda self: self.blocks)
    @rule(pick=picks)
    def validate_block(self, pick: int) -> None:
        assert self.k32.HeapValidate(self.heap, 0, self._pick(pick))

    # -- checked after every step --------------------------------------------
    @invariant()
    def blocks_match_model(self) -> None:
        k32, heap = self.k32, self.heap
        for block, contents in self.blocks.items():
            size = k32.HeapSize(heap, 0, block)
            assert size != HEAP_SIZE_FAILURE
            assert size == len(contents)
            assert read(block, size) == contents
        assert k32.HeapValidate(heap, 0, None)

    def teardown(self) -> None:
        assert self.k32.HeapDestroy(self.heap)


@pytest.mark.parametrize("fixed", [False, True], ids=["growable", "fixed"])
def test_heap_follows_model(k32: Any, fixed: bool) -> None:
    """Any sequence of alloc/realloc (zeroing, in place or not)/free keeps every block's size and
    bytes, and the heap valid."""
    # Typed loosely: hypothesis' annotations of this helper differ between releases.
    run: Any = run_state_machine_as_test
    run(lambda: HeapModel(k32, fixed), settings=_SETTINGS)
