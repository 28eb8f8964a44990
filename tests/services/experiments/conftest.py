"""Fixtures for experiment tests: a real SQLite event log in a fresh KNOBS_HOME (no Neo4j)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.context import Context


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh KNOBS_HOME whose event log is the default SQLite file."""
    path = tmp_path / "home"
    monkeypatch.setenv("KNOBS_HOME", str(path))
    for var in ("KNOBS_EVENTS_BACKEND", "KNOBS_EVENTS_SQLITE_PATH", "KNOBS_EVENTS_POSTGRES_URL"):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture
def ctx(home: Path) -> Iterator[Context]:
    with Context(home=home) as context:
        yield context


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec (a dict, dumped as YAML, or raw text) and return its path."""
    counter = iter(range(1_000_000))

    def write(spec: dict[str, Any] | str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"spec-{next(counter)}.yaml")
        path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False))
        return path

    return write

