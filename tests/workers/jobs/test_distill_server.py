"""The client against the real local server, and through a fault-injecting proxy in front of
it (429s, 503s, a stall past the timeout) to show the retries: every answer still comes from
the real model, the proxy only delays or refuses."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from events.models.distillation import Lens, LLMUnavailable, QAPair, Sampling
from workers.jobs.distill import Answer, Call, ClientSettings, Endpoint, ResponseCache, call_for, complete_all

LENS = Lens(name="restate", family="restate", description="d", sampling=Sampling(max_tokens=24),
            template="Say again in one sentence: {question} {answer}")
PAIRS = [QAPair(id=f"p{i}", question=f"What is {i} plus {i}?", answer=str(2 * i)) for i in range(4)]


class FaultyProxy:
    """Forwards to the real server; the first `faults` requests get these statuses instead
    (or, for 'stall', an answer slower than the client's timeout)."""

    def __init__(self, target: str, faults: list[int | str], skip: int = 0) -> None:
        self.target, self.faults, self.seen, self.skip = target.rstrip("/"), list(faults), 0, skip
        app = FastAPI()

        @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
        async def forward(path: str, request: Request) -> Response:
            self.seen += 1
            if self.faults and self.seen > self.skip:
                fault = self.faults.pop(0)
                if fault == "stall":
                    await asyncio.sleep(3)
                else:
                    return Response(status_code=int(fault), content=b'{"error": {"message": "injected"}}',
                                    headers={"content-type": "application/json"})
            async with httpx.AsyncClient(timeout=120) as client:
                upstream = await client.request(request.method, f"{self.target}/{path}",
                                                content=await request.body(),
                                                headers={k: v for k, v in request.headers.items()
                                                         if k.lower() in ("authorization", "content-type")})
            kind = upstream.headers.get("content-type", "application/json")
            return Response(upstream.content, status_code=upstream.status_code,
                            headers={"content-type": kind})

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def run(calls: list[Call], endpoint: Endpoint, cache: ResponseCache,
        settings: ClientSettings) -> dict[str, Answer]:
    got: dict[str, Answer] = {}
    asyncio.run(complete_all(calls, endpoint, cache, settings, lambda c, a: got.__setitem__(c.key, a)))
    return got


@pytest.fixture
def calls(llm_server: Any) -> list[Call]:
    return [call_for(llm_server.model, LENS, pair, 0) for pair in PAIRS]


def test_concurrent_calls_answer_once_each_and_then_from_the_cache(tmp_path: Path, llm_server: Any,
                                                                   calls: list[Call]) -> None:
    endpoint = Endpoint(llm_server.base_url, llm_server.api_key, llm_server.model)
    cache = ResponseCache(tmp_path)
    first = run(calls, endpoint, cache, ClientSettings(concurrency=3))
    assert set(first) == {c.key for c in calls}
    assert all(a.attempts == 1 and not a.cached and a.completion_tokens > 0 and a.text
               for a in first.values())
    again = run(calls, Endpoint("http://127.0.0.1:9/v1", "", llm_server.model), cache, ClientSettings())
    assert {k: a.text for k, a in again.items()} == {k: a.text for k, a in first.items()}
    assert all(a.cached and a.attempts == 0 for a in again.values())


def test_rate_limits_and_server_errors_are_retried_with_backoff(tmp_path: Path, llm_server: Any,
                                                               calls: list[Call]) -> None:
    with FaultyProxy(llm_server.base_url, [429, 503, 500]) as proxy:
        endpoint = Endpoint(proxy.url, llm_server.api_key, llm_server.model)
        got = run(calls[:2], endpoint, ResponseCache(tmp_path),
                  ClientSettings(concurrency=1, backoff_s=0.05, max_retries=4))
    assert sum(a.attempts for a in got.values()) == 2 + 3
    assert proxy.seen == 5 and all(a.text for a in got.values())


def test_a_stalled_request_times_out_and_is_retried(tmp_path: Path, llm_server: Any,
                                                    calls: list[Call]) -> None:
    with FaultyProxy(llm_server.base_url, ["stall"]) as proxy:
        endpoint = Endpoint(proxy.url, llm_server.api_key, llm_server.model)
        got = run(calls[:1], endpoint, ResponseCache(tmp_path),
                  ClientSettings(timeout_s=1.0, backoff_s=0.05, max_retries=2))
    assert [a.attempts for a in got.values()] == [2]


def test_giving_up_keeps_what_finished_and_says_why(tmp_path: Path, llm_server: Any,
                                                    calls: list[Call]) -> None:
    cache = ResponseCache(tmp_path)
    with FaultyProxy(llm_server.base_url, [503, 503, 503], skip=1) as proxy:
        endpoint = Endpoint(proxy.url, llm_server.api_key, llm_server.model)
        with pytest.raises(LLMUnavailable, match="answered 503"):
            run(calls[:2], endpoint, cache, ClientSettings(concurrency=1, backoff_s=0.01, max_retries=2))
    assert sum(cache.get(c.key) is not None for c in calls[:2]) == 1


def test_a_bad_key_is_not_retried(tmp_path: Path, llm_server: Any, calls: list[Call]) -> None:
    endpoint = Endpoint(llm_server.base_url, "wrong", llm_server.model)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="refused the API key"):
        run(calls[:1], endpoint, ResponseCache(tmp_path), ClientSettings(backoff_s=5))
    assert time.monotonic() - started < 5
