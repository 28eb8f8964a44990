"""RabbitMQ from Debian's packages, run as a private node under $KNOBS_HOME/rabbitmq for Dramatiq.

`start_rabbitmq(home)` runs a node of its own per home, not the system service: a node name
derived from the home, an Erlang cookie and HOME under $KNOBS_HOME/rabbitmq, its own epmd,
AMQP and Erlang distribution on free loopback ports, no plugins, and one user `knobs` with a
generated password kept in a 0600 file. It records the AMQP URL in $KNOBS_HOME/run/rabbitmq.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import string
import subprocess
import time
from pathlib import Path
from typing import Any

from services.infra import runtime

DEFAULT_PORT = 5672
DEFAULT_DIST_PORT = 25672
USER = "knobs"
DEBIAN_ROOT = Path("/usr/lib/rabbitmq")


class RabbitMQProvisioningError(RuntimeError):
    """RabbitMQ could not be found, started or stopped; the message says what to do."""


def server_script() -> Path:
    """Debian's rabbitmq-server launcher (the raw script, not the wrapper that switches user)."""
    script = DEBIAN_ROOT / "bin" / "rabbitmq-server"
    if not script.exists() or shutil.which("epmd") is None:
        raise RabbitMQProvisioningError(
            f"no RabbitMQ server at {script}: run `make setup` (it installs Debian's "
            "rabbitmq-server) or `apt-get install rabbitmq-server`, or point Dramatiq at a "
            "broker of your own"
        )
    return script


def version() -> str:
    found = sorted(DEBIAN_ROOT.glob("lib/rabbitmq_server-*"))
    return found[-1].name.removeprefix("rabbitmq_server-") if found else "unknown"


def node_name(home: Path) -> str:
    """A node name unique to the home, so two homes never share a node (or its data)."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    return f"knobs-{digest}@localhost"


def _paths(home: Path) -> dict[str, Path]:
    base = home / "rabbitmq"
    return {
        "base": base,
        "mnesia": base / "mnesia",
        "log": base / "log",
        "logfile": base / "log" / "rabbit.log",
        "console": base / "log" / "console.log",
        "conf": base / "rabbitmq.conf",
        "env_conf": base / "rabbitmq-env.conf",
        "plugins": base / "enabled_plugins",
        "password": base / "password",
        "cookie": base / ".erlang.cookie",
        "pid": base / "rabbit.pid",
        # The ports and epmd of the running node, so a node whose state file was lost is adopted.
        "node": base / "node.json",
    }


def _cookie(path: Path) -> None:
    """The home's Erlang cookie (0400): only this home's node and tools can talk to it."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(secrets.choice(string.ascii_uppercase) for _ in range(32)))
    os.chmod(path, 0o400)


def _free_port() -> int:
    """A port the kernel hands out. epmd never takes its default 4369: another Erlang
    program on this machine would register with ours and lose it when this home stops."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_conf(paths: dict[str, Path], port: int, password: str) -> None:
    # default_user/default_pass only take effect when the node's database is first created;
    # the password file is created with it and kept, so they stay in step.
    lines = [
        "# Written by knobs at every start; edit knobs, not this file.",
        "listeners.tcp.1 = 127.0.0.1:" + str(port),
        "listeners.ssl = none",
        f"default_user = {USER}",
        f"default_pass = {password}",
        "default_vhost = /",
        "default_permissions.configure = .*",
        "default_permissions.read = .*",
        "default_permissions.write = .*",
        "log.console = false",
        "log.file.level = info",
    ]
    fd = os.open(paths["conf"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(paths["conf"], 0o600)
    paths["plugins"].write_text("[].\n")
    # Shadows /etc/rabbitmq/rabbitmq-env.conf, which would otherwise apply to every home.
    paths["env_conf"].write_text("# Written by knobs: the system-wide rabbitmq-env.conf is not used.\n")


def _env(paths: dict[str, Path], node: str, port: int, dist_port: int, epmd_port: int) -> dict[str, str]:
    base = paths["base"].resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    env.update({
        # HOME puts the Erlang cookie (and the CLI tools' history) under the home.
        "HOME": str(base),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_USE_LONGNAME": "false",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_LOGS": str(paths["logfile"].resolve()),
        "RABBITMQ_CONFIG_FILE": str(paths["conf"].resolve()),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(paths["env_conf"].resolve()),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(paths["plugins"].resolve()),
        "RABBITMQ_PID_FILE": str(paths["pid"].resolve()),
        # Distribution on loopback only, through this home's epmd (also on loopback).
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_CRASH_DUMP": str(base / "log" / "erl_crash.dump"),
    })
    return env


def _url(password: str, port: int) -> str:
    return f"amqp://{USER}:{password}@127.0.0.1:{port}/%2F"


def _accepts(url: str, timeout_s: float = 2) -> bool:
    """Whether the broker accepts an AMQP login (pika is Dramatiq's RabbitMQ client)."""
    try:
        import pika
        from pika.exceptions import AMQPError
    except ImportError:
        raise RabbitMQProvisioningError(
            "pika is not installed: install the workers extra (`pip install -e '.[workers]'`, "
            "which brings dramatiq[rabbitmq]) or `pip install pika`"
        ) from None
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = timeout_s
    params.blocked_connection_timeout = timeout_s
    try:
        pika.BlockingConnection(params).close()
        return True
    except (AMQPError, OSError):
        return False


def _node_pid(paths: dict[str, Path]) -> int | None:
    """The pid of the node running on this home's data, from its pid file; None if none runs."""
    try:
        pid = int(paths["pid"].read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is(pid, "beam.smp") and not runtime.exited(pid) else None


def _is(pid: int, command: str) -> bool:
    # A pid file outlives its process, and the pid may be reused since; never adopt or signal that.
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == command
    except OSError:
        return False




def _state(paths: dict[str, Path], node: dict[str, Any], password: str, pid: int) -> dict[str, Any]:
    return {
        "url": _url(password, node["port"]),
        "host": "127.0.0.1",
        "port": node["port"],
        "user": USER,
        "password": password,
        "vhost": "/",
        "pid": pid,
        "node": node["node"],
        "dist_port": node["dist_port"],
        "epmd_port": node["epmd_port"],
        "epmd_pid": node["epmd_pid"],
        "log": str(paths["logfile"]),
        "version": version(),
    }


def _start_epmd(paths: dict[str, Path], port: int) -> subprocess.Popen[bytes]:
    """This home's own epmd, so the node's name and distribution port stay private to it."""
    with open(paths["console"], "ab") as log:
        proc = subprocess.Popen(
            ["epmd", "-port", str(port), "-address", "127.0.0.1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=paths["base"],
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RabbitMQProvisioningError(
                f"epmd exited with code {proc.returncode} on port {port}; "
                f"{paths['console']} ends with:\n{runtime.log_tail(paths['console'])}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return proc
        time.sleep(0.05)
    runtime.terminate(proc.pid, 5)
    raise RabbitMQProvisioningError(f"epmd did not listen on 127.0.0.1:{port} within 10 s")


def _stop_stale_epmd(paths: dict[str, Path]) -> None:
    """The epmd a node that died without `stop_rabbitmq` left behind."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        pid = int(json.loads(paths["node"].read_text())["epmd_pid"])
        if _is(pid, "epmd"):
            runtime.terminate(pid, 5)


def start_rabbitmq(home: Path, *, timeout_s: float = 120) -> dict[str, Any]:
    """Start (or find running) the home's RabbitMQ node; returns url, port, pid, node, ..."""
    state = runtime.read_state(home, "rabbitmq")
    if state and runtime.process_alive(int(state["pid"])) and _accepts(state["url"]):
        return state
    script = server_script()
    paths = _paths(home)
    paths["log"].mkdir(parents=True, exist_ok=True, mode=0o700)
    paths["mnesia"].mkdir(exist_ok=True, mode=0o700)
    os.chmod(paths["base"], 0o700)
    password = runtime.generated_password(paths["password"])
    pid = _node_pid(paths)
    node: dict[str, Any]
    if pid is not None:  # running, but its state file was lost; adopt it
        node = json.loads(paths["node"].read_text())
        state = _state(paths, node, password, pid)
        _wait_ready(state["url"], pid, paths, timeout_s)
        runtime.write_state(home, "rabbitmq", state)
        return state
    _cookie(paths["cookie"])
    # A restart keeps the port it had (when still free), so clients reconnect to the same URL.
    previous = runtime.port_in(paths["conf"], r"^listeners\.tcp\.1 = 127\.0\.0\.1:(\d+)$")
    port = runtime.pick_port(previous or DEFAULT_PORT)
    dist_port = runtime.pick_port(DEFAULT_DIST_PORT)
    epmd_port = _free_port()
    _write_conf(paths, port, password)
    paths["pid"].unlink(missing_ok=True)
    _stop_stale_epmd(paths)
    epmd = _start_epmd(paths, epmd_port)
    node = {"node": node_name(home), "port": port, "dist_port": dist_port,
            "epmd_port": epmd_port, "epmd_pid": epmd.pid}
    with open(paths["console"], "ab") as log:
        # A session of its own, so the node outlives the CLI that started it. In the foreground
        # (not -detached) the script runs the VM as its child and turns SIGTERM into a clean stop.
        proc = subprocess.Popen(
            [str(script)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=paths["base"],
            env=_env(paths, node["node"], port, dist_port, epmd_port),
        )
    node["launcher_pid"] = proc.pid
    paths["node"].write_text(json.dumps(node))
    try:
        pid = _wait_node_pid(proc, paths, timeout_s)
        state = _state(paths, node, password, pid)
        _wait_ready(state["url"], pid, paths, timeout_s)
    except BaseException:
        runtime.terminate(proc.pid, 30)
        runtime.terminate(epmd.pid, 5)
        raise
    runtime.write_state(home, "rabbitmq", state)
    return state


def _wait_node_pid(proc: subprocess.Popen[bytes], paths: dict[str, Path], timeout_s: float) -> int:
    """The VM's pid, once the node has written its pid file."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RabbitMQProvisioningError(
                f"RabbitMQ exited with code {proc.returncode} while starting; "
                f"{_logs(paths)}"
            )
        pid = _node_pid(paths)
        if pid is not None:
            return pid
        time.sleep(0.1)
    raise RabbitMQProvisioningError(f"RabbitMQ wrote no pid file within {timeout_s:.0f} s; {_logs(paths)}")


def _wait_ready(url: str, pid: int, paths: dict[str, Path], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _accepts(url):
        if runtime.exited(pid):
            raise RabbitMQProvisioningError(f"RabbitMQ exited while starting; {_logs(paths)}")
        if time.monotonic() > deadline:
            raise RabbitMQProvisioningError(
                f"RabbitMQ did not accept an AMQP login within {timeout_s:.0f} s (if its log "
                f"shows a refused login for {USER!r}, the password file no longer matches the "
                f"node's database: stop it and remove {paths['mnesia']}); {_logs(paths)}"
            )
        time.sleep(0.25)


def stop_rabbitmq(home: Path, *, timeout_s: float = 60) -> bool:
    """Stop the home's node cleanly (SIGTERM: close connections, sync queues, exit), then its epmd."""
    paths = _paths(home)
    state = runtime.read_state(home, "rabbitmq")
    node: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        node = json.loads(paths["node"].read_text())
    pid = _node_pid(paths)
    if pid is not None:
        runtime.terminate(pid, timeout_s)
    if node.get("launcher_pid"):  # the script exits once the VM has; collect it
        runtime.wait_exited(int(node["launcher_pid"]), 10)
    if node.get("epmd_pid") and _is(int(node["epmd_pid"]), "epmd"):
        runtime.terminate(int(node["epmd_pid"]), 10)
    paths["node"].unlink(missing_ok=True)
    runtime.clear_state(home, "rabbitmq")
    return state is not None or pid is not None








def rabbitmq_status(home: Path) -> dict[str, Any]:
    """Whether the home's RabbitMQ runs, and where (without the password or the URL)."""
    return runtime.service_status(home, "rabbitmq", lambda state: _accepts(state["url"]))


def _logs(paths: dict[str, Path]) -> str:
    return (
        f"its log ({paths['logfile']}) ends with:\n{runtime.log_tail(paths['logfile'])}\n"
        f"and its console ({paths['console']}) with:\n{runtime.log_tail(paths['console'])}"
    )
