"""`knobs export cloud`: the distillates of the log as a training-ready JSONL, and the reading of
distillations from the log that the vault's pair notes share.

Read from the log, not the graph (the log is the truth, and an export needs no Neo4j): each
distillation's request, its DistillateGenerated events joined with their DistillateAssessed,
its clouds and its completion, and the LensDefined of every lens version. One line per
distillate, `{"text": the distillate, ...}` first, which is what the trainer's local corpus
reader (`corpus='file:PATH.jsonl'`) takes; the rest of the line says where the text came from.
The same log gives the same bytes.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.models.distillation import (
    CloudAssessed,
    DistillateAssessed,
    DistillateGenerated,
    DistillationCompleted,
    DistillationRequested,
    Lens,
    LensDefined,
    QAPair,
)
from events.store import EventStore, StoredEvent
from services.core.errors import BadInput

EVENT_TYPES = (LensDefined.event_type, DistillationRequested.event_type, DistillateGenerated.event_type,
               DistillateAssessed.event_type, CloudAssessed.event_type, DistillationCompleted.event_type)


@dataclass(frozen=True)
class DistillateRecord:
    generated: DistillateGenerated
    position: int
    """Of its DistillateGenerated."""
    assessed: DistillateAssessed | None
    assessed_position: int | None

    @property
    def accepted(self) -> bool:
        return self.assessed is not None and self.assessed.accepted


@dataclass(frozen=True)
class DistillationRecord:
    """One distillation as the log holds it, its distillates by pair (request order), lens, sample."""

    request: DistillationRequested
    position: int
    """Of its (first) DistillationRequested."""
    distillates: tuple[DistillateRecord, ...]
    clouds: dict[str, tuple[CloudAssessed, int]]
    """By the pair's own id: the cloud and its log position."""
    completed: DistillationCompleted | None
    completed_position: int | None
    lenses: dict[str, Lens]
    """The definitions of its lens versions, by `name@version` (from LensDefined)."""

    @property
    def distillation_id(self) -> str:
        return self.request.distillation_id

    def pair(self, pair_id: str) -> QAPair | None:
        return next((p for p in self.request.pairs if p.id == pair_id), None)

    @property
    def positions(self) -> list[int]:
        """Every log position behind it."""
        out = [self.position, *(d.position for d in self.distillates)]
        out += [d.assessed_position for d in self.distillates if d.assessed_position is not None]
        out += [p for _, p in self.clouds.values()]
        if self.completed_position is not None:
            out.append(self.completed_position)
        return sorted(out)


def read_distillations(store: EventStore, up_to: int | None = None) -> list[DistillationRecord]:
    """Every distillation in the log (up to `up_to`), in the order they were first requested."""
    requests: dict[str, tuple[DistillationRequested, int]] = {}
    generated: dict[str, dict[str, tuple[DistillateGenerated, int]]] = defaultdict(dict)
    assessed: dict[str, tuple[DistillateAssessed, int]] = {}
    clouds: dict[str, dict[str, tuple[CloudAssessed, int]]] = defaultdict(dict)
    completed: dict[str, tuple[DistillationCompleted, int]] = {}
    lenses: dict[str, Lens] = {}
    for stored in store.read_all(types=list(EVENT_TYPES)):
        if up_to is not None and stored.position > up_to:
            break
        event = stored.decode()
        _sort(event, stored, requests, generated, assessed, clouds, completed, lenses)
    records = []
    for did, (request, position) in sorted(requests.items(), key=lambda item: item[1][1]):
        pair_order = {p.id: i for i, p in enumerate(request.pairs)}
        lens_order = {(ref.name, ref.version): i for i, ref in enumerate(request.lenses)}

        def order(item: tuple[DistillateGenerated, int],
                  pairs: dict[str, int] = pair_order, refs: dict[tuple[str, str], int] = lens_order
                  ) -> tuple[int, int, str, int]:
            g = item[0]
            return (pairs.get(g.pair_id, len(pairs)), refs.get((g.lens, g.lens_version), len(refs)),
                    g.pair_id, g.sample)

        distillates = []
        for g, at in sorted(generated[did].values(), key=order):
            verdict = assessed.get(g.distillate_id)
            distillates.append(DistillateRecord(g, at, verdict[0] if verdict else None,
                                                verdict[1] if verdict else None))
        done = completed.get(did)
        own = {f"{ref.name}@{ref.version}" for ref in request.lenses}
        records.append(DistillationRecord(
            request=request, position=position, distillates=tuple(distillates), clouds=dict(clouds[did]),
            completed=done[0] if done else None, completed_position=done[1] if done else None,
            lenses={key: lens for key, lens in sorted(lenses.items()) if key in own}))
    return records


def _sort(event: Any, stored: StoredEvent, requests: dict[str, tuple[DistillationRequested, int]],
          generated: dict[str, dict[str, tuple[DistillateGenerated, int]]],
          assessed: dict[str, tuple[DistillateAssessed, int]],
          clouds: dict[str, dict[str, tuple[CloudAssessed, int]]],
          completed: dict[str, tuple[DistillationCompleted, int]], lenses: dict[str, Lens]) -> None:
    """File one event under what it is about; the first of each kept (the keys make them unique)."""
    at = stored.position
    if isinstance(event, LensDefined):
        lenses.setdefault(f"{event.lens.name}@{event.version}", event.lens)
    elif isinstance(event, DistillationRequested):
        requests.setdefault(event.distillation_id, (event, at))
    elif isinstance(event, DistillateGenerated):
        generated[event.distillation_id].setdefault(event.distillate_id, (event, at))
    elif isinstance(event, DistillateAssessed):
        assessed.setdefault(event.distillate_id, (event, at))
    elif isinstance(event, CloudAssessed):
        clouds[event.distillation_id].setdefault(event.pair_id, (event, at))
    elif isinstance(event, DistillationCompleted):
        completed.setdefault(event.distillation_id, (event, at))


def choose(records: list[DistillationRecord], distillation: str | None) -> list[DistillationRecord]:
    """Every distillation, or the one `distillation` names (its id or an unambiguous prefix)."""
    if not records:
        raise BadInput("the log holds no distillation: run `knobs distill --pairs FILE` first")
    if distillation is None:
        return records
    found = [r for r in records if r.distillation_id.startswith(distillation)] if distillation else []
    if len(found) == 1:
        return found
    known = ", ".join(r.distillation_id for r in records)
    if not found:
        raise BadInput(f"no distillation {distillation!r} in the log; the log holds: {known}")
    raise BadInput(f"distillation {distillation!r} is ambiguous: it begins {len(found)} ids "
                   f"({', '.join(r.distillation_id for r in found)}); give more of it")


def cloud_lines(records: Iterable[DistillationRecord], *, accepted_only: bool = True) -> list[dict[str, Any]]:
    """One training line per distillate (the accepted ones, unless `accepted_only` is off).

    The same call (request_sha256: model, lens version, messages, sampling, sample) judged in
    several distillations, say once more strictly, is one answer: it is written once, from the
    first distillation that keeps it, so a student never sees it repeated by accident."""
    lines = []
    written: set[str] = set()
    for record in records:
        for d in record.distillates:
            if accepted_only and not d.accepted:
                continue
            g, a = d.generated, d.assessed
            if g.request_sha256 in written:
                continue
            written.add(g.request_sha256)
            pair = record.pair(g.pair_id)
            lens = record.lenses.get(f"{g.lens}@{g.lens_version}")
            line: dict[str, Any] = {
                "text": g.text,
                "id": g.distillate_id,
                "distillation_id": g.distillation_id,
                "pair_id": g.pair_id,
                "question": pair.question if pair else None,
                "answer": pair.answer if pair else None,
                "known_answer": pair.known_answer if pair else None,
                "lens": g.lens,
                "lens_version": g.lens_version,
                "family": lens.family if lens else None,
                "sample": g.sample,
                "engine": g.engine,
                "model": g.model,
                "similarity": a.similarity if a else None,
                "position": d.position,
            }
            if not accepted_only:
                line["accepted"] = a.accepted if a else None
                line["reasons"] = list(a.reasons) if a else None
            lines.append(line)
    return lines


@dataclass(frozen=True)
class CloudExported:
    path: Path | None
    lines: int
    distillations: list[str]
    generated: int
    rejected: int
    unassessed: int
    accepted_only: bool

    def public(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "lines": self.lines,
                "distillations": self.distillations, "generated": self.generated, "rejected": self.rejected,
                "unassessed": self.unassessed, "accepted_only": self.accepted_only}


def render(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n" for line in lines)


def export_cloud(store: EventStore, out: Path | None, *, distillation: str | None = None,
                 accepted_only: bool = True) -> tuple[CloudExported, str]:
    """The JSONL text, written to `out` (atomically) when given; refuses to write an empty file."""
    if out is not None and out.suffix != ".jsonl":
        raise BadInput(f"--out {out} must end in .jsonl (the trainer's corpus='file:PATH' reads .jsonl "
                       "as one JSON object with a text field per line)")
    records = choose(read_distillations(store), distillation)
    lines = cloud_lines(records, accepted_only=accepted_only)
    distillates = [d for r in records for d in r.distillates]
    summary = CloudExported(
        path=out, lines=len(lines), distillations=[r.distillation_id for r in records],
        generated=len(distillates), rejected=sum(1 for d in distillates if d.assessed and not d.accepted),
        unassessed=sum(1 for d in distillates if d.assessed is None), accepted_only=accepted_only)
    if not lines:
        which = ", ".join(summary.distillations)
        raise BadInput(f"no accepted distillate to export from {which} ({summary.generated} generated, "
                       f"{summary.rejected} rejected, {summary.unassessed} not yet assessed): let the "
                       "distillation finish, or pass --all to export the rejected ones with their reasons")
    text = render(lines)
    if out is not None:
        tmp = out.with_name(f".{out.name}.tmp")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, out)
        except OSError as exc:
            raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from exc
    return summary, text
