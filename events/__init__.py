"""The floor of knobs: immutable event models, the append-only store port and its backends.

Imports nothing else of ours (an import-linter contract keeps it so).
"""
