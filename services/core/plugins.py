"""What other installed packages add to knobs, found by entry point, never by import.

services/ must not import workers/ (an import-linter contract), yet `knobs worker` and the
embedded runner of `knobs experiment run` live there. Packages declare them as entry
points (`knobs.commands`: a dict of typer commands; `knobs.executors`: callables), so the
API side installs and runs without the ML stack.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from services.core.errors import Unavailable

WORKERS_HINT = "install the workers extra (`pip install -e '.[workers]'`, which `make setup` does)"


def commands() -> dict[str, Callable[..., Any]]:
    """Extra `knobs` commands by name; a plugin that fails to load is skipped, not fatal."""
    found: dict[str, Callable[..., Any]] = {}
    for ep in entry_points(group="knobs.commands"):
        try:
            found.update(ep.load())
        except ImportError:
            continue
    return found


def executor(name: str) -> Callable[..., Any]:
    """The executor registered under `name` (e.g. `embedded`), or a clear Unavailable."""
    for ep in entry_points(group="knobs.executors", name=name):
        try:
            loaded: Callable[..., Any] = ep.load()
        except ImportError as exc:
            raise Unavailable(f"the {name} executor cannot load ({exc}): {WORKERS_HINT}") from exc
        return loaded
    raise Unavailable(f"no executor named {name!r} is installed: {WORKERS_HINT}")
