"""An exception landing in the middle of an emulated heap call (a signal handler's).

docs/reliability.md promises that the process does not crash because of the
interrupt alone: whatever step of a call the exception cuts short, the heap's
records stay true (at worst a block leaks), so the heap can be validated,
walked, used and destroyed afterwards without a double free.

Two ways in: an exception raised at the native seam, just before or just
after each native call of a scripted workload in turn (deterministic, and
the ledger of :class:`tests.faulty.FaultyMemory` turns a double free into a
test failure instead of a crash); and a storm of timer signals whose handler
raises, through the Win32-named functions, in a child process.
"""

from __future__ import annotations

import ctypes
import functools
import signal
import subprocess
import sys
from types import CodeType
from typing import Callable, Iterator, List, Set, Tuple, TypeVar

import pytest

from compatheap import (
    ERROR_NO_MORE_ITEMS,
    HEAP_REALLOC_IN_PLACE_ONLY,
    HEAP_ZERO_MEMORY,
    PROCESS_HEAP_ENTRY,
    PROCESS_HEAP_ENTRY_BUSY,
)
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._heap import LARGE_THRESHOLD
from compatheap.backends.emulated._native import Address
from tests.conftest import child_env, require_emulation
from tests.faulty import FaultyMemory
from tests.tracing import at_step

require_emulation()

HAS_SETITIMER = hasattr(signal, "setitimer")
_R = TypeVar("_R")


class Interrupt(Exception):
    """What a signal handler raised."""


class InterruptingMemory(FaultyMemory):
    """This system's memory calls; the ``at``-th native call (of any kind) is
    interrupted: an :class:`Interrupt` is raised just before the call is made
    (``after`` False) or just after it returned (``after`` True), as a signal
    handler's exception lands between two steps of the emulation's code."""

    def __init__(self, at: int, after: bool, *, use_remap: bool = True, use_usable_size: bool = True) -> None:
        super().__init__(use_remap=use_remap, use_usable_size=use_usable_size)
        self.at = at
        self.after = after
        self.seen = 0
        self.interrupted = ""

    def _around(self, name: str, call: Callable[[], _R]) -> _R:
        self.seen += 1
        hit = self.seen == self.at
        if hit and not self.after:
            self.interrupted = f"before {name}"
            raise Interrupt(self.interrupted)
        result = call()
        if hit:
            self.interrupted = f"after {name}"
            raise Interrupt(self.interrupted)
        return result

    def malloc(self, size: int) -> Address:
        return self._around("malloc", lambda: super(InterruptingMemory, self).malloc(size))

    def realloc(self, address: Address, size: int) -> Address:
        return self._around("realloc", lambda: super(InterruptingMemory, self).realloc(address, size))

    def free(self, address: Address) -> None:
        self._around("free", lambda: super(InterruptingMemory, self).free(address))

    def usable_size(self, address: Address) -> int:
        return self._around("usable_size", lambda: super(InterruptingMemory, self).usable_size(address))

    def map(self, length: int, executable: bool = False) -> Address:
        return self._around("map", lambda: super(InterruptingMemory, self).map(length, executable))

    def unmap(self, address: Address, length: int) -> bool:
        return self._around("unmap", lambda: self._unmap(address, length))

    def _unmap(self, address: Address, length: int) -> bool:
        """Unmap, allowing the first pages of a longer mapping: a record cut short
        by an interrupt names fewer pages than are mapped (the rest leaks), never more."""
        pages = self._pages(length)
        mapped = self.mappings.get(address, 0)
        if mapped <= pages:
            return super().unmap(address, length)
        done = self.real.unmap(address, pages)
        if done:
            del self.mappings[address]
            self.mappings[address + pages] = mapped - pages
        return done

    def decommit(self, address: Address, length: int) -> bool:
        return self._around("decommit", lambda: super(InterruptingMemory, self).decommit(address, length))

    def commit(self, address: Address, length: int, executable: bool = False) -> bool:
        return self._around("commit", lambda: super(InterruptingMemory, self).commit(address, length, executable))

    def remap(self, address: Address, length: int, new_length: int, may_move: bool) -> Address:
        real = super().remap
        return self._around("remap", lambda: real(address, length, new_length, may_move))


def _workload(k32: EmulatedBackend, heap: int) -> None:
    """Every kind of step: spare blocks, in-place and moving growth (realloc, mremap,
    copying), shrinking (decommit), growing back (commit), frees to quarantine, compaction, a walk."""

    def alloc(size: int, flags: int = 0) -> int:
        block = k32.HeapAlloc(heap, flags, size)
        assert block, size
        return block

    def realloc(block: int, size: int, flags: int = 0) -> int:
        return k32.HeapReAlloc(heap, flags, block, size) or block

    small = [alloc(16 + 24 * i) for i in range(6)]
    for block in small[::2]:
        assert k32.HeapFree(heap, 0, block)
    again = [alloc(16 + 24 * i, HEAP_ZERO_MEMORY) for i in (0, 2, 4)]
    grown = realloc(small[1], 5000, HEAP_ZERO_MEMORY)
    grown = realloc(grown, 100)
    grown = realloc(grown, 120)
    realloc(small[3], 20000, HEAP_REALLOC_IN_PLACE_ONLY)
    big = k32.HeapAlloc(heap, 0, LARGE_THRESHOLD + 100)  # (a fixed heap refuses it)
    if big:
        big = realloc(big, 4 * LARGE_THRESHOLD, HEAP_ZERO_MEMORY)
        big = realloc(big, LARGE_THRESHOLD + 10)
        big = realloc(big, 2 * LARGE_THRESHOLD, HEAP_ZERO_MEMORY)
        big = realloc(big, 3 * LARGE_THRESHOLD, HEAP_REALLOC_IN_PLACE_ONLY)
        moved = realloc(small[5], 2 * LARGE_THRESHOLD)  # small to mapped: a copying move
        assert k32.HeapFree(heap, 0, moved)
    k32.HeapCompact(heap, 0)
    _busy_blocks(k32, heap)
    for block in again + [grown, small[3]]:
        assert k32.HeapFree(heap, 0, block)
    if big:
        assert k32.HeapFree(heap, 0, big)
    for size in (16, 40, 64, 300, 7000):
        assert k32.HeapFree(heap, 0, alloc(size))


def _busy_blocks(k32: EmulatedBackend, heap: int) -> List[Tuple[int, int]]:
    """The heap's busy blocks as HeapWalk lists them: (address, size)."""
    entry = PROCESS_HEAP_ENTRY()
    found = []
    while k32.HeapWalk(heap, ctypes.byref(entry)):
        if entry.wFlags & PROCESS_HEAP_ENTRY_BUSY:
            found.append((entry.lpData or 0, entry.cbData))
    assert k32.GetLastError() == ERROR_NO_MORE_ITEMS
    return found


def _check_records(k32: EmulatedBackend, heap: int) -> None:
    """Validation passes, the walk lists each block once, with its size, no two
    overlapping, and new blocks overlap none of them (no block handed out twice)."""
    assert k32.HeapValidate(heap, 0, None)
    busy = _busy_blocks(k32, heap)
    assert len({address for address, _ in busy}) == len(busy), busy
    for address, size in busy:
        assert k32.HeapSize(heap, 0, address) == size
        assert k32.HeapValidate(heap, 0, address)
    for size in (16, 40, 64, 88, 112, 136, 100, 120, 5000, LARGE_THRESHOLD + 100):
        block = k32.HeapAlloc(heap, 0, size)
        if block:
            busy.append((block, size))
    spans = sorted(busy)
    for (start, size), (following, _) in zip(spans, spans[1:]):
        assert start + size <= following, f"blocks overlap: {start:#x}+{size:#x} and {following:#x}"


#: Growable heaps (a fixed-size heap makes no native call between its
#: creation and its destruction): the debug checks, and whether the system's
#: mremap and usable-size calls are used or the fallbacks taken.
KINDS = {
    "plain": ((), True),
    "fallback": ((), False),
    "debug": (("tail", "free"), True),
}


def _runs(kind: str) -> Iterator[Tuple[InterruptingMemory, EmulatedBackend, int]]:
    """A fresh heap per (native call, before/after), until the workload makes no more calls."""
    debug, system_calls = KINDS[kind]
    at = 1
    while True:
        for after in (False, True):
            memory = InterruptingMemory(0, after, use_remap=system_calls, use_usable_size=system_calls)
            k32 = EmulatedBackend(debug=debug, memory=memory)
            heap = k32.HeapCreate(0, 0, 0)
            assert heap
            memory.at = memory.seen + at  # (the heap's creation is not interrupted)
            yield memory, k32, heap
            if not memory.interrupted:
                return
        at += 1


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_interrupt_at_each_native_call_leaves_the_heap_usable(kind: str) -> None:
    interrupts = []
    for memory, k32, heap in _runs(kind):
        try:
            _workload(k32, heap)
        except Interrupt:
            pass
        interrupted, at = memory.interrupted, memory.at
        memory.at = 0  # From here on, nothing is interrupted.
        try:
            _check_records(k32, heap)
            # A double free or unmap of memory not mapped raises NativeMisuse here.
            assert k32.HeapDestroy(heap)
        except AssertionError as failure:
            raise AssertionError(f"interrupted {interrupted or 'nowhere'}, call {at}: {failure}") from failure
        if interrupted:
            interrupts.append(interrupted)
    assert len(interrupts) > 20, interrupts


STORM_SCRIPT = r"""
import ctypes, random, signal, sys, time
from compatheap import HEAP_REALLOC_IN_PLACE_ONLY, HEAP_ZERO_MEMORY, PROCESS_HEAP_ENTRY, PROCESS_HEAP_ENTRY_BUSY
from compatheap.backends.emulated import EmulatedBackend
from compatheap.backends.emulated._heap import LARGE_THRESHOLD

maximum, seconds, seed, variant = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
k32 = EmulatedBackend(debug=sys.argv[5:])
if variant != "plain":
    k32 = k32.variant(variant)
heap = k32.HeapCreate(0, 0, maximum)
assert heap


class Interrupt(Exception):
    pass


armed = [False]  # raise inside the loop's try only; a raise disarms until the next round


def handler(signum, frame):
    if armed[0]:
        armed[0] = False
        raise Interrupt


def busy_blocks():
    entry = PROCESS_HEAP_ENTRY()
    found = []
    while k32.HeapWalk(heap, ctypes.byref(entry)):
        if entry.wFlags & PROCESS_HEAP_ENTRY_BUSY:
            found.append((entry.lpData, entry.cbData))
    return found


rng = random.Random(seed)
held = {}
sizes = [1, 16, 24, 40, 64, 100, 200, 256, 300, 1000, 5000, 20000]
if not maximum:
    sizes += [LARGE_THRESHOLD + 1000, 3 * LARGE_THRESHOLD]
realloc_flags = (0, HEAP_ZERO_MEMORY, HEAP_REALLOC_IN_PLACE_ONLY)
raised = rounds = 0
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 50e-6, 50e-6)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        armed[0] = True
        rounds += 1
        slot = rng.randrange(64)
        step = rng.randrange(20)
        block = held.pop(slot, None)
        if block is None:
            block = k32.HeapAlloc(heap, rng.choice((0, HEAP_ZERO_MEMORY)), rng.choice(sizes))
        elif step < 12:
            block = k32.HeapReAlloc(heap, rng.choice(realloc_flags), block, rng.choice(sizes)) or block
        elif step < 19:
            k32.HeapFree(heap, 0, block)
            block = None
        else:
            k32.HeapCompact(heap, 0)
            busy_blocks()
        if block:
            held[slot] = block
        armed[0] = False
    except Interrupt:
        raised += 1
signal.setitimer(signal.ITIMER_REAL, 0, 0)
signal.signal(signal.SIGALRM, signal.SIG_IGN)
assert k32.HeapValidate(heap, 0, None)
# No block recorded twice, none handed out twice: the walk's blocks and new
# ones overlap nowhere, and all of them can be written.
busy = busy_blocks()
for size in sizes * 2:
    block = k32.HeapAlloc(heap, 0, size)
    if block:
        busy.append((block, size))
busy.sort()
for (start, size), (following, _) in zip(busy, busy[1:]):
    assert start + size <= following, (hex(start), size, hex(following))
for start, size in busy:
    ctypes.memset(start, 0x5A, size)
assert k32.HeapDestroy(heap)
print(rounds, raised)
assert raised > 100, (rounds, raised)
"""

#: (HeapCreate's maximum size, backend variant, debug checks) of each storm.
STORMS = {
    "growable": (0, "plain", ()),
    "growable-fallback": (0, "emulated-fallback", ()),
    "growable-debug": (0, "plain", ("tail", "free")),
    "fixed": (1 << 22, "plain", ()),
    "fixed-debug": (1 << 22, "plain", ("tail", "free")),
}


@pytest.mark.skipif(not HAS_SETITIMER, reason="no signal.setitimer here")
@pytest.mark.parametrize("storm", sorted(STORMS))
def test_win32_calls_survive_a_storm_of_raising_signal_handlers(storm: str) -> None:
    """HeapAlloc/HeapReAlloc/HeapFree/HeapCompact/HeapWalk cut short every 50 us by a
    handler's exception, twice over: the heap validates, holds no block twice, and
    HeapDestroy does not crash."""
    maximum, variant, debug = STORMS[storm]
    for seed in range(2):
        result = subprocess.run(
            [sys.executable, "-X", "faulthandler", "-c", STORM_SCRIPT, str(maximum), "1.5", str(seed), variant, *debug],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=120,
        )
        assert result.returncode == 0, f"seed {seed}: {result.stdout}{result.stderr}"


def _interrupt_at_step(line: int, code: Set[CodeType], call: Callable[[], object]) -> bool:
    """Run ``call`` with an :class:`Interrupt` raised at its ``line``-th executed
    line inside ``code`` (as a signal handler's exception lands between two
    statements); whether it was raised (False: the call ran fewer lines)."""

    def interrupt() -> None:
        raise Interrupt(f"at executed line {line}")

    try:
        return at_step(line, code, call, interrupt)[0]
    except Interrupt:
        return True


def test_an_interrupted_shrink_of_a_mapped_block_never_lets_old_bytes_pass_for_zero() -> None:
    """A large block shrunk with an exception landing at each line of the shrink
    in turn, then grown back with HEAP_ZERO_MEMORY: every byte past the size the
    block had when the call was cut short reads zero, every byte before it is
    the caller's. (Cut short after its record shrank, a shrink once left the
    bytes past the new end looking untouched.)"""
    from compatheap.backends.emulated._growable import GrowableHeap
    from compatheap.backends.emulated._heap import EmulatedHeap

    code = {EmulatedHeap.realloc.__code__, GrowableHeap.resize_mapped.__code__, GrowableHeap.note_reach.__code__}
    big, small = 3 * LARGE_THRESHOLD, 0x1000
    line = 0
    while True:
        line += 1
        k32 = EmulatedBackend()
        heap = k32.HeapCreate(0, 0, 0)
        block = k32.HeapAlloc(heap, 0, big)
        assert heap and block
        ctypes.memset(block, 0xAB, big)
        if not _interrupt_at_step(line, code, functools.partial(k32.HeapReAlloc, heap, 0, block, small)):
            assert k32.HeapDestroy(heap)
            break
        size = k32.HeapSize(heap, 0, block)
        assert size in (big, small), (line, size)
        assert k32.HeapReAlloc(heap, HEAP_ZERO_MEMORY, block, big) == block, line
        assert ctypes.string_at(block, size) == b"\xab" * size, line
        assert ctypes.string_at(block + size, big - size) == bytes(big - size), line
        assert k32.HeapValidate(heap, 0, None) and k32.HeapDestroy(heap)
    assert line > 10  # the shrink's lines were all reached
