"""Neo4j Community 5.26 LTS, provisioned from Maven Central and run under $KNOBS_HOME.

Maven Central does not publish the 5.26 unix tarball, so `install()` fetches the community
jars (org.neo4j:neo4j) with Maven into a cache shared by every home and compiles a small
launcher (neo4j_server/src/KnobsNeo4j.java). `start_neo4j(home)` writes a neo4j.conf —
loopback only, auth on with a generated password kept in a 0600 file, file-URL LOAD CSV
off, HTTP off unless asked — starts the server on a free Bolt port and waits for Bolt.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.infra import runtime
from services.infra.errors import Neo4jProvisioningError

NEO4J_VERSION = "5.26.30"
DEFAULT_BOLT_PORT = 7687
DEFAULT_HTTP_PORT = 7474
SERVER_SOURCES = Path(__file__).parent / "neo4j_server"


def install_dir() -> Path:
    return runtime.cache_dir() / f"neo4j-{NEO4J_VERSION}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise installs across processes (two homes may install at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def install() -> Path:
    """Fetch the Neo4j jars and compile the launcher once; later calls return at once."""
    target = install_dir()
    done = target / ".installed"
    if done.exists():
        return target
    with _locked(runtime.cache_dir() / f"neo4j-{NEO4J_VERSION}.lock"):
        if done.exists():
            return target
        for tool in ("mvn", "javac", "java"):
            if shutil.which(tool) is None:
                raise Neo4jProvisioningError(
                    f"{tool} is not installed: run `make setup` (it installs Debian's "
                    "openjdk-17 and maven) or install a Java 17 JDK and Maven"
                )
        lib, classes = target / "lib", target / "classes"
        shutil.rmtree(target, ignore_errors=True)
        lib.mkdir(parents=True)
        classes.mkdir()
        _run(
            [
                "mvn", "-q", "-B", "-f", str(SERVER_SOURCES / "pom.xml"),
                f"-Dneo4j.version={NEO4J_VERSION}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={lib}", "-DincludeScope=runtime",
            ],
            "fetching Neo4j's jars from Maven Central",
        )
        _run(
            ["javac", "-cp", f"{lib}/*", "-d", str(classes),
             str(SERVER_SOURCES / "src" / "KnobsNeo4j.java")],
            "compiling the Neo4j launcher",
        )
        done.write_text(NEO4J_VERSION)
    return target


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise Neo4jProvisioningError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def _paths(home: Path) -> dict[str, Path]:
    base = home / "neo4j"
    return {
        "base": base,
        "data": base / "server",
        "conf": base / "neo4j.conf",
        "password": base / "password",
        "log": base / "console.log",
    }


def _write_conf(path: Path, bolt_port: int, http_port: int | None) -> None:
    lines = [
        "# Written by knobs at every start; edit knobs' settings, not this file.",
        "server.default_listen_address=127.0.0.1",
        "server.bolt.enabled=true",
        f"server.bolt.listen_address=127.0.0.1:{bolt_port}",
        f"server.http.enabled={'true' if http_port else 'false'}",
        "server.https.enabled=false",
        "dbms.security.auth_enabled=true",
        "dbms.security.allow_csv_import_from_file_urls=false",
        # The graph's store files for a few hundred thousand events (the ingest benchmark's
        # 120,000 make about 200 MB) stay in memory: a projection that misses the page cache
        # reads the disk for every MERGE.
        "server.memory.pagecache.size=1g",
        "db.logs.query.enabled=OFF",
        # A backstop for any transaction that sets no timeout of its own (the read-only gate
        # sets one from KNOBS_API_CYPHER_TIMEOUT_S, and a driver's timeout overrides this one).
        # Generous on purpose: the longest legitimate transactions are the rebuild's wipe of
        # the whole graph (one auto-commit query; the whole rebuild at 100k runs takes ~150 s)
        # and the schema's wait for its indexes (300 s by its own limit). No per-transaction
        # memory cap (db.memory.transaction.max): the global pool (70% of the heap) already
        # fails a greedy query rather than the server, and projecting a ranking of 100k runs
        # needs ~830 MiB of it, so a tighter cap would only add a way for projection to fail.
        "db.transaction.timeout=10m",
    ]
    if http_port:
        lines.append(f"server.http.listen_address=127.0.0.1:{http_port}")
    path.write_text("\n".join(lines) + "\n")


def neo4j_status(home: Path) -> dict[str, Any]:
    state = runtime.read_state(home, "neo4j")
    if state is None:
        return {"running": False}
    running = runtime.process_alive(int(state["pid"])) and _bolt_ready(state, timeout_s=2)
    return {"running": running, **{k: v for k, v in state.items() if k != "password"}}


def start_neo4j(
    home: Path, *, http: bool = False, heap: str = "2g", timeout_s: float = 120
) -> dict[str, Any]:
    """Start (or find running) the home's Neo4j; returns uri, user, password, pid, port."""
    state = runtime.read_state(home, "neo4j")
    if state and runtime.process_alive(int(state["pid"])) and _bolt_ready(state, timeout_s=5):
        return state
    target = install()
    paths = _paths(home)
    paths["data"].mkdir(parents=True, exist_ok=True)
    password = runtime.generated_password(paths["password"])
    last = runtime.port_in(paths["conf"], r"^server\.bolt\.listen_address=[\d.]+:(\d+)$")
    bolt_port = runtime.pick_port(last or DEFAULT_BOLT_PORT)
    http_port = runtime.pick_port(DEFAULT_HTTP_PORT) if http else None
    _write_conf(paths["conf"], bolt_port, http_port)
    cmd = [
        # 1 GiB from the start: growing the heap under the first projection's load costs full
        # collections just while the JIT is warming up. Up to 2 GiB: a transaction may use 70%
        # of it, and projecting one ranking of 100k runs (200,000 provenance links) needs
        # ~830 MiB, over the 717 MiB a 1 GiB heap allows (bench.growth found it).
        "java", "-Xms1g", f"-Xmx{heap}", "-XX:+UseG1GC", "-Dfile.encoding=UTF-8",
        "-cp", f"{target / 'lib'}/*:{target / 'classes'}",
        "KnobsNeo4j", str(paths["data"]), str(paths["conf"]), str(paths["password"]),
    ]
    with open(paths["log"], "ab") as log:
        # A session of its own, so the server outlives the CLI that started it.
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state = {
        "uri": f"bolt://127.0.0.1:{bolt_port}",
        "user": "neo4j",
        "password": password,
        "pid": proc.pid,
        "bolt_port": bolt_port,
        "http_port": http_port,
        "version": NEO4J_VERSION,
        "log": str(paths["log"]),
    }
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Neo4jProvisioningError(
                f"Neo4j exited with code {proc.returncode} while starting; "
                f"its log ({paths['log']}) ends with:\n{runtime.log_tail(paths['log'])}"
            )
        if _bolt_ready(state, timeout_s=2):
            runtime.write_state(home, "neo4j", state)
            return state
        time.sleep(0.5)
    proc.terminate()
    raise Neo4jProvisioningError(
        f"Neo4j did not accept Bolt connections within {timeout_s:.0f} s; "
        f"its log ({paths['log']}) ends with:\n{runtime.log_tail(paths['log'])}"
    )


def stop_neo4j(home: Path, timeout_s: float = 60) -> bool:
    """Stop the home's Neo4j cleanly (SIGTERM, then SIGKILL after `timeout_s`)."""
    state = runtime.read_state(home, "neo4j")
    if state is None:
        return False
    pid = int(state["pid"])
    if runtime.process_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while runtime.process_alive(pid) and time.monotonic() < deadline:
            runtime.reap(pid)
            time.sleep(0.2)
        if runtime.process_alive(pid):
            os.kill(pid, signal.SIGKILL)
    runtime.reap(pid)
    runtime.clear_state(home, "neo4j")
    return True




def _bolt_ready(state: dict[str, Any], timeout_s: float) -> bool:
    from neo4j import GraphDatabase
    from neo4j.exceptions import Neo4jError, ServiceUnavailable

    try:
        with GraphDatabase.driver(
            state["uri"], auth=(state["user"], state["password"]), connection_timeout=timeout_s
        ) as driver:
            driver.verify_connectivity()
        return True
    except (ServiceUnavailable, Neo4jError, OSError, ValueError):
        return False
