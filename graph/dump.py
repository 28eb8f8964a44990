"""A canonical text dump of the whole graph, to compare graphs byte for byte.

One JSON line per node (sorted labels, every property) and per relationship (type, start
node id, end node id, every property), keys sorted, lists kept in order; node lines sorted,
then relationship lines sorted.
Nothing is left out but Neo4j's internal element ids, which differ between two builds of
the same graph. An incremental projection and a rebuild from the log dump identically.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import neo4j

from events.canonical import canonical_json
from graph.errors import translated

_NODES = "MATCH (n) RETURN labels(n) AS labels, properties(n) AS properties"
_RELATIONSHIPS = (
    "MATCH (a)-[r]->(b) "
    "RETURN type(r) AS type, a.id AS start, b.id AS end, properties(r) AS properties"
)


def plain(value: Any) -> Any:
    """A JSON-able copy of a property value (temporal and spatial values as their text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def dump_lines(driver: neo4j.Driver, database: str = "neo4j") -> list[str]:
    """The canonical lines: every node, sorted, then every relationship, sorted."""
    nodes: list[str] = []
    relationships: list[str] = []
    with translated("dumping the graph"), driver.session(
        database=database, default_access_mode=neo4j.READ_ACCESS
    ) as session, session.begin_transaction() as tx:
        for record in tx.run(_NODES):
            nodes.append(canonical_json({
                "kind": "node",
                "labels": sorted(record["labels"]),
                "properties": plain(record["properties"]),
            }))
        for record in tx.run(_RELATIONSHIPS):
            relationships.append(canonical_json({
                "kind": "relationship",
                "type": record["type"],
                "start": plain(record["start"]),
                "end": plain(record["end"]),
                "properties": plain(record["properties"]),
            }))
    return sorted(nodes) + sorted(relationships)


def canonical_dump(driver: neo4j.Driver, database: str = "neo4j") -> str:
    """The whole graph as sorted canonical JSON lines, each ending in a newline."""
    return "".join(line + "\n" for line in dump_lines(driver, database))
