"""Named read-only Cypher queries: one `<name>.cypher` file each, described by its header.

A file begins with a block of `// ` comment lines: the first, a one-line summary of what
the query answers; the rest detail it and name its parameters and columns. `knobs queries`
lists them; `knobs query --name NAME` runs one through the read-only gate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from graph.errors import UnknownQuery

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    """The leading `// ` comment block, without the slashes (lines joined by newlines)."""
    cypher: str
    """The whole file, comments included (Cypher ignores them)."""


def _files() -> dict[str, str]:
    root = resources.files(__name__)
    return {
        entry.name.removesuffix(".cypher"): entry.read_text(encoding="utf-8")
        for entry in root.iterdir()
        if entry.name.endswith(".cypher") and entry.is_file()
    }


def _parse(name: str, text: str) -> NamedQuery:
    description: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("//"):
            break
        description.append(stripped[2:].removeprefix(" ").rstrip())
    return NamedQuery(name=name, description="\n".join(description).strip(), cypher=text)


def list_queries() -> list[NamedQuery]:
    """Every named query, sorted by name."""
    return [_parse(name, text) for name, text in sorted(_files().items())]


def load_query(name: str) -> NamedQuery:
    """The named query `name`; raises UnknownQuery listing the known names otherwise."""
    files = _files()
    if not _NAME.match(name or "") or name not in files:
        known = ", ".join(sorted(files)) or "none"
        raise UnknownQuery(f"no named query {name!r}; known queries: {known} (see `knobs queries`)")
    return _parse(name, files[name])
