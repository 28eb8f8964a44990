"""Exports: what the log knows, as a Markdown vault for notes apps and as JSON for programs."""

MANIFEST = ".knobs-export.json"
"""The file a notes export writes into its vault, listing what it wrote. Here, not in `notes`, so
that `knobs --help` names it without importing the exporters."""
