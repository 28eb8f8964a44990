"""A distillation's cloud as training reads it: one rewrite per (lens, sample), joining a person's facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.models.distillation import (
    DistillateAssessed,
    DistillateGenerated,
    DistillationCompleted,
    DistillationRequested,
    LensRef,
    PairSet,
    QAPair,
    Sampling,
    Usage,
)
from events.store import EventStore, NewEvent
from tests.workers.conftest import Log
from workers.cloud import CloudUnavailable, person_rewrites, write_cloud

ID = "d" * 24
FACTS = {"a": {"birth_city": "Reno, NV", "major": "Physics"}, "b": {"birth_city": "Erie, PA", "major": "Law"}}


def pairs() -> list[QAPair]:
    return [QAPair(id=f"{who}-{attr}", question=f"{attr} of {who}?", answer=value, subject=f"Person {who}",
                   attribute=attr, facts=FACTS[who]) for who in FACTS for attr, value in FACTS[who].items()]


def distillation(store: EventStore, *, rejected: dict[tuple[str, int], list[str]] | None = None,
                 complete: bool = True, samples: int = 2) -> None:
    ps = pairs()
    events: list[NewEvent] = [NewEvent(event=DistillationRequested(
        distillation_id=ID, pair_set=PairSet(sha256="0" * 64, name="t", kind="biographies", pairs=len(ps)),
        pairs=ps, lenses=[LensRef(name="template-fact", version="1" * 16)], samples=samples,
        engine="template", model="template"))]
    for pair in ps:
        for sample in range(samples):
            did = f"{pair.id}:{sample}"
            events.append(NewEvent(event=DistillateGenerated(
                distillation_id=ID, distillate_id=did, pair_id=pair.id, lens="template-fact",
                lens_version="1" * 16, sample=sample, engine="template", model="template",
                sampling=Sampling(),
                request_sha256="2" * 64, text=f"{pair.subject} {pair.attribute} {pair.answer} #{sample}.",
                usage=Usage(prompt_tokens=0, completion_tokens=0, latency_s=0, attempts=0))))
            reasons = (rejected or {}).get((pair.id, sample), [])
            events.append(NewEvent(event=DistillateAssessed(
                distillation_id=ID, distillate_id=did, pair_id=pair.id, accepted=not reasons, reasons=reasons,
                similarity=0.9, chars=30, embedding_sha256="3" * 64)))
    if complete:
        events.append(NewEvent(event=DistillationCompleted(
            distillation_id=ID, distillates=2 * len(ps), accepted=2 * len(ps), requests=0, cached=0,
            prompt_tokens=0, completion_tokens=0)))
    store.append(events)


def test_each_rewrite_states_every_fact_of_its_person_once(log: Log, tmp_path: Path) -> None:
    distillation(log.store)
    rewrites = person_rewrites(log.store, ID)
    assert set(rewrites) == {"Person a", "Person b"}
    for who, texts in (("a", rewrites["Person a"]), ("b", rewrites["Person b"])):
        assert len(texts) == 2  # one lens x two samples
        for sample, text in enumerate(texts):
            for value in FACTS[who].values():
                assert text.count(value) == 1
            assert text.count(f"#{sample}.") == len(FACTS[who])  # one (lens, sample) per rewrite
    path, n = write_cloud(log.store, ID, tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert n == len(rows) == 4 and {r["subject"] for r in rows} == {"Person a", "Person b"}


def test_a_near_duplicate_still_counts_but_a_missing_answer_drops_the_rewrite(log: Log) -> None:
    distillation(log.store, rejected={("a-major", 0): ["duplicate"], ("a-birth_city", 1): ["answer_missing"]})
    rewrites = person_rewrites(log.store, ID)
    assert len(rewrites["Person a"]) == 1 and "#0." in rewrites["Person a"][0]  # sample 1 lost a fact
    assert len(rewrites["Person b"]) == 2


def test_an_unknown_or_unfinished_distillation_is_refused(log: Log) -> None:
    with pytest.raises(CloudUnavailable, match="no such distillation"):
        person_rewrites(log.store, ID)
    distillation(log.store, complete=False)
    with pytest.raises(CloudUnavailable, match="has not finished"):
        person_rewrites(log.store, ID)
