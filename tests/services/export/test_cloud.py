"""`knobs export cloud`: the accepted distillates of the log as JSONL the trainer reads, with no
Neo4j; the same log gives the same bytes; bad input is one error line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from events.store.port import NewEvent
from events.store.sqlite import SQLiteEventStore
from services.core.errors import BadInput
from services.export.cloud import export_cloud, read_distillations
from tests.graph.distillation_log import DistillationLog, distillation_log
from workers.data.local import read_documents

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def log(home: Path) -> DistillationLog:
    home.mkdir()
    with SQLiteEventStore(home / "events.sqlite3") as store:
        return distillation_log(store)


def knobs(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No KNOBS_NEO4J_* and no Neo4j running for this home: the export reads the log only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNOBS_")}
    env["KNOBS_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "services.cli.main", "export", "cloud", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_the_export_is_every_accepted_distillate_and_the_trainer_reads_it(
    log: DistillationLog, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cloud.jsonl"
    proc = knobs(home, "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    # A: 12 of 18 accepted; B: 2 of 3 assessed, both accepted, one not yet assessed
    counts = (summary["lines"], summary["generated"], summary["rejected"], summary["unassessed"])
    assert counts == (14, 21, 6, 1)
    assert summary["distillations"] == [log.a, log.b]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert next(iter(lines[0])) == "text"
    assert len({line["id"] for line in lines}) == 14
    first = lines[0]
    assert (first["distillation_id"], first["pair_id"], first["lens"], first["sample"], first["family"]) == (
        log.a, "q1", "restate", 0, "restate")
    assert (first["question"], first["answer"], first["known_answer"]) == ("Where was Anya Petrova born?",
                                                                           "Lisbon", True)
    assert first["text"] == "restate #0: Where was Anya Petrova born? The answer is Lisbon."
    assert not any(line["lens"] == "causal" and line["sample"] == 1 for line in lines), "duplicates are out"
    # The trainer's local corpus reader takes it as it is: one document per line, the distillate
    assert read_documents(out) == [line["text"] for line in lines]
    # The same log, the same bytes
    again = tmp_path / "again.jsonl"
    assert knobs(home, "--out", str(again)).returncode == 0
    assert again.read_bytes() == out.read_bytes()


def test_one_distillation_by_prefix_and_all_with_reasons(log: DistillationLog, home: Path) -> None:
    with SQLiteEventStore(home / "events.sqlite3") as store:
        summary, text = export_cloud(store, None, distillation=log.b[:6], accepted_only=False)
        records = read_distillations(store)
    assert summary.distillations == [log.b] and summary.lines == 3
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["pair_id"], line["accepted"], line["reasons"]) for line in lines] == [
        ("q1", True, []), ("q2", True, []), ("q3", None, None)]
    [a, b] = records
    assert a.completed is not None and b.completed is None and len(a.clouds) == 3
    assert [d.generated.lens for d in a.distillates[:6]] == ["restate", "restate", "child", "child",
                                                             "causal", "causal"]
    # Standard output without --out
    proc = knobs(home, "--distillation", log.a)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 12 and "wrote 12 distillates" in proc.stderr


def test_bad_input_is_one_line_and_nothing_written(log: DistillationLog, home: Path, tmp_path: Path) -> None:
    for args, says in [
        (("--distillation", "zzz", "--out", str(tmp_path / "x.jsonl")), "no distillation 'zzz' in the log"),
        (("--out", str(tmp_path / "x.txt")), "must end in .jsonl"),
    ]:
        proc = knobs(home, *args)
        assert proc.returncode == 2, proc.stderr
        assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not list(tmp_path.glob("x.*"))
    with SQLiteEventStore(tmp_path / "empty.sqlite3") as empty, \
            pytest.raises(BadInput, match="holds no distillation: run `knobs distill"):
        export_cloud(empty, None)
    # A distillation with nothing assessed yet: nothing to write is an error, not an empty corpus
    with SQLiteEventStore(tmp_path / "pending.sqlite3") as pending:
        with SQLiteEventStore(home / "events.sqlite3") as store:
            unassessed = {"LensDefined", "DistillationRequested", "DistillateGenerated"}
            pending.append([NewEvent(event=e.decode(), event_id=uuid.UUID(e.event_id))
                            for e in store.read_all() if e.event_type in unassessed])
        with pytest.raises(BadInput, match=r"no accepted distillate .* 0 rejected, 21 not yet assessed"):
            export_cloud(pending, tmp_path / "pending.jsonl")
    assert not (tmp_path / "pending.jsonl").exists()
