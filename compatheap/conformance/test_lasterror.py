"""GetLastError / SetLastError: a DWORD per thread, left alone by successful calls."""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable, Dict, List, NoReturn

import pytest

from compatheap import (
    ERROR_INVALID_HANDLE,
    ERROR_NOT_ENOUGH_MEMORY,
    ERROR_OUTOFMEMORY,
    HEAP_ZERO_MEMORY,
)

SIZE_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1
SENTINEL = 0x5EADBEEF


def _in_thread(function: Callable[[], Any]) -> Any:
    """Run ``function`` in a new thread and return its result (or raise its exception)."""
    outcome: Dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.mark.parametrize("code", [0, 1, 87, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, 0xFFFFFFFF])
def test_set_then_get_round_trips_every_dword(k32: Any, code: int) -> None:
    """Any 32-bit value set is read back unchanged, as an unsigned int."""
    assert k32.SetLastError(code) is None
    value = k32.GetLastError()
    assert type(value) is int
    assert value == code


@pytest.mark.parametrize("given, stored", [(-1, 0xFFFFFFFF), ((1 << 32) + 5, 5), (-(1 << 31), 0x80000000)])
def test_set_wraps_to_dword(k32: Any, given: int, stored: int) -> None:
    """SetLastError takes a DWORD: Python ints wrap to 32 bits as ctypes wraps them."""
    k32.SetLastError(given)
    assert k32.GetLastError() == stored


def test_value_stays_until_changed(k32: Any) -> None:
    """Reading the last error does not clear it."""
    k32.SetLastError(1234)
    assert [k32.GetLastError() for _ in range(5)] == [1234] * 5


def test_new_thread_starts_at_zero(k32: Any) -> None:
    """A thread's last error starts at 0, whatever another thread set."""
    k32.SetLastError(SENTINEL)
    assert _in_thread(k32.GetLastError) == 0
    assert k32.GetLastError() == SENTINEL


def test_threads_do_not_share_the_value(k32: Any) -> None:
    """Setting it in another thread leaves this thread's value alone, and back."""
    k32.SetLastError(111)

    def other() -> int:
        k32.SetLastError(222)
        return int(k32.GetLastError())

    assert _in_thread(other) == 222
    assert k32.GetLastError() == 111


def test_failure_in_another_thread_stays_there(k32: Any, heap: int) -> None:
    """A heap failure sets the failing thread's last error only."""
    k32.SetLastError(SENTINEL)

    def failing() -> int:
        assert k32.HeapAlloc(heap, 0, SIZE_MAX) is None
        return int(k32.GetLastError())

    assert _in_thread(failing) == ERROR_NOT_ENOUGH_MEMORY
    assert k32.GetLastError() == SENTINEL


def test_concurrent_threads_keep_their_own_codes(k32: Any, heap: int) -> None:
    """Threads failing with different codes at the same time each read their own."""
    count = 8
    barrier = threading.Barrier(count)
    results: List[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            k32.SetLastError(1000 + index)
            barrier.wait(10)
            if index % 2:
                assert k32.HeapAlloc(heap, 0, SIZE_MAX) is None
                expected = ERROR_NOT_ENOUGH_MEMORY
            else:
                # Refusing the process heap is a safe failure with another code.
                assert not k32.HeapDestroy(k32.GetProcessHeap())
                expected = ERROR_INVALID_HANDLE
            barrier.wait(10)
            results[index] = (k32.GetLastError(), expected)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for result in results:
        assert not isinstance(result, BaseException), result
        assert result is not None
        got, expected = result
        assert got == expected


def test_failure_sets_not_enough_memory_not_outofmemory(k32: Any, heap: int) -> None:
    """An allocation failure overwrites the last error with 8, never 14."""
    k32.SetLastError(SENTINEL)
    assert k32.HeapAlloc(heap, 0, SIZE_MAX) is None
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY != ERROR_OUTOFMEMORY


def _successful_calls(k32: Any) -> List[Any]:
    """(name, call) pairs of calls that succeed; each call checks its own result."""
    state: Dict[str, Any] = {}

    def create() -> None:
        state["heap"] = k32.HeapCreate(0, 0, 0)
        assert state["heap"]

    def create_fixed() -> None:
        state["fixed"] = k32.HeapCreate(0, 0x40000, 0x40000)
        assert state["fixed"]

    def alloc() -> None:
        state["block"] = k32.HeapAlloc(state["heap"], 0, 100)
        assert state["block"]

    def alloc_zero() -> None:
        state["zero"] = k32.HeapAlloc(state["fixed"], HEAP_ZERO_MEMORY, 0)
        assert state["zero"]

    def realloc_grow() -> None:
        state["block"] = k32.HeapReAlloc(state["heap"], 0, state["block"], 5000)
        assert state["block"]

    def realloc_shrink() -> None:
        state["block"] = k32.HeapReAlloc(state["heap"], 0, state["block"], 10)
        assert state["block"]

    def calls() -> List[Any]:
        return [
            ("GetProcessHeap", lambda: k32.GetProcessHeap()),
            ("GetProcessHeaps count", lambda: k32.GetProcessHeaps(0, None)),
            ("HeapCreate", create),
            ("HeapCreate fixed", create_fixed),
            ("GetProcessHeaps fill", lambda: k32.GetProcessHeaps(256, (ctypes.c_void_p * 256)())),
            ("HeapAlloc", alloc),
            ("HeapAlloc zero", alloc_zero),
            ("HeapReAlloc grow", realloc_grow),
            ("HeapReAlloc shrink", realloc_shrink),
            ("HeapSize", lambda: k32.HeapSize(state["heap"], 0, state["block"]) == 10 or _boom()),
            ("HeapValidate heap", lambda: k32.HeapValidate(state["heap"], 0, None) or _boom()),
            ("HeapValidate block", lambda: k32.HeapValidate(state["heap"], 0, state["block"]) or _boom()),
            ("HeapFree", lambda: k32.HeapFree(state["heap"], 0, state["block"]) or _boom()),
            ("HeapFree NULL", lambda: k32.HeapFree(state["heap"], 0, None) or _boom()),
            ("HeapFree fixed", lambda: k32.HeapFree(state["fixed"], 0, state["zero"]) or _boom()),
            ("HeapDestroy", lambda: k32.HeapDestroy(state["heap"]) or _boom()),
            ("HeapDestroy fixed", lambda: k32.HeapDestroy(state["fixed"]) or _boom()),
        ]

    return calls()


def _boom() -> NoReturn:
    raise AssertionError("the call was expected to succeed")


def test_successful_calls_leave_the_last_error(k32: Any) -> None:
    """No successful heap call resets or changes the last error."""
    changed = []
    for name, call in _successful_calls(k32):
        k32.SetLastError(SENTINEL)
        call()
        if k32.GetLastError() != SENTINEL:
            changed.append((name, k32.GetLastError()))
    assert changed == []


def test_successful_calls_after_a_failure_keep_its_code(k32: Any, heap: int) -> None:
    """A failure's code survives later successful calls, so it can be read late."""
    assert k32.HeapAlloc(heap, 0, SIZE_MAX) is None
    block = k32.HeapAlloc(heap, 0, 16)
    assert block and k32.HeapSize(heap, 0, block) == 16
    assert k32.HeapFree(heap, 0, block)
    assert k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
