"""Real memory exhaustion: a child process under an address-space limit (RLIMIT_AS).

Not simulated: the system allocator itself refuses. The heap must answer
with the Win32 failure (or ``HeapException`` under ``HEAP_GENERATE_EXCEPTIONS``),
stay valid, keep every live block's bytes, and work again once memory is
given back.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests import campaigns
from tests.conftest import require_emulation, run_python

require_emulation()

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS semantics are Linux's")

CHILD = r"""
import ctypes, json, resource
from compatheap import (ERROR_NOT_ENOUGH_MEMORY, HEAP_GENERATE_EXCEPTIONS, HeapException,
                        PROCESS_HEAP_ENTRY, STATUS_NO_MEMORY)
from compatheap.backends.emulated import EmulatedBackend

k32 = EmulatedBackend(debug=DEBUG)
heap = k32.HeapCreate(0, 0, 0)
throwing = k32.HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0, 0)
fixed = k32.HeapCreate(0, 0, 0x100000)
MB = 1 << 20
reserve = bytearray(16 * MB)  # given back once the limit is hit: room for Python itself
with open("/proc/self/statm") as statm:
    used = int(statm.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 160 * MB, resource.getrlimit(resource.RLIMIT_AS)[1]))

def mark(address, size, seed):
    ctypes.memmove(address, bytes([seed % 251 + 1]) * min(size, 64), min(size, 64))
    if size > 64:
        ctypes.memmove(address + size - 64, bytes([seed % 241 + 3]) * 64, 64)

def intact(address, size, seed):
    head = ctypes.string_at(address, min(size, 64)) == bytes([seed % 251 + 1]) * min(size, 64)
    return head and (size <= 64 or ctypes.string_at(address + size - 64, 64) == bytes([seed % 241 + 3]) * 64)

blocks = [None] * 20000
count = 0
figures = {"python_oom": 0, "refused": 0, "errors_ok": 0, "raised_ok": 0}
figures.update(intact=False, valid=False, recovered=False)
# Fill the address space: large (mapped) blocks, then small (malloc) ones.
for size in (8 * MB, 64 * 1024, 256):
    while count < len(blocks):
        k32.SetLastError(0)
        try:
            address = k32.HeapAlloc(heap, 0, size)
            entry = (address, size)
        except MemoryError:
            # Python itself (an int, a tuple) lost the race for the last bytes:
            # the harness stops filling here; the heap is checked all the same.
            figures["python_oom"] += 1
            break
        if not address:
            figures["refused"] += 1
            figures["errors_ok"] += k32.GetLastError() == ERROR_NOT_ENOUGH_MEMORY
            break
        try:
            mark(address, size, count)
        except MemoryError:  # the harness's own bytes, not the heap's
            figures["python_oom"] += 1
            k32.HeapFree(heap, 0, address)
            break
        blocks[count] = entry
        count += 1
del reserve
figures["blocks"] = count
# At the limit, with only Python's reserve back: what does not fit is refused cleanly.
victim, vsize = blocks[0]
for call in (
    lambda: k32.HeapAlloc(heap, 0, 512 * MB),
    lambda: k32.HeapReAlloc(heap, 0, victim, 512 * MB),
    lambda: k32.HeapAlloc(fixed, 0, 0xF0000 - 0x1000) and k32.HeapAlloc(fixed, 0, 0xF0000 - 0x1000) or None,
    lambda: k32.HeapCreate(0, 512 * MB, 512 * MB),
):
    k32.SetLastError(0)
    result = call()
    if not result:
        figures["refused"] += 1
        figures["errors_ok"] += k32.GetLastError() in (ERROR_NOT_ENOUGH_MEMORY, 0)
try:
    k32.HeapAlloc(throwing, 0, 512 * MB)
except HeapException as exc:
    figures["raised_ok"] += exc.status == STATUS_NO_MEMORY
try:
    k32.HeapReAlloc(heap, HEAP_GENERATE_EXCEPTIONS, victim, 512 * MB)
except HeapException as exc:
    figures["raised_ok"] += exc.status == STATUS_NO_MEMORY
figures["valid"] = bool(k32.HeapValidate(heap, 0, None) and k32.HeapValidate(fixed, 0, None))
figures["intact"] = all(intact(a, s, i) and k32.HeapSize(heap, 0, a) == s for i, (a, s) in enumerate(blocks[:count]))
entry = PROCESS_HEAP_ENTRY()
walked = 0
while k32.HeapWalk(heap, ctypes.byref(entry)):
    walked += 1
figures["walked"] = walked
# Give everything back: the heap works again.
for address, size in blocks[:count]:
    assert k32.HeapFree(heap, 0, address)
again = k32.HeapAlloc(heap, 0, 64 * MB)
figures["recovered"] = bool(again) and bool(k32.HeapFree(heap, 0, again))
figures["destroyed"] = bool(k32.HeapDestroy(heap) and k32.HeapDestroy(throwing) and k32.HeapDestroy(fixed))
print(json.dumps(figures))
"""


@pytest.mark.parametrize("debug", [(), ("tail", "free")], ids=["plain", "debug"])
def test_address_space_exhaustion(debug: tuple) -> None:  # type: ignore[type-arg]
    proc = run_python(CHILD.replace("DEBUG", repr(debug)))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-1000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    campaigns.record(
        "oom (RLIMIT_AS)",
        blocks_filled=figures["blocks"],
        refused=figures["refused"],
        python_oom=figures["python_oom"],
        crashes=0,
    )
    assert figures["blocks"] > 10, figures
    # Each of the three fill phases ended in a refusal (rarely Python's own), then four more.
    assert figures["refused"] + figures["python_oom"] >= 7, figures
    assert figures["errors_ok"] == figures["refused"], figures
    assert figures["raised_ok"] == 2, figures
    assert figures["valid"] and figures["intact"], figures
    assert figures["walked"] >= figures["blocks"], figures
    assert figures["recovered"] and figures["destroyed"], figures
