"""`open_store` picks the backend from the settings and says what to do when it cannot."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from events.errors import StoreUnavailable
from events.settings import EventsSettings
from events.store.factory import open_store
from events.store.postgres import PostgresEventStore
from events.store.sqlite import SQLiteEventStore


def test_sqlite_is_the_default_under_knobs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOBS_HOME", str(tmp_path / "not" / "yet" / "there"))
    monkeypatch.delenv("KNOBS_EVENTS_BACKEND", raising=False)
    monkeypatch.delenv("KNOBS_EVENTS_SQLITE_PATH", raising=False)
    with open_store() as store:
        assert isinstance(store, SQLiteEventStore)
        assert store.path == tmp_path / "not" / "yet" / "there" / "events.sqlite3"
        assert store.path.exists()


def test_postgres_from_the_settings(fresh_postgres_url: str) -> None:
    with open_store(EventsSettings(backend="postgres", postgres_url=fresh_postgres_url)) as store:
        assert isinstance(store, PostgresEventStore)
        assert store.head() == 0


def test_postgres_without_a_url_says_what_to_do() -> None:
    with pytest.raises(StoreUnavailable, match=r"knobs services up.*KNOBS_EVENTS_POSTGRES_URL"):
        open_store(EventsSettings(backend="postgres", postgres_url=None))


def test_an_unreachable_postgres_says_what_to_do() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://knobs:secret-password@127.0.0.1:{port}/knobs"
    with pytest.raises(StoreUnavailable, match="knobs services up") as caught:
        open_store(EventsSettings(backend="postgres", postgres_url=url))
    assert "secret-password" not in str(caught.value)


def test_an_unwritable_sqlite_path_says_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable, match="KNOBS_EVENTS_SQLITE_PATH"):
        open_store(EventsSettings(sqlite_path=blocker / "events.sqlite3"))
