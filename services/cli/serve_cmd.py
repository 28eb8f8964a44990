"""`knobs serve`: the HTTP API and dashboard under uvicorn, with secrets masked in every log
line and a warning when tokens would cross a network in clear."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from services.core.errors import BadInput


class LogLevel(StrEnum):
    # No "trace": uvicorn's trace level prints every request's headers, Authorization included.
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def plaintext_warning(host: str, certfile: Path | None) -> str | None:
    """What to tell a person about to serve tokens over plain HTTP beyond this machine."""
    if certfile is not None or is_loopback(host):
        return None
    return (f"warning: serving on {host} without TLS: bearer tokens and the dashboard's login cookie "
            f"travel in clear to anyone on the network path. Put knobs behind a TLS-terminating proxy "
            f"(and bind 127.0.0.1), or pass --ssl-certfile and --ssl-keyfile.")


def run_server(host: str, port: int, workers: int, log_level: LogLevel, certfile: Path | None,
               keyfile: Path | None) -> None:
    import uvicorn

    from services.access.redact import log_config
    from services.core.settings import ApiSettings

    if (certfile is None) != (keyfile is None):
        raise BadInput("--ssl-certfile and --ssl-keyfile go together: pass both, or neither")
    warning = plaintext_warning(host, certfile)
    if warning:
        typer.secho(warning, err=True, fg=typer.colors.YELLOW)
    settings = ApiSettings()
    secrets = [s for s in (settings.token, settings.read_token) if s]
    common: dict[str, Any] = {"host": host, "port": port, "log_level": log_level.value,
              "log_config": log_config(secrets, log_level.value),
              "ssl_certfile": str(certfile) if certfile else None,
              "ssl_keyfile": str(keyfile) if keyfile else None}
    if workers == 1:
        from services.api.app import create_app

        uvicorn.run(create_app(settings=settings), **common)
    else:
        # Several processes need the app by name: each worker builds its own from the environment.
        uvicorn.run("services.api.app:create_app", factory=True, workers=workers, **common)
