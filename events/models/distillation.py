"""Facts about lens distillation: lens definitions, distillation requests, the distillates a
model (or the template engine) wrote, and how each was judged.

A lens is data (a YAML file, `services/distillation/lenses/`); its `version` is the sha256 of
its canonical content, and every distillate names the version it came through, so an edited
lens never mixes its outputs with the old one's. A distillation is one (pair set, lenses,
samples, engine, model, checks) and has one stream: the request, then one
`DistillateGenerated` per (pair, lens, sample) — its idempotency key is exactly that triple, so
a resumed run cannot write one twice — then, per pair, one `DistillateAssessed` per distillate
and one `CloudAssessed` with the cloud's diversity, and last one `DistillationCompleted`.
Names and definitions are the README's "Lens distillation" section.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from events.canonical import canonical_json
from events.models.base import Event, register
from events.thresholds import DUPLICATE_COSINE, MIN_SIMILARITY

Engine = Literal["llm", "template"]
SourceKind = Literal["jsonl", "text", "biographies"]

LENS_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
REASONS = ("empty", "refusal", "echo", "too_short", "too_long", "answer_missing",
           "dissimilar", "duplicate")
"""Why a distillate is rejected, in the order the checks run (a distillate keeps every reason)."""


class DistillInputRejected(ValueError):
    """A pair source, lens or setting a distillation cannot use; raised before anything is logged.

    Here, on the floor, so that services catch what the workers' loaders raise without
    importing them (as `ShiftInputRejected` for measurements).
    """


class LLMUnavailable(RuntimeError):
    """The server cannot answer: unreachable, a bad key, a model it does not serve. Raised by
    the workers after their retries (the finished work kept); here so services can catch it."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sampling(_Frozen):
    temperature: float = Field(default=0.8, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=256, ge=1, le=8192)


class Keeps(_Frozen):
    """What a good output through this lens must keep (checked on every distillate)."""

    answer: bool = Field(default=True, description="the source's answer must survive")
    min_chars: int = Field(default=20, ge=0)
    max_chars: int = Field(default=2000, ge=1)


class Lens(_Frozen):
    """One way of rewriting a question-answer pair. `template` may use {question}, {answer}
    and {context}; `system` is the system message (none when empty)."""

    name: str = Field(pattern=LENS_NAME_PATTERN)
    family: str = Field(min_length=1)
    description: str = Field(min_length=1)
    system: str = ""
    template: str = Field(min_length=1)
    sampling: Sampling = Sampling()
    keeps: Keeps = Keeps()

    @property
    def version(self) -> str:
        return lens_version(self)


def lens_version(lens: Lens) -> str:
    """sha256 of the lens's canonical content (first 16 hex digits): edit a lens, get a new version."""
    return hashlib.sha256(canonical_json(lens.model_dump(mode="json")).encode()).hexdigest()[:16]


class QAPair(_Frozen):
    """One source pair. `id` is the file's own id (else the line or passage number)."""

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    context: str = ""
    known_answer: bool = Field(
        default=True, description="checked by the normalised answer's presence, else by similarity")
    # The structure the template engine (workers/jobs/distill_template.py) rewrites; empty for
    # pairs that are only text. Biography facts fill all three.
    subject: str = Field(default="", description="whom the pair is about, by full name")
    attribute: str = Field(default="", description="which of the subject's facts the pair asks")
    facts: dict[str, str] = Field(default_factory=dict,
                                  description="all the subject's known facts, attribute -> value")

    def template_problem(self) -> str | None:
        """Why the template engine cannot rewrite this pair, or None. Here, on the contract, so the
        service refuses a request before logging it and the worker refuses with the same words."""
        if not self.subject or not self.attribute:
            return (f"pair {self.id}: the template engine needs a structured fact (subject and "
                    "attribute; the biographies source has them, a JSONL line may carry subject, "
                    "attribute, facts); use the llm engine for plain pairs")
        stated = self.facts.get(self.attribute)
        if stated is not None and stated != self.answer:
            return (f"pair {self.id}: facts[{self.attribute!r}] is {stated!r} but the answer is "
                    f"{self.answer!r}")
        empty = sorted(attribute for attribute, value in self.facts.items() if not value.strip())
        if empty:
            return f"pair {self.id}: fact {empty[0]!r} has no value"
        return None


class PairSet(_Frozen):
    """The pairs of one source, named by the sha256 of what was read."""

    sha256: str = Field(min_length=64, max_length=64)
    name: str = Field(min_length=1)
    kind: SourceKind
    path: str = ""
    pairs: int = Field(ge=1)


class LensRef(_Frozen):
    name: str
    version: str


class Checks(_Frozen):
    """The thresholds every distillate is judged by (part of the distillation's identity)."""

    embedder: str = "sentence-transformers/all-MiniLM-L6-v2"
    min_similarity: float = Field(default=MIN_SIMILARITY, ge=-1, le=1,
                                  description="to the source, for pairs without a known answer")
    duplicate_cosine: float = Field(default=DUPLICATE_COSINE, ge=-1, le=1,
                                    description="above this within a cloud: a duplicate")


def pair_set_sha256(pairs: list[QAPair]) -> str:
    """The same pairs, in the same order, are the same pair set, whatever file they came from."""
    body = canonical_json([p.model_dump(mode="json") for p in pairs])
    return hashlib.sha256(body.encode()).hexdigest()


def pair_node_id(pair_set_sha256: str, pair_id: str) -> str:
    """A QAPair's graph id: the pair set's digest and the pair's own id from the file."""
    return f"{pair_set_sha256[:12]}:{pair_id}"


def distillation_id(pair_set_sha256: str, lenses: list[LensRef], samples: int, engine: Engine,
                    model: str, checks: Checks) -> str:
    """The same pairs through the same lens versions by the same model are the same distillation
    (asking twice resumes). The server's URL is not part of it: one model is one model."""
    identity = canonical_json({
        "pairs": pair_set_sha256, "lenses": [ref.model_dump() for ref in lenses],
        "samples": samples, "engine": engine, "model": model,
        "checks": checks.model_dump(mode="json")})
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def distillate_id(distillation: str, pair_id: str, lens: str, sample: int) -> str:
    key = canonical_json([distillation, pair_id, lens, sample])
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def distill_stream(distillation: str) -> str:
    return f"distill:{distillation}"


def lens_key(ref: LensRef) -> str:
    return f"lens:{ref.name}:{ref.version}"


def distillate_key(distillation: str, pair_id: str, lens: str, sample: int) -> str:
    return f"distillate:{distillation}:{pair_id}:{lens}:{sample}"


def assessment_key(distillate: str) -> str:
    return f"distillate-assessed:{distillate}"


def cloud_key(distillation: str, pair_id: str) -> str:
    return f"cloud:{distillation}:{pair_id}"


@register
class LensDefined(Event):
    """A lens version, as it was when first used (`origin`: 'builtin' or the user's file)."""

    lens: Lens
    version: str = Field(min_length=16, max_length=16)
    origin: str = Field(min_length=1)

    def stream_id(self) -> str:
        return f"lens:{self.lens.name}"


@register
class DistillationRequested(Event):
    """Rewrite every pair of `pair_set` through every lens, `samples` times each."""

    distillation_id: str = Field(min_length=1)
    pair_set: PairSet
    pairs: list[QAPair] = Field(min_length=1)
    lenses: list[LensRef] = Field(min_length=1)
    samples: int = Field(ge=1, le=1000)
    engine: Engine
    model: str = Field(min_length=1, description="the model asked ('template' for the template engine)")
    base_url: str = Field(default="", description="the server first asked; never the API key")
    checks: Checks = Checks()
    batch_pairs: int = Field(default=8, ge=1, description="pairs per worker job")

    def stream_id(self) -> str:
        return distill_stream(self.distillation_id)


class Usage(_Frozen):
    """What one distillate cost. A cached answer cost no request: `cached` and zero attempts."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    latency_s: float = Field(ge=0)
    attempts: int = Field(ge=0, description="requests sent, retries included")
    cached: bool = False


@register
class DistillateGenerated(Event):
    """One rewrite of one pair through one lens version (sample `sample` of the request)."""

    distillation_id: str
    distillate_id: str
    pair_id: str = Field(description="the pair's own id, as in QAPair.id")
    lens: str
    lens_version: str
    sample: int = Field(ge=0)
    engine: Engine
    model: str
    sampling: Sampling
    request_sha256: str = Field(min_length=64, max_length=64,
                                description="the cache key: model, lens version, messages, sampling, sample")
    text: str
    finish_reason: str = ""
    usage: Usage

    def stream_id(self) -> str:
        return distill_stream(self.distillation_id)


@register
class DistillateAssessed(Event):
    """How one distillate was judged; a rejected one is kept with every reason."""

    distillation_id: str
    distillate_id: str
    pair_id: str
    accepted: bool
    reasons: list[str] = Field(default_factory=list)
    answer_present: bool | None = Field(default=None, description="None for pairs without a known answer")
    similarity: float = Field(description="cosine of the distillate's embedding to the source pair's")
    chars: int = Field(ge=0)
    duplicate_of: str | None = Field(default=None, description="the distillate_id it nearly repeats")
    duplicate_cosine: float | None = None
    embedding_sha256: str = Field(min_length=64, max_length=64, description="float32 blob")

    def stream_id(self) -> str:
        return distill_stream(self.distillation_id)


@register
class CloudAssessed(Event):
    """A pair's cloud of accepted distillates and how varied it is."""

    distillation_id: str
    pair_id: str
    generated: int = Field(ge=0)
    accepted: int = Field(ge=0)
    diversity: float = Field(description="mean pairwise cosine distance of the accepted distillates")
    vendi: float = Field(ge=0, description="Vendi score (Friedman & Dieng 2023): effective count")

    def stream_id(self) -> str:
        return distill_stream(self.distillation_id)


@register
class DistillationCompleted(Event):
    """Every pair generated and assessed. Totals count this whole distillation, resumes included."""

    distillation_id: str
    distillates: int = Field(ge=0)
    accepted: int = Field(ge=0)
    requests: int = Field(ge=0, description="requests sent to the server, retries included")
    cached: int = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)

    def stream_id(self) -> str:
        return distill_stream(self.distillation_id)


@register
class DistillationBatchFailed(Event):
    """A batch gave up (the server unreachable after the retries, a refused key): its finished
    distillates stay in the log and the response cache; asking again resumes."""

    distillation_id: str
    batch: int = Field(ge=0)
    reason: str = Field(min_length=1)
    worker: str = ""

    def stream_id(self) -> str:
        return distill_stream(self.distillation_id)


def completed_key(distillation: str) -> str:
    return f"distillation-completed:{distillation}"


__all__ = [
    "REASONS",
    "Checks",
    "CloudAssessed",
    "DistillInputRejected",
    "DistillateAssessed",
    "DistillateGenerated",
    "DistillationBatchFailed",
    "DistillationCompleted",
    "DistillationRequested",
    "Engine",
    "Keeps",
    "LLMUnavailable",
    "Lens",
    "LensDefined",
    "LensRef",
    "PairSet",
    "QAPair",
    "Sampling",
    "Usage",
    "assessment_key",
    "cloud_key",
    "completed_key",
    "distill_stream",
    "distillate_id",
    "distillate_key",
    "distillation_id",
    "lens_key",
    "lens_version",
    "pair_node_id",
    "pair_set_sha256",
]
