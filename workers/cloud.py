"""A distillation's cloud as a training run reads it: K rewrites of each person's biography.

A run whose `cloud` knob names a distillation of the biographies' facts trains on rewrites
built from that distillation (the repetition experiment's `lenses` and `mix` conditions). The
attempt writes them from the log into the run's directory before the trainer starts, so the
trainer reads a file and the run's data is exactly what the log says was generated.

A rewrite of one person is one (lens, sample) of the distillation: that lens's sample-th
rewrite of each of the person's facts, joined in an order drawn from (lens, sample, person) —
Physics of LM 3.1's multiM + permute when the lens is the template engine's `template-fact`.
A distillate rejected only as a near-duplicate of another in its pair's cloud still counts (a
fact-level repeat inside a new combination is a different text); any other rejection (answer
missing, refusal, ...) drops that (lens, sample) for the person, since a rewrite without one
of the facts would teach less than the verbatim biography it is compared with.

A run on your own question-answer pairs (`corpus: pairs:PATH`, workers/data/pairs.py) reads the
cloud per pair instead: rewrite k of a pair is its k-th accepted distillate in (sample, lens)
order. Here a near-duplicate does not count: it is another rewrite of the same single fact
said again, not a new interpretation. The cloud must be of the run's pair set (its sha256).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from events.models.distillation import (
    DistillateAssessed,
    DistillateGenerated,
    DistillationCompleted,
    DistillationRequested,
    distill_stream,
)
from events.store import EventStore

CLOUD_FILE = "cloud.jsonl"
USABLE_REASONS = frozenset({"duplicate"})


class CloudUnavailable(ValueError):
    """The distillation a run names is not in the log, not finished, or not of structured facts."""


def _read(
    store: EventStore, distillation: str, usable_reasons: frozenset[str]
) -> tuple[DistillationRequested, list[DistillateGenerated], set[str]]:
    """A finished distillation's request, its distillates, and the ids of those usable."""
    requested: DistillationRequested | None = None
    generated: list[DistillateGenerated] = []
    usable: set[str] = set()
    completed = False
    for stored in store.read_stream(distill_stream(distillation)):
        event = stored.decode()
        if isinstance(event, DistillationRequested):
            requested = event
        elif isinstance(event, DistillateGenerated):
            generated.append(event)
        elif isinstance(event, DistillateAssessed) and set(event.reasons) <= usable_reasons:
            usable.add(event.distillate_id)
        elif isinstance(event, DistillationCompleted):
            completed = True
    if requested is None:
        raise CloudUnavailable(f"cloud {distillation!r}: no such distillation in this log "
                               "(`knobs distill list` shows them)")
    if not completed:
        raise CloudUnavailable(f"cloud {distillation!r}: the distillation has not finished; "
                               f"`knobs distill show {distillation}` says where it stands")
    return requested, generated, usable


def person_rewrites(store: EventStore, distillation: str) -> dict[str, list[str]]:
    """Full name -> the person's rewrites, in (sample, lens) order: sample 0 of every lens first."""
    requested, generated, usable = _read(store, distillation, USABLE_REASONS)
    unstructured = [pair.id for pair in requested.pairs if not pair.subject or not pair.attribute]
    if unstructured:
        raise CloudUnavailable(f"cloud {distillation!r}: pair {unstructured[0]!r} names no subject and "
                               "attribute; a repetition condition needs the biographies' facts")
    facts_of: dict[str, list[str]] = {}  # subject -> its pair ids, in the request's order
    for pair in requested.pairs:
        facts_of.setdefault(pair.subject, []).append(pair.id)
    texts: dict[tuple[str, int, str], str] = {}  # (lens, sample, pair id) -> text
    for d in generated:
        if d.distillate_id in usable:
            texts[(d.lens, d.sample, d.pair_id)] = d.text.strip()
    out: dict[str, list[str]] = {}
    for subject, pair_ids in facts_of.items():
        rewrites = out.setdefault(subject, [])
        for sample in range(requested.samples):
            for ref in requested.lenses:
                parts = [texts.get((ref.name, sample, pid)) for pid in pair_ids]
                if any(part is None for part in parts):
                    continue
                rng = random.Random(f"cloud:{distillation}:{ref.name}:{sample}:{subject}")
                sentences = [p for p in parts if p is not None]
                rng.shuffle(sentences)
                rewrites.append(" ".join(sentences))
    return out


def pair_rewrites(store: EventStore, distillation: str, pair_set: str | None = None) -> dict[str, list[str]]:
    """Pair id -> the pair's accepted rewrites, in (sample, lens) order; `pair_set`, when given,
    is the sha256 the distillation's pairs must have (the run's)."""
    requested, generated, usable = _read(store, distillation, frozenset())
    if pair_set is not None and requested.pair_set.sha256 != pair_set:
        raise CloudUnavailable(
            f"cloud {distillation!r} rewrites pair set {requested.pair_set.sha256[:12]}... "
            f"({requested.pair_set.name}), but the run reads pair set {pair_set[:12]}...; distil the run's "
            "pairs")
    order = {(ref.name, sample): sample * len(requested.lenses) + i
             for i, ref in enumerate(requested.lenses) for sample in range(requested.samples)}
    texts: dict[str, list[tuple[int, str]]] = {pair.id: [] for pair in requested.pairs}
    for d in generated:
        if d.distillate_id in usable and (d.lens, d.sample) in order:
            texts[d.pair_id].append((order[(d.lens, d.sample)], d.text.strip()))
    return {pair_id: [text for _, text in sorted(rows)] for pair_id, rows in texts.items()}


def write_cloud(store: EventStore, distillation: str, out_dir: Path, *, per_pair: bool = False,
                pair_set: str | None = None) -> tuple[Path, int]:
    """Write the rewrites as JSON lines, {subject, text} per person's rewrite (the biographies) or,
    `per_pair`, {pair, text} per pair's rewrite (a pairs corpus of sha256 `pair_set`); the path and
    the count."""
    path = out_dir / CLOUD_FILE
    if per_pair:
        lines = [json.dumps({"pair": pair_id, "text": text})
                 for pair_id, texts in pair_rewrites(store, distillation, pair_set).items() for text in texts]
    else:
        lines = [json.dumps({"subject": subject, "text": text})
                 for subject, texts in person_rewrites(store, distillation).items() for text in texts]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path, len(lines)
