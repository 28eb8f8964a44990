"""A distillation on a real RabbitMQ with real `knobs worker` processes and the real local LLM:
a worker SIGKILLed mid-batch has its message redelivered, and the distillation still ends
with exactly one distillate per (pair, lens, sample), each judged once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.workers.conftest import ROOT, Log, Processes

pytestmark = pytest.mark.slow

PAIRS = [{"id": "ada", "question": "Where was Ada Lovelace born?", "answer": "London"},
         {"id": "paris", "question": "What is the capital of France?", "answer": "Paris"},
         {"id": "rome", "question": "What is the capital of Italy?", "answer": "Rome"}]


def triples(log: Log) -> Counter[tuple[str, str, int]]:
    return Counter((e.data["pair_id"], e.data["lens"], e.data["sample"])
                   for e in log.store.read_all(types=["DistillateGenerated"]))


def test_a_worker_killed_mid_batch_is_redelivered_and_each_distillate_is_written_once(
        log: Log, processes: Processes, llm_server: Any, tmp_path: Path) -> None:
    llm = {"KNOBS_LLM_BASE_URL": llm_server.base_url, "KNOBS_LLM_API_KEY": llm_server.api_key,
           "KNOBS_LLM_MODEL": llm_server.model, "KNOBS_LLM_CONCURRENCY": "1",
           "KNOBS_WORKERS_DISTILL_QUEUE": f"d-{log.experiment}"}
    processes.env.update(llm)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    # Given a distillation queued on RabbitMQ in three batches, before any worker runs
    queued = subprocess.run([sys.executable, "-m", "services.cli.main", "distill", "--pairs", str(pairs),
                             "--lenses", "restate,child", "--samples", "2", "--batch-pairs", "1",
                             "--broker", "rabbitmq", "--wait", "0", "--json"],
                            cwd=ROOT, env=processes.env, capture_output=True, text=True, timeout=120)
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout)["generated"] == 0
    # When the first worker is killed once it has written some of them
    first = processes.start("worker")
    log.wait(lambda: sum(triples(log).values()) >= 3, 240, "the first worker to write distillates")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert sum(triples(log).values()) < 12, "the kill should land mid-distillation"
    processes.start("worker")
    # Then the next worker finishes it: every triple once, every distillate judged once
    log.wait(lambda: bool(log.store.read_all(types=["DistillationCompleted"])), 300,
             "the distillation to complete")
    found = triples(log)
    assert len(found) == 12 and set(found.values()) == {1}
    assessed = Counter(e.data["distillate_id"] for e in log.store.read_all(types=["DistillateAssessed"]))
    assert len(assessed) == 12 and set(assessed.values()) == {1}
    assert len(log.store.read_all(types=["CloudAssessed"])) == 3
    assert len(log.store.read_all(types=["DistillationCompleted"])) == 1
