"""The `knobs` command line."""
