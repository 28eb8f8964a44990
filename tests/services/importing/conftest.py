"""What the importer tests share: a log to import into."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.context import Context


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """A fresh KNOBS_HOME whose event log is the default SQLite file (no Neo4j needed)."""
    monkeypatch.setenv("KNOBS_HOME", str(tmp_path / "home"))
    for var in ("KNOBS_EVENTS_BACKEND", "KNOBS_EVENTS_SQLITE_PATH", "KNOBS_EVENTS_POSTGRES_URL"):
        monkeypatch.delenv(var, raising=False)
    with Context(home=tmp_path / "home") as context:
        yield context
