"""``ctypes.wintypes`` with Windows' sizes, for the modules of a program under ``compatheap run``.

On 64-bit Linux and macOS ``wintypes.DWORD``, ``ULONG``, ``LONG`` and ``BOOL``
are a C ``long``: 8 bytes, where Windows has 4. A structure a Windows script
declares with them (its own ``PROCESS_HEAP_ENTRY``, say) then has the wrong
layout. This builds a copy of the module in which those types are the 4-byte
fixed-width ones, with every pointer, array and structure built on them
rebuilt to match.
``WCHAR`` stays the platform's ``wchar_t`` (4 bytes on Linux): text types
cannot change width without losing their string behaviour.
"""

from __future__ import annotations

import ctypes
import types
from typing import Any, Dict

# Pointer-sized on Windows whatever the width of long: leave them as they are
# (as names, and as the MSG fields typed with them).
_POINTER_SIZED = frozenset({"WPARAM", "LPARAM"})
_POINTER_SIZED_FIELDS = frozenset({"wParam", "lParam"})


def _converter() -> Any:
    swap: Dict[Any, Any] = {ctypes.c_long: ctypes.c_int32, ctypes.c_ulong: ctypes.c_uint32}
    memo: Dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        if not isinstance(value, type):
            return value
        if value in swap:
            return swap[value]
        if value in memo:
            return memo[value]
        result = value
        if issubclass(value, ctypes._Pointer):
            target = convert(value._type_)
            if target is not value._type_:
                result = ctypes.POINTER(target)
        elif issubclass(value, ctypes.Array):
            element = convert(value._type_)
            if element is not value._type_:
                result = element * value._length_
        elif issubclass(value, (ctypes.Structure, ctypes.Union)) and "_fields_" in vars(value):
            fields = [
                (field[0], field[1] if field[0] in _POINTER_SIZED_FIELDS else convert(field[1]), *field[2:])
                for field in value._fields_
            ]
            if any(new[1] is not old[1] for new, old in zip(fields, value._fields_)):
                base = ctypes.Union if issubclass(value, ctypes.Union) else ctypes.Structure
                result = type(value.__name__, (base,), {"_fields_": fields, "__module__": "ctypes.wintypes"})
        memo[value] = result
        return result

    return convert


def build() -> types.ModuleType:
    """A ``ctypes.wintypes`` whose types have Windows' sizes."""
    import ctypes.wintypes as real

    module = types.ModuleType(real.__name__, real.__doc__)
    convert = _converter()
    for name, value in vars(real).items():
        if name.startswith("__") and name != "__all__":
            continue
        # 8-byte C long and long long are one type here: LARGE_INTEGER is a
        # long long, so it stays.
        keep = name in _POINTER_SIZED or "LARGE_INTEGER" in name
        module.__dict__[name] = value if keep else convert(value)
    module.__dict__["__file__"] = getattr(real, "__file__", None)
    return module
