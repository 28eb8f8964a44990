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


# --- a cloud of your own question-answer pairs: read per pair --------------------------------------

PLAIN = [QAPair(id="paris", question="Capital of France?", answer="Paris"),
         QAPair(id="oslo", question="Capital of Norway?", answer="Oslo")]
LENSES = [LensRef(name="restate", version="4" * 16), LensRef(name="child", version="5" * 16)]
PAIR_SET = "7" * 64


def plain_distillation(store: EventStore, rejected: dict[tuple[str, str, int], list[str]]) -> None:
    events: list[NewEvent] = [NewEvent(event=DistillationRequested(
        distillation_id=ID, pair_set=PairSet(sha256=PAIR_SET, name="facts.jsonl", kind="jsonl", pairs=2),
        pairs=PLAIN, lenses=LENSES, samples=2, engine="llm", model="smollm2"))]
    for pair in PLAIN:
        for sample in range(2):
            for lens in LENSES:
                did = f"{pair.id}:{lens.name}:{sample}"
                events.append(NewEvent(event=DistillateGenerated(
                    distillation_id=ID, distillate_id=did, pair_id=pair.id, lens=lens.name,
                    lens_version=lens.version, sample=sample, engine="llm", model="smollm2",
                    sampling=Sampling(),
                    request_sha256="2" * 64, text=f" {pair.answer} via {lens.name} #{sample} ",
                    usage=Usage(prompt_tokens=1, completion_tokens=1, latency_s=0.1, attempts=1))))
                reasons = rejected.get((pair.id, lens.name, sample), [])
                events.append(NewEvent(event=DistillateAssessed(
                    distillation_id=ID, distillate_id=did, pair_id=pair.id, accepted=not reasons,
                    reasons=reasons, similarity=0.8, chars=20, embedding_sha256="3" * 64)))
    events.append(NewEvent(event=DistillationCompleted(
        distillation_id=ID, distillates=8, accepted=8, requests=8, cached=0, prompt_tokens=8,
        completion_tokens=8)))
    store.append(events)


def test_a_pairs_cloud_gives_each_pair_its_accepted_rewrites_in_sample_then_lens_order(
    log: Log, tmp_path: Path
) -> None:
    # Given an LLM distillation of two plain pairs where one rewrite is a near-duplicate, one lost the answer
    plain_distillation(log.store, {("paris", "child", 0): ["duplicate"],
                                   ("oslo", "restate", 1): ["answer_missing"]})
    # Then per pair only the accepted ones count (a near-duplicate of one fact is no new rewrite)
    path, n = write_cloud(log.store, ID, tmp_path, per_pair=True, pair_set=PAIR_SET)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert n == 6 and rows == [
        {"pair": "paris", "text": "Paris via restate #0"}, {"pair": "paris", "text": "Paris via restate #1"},
        {"pair": "paris", "text": "Paris via child #1"},
        {"pair": "oslo", "text": "Oslo via restate #0"}, {"pair": "oslo", "text": "Oslo via child #0"},
        {"pair": "oslo", "text": "Oslo via child #1"},
    ]
    # And a cloud of other pairs than the run's is refused, naming both
    with pytest.raises(CloudUnavailable, match=r"pair set 777777777777.*reads pair set 888888888888"):
        write_cloud(log.store, ID, tmp_path, per_pair=True, pair_set="8" * 64)
    # And read per person it is refused: plain pairs name no subject
    with pytest.raises(CloudUnavailable, match="names no subject"):
        write_cloud(log.store, ID, tmp_path)
