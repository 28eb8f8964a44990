"""Fixtures every test package may use: a real PostgreSQL, RabbitMQ, Redis and LLM server for
the session, a fresh PostgreSQL database per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from services.infra.llm import start_llm, stop_llm
from services.infra.postgres import start_postgres, stop_postgres
from services.infra.rabbitmq import start_rabbitmq, stop_rabbitmq
from services.infra.redis import start_redis, stop_redis


@contextmanager
def server_home() -> Iterator[Path]:
    """A KNOBS_HOME for a PostgreSQL server, outside pytest's tmp root.

    Under root the server runs as `postgres`, which must traverse every parent of its data
    directory; pytest resets its root (/tmp/pytest-of-<user>) to 0700 whenever any session
    starts, which would lock a running server out of its own files and crash it.
    """
    path = Path(tempfile.mkdtemp(prefix="knobs-test-home-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def postgres_home() -> Iterator[Path]:
    """A fresh home for tests that start and stop their own PostgreSQL."""
    with server_home() as home:
        yield home


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of the session's PostgreSQL (database `knobs`), started from Debian's packages."""
    with server_home() as home:
        state = start_postgres(home)
        try:
            yield str(state["url"])
        finally:
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


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The AMQP URL of the session's RabbitMQ (a private node from Debian's packages).

    A missing server fails the tests that need it, with what to install; it never skips them.
    """
    with server_home() as home:
        state = start_rabbitmq(home)
        try:
            yield str(state["url"])
        finally:
            stop_rabbitmq(home)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of the session's Redis (database 0, a private server from Debian's packages)."""
    with server_home() as home:
        state = start_redis(home)
        try:
            yield str(state["url"])
        finally:
            stop_redis(home)


@dataclass(frozen=True)
class LocalLLM:
    """The session's LLM server: `openai.OpenAI(base_url=..., api_key=...)`, `model=...`; `home`
    is the KNOBS_HOME it is recorded in (for code that resolves the server from a home)."""

    base_url: str
    api_key: str
    model: str
    home: Path


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LocalLLM]:
    """The session's OpenAI-compatible server: llama-cpp-python serving SmolLM2-135M-Instruct.

    One per session: it serves one request at a time, so tests share it rather
    than each loading the model. Without the llm extra the tests that need it fail, saying what
    to install; they never skip.
    """
    with server_home() as home:
        state = start_llm(home)
        try:
            yield LocalLLM(state["base_url"], state["api_key"], state["model"], home)
        finally:
            stop_llm(home)


SMALL_DISK = "4m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of its own (4 MiB), to fill up: the full-disk row of the fault matrix.

    Mounting needs root (or CAP_SYS_ADMIN); without it the test fails saying so, never skips.
    """
    path = tmp_path / "small-disk"
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a {SMALL_DISK} tmpfs at {path} for the full-disk test "
                    f"({mounted.stderr.strip()}): run the tests as root, or in a container with "
                    "CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        # Lazy: a store a failed test left open must not keep the mount (and the memory) alive.
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` with one filler file until about `leave` bytes are free; returns the file,
    whose removal gives the space back."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / "filler"
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler
