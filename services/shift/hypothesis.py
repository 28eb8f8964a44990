"""The built-in test of the compatibility hypothesis, from a spec to a verdict in the log.

A spec names the test and may override the job's defaults (workers/jobs/hypothesis.py) and the
verdict's statistics. The workers run the job, each candidate's shift measured through the log;
this module judges the outcomes (verdict.py) and records one `HypothesisTested` that names the
`DatasetShiftMeasured` facts it read. The test id is a hash of the spec and the code version, so
asking again answers from the log instead of training again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from events.canonical import canonical_json
from events.models.rankings import UsedEvent
from events.models.shift import (
    DatasetShiftMeasured,
    HypothesisTested,
    OutcomeCorrelation,
    ShiftInputRejected,
    shift_stream,
)
from events.store import EventStore, NewEvent
from services.core import plugins
from services.core.errors import BadInput
from services.core.version import code_version
from services.shift.audit import verdict_stream
from services.shift.verdict import Verdict, judge_result

VERDICT_OPTIONS = {"resamples", "seed", "level", "alpha", "predictor"}


class HypothesisSpecError(BadInput):
    """The spec cannot be used; nothing was logged."""


@dataclass(frozen=True)
class Tested:
    event: HypothesisTested
    position: int
    fresh: bool  # False: the log already held this verdict


def read_spec(path: Path) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HypothesisSpecError(f"{path}: no such spec file") from None
    except yaml.YAMLError as exc:
        raise HypothesisSpecError(f"{path}: not YAML ({exc})") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise HypothesisSpecError(f"{path}: a spec is a mapping with a non-empty `name` "
                                  "(and optional `config` and `verdict` mappings)")
    unknown = set(spec) - {"name", "description", "config", "verdict"}
    if unknown:
        raise HypothesisSpecError(f"{path}: unknown keys {sorted(unknown)}; allowed: name, description, "
                                  "config, verdict")
    for key in ("config", "verdict"):
        if not isinstance(spec.get(key, {}), dict):
            raise HypothesisSpecError(f"{path}: `{key}` must be a mapping")
    bad = set(spec.get("verdict", {})) - VERDICT_OPTIONS
    if bad:
        raise HypothesisSpecError(f"{path}: unknown verdict options {sorted(bad)}; allowed: "
                                  f"{sorted(VERDICT_OPTIONS)}")
    return spec


def test_id_of(spec: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"spec": spec, "code": code_version()}).encode()).hexdigest()[:16]


def existing(store: EventStore, test_id: str) -> Tested | None:
    stream = store.read_stream(verdict_stream(test_id))
    if not stream:
        return None
    event = stream[-1].decode()
    assert isinstance(event, HypothesisTested)
    return Tested(event, stream[-1].position, fresh=False)


def run_test(store: EventStore, spec: dict[str, Any], work_dir: Path,
             progress: Any = None) -> Tested:
    test_id = test_id_of(spec)
    found = existing(store, test_id)
    if found is not None:
        return found
    runner = plugins.executor("hypothesis")
    try:
        result: dict[str, Any] = runner(dict(spec.get("config", {})), work_dir / test_id, store=store,
                                        progress=progress)
    except ShiftInputRejected as exc:
        raise HypothesisSpecError(str(exc)) from exc
    options = dict(spec.get("verdict", {}))
    predictor = str(options.pop("predictor", "volatility"))
    verdict = judge_result(result, predictor=predictor, **options)
    event = tested_event(store, test_id, spec, result, verdict)
    appended = store.append([NewEvent(event=event, idempotency_key=f"hypothesis:{test_id}")])
    return Tested(event, appended[0].position, fresh=True)


def tested_event(store: EventStore, test_id: str, spec: dict[str, Any], result: dict[str, Any],
                 verdict: Verdict) -> HypothesisTested:
    used: list[UsedEvent] = []
    candidates = []
    for c in result["candidates"]:
        mid = c.get("measurement_id")
        summary = next((e for e in store.read_stream(shift_stream(mid))
                        if e.event_type == DatasetShiftMeasured.event_type), None) if mid else None
        if summary is not None:
            used.append(UsedEvent(position=summary.position, event_id=summary.event_id))
        runs = [{"seed": r["seed"], **r["outcomes"]} for r in result["runs"] if r["candidate"] == c["name"]]
        candidates.append({"name": c["name"], "measurement_id": mid, "examples": c["examples"],
                           "volatility": c["shift"]["volatility"], "coherence": c["shift"]["coherence"],
                           "total_shift": c["shift"]["total_shift"], "before": c["before"], "runs": runs})
    correlations = [OutcomeCorrelation(
        outcome=k.outcome, expected_sign=-1 if k.direction < 0 else 1, spearman=k.spearman, pearson=k.pearson,
        ci=k.spearman_interval, verdict=k.verdict,
    ) for k in verdict.correlations]
    curriculum = [{"outcome": c.outcome, "ascending_minus_descending": c.ascending_minus_descending,
                   "interval": list(c.interval) if c.interval else None,
                   "orders": [{"order": o.order, "mean": o.mean, "interval": list(o.interval),
                               "seeds": o.seeds} for o in c.orders]} for c in verdict.curriculum]
    return HypothesisTested(
        test_id=test_id, name=str(spec["name"]), spec=spec, verdict=verdict.overall,
        correlations=correlations, candidates=candidates, curriculum=curriculum,
        bootstrap={**verdict.settings, "predictor": verdict.predictor,
                   "permutation_p": {k.outcome: k.permutation_p for k in verdict.correlations}},
        used_events=used, code_version=code_version(), seconds=float(result.get("seconds") or 0.0),
    )


def list_verdicts(store: EventStore) -> list[HypothesisTested]:
    out = []
    for stored in store.read_all(types=[HypothesisTested.event_type]):
        event = stored.decode()
        assert isinstance(event, HypothesisTested)
        out.append(event)
    return out
