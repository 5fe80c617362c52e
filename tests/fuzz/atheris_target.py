"""Coverage-guided fuzzing (atheris) of the emulated backend's argument and pointer handling.

Each input is decoded into (1) argument values of every shape a caller can
pass (ints of any width and sign, floats, strings, bytes, None, ctypes
scalars, arrays, ``byref`` with offsets, pointers cast from addresses) that
go through the ctypes-exact converters, checked against ctypes' own
conversion; and (2) a sequence of heap operations, good and bad, run against
the model of :mod:`tests.fuzz.world`. Any uncaught exception or crash is a
libFuzzer finding (it saves the input as ``crash-*``).

    python tests/fuzz/atheris_target.py -runs=100000 NEW_CORPUS_DIR tests/fuzz/corpus
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import partial
from typing import Any, Callable, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: E402

with atheris.instrument_imports(include=["compatheap"]):
    from compatheap import _args
    from compatheap.backends.emulated import _backend, _growable, _heap  # noqa: F401 - instrumented

from compatheap import HEAP_SUMMARY, PROCESS_HEAP_ENTRY  # noqa: E402
from tests.fuzz.world import WEIGHTS, World, make_op, new_backend  # noqa: E402

_BACKEND = new_backend(os.environ.get("COMPATHEAP_FUZZ_VARIANT", "plain"))
_KINDS = list(WEIGHTS)
_CONVERTERS: List[Any] = [
    (_args.size_arg, _args._via_size),
    (_args.dword_arg, _args._via_dword),
    (_args.pointer_arg, _args._via_ulong_ptr),
]
_KEEP: List[Any] = []  # objects whose addresses a value points into, kept alive for the call


def _value(fdp: Any) -> Any:
    """An argument of some shape the input chooses."""
    shape = fdp.ConsumeIntInRange(0, 11)
    if shape == 0:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 16))  # any width, either sign
    if shape == 1:
        return fdp.ConsumeIntInRange(0, 1 << 64)
    if shape == 2:
        return fdp.ConsumeFloat()
    if shape == 3:
        return fdp.ConsumeUnicode(8)
    if shape == 4:
        return fdp.ConsumeBytes(8)
    if shape == 5:
        return None
    if shape == 6:
        return ctypes.c_void_p(fdp.ConsumeIntInRange(0, (1 << 64) - 1))
    if shape == 7:
        return ctypes.c_uint32(fdp.ConsumeIntInRange(0, 0xFFFFFFFF))
    if shape == 8:
        buffer = ctypes.create_string_buffer(fdp.ConsumeIntInRange(0, 64))
        _KEEP.append(buffer)
        return ctypes.byref(buffer, fdp.ConsumeIntInRange(0, 80))
    if shape == 9:
        struct = PROCESS_HEAP_ENTRY if fdp.ConsumeBool() else HEAP_SUMMARY
        return ctypes.cast(fdp.ConsumeIntInRange(0, (1 << 64) - 1), ctypes.POINTER(struct))
    if shape == 10:
        array = (ctypes.c_size_t * fdp.ConsumeIntInRange(0, 8))()
        _KEEP.append(array)
        return array
    return [fdp.ConsumeIntInRange(0, 255)]


def _reference(via: Any, value: Any, position: int) -> Any:
    return _args._slow(via, value, position)


def _convert(convert: Callable[[Any, int], Any], value: Any) -> Any:
    try:
        return convert(value, 1)
    except ctypes.ArgumentError as exc:
        return ("refused", str(exc))


def _check_converters(fdp: Any) -> None:
    value = _value(fdp)
    for fast, via in _CONVERTERS:
        if fast is _args.pointer_arg and isinstance(value, (str, bytes)):
            continue  # each conversion points at a fresh temporary copy
        got = _convert(fast, value)
        # The reference: ctypes itself converting the same value.
        want = _convert(partial(_reference, via), value)
        if got != want:
            raise AssertionError(f"{fast.__name__}({value!r}) gave {got!r}, ctypes gives {want!r}")
    for ptr_type in (None, ctypes.POINTER(PROCESS_HEAP_ENTRY)):
        try:
            address, room = _args.buffer_arg(value, 2, ptr_type)
        except ctypes.ArgumentError:
            continue
        if room is not None and address and room < 0 and not isinstance(value, type(ctypes.byref(ctypes.c_int()))):
            raise AssertionError(f"negative room {room} for {value!r}")
    # Every function with this value in every position: a clean answer, never a crash.
    k32 = _BACKEND
    calls: List[Callable[[], object]] = [
        lambda: k32.HeapWalk(value, ctypes.byref(PROCESS_HEAP_ENTRY())),
        lambda: k32.HeapWalk(k32.GetProcessHeap(), value),
        lambda: k32.HeapSummary(k32.GetProcessHeap(), 0, value),
        lambda: k32.HeapQueryInformation(k32.GetProcessHeap(), 0, value, 4, value),
        lambda: k32.HeapSetInformation(value, 0, value, 4),
        lambda: k32.GetProcessHeaps(64, value),
        lambda: k32.HeapSize(k32.GetProcessHeap(), value, value),
        lambda: k32.HeapValidate(value, 0, value),
        lambda: k32.HeapFree(value, 0, value),
        lambda: k32.HeapReAlloc(k32.GetProcessHeap(), 0, value, value),
    ]
    for call in calls:
        try:
            call()
        except ctypes.ArgumentError:
            pass


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    try:
        for _ in range(fdp.ConsumeIntInRange(0, 3)):
            _check_converters(fdp)
    finally:
        _KEEP.clear()
    world = World(_BACKEND)
    try:
        for _ in range(fdp.ConsumeIntInRange(0, 40)):
            kind = _KINDS[fdp.ConsumeIntInRange(0, len(_KINDS) - 1)]
            op = make_op(world, kind, *(fdp.ConsumeIntInRange(0, 0xFFFFFFFF) for _ in range(4)))
            if op is not None:
                world.run(op)
    finally:
        world.teardown()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
