"""`knobs distill` end to end against the real local LLM server (llama-cpp-python serving
SmolLM2-135M-Instruct): resume, the response cache, kills of the pipeline and of the server,
and every bad input, with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from events.settings import EventsSettings
from events.store import StoredEvent
from events.store.factory import open_store
from services.infra.llm import llm_status, start_llm, stop_llm

ROOT = Path(__file__).resolve().parents[3]
PAIRS = [{"id": "ada", "question": "Where was Ada Lovelace born?", "answer": "London"},
         {"id": "paris", "question": "What is the capital of France?", "answer": "Paris"},
         {"id": "water", "question": "At what temperature in Celsius does water boil at sea level?",
          "answer": "100"}]
LENSES = "restate,child"


def env_for(home: Path, server: Any | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNOBS_")}
    env.update(KNOBS_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    if server is not None:
        env.update(KNOBS_LLM_BASE_URL=server.base_url, KNOBS_LLM_API_KEY=server.api_key,
                   KNOBS_LLM_MODEL=server.model)
    env.update(extra)
    return env


def knobs(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def events(home: Path, *types: str) -> list[StoredEvent]:
    with open_store(EventsSettings(sqlite_path=home / "events.sqlite3")) as store:
        return store.read_all(types=list(types) or None)


def triples(home: Path) -> Counter[tuple[str, str, int]]:
    return Counter((e.data["pair_id"], e.data["lens"], e.data["sample"])
                   for e in events(home, "DistillateGenerated"))


def logged(home: Path) -> int:
    return len(triples(home)) if (home / "events.sqlite3").exists() else 0


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return path


def test_distil_resume_and_rerun_from_the_cache(tmp_path: Path, pairs_file: Path, llm_server: Any) -> None:
    home = tmp_path / "home"
    env = env_for(home, llm_server)
    done = knobs(env, "distill", "--pairs", str(pairs_file), "--lenses", LENSES, "--samples", "2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["generated"] == report["expected"] == 12
    assert set(triples(home).values()) == {1} and len(triples(home)) == 12
    assert len(events(home, "DistillateAssessed")) == 12 and len(events(home, "CloudAssessed")) == 3
    completed = report["completed"]
    assert completed["requests"] >= 12 and completed["cached"] == 0 and completed["completion_tokens"] > 0
    for cloud in report["clouds"]:
        assert cloud["vendi"] >= (1.0 if cloud["accepted"] else 0.0)
        for d in cloud["distillates"]:
            assert d["accepted"] is (not d["reasons"])
    usage = [e.data["usage"] for e in events(home, "DistillateGenerated")]
    assert all(u["attempts"] >= 1 and u["latency_s"] > 0 and not u["cached"] for u in usage)
    # Asking again is the same distillation: nothing new in the log, no request.
    head = len(events(home))
    again = knobs(env, "distill", "--pairs", str(pairs_file), "--lenses", LENSES, "--samples", "2", "--json")
    assert again.returncode == 0, again.stderr
    assert len(events(home)) == head
    # Judged by another threshold it is another distillation, with every answer from the cache.
    stricter = knobs(env, "distill", "--pairs", str(pairs_file), "--lenses", LENSES, "--samples", "2",
                     "--duplicate-cosine", "0.8", "--json")
    assert stricter.returncode == 0, stricter.stderr
    second = json.loads(stricter.stdout)
    assert second["distillation_id"] != report["distillation_id"]
    assert second["completed"]["requests"] == 0 and second["completed"]["cached"] == 12
    texts = {(c["pair_id"], d["lens"], d["sample"]): d["text"]
             for c in report["clouds"] for d in c["distillates"]}
    assert {(c["pair_id"], d["lens"], d["sample"]): d["text"]
            for c in second["clouds"] for d in c["distillates"]} == texts
    # The export writes each call's answer once, though two distillations judged it.
    out = tmp_path / "cloud.jsonl"
    exported = knobs(env, "export", "cloud", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    kept = {d["text"] for r in (report, second) for c in r["clouds"] for d in c["distillates"]
            if d["accepted"]}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len({(line["pair_id"], line["lens"], line["sample"]) for line in lines})
    assert {line["text"] for line in lines} == kept
    shown = knobs(env, "distill", "show", report["distillation_id"])
    assert shown.returncode == 0 and "cloud:" in shown.stdout and "Vendi" in shown.stdout
    listed = knobs(env, "distill", "list", "--json")
    assert {d["distillation_id"] for d in json.loads(listed.stdout)} == {report["distillation_id"],
                                                                         second["distillation_id"]}


def test_a_killed_pipeline_resumes_with_one_distillate_per_triple(tmp_path: Path, pairs_file: Path,
                                                                  llm_server: Any) -> None:
    home = tmp_path / "home"
    env = env_for(home, llm_server, KNOBS_LLM_CONCURRENCY="2")
    args = ("distill", "--pairs", str(pairs_file), "--lenses", LENSES, "--samples", "2",
            "--batch-pairs", "1")
    proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and logged(home) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = triples(home)
    assert 3 <= len(before) < 12, "the kill should land mid-run"
    assert not events(home, "DistillationCompleted")
    resumed = knobs(env, *args, "--json")
    assert resumed.returncode == 0, resumed.stderr
    after = triples(home)
    assert len(after) == 12 and set(after.values()) == {1}
    assert len(events(home, "DistillationCompleted")) == 1
    assert len(events(home, "CloudAssessed")) == 3
    assert len({e.data["distillate_id"] for e in events(home, "DistillateAssessed")}) == 12


def test_a_killed_server_fails_clearly_and_the_resume_completes(tmp_path: Path, pairs_file: Path) -> None:
    server_home = tmp_path / "server"
    state = start_llm(server_home)
    try:
        home = tmp_path / "home"
        env = env_for(home, None, KNOBS_LLM_BASE_URL=state["base_url"], KNOBS_LLM_API_KEY=state["api_key"],
                      KNOBS_LLM_MODEL=state["model"], KNOBS_LLM_MAX_RETRIES="2")
        args = ("distill", "--pairs", str(pairs_file), "--lenses", LENSES, "--samples", "2")
        proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and logged(home) < 2:
            time.sleep(0.2)
        os.kill(int(state["pid"]), signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        assert state["base_url"] in err and "resume" in err
        kept = triples(home)
        assert 2 <= len(kept) < 12 and set(kept.values()) == {1}
        assert events(home, "DistillationBatchFailed")
        assert not llm_status(server_home)["running"]
        restarted = start_llm(server_home)
        env.update(KNOBS_LLM_BASE_URL=restarted["base_url"], KNOBS_LLM_API_KEY=restarted["api_key"])
        resumed = knobs(env, *args, "--json")
        assert resumed.returncode == 0, resumed.stderr
        after = triples(home)
        assert len(after) == 12 and set(after.values()) == {1}
        assert len(events(home, "DistillationCompleted")) == 1
    finally:
        stop_llm(server_home)


def test_template_engine_needs_no_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = env_for(home, None)
    done = knobs(env, "distill", "--pairs", "biographies:people=2", "--engine", "template",
                 "--lenses", "template-bio", "--samples", "3", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["engine"] == "template" and report["completed"]["requests"] == 0
    generated = events(home, "DistillateGenerated")
    assert generated and all(e.data["engine"] == "template" for e in generated)
    assert report["accepted"] >= report["generated"] // 2


def test_bad_servers_fail_clearly_and_log_nothing(tmp_path: Path, pairs_file: Path, llm_server: Any) -> None:
    home = tmp_path / "home"
    unreachable = knobs(env_for(home, None, KNOBS_LLM_BASE_URL="http://127.0.0.1:9/v1", KNOBS_LLM_MODEL="m"),
                        "distill", "--pairs", str(pairs_file), "--lenses", LENSES)
    assert unreachable.returncode == 1 and "http://127.0.0.1:9/v1" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    bad_key = knobs(env_for(home, llm_server, KNOBS_LLM_API_KEY="wrong"),
                    "distill", "--pairs", str(pairs_file), "--lenses", LENSES)
    assert bad_key.returncode == 1 and "API key" in bad_key.stderr
    other_model = knobs(env_for(home, llm_server, KNOBS_LLM_MODEL="gpt-17"),
                        "distill", "--pairs", str(pairs_file), "--lenses", LENSES)
    assert other_model.returncode == 1 and "gpt-17" in other_model.stderr
    assert llm_server.model in other_model.stderr
    no_server = knobs(env_for(home, None), "distill", "--pairs", str(pairs_file), "--lenses", LENSES)
    assert no_server.returncode == 1 and "knobs services up --llm" in no_server.stderr
    assert not (home / "events.sqlite3").exists() or not events(home)


@pytest.mark.parametrize(("content", "args", "says"), [
    ('{"question": "q", "answer": "a"}\nnot json\n', (), "pairs.jsonl:2"),
    ('{"question": "q"}\n', (), "answer"),
    ("", (), "no pairs"),
    ('{"question": "q", "answer": "a"}\n', ("--lenses", "nosuchlens"), "nosuchlens"),
    ('{"question": "q", "answer": "a"}\n', ("--engine", "gpt"), "--engine"),
    ('{"question": "q", "answer": "a"}\n', ("--samples", "0"), "samples"),
    ('{"question": "q", "answer": "a"}\n', ("--engine", "template"), "needs a structured fact"),
])
def test_bad_input_exits_2_and_logs_nothing(tmp_path: Path, llm_server: Any, content: str,
                                            args: tuple[str, ...], says: str) -> None:
    home = tmp_path / "home"
    path = tmp_path / "pairs.jsonl"
    path.write_text(content)
    bad = knobs(env_for(home, llm_server), "distill", "--pairs", str(path), "--lenses", LENSES, *args)
    assert bad.returncode == 2, bad.stderr
    assert says in bad.stderr and "Traceback" not in bad.stderr
    assert not (home / "events.sqlite3").exists() or not events(home)


def test_with_the_local_server_up_the_pairs_are_the_only_flag(tmp_path: Path, llm_server: Any) -> None:
    # The session's server runs for llm_server.home: as KNOBS_HOME, nothing else is needed.
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n")
    env = env_for(llm_server.home, None)
    done = knobs(env, "distill", "--pairs", str(path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    listed = knobs(env, "lenses", "list", "--json")
    assert report["model"] == llm_server.model and report["base_url"] == llm_server.base_url
    assert report["generated"] == len(json.loads(listed.stdout)) >= 24
    assert report["completed"]["requests"] >= report["generated"]
