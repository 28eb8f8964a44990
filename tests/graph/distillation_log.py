"""A small distillation log built with the event classes and their idempotency keys, for the
graph, query, API, MCP and export tests.

Distillation A (llm, model `tiny-instruct`): three pairs through restate, child and causal, two
samples each (18 distillates), assessed pair by pair as the pipeline does, one cloud per pair,
completed. Its verdicts: every `causal` sample 1 is a duplicate of `causal` sample 0; `child`
is too short on q2; `restate` sample 1 of q3 repeats `child` sample 0 of q3 (a duplicate across
lenses). Distillation B (template engine) runs restate's edited version over the same pairs,
one sample each: q1 and q2 assessed (both accepted), q3 generated only, no cloud, not completed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

from events.models.base import Event
from events.models.distillation import (
    Checks,
    CloudAssessed,
    DistillateAssessed,
    DistillateGenerated,
    DistillationCompleted,
    DistillationRequested,
    Lens,
    LensDefined,
    LensRef,
    PairSet,
    QAPair,
    Sampling,
    Usage,
    assessment_key,
    cloud_key,
    completed_key,
    distillate_id,
    distillate_key,
    distillation_id,
    lens_key,
    pair_set_sha256,
)
from events.store.port import EventStore, NewEvent

PAIRS = [
    QAPair(id="q1", question="Where was Anya Petrova born?", answer="Lisbon"),
    QAPair(id="q2", question="What did Anya Petrova study?", answer="chemistry"),
    QAPair(id="q3", question="Why do leaves fall?", answer="to save water in winter", known_answer=False),
]
PAIR_SET = PairSet(sha256=pair_set_sha256(PAIRS), name="facts.jsonl", kind="jsonl", path="/data/facts.jsonl",
                   pairs=len(PAIRS))
LENSES = [
    Lens(name="restate", family="restate", description="Say it again in other words.",
         template="Restate: {question} {answer}"),
    Lens(name="child", family="explain", description="Explain it to a child.",
         template="Explain to a child: {question} {answer}"),
    Lens(name="causal", family="causal", description="Why it is so.", template="Why: {question} {answer}"),
]
RESTATE_V2 = Lens(name="restate", family="restate", description="Say it again, shorter.",
                  template="Restate briefly: {question} {answer}")
MODEL = "tiny-instruct"
SAMPLES = 2


def keyed(event: Event, key: str) -> NewEvent:
    """An event with the idempotency key the pipeline gives it, and an id derived from the key."""
    return NewEvent(event=event, event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"knobs-test:{key}"),
                    idempotency_key=key)


def ref(lens: Lens) -> LensRef:
    return LensRef(name=lens.name, version=lens.version)


def text_of(pair: QAPair, lens: str, sample: int) -> str:
    return f"{lens} #{sample}: {pair.question} The answer is {pair.answer}."


@dataclass
class DistillationLog:
    """Ids and positions of what the log holds."""

    a: str = ""
    b: str = ""
    ids: dict[tuple[str, str, str, int], str] = field(default_factory=dict)
    """(distillation, pair id, lens, sample) -> distillate id."""
    request_a: int = 0
    completed_a: int = 0


def _verdict(pair: QAPair, lens: str, sample: int) -> tuple[list[str], tuple[str, int] | None]:
    """(reasons, (lens, sample) it duplicates) for distillation A."""
    if lens == "causal" and sample == 1:
        return ["duplicate"], ("causal", 0)
    if lens == "child" and pair.id == "q2":
        return ["too_short"], None
    if lens == "restate" and sample == 1 and pair.id == "q3":
        return ["duplicate"], ("child", 0)
    return [], None


def _generated(did: str, pair: QAPair, lens: Lens, sample: int, engine: str,
               model: str) -> DistillateGenerated:
    text = text_of(pair, lens.name, sample)
    return DistillateGenerated(
        distillation_id=did, distillate_id=distillate_id(did, pair.id, lens.name, sample), pair_id=pair.id,
        lens=lens.name, lens_version=lens.version, sample=sample, engine=engine,  # type: ignore[arg-type]
        model=model, sampling=Sampling(), text=text,
        request_sha256=hashlib.sha256(f"{engine}\n{model}\n{text}".encode()).hexdigest(),
        finish_reason="stop",
        usage=Usage(prompt_tokens=20 + sample, completion_tokens=len(text.split()), latency_s=0.5,
                    attempts=0 if engine == "template" else 1, cached=False))


def distillation_log(store: EventStore) -> DistillationLog:
    log = DistillationLog()
    store.append([keyed(LensDefined(lens=lens, version=lens.version, origin="builtin"), lens_key(ref(lens)))
                  for lens in LENSES])
    refs = [ref(lens) for lens in LENSES]
    log.a = distillation_id(PAIR_SET.sha256, refs, SAMPLES, "llm", MODEL, Checks())
    request = DistillationRequested(distillation_id=log.a, pair_set=PAIR_SET, pairs=PAIRS, lenses=refs,
                                    samples=SAMPLES, engine="llm", model=MODEL, base_url="http://127.0.0.1:8081/v1")
    [stored] = store.append([keyed(request, f"distill-requested:{log.a}")])
    log.request_a = stored.position
    totals = {"distillates": 0, "accepted": 0, "prompt_tokens": 0, "completion_tokens": 0}
    for pair in PAIRS:
        generated = [_generated(log.a, pair, lens, s, "llm", MODEL)
                     for lens in LENSES for s in range(SAMPLES)]
        store.append([keyed(g, distillate_key(log.a, pair.id, g.lens, g.sample)) for g in generated])
        for g in generated:
            log.ids[(log.a, pair.id, g.lens, g.sample)] = g.distillate_id
        assessed = []
        for g in generated:
            reasons, dup = _verdict(pair, g.lens, g.sample)
            dup_id = distillate_id(log.a, pair.id, dup[0], dup[1]) if dup else None
            assessed.append(DistillateAssessed(
                distillation_id=log.a, distillate_id=g.distillate_id, pair_id=pair.id, accepted=not reasons,
                reasons=reasons, answer_present=None if not pair.known_answer else True,
                similarity={"restate": 0.9, "child": 0.7, "causal": 0.5}[g.lens] - 0.01 * g.sample,
                chars=len(g.text), duplicate_of=dup_id, duplicate_cosine=0.97 if dup else None,
                embedding_sha256=hashlib.sha256(g.text.encode()).hexdigest()))
        store.append([keyed(a, assessment_key(a.distillate_id)) for a in assessed])
        accepted = sum(a.accepted for a in assessed)
        totals["distillates"] += len(generated)
        totals["accepted"] += accepted
        totals["prompt_tokens"] += sum(g.usage.prompt_tokens for g in generated)
        totals["completion_tokens"] += sum(g.usage.completion_tokens for g in generated)
        store.append([keyed(CloudAssessed(distillation_id=log.a, pair_id=pair.id, generated=len(assessed),
                                          accepted=accepted, diversity=0.3 + 0.1 * int(pair.id[1]),
                                          vendi=1.5 + int(pair.id[1])), cloud_key(log.a, pair.id))])
    [done] = store.append([keyed(DistillationCompleted(
        distillation_id=log.a, requests=totals["distillates"], cached=0, **totals), completed_key(log.a))])
    log.completed_a = done.position

    # Distillation B: restate's edited version, by the template engine, half assessed.
    v2 = ref(RESTATE_V2)
    store.append([keyed(LensDefined(lens=RESTATE_V2, version=v2.version,
                                    origin="/home/me/lenses/restate.yaml"), lens_key(v2))])
    log.b = distillation_id(PAIR_SET.sha256, [v2], 1, "template", "template",
                            Checks())
    store.append([keyed(DistillationRequested(distillation_id=log.b, pair_set=PAIR_SET, pairs=PAIRS,
                                              lenses=[v2], samples=1, engine="template", model="template"),
                        f"distill-requested:{log.b}")])
    generated = [_generated(log.b, pair, RESTATE_V2, 0, "template", "template") for pair in PAIRS]
    store.append([keyed(g, distillate_key(log.b, g.pair_id, g.lens, 0)) for g in generated])
    for g in generated:
        log.ids[(log.b, g.pair_id, g.lens, 0)] = g.distillate_id
    store.append([keyed(DistillateAssessed(
        distillation_id=log.b, distillate_id=g.distillate_id, pair_id=g.pair_id, accepted=True,
        similarity=0.8, chars=len(g.text), embedding_sha256=hashlib.sha256(g.text.encode()).hexdigest()),
        assessment_key(g.distillate_id)) for g in generated[:2]])
    return log
