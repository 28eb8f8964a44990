"""Redis from Debian's packages, run as a private server under $KNOBS_HOME/redis for Dramatiq.

`start_redis(home)` writes a redis.conf (0600: it holds the password) — loopback only, a free
port, `requirepass` with a generated password kept in a 0600 file, append-only file on —
starts the server and records the URL in $KNOBS_HOME/run/redis.json (0600).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from services.infra import runtime

DEFAULT_PORT = 6379


class RedisProvisioningError(RuntimeError):
    """Redis could not be found, started or stopped; the message says what to do."""


def server_binary() -> Path:
    found = shutil.which("redis-server")
    if found is None:
        raise RedisProvisioningError(
            "redis-server is not installed: run `make setup` (it installs Debian's redis-server) "
            "or `apt-get install redis-server`, or point Dramatiq at a Redis of your own"
        )
    return Path(found)


def _paths(home: Path) -> dict[str, Path]:
    base = home / "redis"
    return {
        "base": base,
        "data": base / "data",
        "conf": base / "redis.conf",
        "password": base / "password",
        "pid": base / "redis.pid",
        "log": base / "redis.log",
    }


def _write_conf(paths: dict[str, Path], port: int, password: str) -> None:
    lines = [
        "# Written by knobs at every start; edit knobs, not this file.",
        "bind 127.0.0.1",
        "protected-mode yes",
        f"port {port}",
        "daemonize no",
        "supervised no",
        f'pidfile "{paths["pid"].resolve()}"',
        f'logfile "{paths["log"].resolve()}"',
        f'dir "{paths["data"].resolve()}"',
        # Dramatiq's queues must survive a restart: log every write, fsync once a second.
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
        f"requirepass {password}",
    ]
    fd = os.open(paths["conf"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(paths["conf"], 0o600)


def _conf_port(conf: Path) -> int | None:
    return runtime.port_in(conf, r"^port (\d+)$")


def _url(password: str, port: int) -> str:
    return f"redis://:{password}@127.0.0.1:{port}/0"


def _accepts(url: str, timeout_s: float = 2) -> bool:
    """Whether the server answers an authenticated PING (redis-py is Dramatiq's Redis client)."""
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        raise RedisProvisioningError(
            "the redis client is not installed: install the workers extra (`pip install -e "
            "'.[workers]'`, which brings dramatiq[redis]) or `pip install redis`"
        ) from None
    # One attempt: the client retries refused connections and logins with a backoff of seconds.
    once = Retry(NoBackoff(), 0)
    try:
        with redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                  retry=once) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _server_pid(paths: dict[str, Path]) -> int | None:
    """The pid of the server running on this home's data, from its pid file; None if none runs."""
    try:
        pid = int(paths["pid"].read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_redis(pid) and not runtime.exited(pid) else None


def _is_redis(pid: int) -> bool:
    # A pid file outlives its process, and the pid may be reused since; never adopt or signal that.
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "redis-server"
    except OSError:
        return False




def _state(paths: dict[str, Path], password: str, port: int, pid: int) -> dict[str, Any]:
    return {
        "url": _url(password, port),
        "host": "127.0.0.1",
        "port": port,
        "password": password,
        "database": 0,
        "pid": pid,
        "data_dir": str(paths["data"]),
        "log": str(paths["log"]),
    }


def start_redis(home: Path, *, timeout_s: float = 30) -> dict[str, Any]:
    """Start (or find running) the home's Redis; returns url, port, pid, data_dir, ..."""
    state = runtime.read_state(home, "redis")
    if state and runtime.process_alive(int(state["pid"])) and _accepts(state["url"]):
        return state
    binary = server_binary()
    paths = _paths(home)
    paths["data"].mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(paths["base"], 0o700)
    password = runtime.generated_password(paths["password"])
    pid = _server_pid(paths)
    port = _conf_port(paths["conf"])
    if pid is not None and port is not None:  # running, but its state file was lost; adopt it
        state = _state(paths, password, port, pid)
        _wait_ready(state["url"], pid, paths, timeout_s)
        runtime.write_state(home, "redis", state)
        return state
    # A restart keeps the port it had (when still free), so clients reconnect to the same URL.
    port = runtime.pick_port(port or DEFAULT_PORT)
    _write_conf(paths, port, password)
    paths["pid"].unlink(missing_ok=True)
    with open(paths["log"], "ab") as log:
        # A session of its own, so the server outlives the CLI that started it.
        proc = subprocess.Popen(
            [str(binary), str(paths["conf"].resolve())], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=paths["base"],
        )
    state = _state(paths, password, port, proc.pid)
    try:
        _wait_ready(state["url"], proc.pid, paths, timeout_s)
    except BaseException:
        runtime.terminate(proc.pid, 10)
        raise
    runtime.write_state(home, "redis", state)
    return state


def _wait_ready(url: str, pid: int, paths: dict[str, Path], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _accepts(url, timeout_s=1):
        runtime.reap(pid)
        if runtime.exited(pid):
            raise RedisProvisioningError(
                f"Redis exited while starting; its log ({paths['log']}) ends with:\n"
                f"{runtime.log_tail(paths['log'])}"
            )
        if time.monotonic() > deadline:
            raise RedisProvisioningError(
                f"Redis did not answer an authenticated PING within {timeout_s:.0f} s; "
                f"its log ({paths['log']}) ends with:\n{runtime.log_tail(paths['log'])}"
            )
        time.sleep(0.05)


def stop_redis(home: Path, *, timeout_s: float = 60) -> bool:
    """Stop the home's Redis cleanly (SIGTERM: fsync the append-only file, exit)."""
    paths = _paths(home)
    state = runtime.read_state(home, "redis")
    pid = _server_pid(paths)
    if pid is not None:
        runtime.terminate(pid, timeout_s)
    runtime.clear_state(home, "redis")
    return state is not None or pid is not None






def redis_status(home: Path) -> dict[str, Any]:
    """Whether the home's Redis runs, and where (without the password or the URL)."""
    return runtime.service_status(home, "redis", lambda state: _accepts(state["url"]))


exited = runtime.exited
"""Kept here for callers that ask this module (tests do)."""
