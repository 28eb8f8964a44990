"""One judgement of an experiment, from the log's completed runs to its events in the log.

The runs judged are the experiment's `RunCompleted` with an artifact on disk. A judgement is
named by those runs, the judge model and the settings (events/models/judging.py), so asking
again finds the judgement in the stream `judge:<experiment>` and appends nothing; otherwise the
job (workers/jobs/judge.py) grades, and every run's `BenchmarkScored` (qa_judge_accuracy) and
the `JudgeReliabilityMeasured` go to the log in one append: all of them or none.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from events.models.base import Event
from events.models.experiments import RunCompleted
from events.models.judging import (
    JUDGE_BENCHMARK,
    JudgeInputRejected,
    JudgeReliabilityMeasured,
    judge_score_key,
    judge_stream,
    judgement_id,
    reliability_key,
)
from events.models.results import BenchmarkScored
from events.store import EventStore, NewEvent
from workers.jobs.distill import ClientSettings, Endpoint, ResponseCache
from workers.jobs.judge import (
    PROMPT_VERSION,
    JudgeSettings,
    Question,
    build_items,
    build_pairs,
    grade,
    host_of,
    reliability,
    run_scores,
    student_answers,
)

EVENT_NAMESPACE = uuid.UUID("9d4c1b7e-2a6f-5e3d-8c9b-0f1e2d3c4b5a")
"""Fixed forever: judge event ids are uuid5(EVENT_NAMESPACE, idempotency key)."""

Progress = Callable[[str, int, int], None]
"""(stage: 'answer' or 'judge', done, total)."""


class NoRunsToJudge(JudgeInputRejected):
    """The experiment has no completed run whose artifact is on disk."""


def keyed(event: Event, key: str) -> NewEvent:
    return NewEvent(event=event, event_id=uuid.uuid5(EVENT_NAMESPACE, key), idempotency_key=key)


def completed_runs(store: EventStore, experiment: str) -> dict[str, Path]:
    """run id -> artifact directory, for every completed run whose artifact still exists."""
    found: dict[str, Path] = {}
    for stored in store.read_all(types=[RunCompleted.event_type]):
        if stored.data.get("experiment") != experiment:
            continue
        event = stored.decode()
        assert isinstance(event, RunCompleted)
        if event.artifact and (Path(event.artifact) / "config.json").is_file():
            found[event.run_id] = Path(event.artifact)
    return found


@dataclass
class Judgement:
    """What `judge` found or did: the figures, each run's score, and whether it was new."""

    reliability: JudgeReliabilityMeasured
    scores: list[dict[str, Any]]
    appended: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"judgement": self.reliability.model_dump(mode="json"), "scores": self.scores,
                "appended": self.appended, "examples": self.examples}


def existing(store: EventStore, experiment: str, judgement: str) -> Judgement | None:
    reliability_event: JudgeReliabilityMeasured | None = None
    scores: list[dict[str, Any]] = []
    for stored in store.read_stream(judge_stream(experiment)):
        event = stored.decode()
        if isinstance(event, JudgeReliabilityMeasured) and event.judgement_id == judgement:
            reliability_event = event
    if reliability_event is None:
        return None
    for run_id in reliability_event.runs:
        for stored in store.read_stream(f"run:{experiment}/{run_id}"):
            if stored.idempotency_key == judge_score_key(judgement, run_id):
                scores.append({"run_id": run_id, **{k: stored.data[k] for k in ("value", "n", "stderr")},
                               "exact_match": reliability_event.exact_match.get(run_id)})
    return Judgement(reliability_event, scores, appended=0)


def judge(store: EventStore, experiment: str, endpoint: Endpoint, settings: JudgeSettings, *,
          cache: ResponseCache, client: ClientSettings, progress: Progress | None = None) -> Judgement:
    """Judge every completed run of `experiment` (or find the same judgement in the log)."""
    runs = completed_runs(store, experiment)
    if not runs:
        raise NoRunsToJudge(f"experiment {experiment!r} has no completed run with its artifact on disk")
    run_ids = sorted(runs)
    identity = settings.identity()
    jid = judgement_id(experiment, run_ids, endpoint.model, identity)
    found = existing(store, experiment, jid)
    if found is not None:
        return found

    answers: dict[str, list[tuple[Question, str]]] = {}
    for i, run_id in enumerate(run_ids):
        answers[run_id] = student_answers(runs[run_id], settings.questions)
        if progress is not None:
            progress("answer", i + 1, len(run_ids))
    answered = {r: rows for r, rows in answers.items() if rows}
    if not answered:
        raise NoRunsToJudge(f"no run of {experiment!r} has held-out questions to answer (a corpus "
                            "without question-answer pairs?)")
    items = build_items(answered, settings.controls)
    pairs = build_pairs(answered, settings.controls, limit=settings.questions)
    graded = grade(items, pairs, endpoint, settings, cache, client,
                   progress=(lambda d, t: progress("judge", d, t)) if progress else None)
    scores = run_scores(graded)
    figures = reliability(graded)
    event = JudgeReliabilityMeasured(
        judgement_id=jid, experiment=experiment, judge_model=endpoint.model,
        judge_host=host_of(endpoint.base_url), prompt_version=PROMPT_VERSION, runs=run_ids,
        settings=identity, exact_match={s.run_id: s.exact_match for s in scores}, **figures)
    new = [keyed(BenchmarkScored(experiment=experiment, run_id=s.run_id, benchmark=JUDGE_BENCHMARK,
                                 value=s.value, n=s.n, stderr=s.stderr), judge_score_key(jid, s.run_id))
           for s in scores]
    new.append(keyed(event, reliability_key(jid)))
    appended = store.append(new)  # one batch: the scores and the figures, or nothing
    examples = [{"kind": item.kind, "run_id": item.run_id, "question": item.question.question,
                 "reference": item.question.reference, "answer": item.answer, "exact": item.exact,
                 "verdicts": verdicts, "replies": replies}
                for item, verdicts, replies in zip(graded.items, graded.verdicts, graded.replies,
                                                   strict=True)]
    return Judgement(event, [{**asdict(s)} for s in scores],
                     appended=sum(not a.duplicate for a in appended), examples=examples)
