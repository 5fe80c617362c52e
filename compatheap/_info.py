"""``compatheap info``: what compatheap will do on this machine, and why."""

from __future__ import annotations

import json
import mmap
import platform
import sys
from typing import Any, Dict, List

from ._constants import MEMORY_ALLOCATION_ALIGNMENT


def gather() -> Dict[str, Any]:
    """Everything ``compatheap info`` shows, as plain data."""
    import compatheap
    from compatheap import backends

    settings = compatheap.settings
    backend = compatheap.backend
    capabilities = backend.capabilities
    available: List[Dict[str, Any]] = []
    for name in backends.NAMES:
        ok, why = backends.probe(name)
        available.append({"name": name, "available": ok, "reason": why})
    error = compatheap.startup_error
    return {
        "compatheap": compatheap.__version__,
        # Set when the settings could not be used; everything below is then the default choice.
        "settings_error": None if error is None else " ".join(str(error).split()),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "backend": {"name": backend.name, "source": settings.backend_source, "reason": compatheap.backend_reason},
        "backends": available,
        "config_file": {"path": str(settings.config_path), "exists": settings.config_exists},
        "debug_checks": {"enabled": sorted(settings.debug), "source": settings.debug_source},
        "memory_allocation_alignment": MEMORY_ALLOCATION_ALIGNMENT,
        "page_size": capabilities.page_size or mmap.PAGESIZE,
        "large_block_threshold": capabilities.large_block_threshold,
        "capabilities": {
            "refuses_bad_pointers": capabilities.refuses_bad_pointers,
            "blocks_not_over_aligned": capabilities.blocks_not_over_aligned,
            "debug_checks": sorted(capabilities.debug_checks),
            "variants": dict(capabilities.variants),
        },
        "fallbacks": dict(capabilities.features),
    }


def format_text(info: Dict[str, Any]) -> str:
    backend = info["backend"]
    lines = [f"compatheap {info['compatheap']} on {info['platform']} ({info['python']})"]
    if info["settings_error"]:
        lines += [
            f"SETTINGS ERROR:   {info['settings_error']}",
            "                  (other commands refuse to run; below is what the defaults would give)",
        ]
    lines += [
        f"backend:          {backend['name']} ({backend['reason']})",
        "backends:",
    ]
    for entry in info["backends"]:
        state = "available" if entry["available"] else "unavailable"
        lines.append(f"  {entry['name']:<15} {state}: {entry['reason']}")
    config = info["config_file"]
    debug = info["debug_checks"]
    checks = ", ".join(debug["enabled"]) if debug["enabled"] else "off"
    threshold = info["large_block_threshold"]
    lines += [
        f"config file:      {config['path']} ({'exists' if config['exists'] else 'not present'})",
        f"debug checks:     {checks} (from {debug['source']})",
        f"MEMORY_ALLOCATION_ALIGNMENT: {info['memory_allocation_alignment']}",
        f"page size:        {info['page_size']}",
        "large blocks:     "
        + (f"from {threshold:#x} bytes up" if threshold is not None else "as the system's heap decides"),
        "capabilities:",
    ]
    capabilities = info["capabilities"]
    safety = "refused with the Win32 error" if capabilities["refuses_bad_pointers"] else "as Windows: may crash"
    lines.append(f"  {'bad pointers':<19} {safety}")
    spacing = "as Windows'" if capabilities["blocks_not_over_aligned"] else "coarser (the C allocator's)"
    lines.append(f"  {'block spacing':<19} {spacing}")
    offered = ", ".join(capabilities["debug_checks"]) or "none (use Windows' global flags)"
    lines.append(f"  {'debug checks':<19} {offered}")
    for name, what in capabilities["variants"].items():
        lines.append(f"  {'variant ' + name:<19} {what}")
    for name, state in info["fallbacks"].items():
        lines.append(f"  {name:<19} {state}")
    return "\n".join(lines)


def main(as_json: bool) -> int:
    info = gather()
    sys.stdout.write((json.dumps(info, indent=2) if as_json else format_text(info)) + "\n")
    if info["settings_error"]:
        sys.stderr.write(f"compatheap: error: {info['settings_error']}\n")
        return 2
    return 0
