"""Every store test runs on both backends: a fresh SQLite file, a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from events.store import EventStore
from tests.events.backends import Backend


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "events.sqlite3"))
    return Backend("postgres", request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def store(backend: Backend) -> Iterator[EventStore]:
    with backend.open() as opened:
        yield opened
