"""A distillation read back from the log: each pair's cloud, every distillate with its verdict
and reasons, each cloud's diversity, and what it cost (requests, cached answers, tokens)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from events.models.distillation import DistillationRequested, distill_stream
from events.store import EventStore
from services.core.errors import NotFound


@dataclass
class DistillateRow:
    distillate_id: str
    lens: str
    lens_version: str
    sample: int
    text: str
    cached: bool
    completion_tokens: int
    accepted: bool | None = None
    reasons: list[str] = field(default_factory=list)
    similarity: float | None = None
    duplicate_of: str | None = None
    embedding_sha256: str = ""  # a float32 blob (events/store/blobs.py), when the worker stored it


@dataclass
class CloudRow:
    pair_id: str
    question: str
    answer: str
    distillates: list[DistillateRow] = field(default_factory=list)
    accepted: int | None = None
    diversity: float | None = None
    vendi: float | None = None


@dataclass
class DistillationReport:
    distillation_id: str
    engine: str
    model: str
    base_url: str
    lenses: list[str]
    samples: int
    expected: int
    clouds: list[CloudRow]
    completed: dict[str, Any] | None
    failures: list[dict[str, Any]]

    @property
    def generated(self) -> int:
        return sum(len(c.distillates) for c in self.clouds)

    @property
    def accepted(self) -> int:
        return sum(1 for c in self.clouds for d in c.distillates if d.accepted)

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.clouds:
            for d in c.distillates:
                for r in d.reasons:
                    counts[r] = counts.get(r, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def to_json(self) -> dict[str, Any]:
        return {"distillation_id": self.distillation_id, "engine": self.engine, "model": self.model,
                "base_url": self.base_url, "lenses": self.lenses, "samples": self.samples,
                "expected": self.expected, "generated": self.generated, "accepted": self.accepted,
                "reasons": self.reasons(), "completed": self.completed, "failures": self.failures,
                "clouds": [asdict(c) for c in self.clouds]}


def read_report(store: EventStore, distillation: str) -> DistillationReport:
    stream = store.read_stream(distill_stream(distillation))
    if not stream:
        raise NotFound(f"no distillation {distillation!r} in the log (`knobs distill list` shows them)")
    request = stream[0].decode()
    assert isinstance(request, DistillationRequested)
    clouds = {p.id: CloudRow(p.id, p.question, p.answer) for p in request.pairs}
    rows: dict[str, DistillateRow] = {}
    completed: dict[str, Any] | None = None
    failures: list[dict[str, Any]] = []
    for stored in stream[1:]:
        d = stored.data
        if stored.event_type == "DistillateGenerated":
            row = DistillateRow(d["distillate_id"], d["lens"], d["lens_version"], d["sample"], d["text"],
                                d["usage"]["cached"], d["usage"]["completion_tokens"])
            rows[row.distillate_id] = row
            clouds[d["pair_id"]].distillates.append(row)
        elif stored.event_type == "DistillateAssessed" and d["distillate_id"] in rows:
            row = rows[d["distillate_id"]]
            row.accepted, row.reasons = d["accepted"], list(d["reasons"])
            row.similarity, row.duplicate_of = d["similarity"], d["duplicate_of"]
            row.embedding_sha256 = d.get("embedding_sha256") or ""
        elif stored.event_type == "CloudAssessed":
            cloud = clouds[d["pair_id"]]
            cloud.accepted, cloud.diversity, cloud.vendi = d["accepted"], d["diversity"], d["vendi"]
        elif stored.event_type == "DistillationCompleted":
            completed = dict(d)
        elif stored.event_type == "DistillationBatchFailed":
            failures.append(dict(d))
    order = {ref.name: i for i, ref in enumerate(request.lenses)}
    for cloud in clouds.values():
        cloud.distillates.sort(key=lambda r: (order.get(r.lens, 0), r.sample))
    return DistillationReport(
        distillation_id=distillation, engine=request.engine, model=request.model,
        base_url=request.base_url, lenses=[f"{r.name}@{r.version}" for r in request.lenses],
        samples=request.samples, expected=len(request.pairs) * len(request.lenses) * request.samples,
        clouds=list(clouds.values()), completed=completed, failures=failures)


def list_distillations(store: EventStore) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for stored in store.read_all(types=["DistillationRequested", "DistillationCompleted"]):
        d = stored.data
        if stored.event_type == "DistillationRequested":
            found[d["distillation_id"]] = {
                "distillation_id": d["distillation_id"], "pairs": d["pair_set"]["name"],
                "n_pairs": len(d["pairs"]), "lenses": len(d["lenses"]), "samples": d["samples"],
                "engine": d["engine"], "model": d["model"], "completed": False, "accepted": None}
        elif d["distillation_id"] in found:
            found[d["distillation_id"]].update(completed=True, accepted=d["accepted"])
    return list(found.values())
