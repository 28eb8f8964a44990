"""Where started services record themselves: $KNOBS_HOME/run/<name>.json (0600).

Two KNOBS_HOMEs run side by side: each service takes its default port when free, another
free port otherwise, and writes what it took here so every client of that home finds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_dir(home: Path) -> Path:
    path = home / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_state(home: Path, name: str, state: dict[str, Any]) -> Path:
    """Atomically write a service's state, readable by the owner only (it holds secrets)."""
    path = run_dir(home) / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return path


def read_state(home: Path, name: str) -> dict[str, Any] | None:
    path = home / "run" / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def clear_state(home: Path, name: str) -> None:
    (home / "run" / f"{name}.json").unlink(missing_ok=True)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def conf_port(conf: Path, pattern: str) -> int | None:
    """The port a server's config file names (`pattern`'s one group), None without one."""
    with contextlib.suppress(OSError):
        found = re.search(pattern, conf.read_text(), re.MULTILINE)
        if found:
            return int(found.group(1))
    return None


def pick_port(preferred: int, host: str = "127.0.0.1") -> int:
    """The preferred port when it is free, else one the kernel hands out."""
    if port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cache_dir() -> Path:
    """A cache shared by every KNOBS_HOME of this user (downloads happen once)."""
    base = os.environ.get("KNOBS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "knobs"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def generated_password(path: Path) -> str:
    """A service's generated password: created once, readable by the owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    os.chmod(path, 0o600)
    return path.read_text().strip()


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a service's log, for the error that says why it did not start."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def service_status(home: Path, name: str, accepts: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Whether a recorded service runs (its process lives and `accepts` a connection), and
    where, without its password or URL (they carry the secret)."""
    state = read_state(home, name)
    if state is None:
        return {"running": False}
    running = process_alive(int(state["pid"])) and accepts(state)
    return {"running": running, **{k: v for k, v in state.items() if k not in ("password", "url")}}


def exited(pid: int) -> bool:
    """Whether `pid` has exited; a zombie has (a server orphaned by its launcher is reaped by
    PID 1, and that can take a while in a container)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return not process_alive(pid)
    return fields[0] in ("Z", "X")


def reap(pid: int) -> None:
    """Collect `pid` if it is this process's child, so it is not left a zombie; else nothing."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL (and wait a little for that too)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_exited(pid, timeout_s):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_exited(pid, 10)


def wait_exited(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        reap(pid)
        if exited(pid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
