"""Where a project's local state lives, apart from the settings (pydantic-settings costs a tenth
of a second to import, and `knobs` reads the home at start-up)."""

from __future__ import annotations

import os
from pathlib import Path


def knobs_home() -> Path:
    """All local state lives under one directory: $KNOBS_HOME, default ./.knobs."""
    return Path(os.environ.get("KNOBS_HOME", ".knobs")).resolve()
