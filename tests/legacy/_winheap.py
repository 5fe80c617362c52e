"""A bindings module as projects write them: argtypes, restype and errcheck helpers."""

import ctypes
from ctypes import wintypes

kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # the DLL


def _check_null(result, func, args):
    if not result:
        raise ctypes.WinError(ctypes.get_last_error())
    return result


def _check_bool(result, func, args):
    if not result:
        raise ctypes.WinError(ctypes.get_last_error())
    return args


def _bind(name, restype, argtypes, errcheck=None):
    func = getattr(kernel32, name)
    func.restype = restype
    func.argtypes = argtypes
    if errcheck is not None:
        func.errcheck = errcheck
    return func


SIZE_T = ctypes.c_size_t
GetProcessHeap = _bind("GetProcessHeap", wintypes.HANDLE, [], _check_null)
HeapCreate = _bind("HeapCreate", wintypes.HANDLE, [wintypes.DWORD, SIZE_T, SIZE_T], _check_null)
HeapAlloc = _bind("HeapAlloc", wintypes.LPVOID, [wintypes.HANDLE, wintypes.DWORD, SIZE_T], _check_null)
HeapReAlloc = _bind(
    "HeapReAlloc", wintypes.LPVOID, [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID, SIZE_T], _check_null
)
HeapFree = _bind("HeapFree", wintypes.BOOL, [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID], _check_bool)
HeapSize = _bind("HeapSize", SIZE_T, [wintypes.HANDLE, wintypes.DWORD, wintypes.LPCVOID])
HeapDestroy = _bind("HeapDestroy", wintypes.BOOL, [wintypes.HANDLE], _check_bool)
# Bound at import though never called on the heap path.
CloseHandle = _bind("CloseHandle", wintypes.BOOL, [wintypes.HANDLE], _check_bool)
VirtualAlloc = _bind("VirtualAlloc", wintypes.LPVOID, [wintypes.LPVOID, SIZE_T, wintypes.DWORD, wintypes.DWORD])
