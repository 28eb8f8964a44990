"""Settings of the event log (prefix KNOBS_EVENTS_); defaults that work on a laptop."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


def knobs_home() -> Path:
    """All local state lives under one directory: $KNOBS_HOME, default ./.knobs."""
    return Path(os.environ.get("KNOBS_HOME", ".knobs")).resolve()


class EventsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KNOBS_EVENTS_")

    backend: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: Path | None = None
    """Default: $KNOBS_HOME/events.sqlite3."""
    postgres_url: str | None = None
    """A libpq URL; default: the PostgreSQL that `knobs services up` started."""

    def resolved_sqlite_path(self) -> Path:
        return self.sqlite_path or knobs_home() / "events.sqlite3"
