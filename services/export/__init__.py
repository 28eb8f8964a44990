"""Exports: what the log knows, as a Markdown vault for notes apps and as JSON for programs."""
