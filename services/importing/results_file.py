"""Import a results file: parse and validate all of it, then append it as one batch."""

from __future__ import annotations

from pathlib import Path

from services.core.context import Context
from services.importing.batch import ImportOutcome, append_plan
from services.importing.results import plan_import

__all__ = ["ImportOutcome", "import_results"]


def import_results(ctx: Context, path: Path, experiment: str) -> ImportOutcome:
    """The same outcome as `knobs import lm-eval|mlflow|optuna` (origin "results", nothing skipped)."""
    return append_plan(ctx, plan_import(path, experiment))
