"""Ask for a distillation: name the pairs, the lens versions and the model exactly, check the
server answers, log the request, and have the workers do it.

The distillation id is a hash of the pair set, the lens versions, the samples, the engine, the
model and the checks, so asking twice is asking once: the second request resumes the first
where it stopped (finished distillates are in the log, finished answers in the response cache).
The server's URL and key are checked before anything is logged; the key is never logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from events.errors import InvalidEvent
from events.models.distillation import (
    Checks,
    DistillationBatchFailed,
    DistillationCompleted,
    DistillationRequested,
    DistillInputRejected,
    Engine,
    LensDefined,
    LensRef,
    LLMUnavailable,
    PairSet,
    QAPair,
    Usage,
    distill_stream,
    distillation_id,
    lens_key,
)
from events.store import EventStore
from events.store.identity import CONTENT_NAMESPACE
from events.store.port import NewEvent
from services.core import plugins
from services.core.errors import BadInput, Unavailable
from services.distillation.lenses import LoadedLens

Progress = Callable[[int, int, Usage], None]
DEFAULT_BATCH_PAIRS = 4
"""Pairs per worker job: a killed job loses at most the requests in flight of these pairs."""


class DistillRequestError(BadInput):
    """The pairs, lenses or settings of a distillation cannot be used; nothing was logged."""


class LLMServerError(Unavailable):
    """The server is unreachable, refuses the key, or does not serve the model."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str


@dataclass(frozen=True)
class Asked:
    """What `request` logged (or found logged) and whether it was already complete."""

    request: DistillationRequested
    resumed: bool
    already_done: int


def load_pairs(source: str, limit: int | None = None) -> tuple[PairSet, list[QAPair]]:
    """Pairs from a JSONL file, text or Markdown files cut into passages, or the biographies."""
    try:
        pair_set, pairs = plugins.executor("qa_pairs")(source, limit=limit)
    except DistillInputRejected as exc:
        raise DistillRequestError(str(exc)) from exc
    return pair_set, pairs


def check_server(endpoint: Endpoint) -> None:
    """The server answers at this URL with the key the workers will use, and serves the model."""
    try:
        served: list[str] = plugins.executor("llm_models")(endpoint.base_url)
    except LLMUnavailable as exc:
        raise LLMServerError(str(exc)) from exc
    if served and endpoint.model not in served:
        raise LLMServerError(f"{endpoint.base_url} does not serve model {endpoint.model!r}; it serves: "
                             f"{', '.join(served)} (--model or KNOBS_LLM_MODEL)")


def _keyed(event: LensDefined | DistillationRequested, key: str) -> NewEvent:
    import uuid

    return NewEvent(event=event, event_id=uuid.uuid5(CONTENT_NAMESPACE, key), idempotency_key=key)


def request(store: EventStore, pair_set: PairSet, pairs: list[QAPair], lenses: list[LoadedLens], *,
            samples: int, engine: Engine, endpoint: Endpoint | None, checks: Checks | None = None,
            batch_pairs: int = DEFAULT_BATCH_PAIRS) -> Asked:
    """Log the lens versions not yet in the log and the request, in one append (or find them)."""
    if samples < 1:
        raise DistillRequestError(f"--samples {samples}: ask for at least 1 sample per lens")
    if not lenses:
        raise DistillRequestError("no lenses selected: --lenses NAME,NAME or all (see `knobs lenses list`)")
    if engine == "llm" and endpoint is None:
        raise DistillRequestError("the llm engine needs a server: --base-url/--model or KNOBS_LLM_*")
    if engine == "template":
        problems = [problem for pair in pairs if (problem := pair.template_problem()) is not None]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise DistillRequestError(problems[0] + more)
    checks = checks or Checks()
    refs = [LensRef(name=loaded.lens.name, version=loaded.lens.version) for loaded in lenses]
    model = endpoint.model if engine == "llm" and endpoint else "template"
    distillation = distillation_id(pair_set.sha256, refs, samples, engine, model, checks)
    stream = store.read_stream(distill_stream(distillation))
    if stream:
        existing = stream[0].decode()
        assert isinstance(existing, DistillationRequested)
        done = sum(1 for s in stream if s.event_type == "DistillateGenerated")
        return Asked(existing, resumed=True, already_done=done)
    new: list[NewEvent] = []
    for loaded, ref in zip(lenses, refs, strict=True):
        logged = {s.data.get("version") for s in store.read_stream(f"lens:{ref.name}")}
        if ref.version not in logged:
            new.append(_keyed(LensDefined(lens=loaded.lens, version=ref.version, origin=loaded.origin),
                              lens_key(ref)))
    asked = DistillationRequested(
        distillation_id=distillation, pair_set=pair_set, pairs=pairs, lenses=refs, samples=samples,
        engine=engine, model=model, base_url=endpoint.base_url if engine == "llm" and endpoint else "",
        checks=checks, batch_pairs=batch_pairs)
    new.append(_keyed(asked, f"distillation-requested:{distillation}"))
    try:
        store.append(new)
    except InvalidEvent as exc:  # a value the log cannot hold (a 65-bit number in a lens file)
        raise DistillRequestError(f"nothing was logged: {exc}") from exc
    return Asked(asked, resumed=False, already_done=0)


def run(distillation: str, *, broker: str = "stub", base_url: str = "",
        progress: Progress | None = None) -> list[int]:
    """Have the workers do every unfinished batch (embedded: here, now; a broker: queued),
    asking the server at `base_url` (default: where the distillation first asked)."""
    try:
        sent: list[int] = plugins.executor("distill")(distillation, broker=broker, base_url=base_url,
                                                      progress=progress)
    except LLMUnavailable as exc:
        raise LLMServerError(f"{exc} (finished distillates are kept: run the same command "
                             "again to resume)") from exc
    return sent


def wait(store: EventStore, distillation: str, timeout_s: float, poll_s: float = 1.0,
         after: int = 0) -> dict[str, Any]:
    """Poll the log until the distillation completes or a batch gives up (distributed path).
    Only a failure past `after` (the log's head when this resume was sent) counts: a batch that
    gave up in an earlier attempt is what the resume is redoing."""
    deadline = time.monotonic() + timeout_s
    while True:
        for stored in store.read_stream(distill_stream(distillation)):
            if stored.event_type == DistillationCompleted.event_type:
                return dict(stored.data)
            if stored.event_type == DistillationBatchFailed.event_type and stored.position > after:
                raise LLMServerError(f"batch {stored.data['batch']} gave up: {stored.data['reason']} "
                                     "(finished distillates are kept: ask again to resume)")
        if time.monotonic() > deadline:
            raise Unavailable(f"distillation {distillation} not complete after {timeout_s:.0f} s: are "
                              "`knobs worker` processes consuming the broker? (`--wait 0` returns at once)")
        time.sleep(poll_s)
