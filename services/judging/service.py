"""Judge an experiment's runs: refuse what cannot be judged before any work, then call the workers'
`judge` executor, which grades and logs each run's qa_judge_accuracy and the judge's reliability.

Checked first, each with what to do: the experiment exists, it has completed runs with an
artifact, the server answers with the key the workers will use, and it serves the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.models.distillation import LLMUnavailable
from events.models.judging import JudgeInputRejected
from events.store import EventStore
from services.core import plugins
from services.core.errors import BadInput, Unavailable

Progress = Callable[[str, int, int], None]


class JudgeRequestError(BadInput):
    """The experiment, the settings or the server cannot be used; nothing was logged."""


class JudgeServerError(Unavailable):
    """The server stopped answering in the middle of a judgement (its answers so far are cached)."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str


def experiments_in(store: EventStore) -> set[str]:
    """Experiments the log knows: declared ones and those with recorded runs."""
    return {str(s.data.get("name") if s.event_type == "ExperimentDeclared" else s.data.get("experiment"))
            for s in store.read_all(types=["ExperimentDeclared", "RunRecorded", "RunCompleted"])}


def check_experiment(store: EventStore, experiment: str) -> int:
    """How many completed runs with an artifact on disk `experiment` has (at least one)."""
    known = experiments_in(store)
    if experiment not in known:
        listed = ", ".join(sorted(known)) or "none yet"
        raise JudgeRequestError(f"no experiment named {experiment!r}; experiments: {listed}")
    completed = [s.data for s in store.read_all(types=["RunCompleted"])
                 if s.data.get("experiment") == experiment]
    on_disk = [d for d in completed if d.get("artifact") and (Path(d["artifact"]) / "config.json").is_file()]
    if not on_disk:
        why = (f"its {len(completed)} completed runs' artifacts are gone from disk" if completed
               else "no run has completed")
        raise JudgeRequestError(f"experiment {experiment!r} has nothing to judge: {why}; train it with "
                                "`knobs experiment run SPEC`")
    return len(on_disk)


def check_server(endpoint: Endpoint) -> None:
    """The server answers with the workers' key and serves the model."""
    try:
        served: list[str] = plugins.executor("llm_models")(endpoint.base_url)
    except LLMUnavailable as exc:
        raise JudgeRequestError(f"no judge reachable: {exc}") from exc
    if served and endpoint.model not in served:
        raise JudgeRequestError(f"{endpoint.base_url} does not serve model {endpoint.model!r}; it serves: "
                                f"{', '.join(served)} (--model or KNOBS_LLM_MODEL)")


def judge(store: EventStore, experiment: str, endpoint: Endpoint, *, questions: int, repeats: int,
          progress: Progress | None = None) -> dict[str, Any]:
    """Check, then judge every completed run; the judgement as JSON (`appended` 0 on a rerun)."""
    if questions < 1 or repeats < 1:
        raise JudgeRequestError("--questions and --repeats must be at least 1")
    check_experiment(store, experiment)
    check_server(endpoint)
    try:
        result: dict[str, Any] = plugins.executor("judge")(
            experiment, base_url=endpoint.base_url, model=endpoint.model, questions=questions,
            repeats=repeats, progress=progress)
    except JudgeInputRejected as exc:
        raise JudgeRequestError(str(exc)) from exc
    except LLMUnavailable as exc:
        raise JudgeServerError(f"{exc} (answers so far are cached: run the same command again)") from exc
    return result
