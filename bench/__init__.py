"""Benchmarks that put knobs beside the tools researchers would otherwise use (run, not tested).

`python -m bench.ingest` is the first: score records into the log and the graph vs MLflow.
"""
