"""Counts for the fault matrix (README: Faults and hostile input).

Every row of the matrix is a test marked `faults`. `make test` runs each with its reduced
count; `make soak` (KNOBS_SOAK=1) runs the full counts the README reports.
"""

from __future__ import annotations

import os

import pytest

SOAK = os.environ.get("KNOBS_SOAK", "") == "1"

faults = pytest.mark.faults


def count(reduced: int, full: int) -> int:
    """How many kills (or queries, or restarts) a row makes in this run."""
    return full if SOAK else reduced


def report(row: str, **figures: object) -> None:
    """One line of figures for the README's matrix (`make soak` shows them with -s or -rP)."""
    print(f"fault row {row}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
