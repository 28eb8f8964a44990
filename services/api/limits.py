"""Bounds on every request, before a route sees it: the URL, the headers, the body.

A pure ASGI middleware (a BaseHTTPMiddleware would hide the client's disconnect from the
routes that watch for it). A body is refused from its Content-Length before a byte of it is
read, and a body sent without one (chunked) is counted as it streams: past the limit the
middleware answers 413 itself and tells the route the client is gone, so nothing more is
read or buffered. Headers are checked here too: uvicorn's h11 refuses over-long headers only
when they arrive in pieces, and 20 KB sent at once reached the app.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.core.settings import ApiSettings


async def _answer_413(send: Send, error: str, detail: str) -> None:
    """The 413 response, in the API's error format ({"error", "detail"}); the connection closes
    after it, so that the rest of an unread body is not taken for the next request."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def url_detail(length: int, limit: int) -> str:
    return (f"the URL (path and query string) is {length:,} bytes, over the limit of {limit:,} "
            "(KNOBS_API_MAX_URL_CHARS): send long values in a POST body, or raise KNOBS_API_MAX_URL_CHARS")


def header_detail(length: int, limit: int) -> str:
    return (f"the request headers are {length:,} bytes, over the limit of {limit:,} "
            "(KNOBS_API_MAX_HEADER_BYTES): send fewer or shorter headers, "
            "or raise KNOBS_API_MAX_HEADER_BYTES")


def body_detail(length: int | None, limit: int) -> str:
    size = f"{length:,} bytes" if length is not None else "more than that"
    return (f"the request body is {size}, over the limit of {limit:,} bytes (KNOBS_API_MAX_BODY_BYTES): "
            "send fewer events per request, or raise KNOBS_API_MAX_BODY_BYTES; nothing was done")


class RequestLimits:
    """ASGI middleware: 413 for a URL over `max_url_chars`, headers over `max_header_bytes` or a
    body over `max_body_bytes`."""

    def __init__(self, app: ASGIApp, settings: Callable[[Scope], ApiSettings] | None = None) -> None:
        self.app = app
        self._settings = settings or _app_settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self._settings(scope)
        url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url > settings.max_url_chars:
            await _answer_413(send, "UrlTooLong", url_detail(url, settings.max_url_chars))
            return
        headers = sum(len(name) + len(value) for name, value in scope.get("headers", []))
        if headers > settings.max_header_bytes:
            await _answer_413(send, "HeadersTooLarge", header_detail(headers, settings.max_header_bytes))
            return
        limit = settings.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer_413(send, "BodyTooLarge", body_detail(declared, limit))
            return
        await _BodyCounter(self.app, limit)(scope, receive, send)


class _BodyCounter:
    """One request: counts the body as it arrives and answers 413 once it passes `limit`."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.received = 0
        self.started = False  # the app has begun its response
        self.refused = False  # the body passed the limit
        self.answered = False  # ... and we answered 413 for it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.refused = True
                    if not self.started:
                        self.answered = True
                        await _answer_413(send, "BodyTooLarge", body_detail(None, self.limit))
                    # The route sees a client that went away: it stops reading and its
                    # answer, if it tries one, is dropped below.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.answered:
                return
            self.started = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # not a number: the server refuses it; we count what arrives
    return None


_DEFAULTS: ApiSettings | None = None


def _app_settings(scope: Scope) -> ApiSettings:
    """The app's settings (set by its lifespan), else the environment's."""
    settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
    if isinstance(settings, ApiSettings):
        return settings
    global _DEFAULTS
    _DEFAULTS = _DEFAULTS or ApiSettings()
    return _DEFAULTS
