"""PostgreSQL from Debian's packages, run under $KNOBS_HOME/postgres for the PostgreSQL event log.

`start_postgres(home)` runs initdb once (superuser `knobs`, a generated password kept in a
0600 file, scram-sha-256 for every connection), starts the server on 127.0.0.1 and a free
port, creates the database `knobs` and records the URL in $KNOBS_HOME/run/postgres.json
(0600). PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from services.infra import runtime

DEFAULT_PORT = 5432
USER = "knobs"
DATABASE = "knobs"
SERVER_USER = "postgres"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
# A unix socket path longer than this (sun_path is 108 bytes) makes the server refuse to start.
_MAX_SOCKET_PATH = 100


class PostgresProvisioningError(RuntimeError):
    """PostgreSQL could not be found, initialised, started or stopped; the message says what to do."""


def bin_dir() -> Path:
    """The newest installed server's binaries (/usr/lib/postgresql/<version>/bin)."""
    found = [p.parent for p in DEBIAN_ROOT.glob("*/bin/pg_ctl")]
    if not found:
        raise PostgresProvisioningError(
            f"no PostgreSQL server under {DEBIAN_ROOT}: run `make setup` (it installs Debian's "
            "postgresql) or `apt-get install postgresql`, or set KNOBS_EVENTS_POSTGRES_URL to a "
            "PostgreSQL of your own"
        )
    return max(found, key=lambda p: tuple(int(x) for x in p.parent.name.split(".") if x.isdigit()))


def _paths(home: Path) -> dict[str, Path]:
    base = home / "postgres"
    return {
        "base": base,
        "data": base / "data",
        "run": base / "run",
        "log": base / "log",
        "logfile": base / "log" / "postgres.log",
        "password": base / "password",
    }


def _as_root() -> bool:
    return os.geteuid() == 0


def _server_cmd(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *cmd] if _as_root() else cmd


def _run(cmd: list[str], what: str, cwd: Path, log: Path | None = None) -> None:
    proc = subprocess.run(_server_cmd(cmd), capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        if log is not None:
            tail += f"\nthe server log ({log}) ends with:\n{runtime.log_tail(log)}"
        raise PostgresProvisioningError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def _prepare_dirs(paths: dict[str, Path]) -> None:
    """Create the server's directories; as root, hand them to the server user and let it
    traverse every parent (execute bit only: it can reach its files, not list ours)."""
    paths["data"].mkdir(parents=True, exist_ok=True, mode=0o700)
    paths["run"].mkdir(exist_ok=True, mode=0o700)
    paths["log"].mkdir(exist_ok=True, mode=0o700)
    if not _as_root():
        return
    try:
        account = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresProvisioningError(
            f"running as root but there is no {SERVER_USER!r} system user to run PostgreSQL as: "
            "install Debian's postgresql package (it creates the user) or run knobs as a normal user"
        ) from None
    for key in ("data", "run", "log"):
        os.chown(paths[key], account.pw_uid, account.pw_gid)
    for parent in paths["base"].resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)
    os.chmod(paths["base"], 0o711)


def _initdb(paths: dict[str, Path], bins: Path, password: str) -> None:
    """Initialise the cluster once; a data directory with PG_VERSION is left alone."""
    if (paths["data"] / "PG_VERSION").exists():
        return
    if any(paths["data"].iterdir()):
        raise PostgresProvisioningError(
            f"{paths['data']} is neither empty nor a PostgreSQL cluster (an interrupted initdb?): "
            "remove it and start again"
        )
    pwfile = paths["run"] / "initdb.pw"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    if _as_root():
        account = pwd.getpwnam(SERVER_USER)
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    try:
        _run(
            [str(bins / "initdb"), "-D", str(paths["data"]), "-U", USER, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale"],
            "initdb", cwd=paths["base"],
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with (paths["data"] / "postgresql.conf").open("a") as conf:
        conf.write("\n# knobs writes its settings at every start:\ninclude_if_exists = 'knobs.conf'\n")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _write_conf(paths: dict[str, Path], port: int) -> None:
    socket_dir = str(paths["run"].resolve())
    if len(socket_dir) + len("/.s.PGSQL.65535") > _MAX_SOCKET_PATH:
        socket_dir = ""  # too long for a unix socket: TCP on loopback only
    conf = paths["data"] / "knobs.conf"
    conf.write_text(
        "# Written by knobs at every start; edit knobs, not this file.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {port}\n"
        f"unix_socket_directories = {_quote(socket_dir)}\n"
        "unix_socket_permissions = 0700\n"
        "password_encryption = 'scram-sha-256'\n"
    )
    conf.chmod(0o644)


def _postmaster(data: Path) -> tuple[int, int] | None:
    """(pid, port) of the server running on `data`, from its postmaster.pid; None if none runs."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None
    return (pid, port) if runtime.process_alive(pid) else None


def _url(password: str, port: int, database: str = DATABASE) -> str:
    return f"postgresql://{USER}:{password}@127.0.0.1:{port}/{database}"


def _accepts(url: str, timeout_s: float = 2) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout_s))):
            return True
    except psycopg.Error:
        return False


def _wait_ready(url: str, logfile: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _accepts(url):
        if time.monotonic() > deadline:
            raise PostgresProvisioningError(
                f"PostgreSQL did not accept connections within {timeout_s:.0f} s; "
                f"its log ({logfile}) ends with:\n{runtime.log_tail(logfile)}"
            )
        time.sleep(0.2)


def _ensure_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if exists is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent start won
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def start_postgres(home: Path, *, timeout_s: float = 60) -> dict[str, Any]:
    """Start (or find running) the home's PostgreSQL; returns url, port, pid, data_dir, ..."""
    state = runtime.read_state(home, "postgres")
    if state and runtime.process_alive(int(state["pid"])) and _accepts(state["url"]):
        return state
    paths = _paths(home)
    bins = bin_dir()
    password = runtime.generated_password(paths["password"])
    _prepare_dirs(paths)
    _initdb(paths, bins, password)
    running = _postmaster(paths["data"])
    if running is None:  # else: running, but its state file was lost; adopt it
        last = runtime.port_in(paths["data"] / "knobs.conf", r"^port = (\d+)$")
        _write_conf(paths, runtime.pick_port(last or DEFAULT_PORT))
        _run(
            [str(bins / "pg_ctl"), "start", "-D", str(paths["data"]), "-l", str(paths["logfile"]),
             "-w", "-t", str(int(timeout_s))],
            "starting PostgreSQL", cwd=paths["base"], log=paths["logfile"],
        )
        running = _postmaster(paths["data"])
        if running is None:
            raise PostgresProvisioningError(
                f"PostgreSQL started but exited at once; its log ({paths['logfile']}) ends with:\n"
                f"{runtime.log_tail(paths['logfile'])}"
            )
    pid, port = running
    _wait_ready(_url(password, port, "postgres"), paths["logfile"], timeout_s)
    _ensure_database(_url(password, port, "postgres"))
    state = {
        "url": _url(password, port),
        "host": "127.0.0.1",
        "port": port,
        "user": USER,
        "password": password,
        "database": DATABASE,
        "pid": pid,
        "data_dir": str(paths["data"]),
        "log": str(paths["logfile"]),
        "version": bins.parent.name,
    }
    runtime.write_state(home, "postgres", state)
    return state


def stop_postgres(home: Path, *, timeout_s: float = 60) -> None:
    """Stop the home's PostgreSQL (fast mode: roll back open transactions, checkpoint, exit)."""
    paths = _paths(home)
    running = _postmaster(paths["data"])
    if running is not None:
        _run(
            [str(bin_dir() / "pg_ctl"), "stop", "-D", str(paths["data"]), "-m", "fast",
             "-w", "-t", str(int(timeout_s))],
            "stopping PostgreSQL", cwd=paths["base"], log=paths["logfile"],
        )
        _wait_exited(running[0], timeout_s)
    runtime.clear_state(home, "postgres")




def _wait_exited(pid: int, timeout_s: float) -> None:
    """pg_ctl returns once postmaster.pid is gone, a moment before the process ends."""
    deadline = time.monotonic() + timeout_s
    while not runtime.exited(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def postgres_status(home: Path) -> dict[str, Any]:
    """Whether the home's PostgreSQL runs, and where (without the password or the URL)."""
    return runtime.service_status(home, "postgres", lambda state: _accepts(state["url"]))


exited = runtime.exited
"""Kept here for callers that ask this module (tests do)."""
