"""Asking the graph: the named read-only queries of graph/queries, bound and run."""
