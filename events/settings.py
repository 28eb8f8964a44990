"""Settings of the event log (prefix KNOBS_EVENTS_); defaults that work on a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from events.home import knobs_home as knobs_home  # re-exported: workers/ import it from here


class EventsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KNOBS_EVENTS_")

    backend: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: Path | None = None
    """Default: $KNOBS_HOME/events.sqlite3."""
    postgres_url: str | None = None
    """A libpq URL; default: the PostgreSQL that `knobs services up` started."""

    def resolved_sqlite_path(self) -> Path:
        return self.sqlite_path or knobs_home() / "events.sqlite3"
