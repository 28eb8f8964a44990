"""Talking to an OpenAI-compatible server: many chat completions at once, each retried on a
rate limit, a server error or a timeout, each answer cached by what was asked.

Any server that speaks the OpenAI API works (OpenAI, vLLM, llama.cpp's server, Ollama): the
`openai` package's async client, with its own retries off so that ours are the only ones and
every attempt is counted. A call's cache key is the sha256 of everything that decides the
answer (model, lens version, messages, sampling, sample index); the answer is written under
$KNOBS_HOME/cache/llm before anyone hears of it, so a rerun of the same call costs no request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import openai

from events.canonical import canonical_json
from events.models.distillation import Lens, LLMUnavailable, QAPair, Sampling

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: str
    model: str


@dataclass(frozen=True)
class Call:
    """One chat completion to make: `key` names it in the cache and in the log."""

    key: str
    messages: tuple[dict[str, str], ...]
    sampling: Sampling
    seed: int


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    attempts: int
    cached: bool = False


def render_messages(lens: Lens, pair: QAPair) -> tuple[dict[str, str], ...]:
    """The lens's system message (when it has one) and its template filled with the pair."""
    user = lens.template.format_map({"question": pair.question, "answer": pair.answer,
                                     "context": pair.context})
    system = ({"role": "system", "content": lens.system},) if lens.system else ()
    return (*system, {"role": "user", "content": user})


def call_for(model: str, lens: Lens, pair: QAPair, sample: int) -> Call:
    messages = render_messages(lens, pair)
    identity = canonical_json({"model": model, "lens_version": lens.version, "messages": list(messages),
                               "sampling": lens.sampling.model_dump(mode="json"), "sample": sample})
    key = hashlib.sha256(identity.encode()).hexdigest()
    # The sample index reaches the server as its seed, so sample k is reproducible where the
    # server honours seeds (llama.cpp and vLLM do) and distinct from sample k+1 everywhere.
    return Call(key=key, messages=messages, sampling=lens.sampling, seed=int(key[:8], 16))


class ResponseCache:
    """Answers by call key, one JSON file each, written atomically (a kill leaves no half file)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Answer | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return Answer(**{**data, "cached": True, "attempts": 0, "latency_s": 0.0})

    def put(self, key: str, answer: Answer) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(answer)))
        os.replace(tmp, path)


@dataclass(frozen=True)
class ClientSettings:
    concurrency: int = 4
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0


def backoff(attempt: int, settings: ClientSettings, rng: random.Random) -> float:
    """Exponential backoff with full jitter (AWS's "full jitter": uniform in [0, base·2^k])."""
    return rng.uniform(0, min(settings.max_backoff_s, settings.backoff_s * 2 ** attempt))


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code in RETRYABLE_STATUS


def explain(exc: Exception, endpoint: Endpoint) -> str:
    """One line a person can act on, naming the server."""
    where = endpoint.base_url
    if isinstance(exc, openai.AuthenticationError):
        return (f"{where} refused the API key (401): set KNOBS_LLM_API_KEY to a key it accepts")
    if isinstance(exc, openai.NotFoundError):
        return (f"{where} does not serve model {endpoint.model!r} (404): pick one from "
                f"{where.rstrip('/')}/models with --model or KNOBS_LLM_MODEL")
    if isinstance(exc, openai.APITimeoutError):
        return (f"{where} did not answer in time: a larger KNOBS_LLM_TIMEOUT_S (seconds per request), "
                "or a less loaded server")
    if isinstance(exc, openai.APIConnectionError):
        return (f"cannot reach {where}: is the server up (`knobs services up --llm`) and the "
                "URL right (--base-url, KNOBS_LLM_BASE_URL)?")
    if isinstance(exc, openai.APIStatusError):
        return f"{where} answered {exc.status_code}: {exc.message}"
    return f"{where}: {exc}"


def make_client(endpoint: Endpoint, settings: ClientSettings) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key or "none",
                              timeout=settings.timeout_s, max_retries=0)


async def complete(client: openai.AsyncOpenAI, endpoint: Endpoint, call: Call,
                   settings: ClientSettings, rng: random.Random) -> Answer:
    """One call, retried on 429, 5xx, timeouts and dropped connections; LLMUnavailable after."""
    started = time.perf_counter()
    for attempt in range(settings.max_retries + 1):
        try:
            response = await client.chat.completions.create(
                model=endpoint.model, messages=list(call.messages),  # type: ignore[arg-type]
                temperature=call.sampling.temperature, top_p=call.sampling.top_p,
                max_tokens=call.sampling.max_tokens, seed=call.seed)
        except Exception as exc:
            if not _retryable(exc) or attempt == settings.max_retries:
                raise LLMUnavailable(explain(exc, endpoint)) from exc
            await asyncio.sleep(backoff(attempt, settings, rng))
            continue
        choice = response.choices[0] if response.choices else None
        usage = response.usage
        return Answer(text=(choice.message.content or "") if choice else "",
                      finish_reason=str(choice.finish_reason or "") if choice else "",
                      prompt_tokens=usage.prompt_tokens if usage else 0,
                      completion_tokens=usage.completion_tokens if usage else 0,
                      latency_s=time.perf_counter() - started, attempts=attempt + 1)
    raise AssertionError("unreachable")  # pragma: no cover


Done = Callable[[Call, Answer], Awaitable[None] | None]


async def complete_all(calls: Iterable[Call], endpoint: Endpoint, cache: ResponseCache,
                       settings: ClientSettings, on_done: Done) -> None:
    """Every call, at most `settings.concurrency` in flight; cached ones cost no request.

    `on_done` hears of each answer once it is in the cache, in completion order. The first
    call that fails for good cancels the rest (their answers, where finished, are cached)
    and its LLMUnavailable is raised.
    """
    client = make_client(endpoint, settings)
    gate = asyncio.Semaphore(settings.concurrency)
    rng = random.Random()

    async def one(call: Call) -> None:
        answer = cache.get(call.key)
        if answer is None:
            async with gate:
                answer = await complete(client, endpoint, call, settings, rng)
            cache.put(call.key, answer)
        result = on_done(call, answer)
        if result is not None:
            await result

    try:
        async with asyncio.TaskGroup() as group:
            for call in calls:
                group.create_task(one(call))
    except* LLMUnavailable as failures:
        raise failures.exceptions[0] from None
    finally:
        await client.close()


def models_served(endpoint: Endpoint, timeout_s: float = 10.0) -> list[str]:
    """The ids `GET /models` lists (checks the URL and the key before any work is logged)."""

    async def ask() -> list[str]:
        client = make_client(endpoint, ClientSettings(timeout_s=timeout_s))
        try:
            return [m.id async for m in client.models.list()]
        except Exception as exc:
            raise LLMUnavailable(explain(exc, endpoint)) from exc
        finally:
            await client.close()

    return asyncio.run(ask())


def usage_totals(answers: Iterable[Answer]) -> dict[str, Any]:
    answers = list(answers)
    return {"requests": sum(a.attempts for a in answers),
            "cached": sum(a.cached for a in answers),
            "prompt_tokens": sum(a.prompt_tokens for a in answers),
            "completion_tokens": sum(a.completion_tokens for a in answers)}
