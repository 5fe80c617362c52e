"""MkDocs hooks of the documentation build (mkdocs.yml: ``hooks``).

The docstrings cross-reference with reStructuredText roles
(``:class:`~compatheap.HeapError```), which MkDocs would show literally: they
become inline code naming the target (the last component with ``~``).
"""

from __future__ import annotations

import re
from typing import Any

#: A role as it comes out of Markdown: the role name, then the target as inline code.
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|data|mod|attr|exc|obj|const):<code>(~?)([\w.]+)(\(\))?</code>")


def _code(match: "re.Match[str]") -> str:
    short, target, call = match.groups()
    name = target.rpartition(".")[2] if short else target
    return f"<code>{name}{call or ''}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return _ROLE.sub(_code, html)
