"""Fixtures every test package may use: a real PostgreSQL for the session, a fresh database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from services.infra.postgres import start_postgres, stop_postgres


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the session's PostgreSQL (database `knobs`), started from Debian's packages."""
    home = tmp_path_factory.mktemp("postgres-home")
    state = start_postgres(home)
    yield str(state["url"])
    stop_postgres(home)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A libpq conninfo for a database created for this test alone, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(postgres_url, dbname=name)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
