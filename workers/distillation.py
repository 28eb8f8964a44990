"""One batch of a distillation, from its request in the log to its assessed clouds.

The request (`DistillationRequested`) names the pairs, the lens versions (each one's content is
its `LensDefined` event) and the samples. A batch is `batch_pairs` consecutive pairs: every
(pair, lens, sample) its stream does not hold yet is asked of the server (or written by the
template engine) and each answer is appended the moment it arrives, keyed by that triple, so
a batch killed at any point loses at most the answers in flight (they are in the response
cache already when finished) and the store refuses a second copy of any. Then each pair of the
batch without a `CloudAssessed` is judged as a whole — every distillate's `DistillateAssessed`
and the cloud's `CloudAssessed` in one append — and the last batch to finish appends
`DistillationCompleted`, with totals read from the log, so resumed work is counted once.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from events.models.base import Event
from events.models.distillation import (
    CloudAssessed,
    DistillateAssessed,
    DistillateGenerated,
    DistillationCompleted,
    DistillationRequested,
    Lens,
    LensDefined,
    QAPair,
    Usage,
    assessment_key,
    cloud_key,
    completed_key,
    distill_stream,
    distillate_id,
    distillate_key,
)
from events.store import EventStore, NewEvent
from workers.jobs.distill import (
    Answer,
    Call,
    ClientSettings,
    Endpoint,
    ResponseCache,
    call_for,
    complete_all,
)
from workers.jobs.distill_checks import Candidate, Embedder, judge_cloud

EVENT_NAMESPACE = uuid.UUID("3b8f2d1e-7c4a-5e9b-b2d6-8f1a0c3e5d27")
"""Fixed forever: distillation event ids are uuid5(EVENT_NAMESPACE, idempotency key)."""

Progress = Callable[[int, int, Usage], None]
"""(distillates done, distillates in all, the usage of the one just done); resumed ones included."""


def keyed(event: Event, key: str) -> NewEvent:
    return NewEvent(event=event, event_id=uuid.uuid5(EVENT_NAMESPACE, key), idempotency_key=key)


def request_key(distillation: str) -> str:
    return f"distillation-requested:{distillation}"


@dataclass
class State:
    """What a distillation's stream holds, read in one pass."""

    request: DistillationRequested
    generated: dict[tuple[str, str, int], DistillateGenerated]
    assessed: set[str]
    clouds: set[str]
    completed: bool


def read_state(store: EventStore, distillation: str) -> State:
    request: DistillationRequested | None = None
    generated: dict[tuple[str, str, int], DistillateGenerated] = {}
    assessed: set[str] = set()
    clouds: set[str] = set()
    completed = False
    for stored in store.read_stream(distill_stream(distillation)):
        event = stored.decode()
        if isinstance(event, DistillationRequested):
            request = event
        elif isinstance(event, DistillateGenerated):
            generated[(event.pair_id, event.lens, event.sample)] = event
        elif isinstance(event, DistillateAssessed):
            assessed.add(event.distillate_id)
        elif isinstance(event, CloudAssessed):
            clouds.add(event.pair_id)
        elif isinstance(event, DistillationCompleted):
            completed = True
    if request is None:
        raise LookupError(f"no DistillationRequested for {distillation} in the log")
    return State(request, generated, assessed, clouds, completed)


def lenses_of(store: EventStore, request: DistillationRequested) -> list[Lens]:
    """Each requested lens version, as its LensDefined event holds it."""
    found: list[Lens] = []
    for ref in request.lenses:
        versions = {e.version: e.lens for s in store.read_stream(f"lens:{ref.name}")
                    if isinstance(e := s.decode(), LensDefined)}
        if ref.version not in versions:
            raise LookupError(f"lens {ref.name}@{ref.version} has no LensDefined in the log")
        found.append(versions[ref.version])
    return found


def batches(request: DistillationRequested) -> int:
    return -(-len(request.pairs) // request.batch_pairs)


def batch_pairs(request: DistillationRequested, batch: int) -> list[QAPair]:
    return request.pairs[batch * request.batch_pairs:(batch + 1) * request.batch_pairs]


def generated_event(request: DistillationRequested, pair: QAPair, lens: Lens, sample: int,
                    call: Call, answer: Answer) -> DistillateGenerated:
    return DistillateGenerated(
        distillation_id=request.distillation_id,
        distillate_id=distillate_id(request.distillation_id, pair.id, lens.name, sample),
        pair_id=pair.id, lens=lens.name, lens_version=lens.version, sample=sample,
        engine=request.engine, model=request.model, sampling=lens.sampling,
        request_sha256=call.key, text=answer.text, finish_reason=answer.finish_reason,
        usage=Usage(prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                    latency_s=round(answer.latency_s, 6), attempts=answer.attempts,
                    cached=answer.cached))


@dataclass
class Job:
    """Everything a batch needs besides the log: where to ask, the cache, the embedder."""

    api_key_for: Callable[[str], str]
    """The key for a server URL (never in the log: workers/settings.py LLMSettings)."""
    cache: ResponseCache
    client: ClientSettings
    embedder_factory: Callable[[], Embedder]
    progress: Progress | None = None
    _embedder: Embedder | None = None
    _loading: threading.Lock = field(default_factory=threading.Lock)

    def embedder(self) -> Embedder:
        with self._loading:
            if self._embedder is None:
                self._embedder = self.embedder_factory()
            return self._embedder

    def preload(self) -> None:
        """Load the embedder in the background: importing sentence-transformers and loading
        the model takes seconds (bench/distill.py: 7.7 s here), which the requests can hide."""
        if self._embedder is None:
            threading.Thread(target=self.embedder, name="knobs-embedder-load", daemon=True).start()


def run_batch(store: EventStore, distillation: str, batch: int, job: Job, base_url: str = "") -> bool:
    """Generate, then assess, one batch; True when this call completed the distillation.

    `base_url` is where to ask now (a restarted server may listen elsewhere); the request's own
    URL, where the distillation first asked, when empty."""
    state = read_state(store, distillation)
    request = state.request
    lenses = lenses_of(store, request)
    pairs = batch_pairs(request, batch)
    if any(p.id not in state.clouds for p in pairs):
        job.preload()
    generate(store, state, lenses, pairs, job, base_url or state.request.base_url)
    state = read_state(store, distillation)
    assess(store, state, lenses, [p for p in pairs if p.id not in state.clouds], job)
    return complete_if_done(store, distillation)


def generate(store: EventStore, state: State, lenses: list[Lens], pairs: list[QAPair],
             job: Job, base_url: str) -> None:
    request = state.request
    total = len(request.pairs) * len(lenses) * request.samples
    done = len(state.generated)
    wanted = [(pair, lens, sample) for pair in pairs for lens in lenses
              for sample in range(request.samples)
              if (pair.id, lens.name, sample) not in state.generated]
    if not wanted:
        return

    def record(pair: QAPair, lens: Lens, sample: int, call: Call, answer: Answer) -> None:
        nonlocal done
        event = generated_event(request, pair, lens, sample, call, answer)
        store.append([keyed(event, distillate_key(request.distillation_id, pair.id,
                                                         lens.name, sample))])
        done += 1
        if job.progress is not None:
            job.progress(done, total, event.usage)

    if request.engine == "template":
        from workers.jobs.distill_template import template_distillate

        for pair, lens, sample in wanted:
            text = template_distillate(pair, lens, sample)
            call = call_for("template", lens, pair, sample)
            record(pair, lens, sample, call, Answer(text=text, finish_reason="stop", prompt_tokens=0,
                                                    completion_tokens=0, latency_s=0.0, attempts=0))
        return
    endpoint = Endpoint(base_url, job.api_key_for(base_url), request.model)
    by_key = {}
    calls = []
    for pair, lens, sample in wanted:
        call = call_for(request.model, lens, pair, sample)
        by_key[call.key] = (pair, lens, sample)
        calls.append(call)

    def on_done(call: Call, answer: Answer) -> None:
        record(*by_key[call.key], call, answer)

    asyncio.run(complete_all(calls, endpoint, job.cache, job.client, on_done))


def assess(store: EventStore, state: State, lenses: list[Lens], pairs: list[QAPair], job: Job) -> None:
    request = state.request
    for pair in pairs:
        cloud = [state.generated[(pair.id, lens.name, s)]
                 for lens in lenses for s in range(request.samples)]
        by_lens = {lens.name: lens for lens in lenses}
        candidates = [Candidate(distillate_id=d.distillate_id, text=d.text, keeps=by_lens[d.lens].keeps,
                                prompt=call_for(request.model, by_lens[d.lens], pair, d.sample)
                                .messages[-1]["content"])
                      for d in cloud]
        judged = judge_cloud(pair, candidates, request.checks, job.embedder())
        events: list[NewEvent] = []
        for j in judged.judgements:
            events.append(keyed(DistillateAssessed(
                distillation_id=request.distillation_id, distillate_id=j.distillate_id,
                pair_id=pair.id, accepted=j.accepted, reasons=j.reasons,
                answer_present=j.answer_present, similarity=j.similarity, chars=j.chars,
                duplicate_of=j.duplicate_of, duplicate_cosine=j.duplicate_cosine,
                embedding_sha256=j.embedding_sha256), assessment_key(j.distillate_id)))
        events.append(keyed(CloudAssessed(
            distillation_id=request.distillation_id, pair_id=pair.id, generated=len(cloud),
            accepted=sum(j.accepted for j in judged.judgements), diversity=judged.diversity,
            vendi=judged.vendi), cloud_key(request.distillation_id, pair.id)))
        store.append(events)


def complete_if_done(store: EventStore, distillation: str) -> bool:
    state = read_state(store, distillation)
    if state.completed or len(state.clouds) < len(state.request.pairs):
        return False
    accepted = 0
    for stored in store.read_stream(distill_stream(distillation)):
        event = stored.decode()
        if isinstance(event, DistillateAssessed) and event.accepted:
            accepted += 1
    usages = [d.usage for d in state.generated.values()]
    fresh = [u for u in usages if not u.cached]
    store.append([keyed(DistillationCompleted(
        distillation_id=distillation, distillates=len(usages), accepted=accepted,
        requests=sum(u.attempts for u in usages), cached=sum(u.cached for u in usages),
        prompt_tokens=sum(u.prompt_tokens for u in fresh),
        completion_tokens=sum(u.completion_tokens for u in fresh)), completed_key(distillation))])
    return True
