"""The C library calls the emulation makes, behind one seam.

Every native call goes through a :class:`Native` instance, so a test can hand
the backend one whose calls fail on demand, or one that pretends ``mremap`` or
``malloc_usable_size`` are missing (the macOS and BSD situation).
"""

from __future__ import annotations

import ctypes
import mmap as _mmap
import sys
from typing import Any, Callable, List, Optional

_c_void_p, _c_size_t, _c_int = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
_MAP_FAILED = (1 << (8 * ctypes.sizeof(_c_void_p))) - 1

PROT_READ = getattr(_mmap, "PROT_READ", 1)
PROT_WRITE = getattr(_mmap, "PROT_WRITE", 2)
PROT_EXEC = getattr(_mmap, "PROT_EXEC", 4)
_MAP_PRIVATE = getattr(_mmap, "MAP_PRIVATE", 2)
_MAP_ANONYMOUS = getattr(_mmap, "MAP_ANONYMOUS", getattr(_mmap, "MAP_ANON", 0x20))
_MREMAP_MAYMOVE = 1
PAGE_SIZE = getattr(_mmap, "PAGESIZE", 4096)


def load_libc() -> Any:
    """The process's C library, or raise ``OSError`` when there is none."""
    # CDLL(None) is the running process's global namespace on POSIX; Windows
    # rejects it, which is the capability probe telling us there is no libc.
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError) as exc:
        raise OSError(f"no C library in the process namespace ({exc})") from None
    for symbol in ("malloc", "realloc", "free", "mmap", "munmap"):
        if not hasattr(libc, symbol):
            raise OSError(f"the C library lacks {symbol}()")
    return libc


def _bind(libc: Any, name: str, restype: Any, argtypes: List[Any]) -> Optional[Callable[..., Any]]:
    func: Any = getattr(libc, name, None)
    if func is None:
        return None
    # A private function object: setting argtypes on the shared one would
    # change it for every other user of CDLL(None).
    bound: Any = type(func)((name, libc))
    bound.restype = restype
    bound.argtypes = argtypes
    result: Callable[..., Any] = bound
    return result


class Native:
    """Bound C library functions.

    ``use_mremap`` / ``use_usable_size`` set to False force the fallbacks used
    where the system lacks ``mremap`` or a usable-size query.
    """

    def __init__(self, *, use_mremap: bool = True, use_usable_size: bool = True) -> None:
        libc = load_libc()

        def required(name: str, restype: Any, argtypes: List[Any], lib: Any = libc) -> Callable[..., Any]:
            func = _bind(lib, name, restype, argtypes)
            assert func is not None  # load_libc() checked these
            return func

        # The allocator calls are short and never wait on Python: bound through
        # PyDLL they keep the GIL, which saves its release and re-acquisition
        # (a fifth of a call's cost). The mapping calls may take long; they let go.
        quick = ctypes.PyDLL(None)
        self.malloc = required("malloc", _c_void_p, [_c_size_t], quick)
        self.realloc = required("realloc", _c_void_p, [_c_void_p, _c_size_t], quick)
        self.free = required("free", None, [_c_void_p], quick)
        self._mmap = required("mmap", _c_void_p, [_c_void_p, _c_size_t, _c_int, _c_int, _c_int, ctypes.c_long])
        self._munmap = required("munmap", _c_int, [_c_void_p, _c_size_t])
        # Linux's signature and MREMAP_MAYMOVE value; NetBSD has an mremap
        # with five arguments, which this binding would call wrongly.
        linux = sys.platform.startswith("linux")
        mremap = _bind(libc, "mremap", _c_void_p, [_c_void_p, _c_size_t, _c_size_t, _c_int]) if linux else None
        self._mremap = mremap if use_mremap else None
        usable = None
        if use_usable_size:
            # glibc and the BSDs spell it malloc_usable_size, macOS malloc_size.
            for name in ("malloc_usable_size", "malloc_size"):
                usable = _bind(quick, name, _c_size_t, [_c_void_p])
                if usable is not None:
                    self.usable_size_name: Optional[str] = name
                    break
        if usable is None:
            self.usable_size_name = None
        #: The C query itself (None without one), for the hot paths.
        self.usable_query = usable
        self.page_size = PAGE_SIZE

    @property
    def has_mremap(self) -> bool:
        return self._mremap is not None

    @property
    def has_usable_size(self) -> bool:
        return self.usable_query is not None

    def usable_size(self, address: int, requested: int) -> int:
        """How many bytes the block at ``address`` can really hold."""
        if self.usable_query is None:
            return requested  # Unknown: only what was asked for is ours.
        return int(self.usable_query(address))

    def map(self, length: int, executable: bool = False) -> int:
        """Fresh zeroed anonymous pages, or 0."""
        prot = PROT_READ | PROT_WRITE | (PROT_EXEC if executable else 0)
        address = self._mmap(None, length, prot, _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0)
        if not address or address == _MAP_FAILED:
            return 0
        return int(address)

    def unmap(self, address: int, length: int) -> bool:
        return bool(self._munmap(address, length) == 0)

    def remap(self, address: int, old_length: int, new_length: int, may_move: bool) -> int:
        """Resize a mapping (0 on failure or when the system cannot)."""
        if self._mremap is None:
            return 0
        result = self._mremap(address, old_length, new_length, _MREMAP_MAYMOVE if may_move else 0)
        if not result or result == _MAP_FAILED:
            return 0
        return int(result)

    def map_aligned(self, length: int, alignment: int, executable: bool = False) -> int:
        """Pages of ``length`` bytes starting at a multiple of ``alignment``, or 0."""
        span = self.map(length + alignment, executable)
        if not span:
            return 0
        start = (span + alignment - 1) & ~(alignment - 1)
        end = span + length + alignment
        # Trimming splits the mapping, which the kernel may refuse (ENOMEM at
        # its mapping-count limit): then give back all of it, leaking nothing.
        if start > span and not self.unmap(span, start - span):
            self.unmap(span, end - span)
            return 0
        if end > start + length and not self.unmap(start + length, end - start - length):
            self.unmap(start, end - start)
            return 0
        return start
