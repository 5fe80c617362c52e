"""A Hypothesis state machine over the Pythonic API, checked against a model after every step.

The model keeps each live block's bytes and each typed view's block. Steps
include destroying the heap from another thread and code that runs in the
middle of a write (as a signal handler or finaliser would) trying to free the
block being written. Where the emulation runs, it runs with tail and free
checking, so a write outside a live block is reported by ``HeapValidate``.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import compatheap
from compatheap import Block, Heap, HeapMemoryError, InvalidatedError, TypedView

from .conftest import EMULATION

BACKEND: compatheap.HeapBackend
if EMULATION:
    from compatheap.backends.emulated import EmulatedBackend

    BACKEND = EmulatedBackend(debug={"tail", "free"})
else:
    BACKEND = compatheap.backend

Words = ctypes.c_uint16 * 4
NO_MEMORY = compatheap.SIZE_MAX - 0x1000


class FreesTheBlock:
    """An index whose conversion tries to free the block being written."""

    def __init__(self, heap: Heap, block: Block) -> None:
        self.heap, self.block = heap, block
        self.refused = False

    def __index__(self) -> int:
        try:
            self.heap.free(self.block)
        except BufferError:
            self.refused = True
        return 0x5A


class PythonicMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.heap = Heap(backend=BACKEND)
        #: Live blocks in the order the heap object made them, with their bytes.
        self.live: Dict[Block, bytearray] = {}
        self.views: List[Tuple[Block, "TypedView[ctypes.Array[ctypes.c_uint16]]"]] = []
        self.dead: List[Block] = []

    def _pick(self, index: int) -> Block:
        return list(self.live)[index % len(self.live)]

    @rule(size=st.integers(0, 600), zero=st.booleans())
    def alloc(self, size: int, zero: bool) -> None:
        block = self.heap.alloc(size, zero=zero)
        self.live[block] = bytearray(size) if zero else bytearray(bytes(block))

    @rule(values=st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4))
    def new_typed(self, values: List[int]) -> None:
        block, words = self.heap.new(Words)
        assert list(words) == [0, 0, 0, 0]
        for index, value in enumerate(values):
            words[index] = value
        self.live[block] = bytearray(b"".join(v.to_bytes(2, sys.byteorder) for v in values))
        self.views.append((block, words))

    @precondition(lambda self: self.views)
    @rule(pick=st.integers(0, 100), index=st.integers(0, 3), value=st.integers(0, 0xFFFF))
    def write_typed(self, pick: int, index: int, value: int) -> None:
        block, words = self.views[pick % len(self.views)]
        if block in self.live:
            words[index] = value
            self.live[block][2 * index : 2 * index + 2] = value.to_bytes(2, sys.byteorder)
        else:
            with pytest.raises(InvalidatedError):
                words[index] = value

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 100), offset=st.integers(0, 600), data=st.binary(max_size=40))
    def write(self, pick: int, offset: int, data: bytes) -> None:
        block = self._pick(pick)
        start = min(offset, len(block))
        data = data[: len(block) - start]
        block[start : start + len(data)] = data
        self.live[block][start : start + len(data)] = data

    @precondition(lambda self: any(len(block) for block in self.live))
    @rule(pick=st.integers(0, 100))
    def nested_free_during_write(self, pick: int) -> None:
        sized = [block for block in self.live if len(block)]
        block = sized[pick % len(sized)]
        value = FreesTheBlock(self.heap, block)
        block[0] = value
        assert value.refused and block.alive
        self.live[block][0] = 0x5A

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 100), size=st.integers(0, 3000), in_place=st.booleans(), fail=st.booleans())
    def realloc(self, pick: int, size: int, in_place: bool, fail: bool) -> None:
        block = self._pick(pick)
        if fail:
            with pytest.raises(HeapMemoryError):
                self.heap.realloc(block, NO_MEMORY, in_place=in_place)
            assert block.alive
            return
        try:
            new = self.heap.realloc(block, size, in_place=in_place)
        except HeapMemoryError:
            assert in_place and block.alive
            return
        kept = self.live.pop(block)[:size]
        self.dead.append(block)
        self.live[new] = kept + bytearray(bytes(new)[len(kept) :])

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 100))
    def free(self, pick: int) -> None:
        block = self._pick(pick)
        self.heap.free(block)
        del self.live[block]
        self.dead.append(block)
        with pytest.raises(InvalidatedError):
            self.heap.free(block)

    @rule()
    def destroy_from_another_thread(self) -> None:
        failures: List[BaseException] = []

        def destroy() -> None:
            try:
                self.heap.destroy()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                failures.append(exc)

        thread = threading.Thread(target=destroy)
        thread.start()
        thread.join(30)
        assert not thread.is_alive() and failures == [] and self.heap.destroyed
        self.dead.extend(self.live)
        self.live.clear()
        with pytest.raises(InvalidatedError):
            self.heap.alloc(1)
        self.heap = Heap(backend=BACKEND)

    @invariant()
    def matches_the_model(self) -> None:
        assert self.heap.blocks() == list(self.live)
        for block, contents in self.live.items():
            assert bytes(block) == bytes(contents)
            assert len(block) == len(contents)
        for block, words in self.views:
            if block in self.live:
                assert bytes(words) == bytes(self.live[block])
        assert self.heap.validate()

    @invariant()
    def dead_stays_dead(self) -> None:
        for block in self.dead[-20:]:
            assert not block.alive
            with pytest.raises(InvalidatedError):
                bytes(block)
        for block, words in self.views[-5:]:
            if block not in self.live:
                with pytest.raises(InvalidatedError):
                    words[0]  # noqa: B018

    def teardown(self) -> None:
        if not self.heap.destroyed:
            self.heap.destroy()


PythonicMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_pythonic_api_against_a_model = PythonicMachine.TestCase
