"""A logging filter that masks secrets before any handler writes a record: our tokens
(`knobs_<id>_<secret>` keeps its public id), bearer headers, login cookies, secret-looking
query parameters (uvicorn's access log prints the full path), and the environment's tokens.

Requests carrying tokens in URLs are refused (services/api/guard.py), but uvicorn logs the
line anyway, so the mask is what keeps them out of the log."""

from __future__ import annotations

import logging
import re
from typing import Any

_PATTERNS = [
    (re.compile(r"(knobs_[0-9a-f]{8}_)[A-Za-z0-9_\-]+"), r"\1***"),
    (re.compile(r"knobs_(?![0-9a-f]{8}_\*)[A-Za-z0-9_\-]{12,}"), "knobs_***"),
    (re.compile(r"(?i)(bearer\s+)[^\s'\",;]+"), r"\1***"),
    (re.compile(r"(?i)(knobs_token=)[^;\s'\"&]+"), r"\1***"),
    (re.compile(r"(?i)([?&](?:token|access_token|api_token|api_key|apikey|key|auth|bearer|password)=)"
                r"[^&\s'\"]*"), r"\1***"),
]


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class Redact(logging.Filter):
    """Masks the message and each argument in place: uvicorn's access formatter unpacks its
    arguments by position, so they stay a tuple of the same length."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        # Very short env tokens would mask common words; they are weak tokens anyway.
        self.secrets = tuple(s for s in (secrets or []) if len(s) >= 8)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return redact(bytes(value).decode("latin-1"), self.secrets)
        return redact(value, self.secrets) if isinstance(value, str) else value

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self.secrets)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._clean(v) for k, v in record.args.items()}
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, masked; handlers reuse exc_text instead of formatting again
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


def log_config(secrets: list[str], level: str = "info") -> dict[str, Any]:
    """uvicorn's own logging config with the mask on every handler (records from any logger
    reach a handler, and a handler's filter sees them all, propagated ones included)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {**LOGGING_CONFIG, "handlers": {k: dict(v) for k, v in
                                                             LOGGING_CONFIG["handlers"].items()}}
    config["filters"] = {"redact": {"()": Redact, "secrets": secrets}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    # Our own loggers (knobs.*) go to the same masked handler instead of Python's last resort
    config["loggers"] = {**config["loggers"], "knobs": {"handlers": ["default"], "level": level.upper(),
                                                        "propagate": False}}
    # and so do libraries' warnings (the Neo4j driver's, ...), rather than an unfiltered stderr
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
