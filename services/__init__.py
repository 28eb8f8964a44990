"""The face of knobs: CLI, HTTP API, analysis, import/export, and local service provisioning."""
