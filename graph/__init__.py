"""The graph side of knobs: the projector (Neo4j's only writer) and read-only Cypher.

Imports `events` only (an import-linter contract keeps it so). The graph is disposable:
every fact in it comes from the event log and `Projector.rebuild()` recreates it.
"""
