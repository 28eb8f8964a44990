# ruff: noqa: RUF002  (the notation of the definitions)
"""`knobs shift`: a model made outside knobs, measured through the CLI, against a naive loop
written here without any knobs code; bad input; a real kill and the resume after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from events.settings import EventsSettings
from events.store.factory import open_store

ROOT = Path(__file__).resolve().parents[3]
SENTENCES = [f"the {a} {b} sat on the {c} mat." for a in ("red", "old", "small", "loud")
             for b in ("cat", "dog", "fox") for c in ("blue", "warm", "flat")]
REL = 1e-4
QA = "Q: where did the cat sit?\nA: on the mat."


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 and its byte-level BPE tokenizer, saved the way any transformers user would."""
    directory = tmp_path_factory.mktemp("outside")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([*SENTENCES, QA], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(directory)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=300, n_positions=64,
                               bos_token_id=None, eos_token_id=None)).save_pretrained(directory)
    return directory


def _data(path: Path, n: int = len(SENTENCES)) -> Path:
    lines = [{"id": f"s{i}", "text": s} for i, s in enumerate(SENTENCES[:n])]
    lines[1] = {"id": "qa", "prompt": QA.split("A:")[0] + "A:", "completion": QA.split("A:")[1]}
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _knobs(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, "KNOBS_HOME": str(home)})


def _events(home: Path) -> list[Any]:
    path = home / "events.sqlite3"
    if not path.exists():
        return []
    store = open_store(EventsSettings(sqlite_path=path))
    try:
        return list(store.read_all())
    finally:
        store.close()


def _naive(model_dir: Path, data: Path, lr: float) -> list[dict[str, float]]:
    """Per example, one at a time: ℓ (mean CE over its targets), ‖∇ℓ‖, and ℓ after one SGD step."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).float().eval()
    rows = []
    for line in data.read_text().splitlines():
        row = json.loads(line)
        if "text" in row:
            ids, first = tokenizer(row["text"])["input_ids"], 1
        else:
            prompt = tokenizer(row["prompt"])["input_ids"]
            ids = prompt + tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
            first = len(prompt)
        x = torch.tensor([ids])

        def loss_of(m: torch.nn.Module, x: torch.Tensor = x, first: int = first) -> torch.Tensor:
            logits = m(x).logits[0]
            return F.cross_entropy(logits[:-1], x[0, 1:], reduction="none")[first - 1:].mean()

        model.zero_grad()
        loss = loss_of(model)
        loss.backward()  # type: ignore[no-untyped-call]
        grads = [p.grad.detach().clone() for p in model.parameters()]  # type: ignore[union-attr]
        norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))  # type: ignore[arg-type]
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p -= lr * g
            after = float(loss_of(model))
            for p, g in zip(model.parameters(), grads, strict=True):
                p += lr * g
        rows.append({"id": row["id"], "loss_before": loss.item(), "grad_norm": norm, "loss_after": after,
                     "grads": grads})  # type: ignore[dict-item]
    return rows


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def test_measure_agrees_with_a_naive_loop_written_separately(model_dir: Path, tmp_path: Path) -> None:
    data = _data(tmp_path / "data.jsonl")
    done = _knobs(tmp_path / "home", "shift", "measure", "--model", str(model_dir), "--data", str(data),
                  "--lr", "0.01", "--chunk", "8", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    naive = _naive(model_dir, data, 0.01)
    assert [e["id"] for e in out["examples"]] == [n["id"] for n in naive]
    for got, want in zip(out["examples"], naive, strict=True):
        for key in ("loss_before", "grad_norm", "loss_after"):
            assert _rel(got[key], want[key]) < REL, (got["id"], key, got[key], want[key])
    norms = [n["grad_norm"] for n in naive]
    total = torch.stack([torch.cat([g.flatten() for g in n["grads"]]) for n in naive]).double().sum(0)  # type: ignore[attr-defined]
    mean = sum(norms) / len(norms)
    pstdev = (sum((x - mean) ** 2 for x in norms) / len(norms)) ** 0.5
    d = out["dataset"]
    assert _rel(d["total_shift"], sum(norms)) < REL
    assert _rel(d["net_shift"], float(total.norm())) < REL
    assert _rel(d["volatility"], pstdev / mean) < REL
    assert d["coherence"] == pytest.approx(d["net_shift"] / d["total_shift"])
    # Given the events of this measurement, When the log is read, Then one request, one event
    # per chunk of 8 and one summary are there.
    kinds = [e.event_type for e in _events(tmp_path / "home")]
    assert kinds == ["ShiftRequested"] + ["ShiftMeasured"] * 5 + ["DatasetShiftMeasured"]
    # Asking again is asking once: the same document, nothing appended.
    again = _knobs(tmp_path / "home", "shift", "measure", "--model", str(model_dir), "--data", str(data),
                   "--lr", "0.01", "--chunk", "8", "--json")
    assert json.loads(again.stdout) == out
    assert len(_events(tmp_path / "home")) == 7


@pytest.mark.parametrize(("content", "extra", "message"), [
    ('{"text": "the cat"}\nnot json\n', [], "data.jsonl:2: not JSON"),
    ("\n\n", [], "the data set is empty"),
    ('{"text": "' + "the cat sat on the mat. " * 20 + '"}\n', ["--no-truncate"],
     "longer than the model's context"),
    ('{"prompt": "Q", "completion": ""}\n', [], "data.jsonl:1: no text"),
])
def test_bad_data_is_one_line_exit_2_and_nothing_logged(model_dir: Path, tmp_path: Path, content: str,
                                                        extra: list[str], message: str) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(content)
    done = _knobs(tmp_path / "home", "shift", "measure", "--model", str(model_dir), "--data", str(data),
                  *extra)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.strip().count("\n") == 0 or "error:" in done.stderr.splitlines()[-1]
    assert _events(tmp_path / "home") == []


@pytest.mark.parametrize(("model", "message"), [
    ("not-a-dir", "neither a directory nor a run"),
    ("exp/run-7", "no completed run 'run-7' in experiment 'exp'"),
    ("empty", "neither a run's artifact directory"),
])
def test_a_model_that_cannot_be_measured_is_refused(tmp_path: Path, model: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    data = _data(tmp_path / "data.jsonl", 3)
    ref = str(tmp_path / model) if model == "empty" else model
    done = _knobs(tmp_path / "home", "shift", "measure", "--model", ref, "--data", str(data))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert _events(tmp_path / "home") == []


def test_a_killed_measurement_resumes_where_it_stopped(model_dir: Path, tmp_path: Path) -> None:
    data = _data(tmp_path / "data.jsonl")
    home = tmp_path / "home"
    args = ["shift", "measure", "--model", str(model_dir), "--data", str(data), "--chunk", "1",
            "--probe", str(data), "--json"]
    # Given a measurement of 36 one-example chunks, When it is killed (SIGKILL) after its
    # first chunks reached the log,
    proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT,
                            env={**os.environ, "KNOBS_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        chunks = [e for e in _events(home) if e.event_type == "ShiftMeasured"]
        if len(chunks) >= 3:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _events(home)
    assert "DatasetShiftMeasured" not in [e.event_type for e in before], "finished before the kill"
    # Then asking again measures only the missing chunks: each chunk once, one summary.
    done = _knobs(home, *args)
    assert done.returncode == 0, done.stderr
    after = _events(home)
    assert [e.event_id for e in after[:len(before)]] == [e.event_id for e in before]
    chunks = sorted(int(e.data["chunk"]) for e in after if e.event_type == "ShiftMeasured")
    assert chunks == list(range(len(SENTENCES)))
    assert [e.event_type for e in after].count("DatasetShiftMeasured") == 1
    # And the figures equal an uninterrupted measurement's, in a fresh log.
    fresh = _knobs(tmp_path / "fresh", *args)
    resumed, straight = json.loads(done.stdout), json.loads(fresh.stdout)
    for a, b in zip(resumed["examples"], straight["examples"], strict=True):
        assert a["id"] == b["id"]
        assert _rel(a["grad_norm"], b["grad_norm"]) < 1e-9
    assert _rel(resumed["dataset"]["net_shift"], straight["dataset"]["net_shift"]) < 1e-9


def test_tokens_are_shaded_in_the_terminal_and_on_a_page(model_dir: Path, tmp_path: Path) -> None:
    data = _data(tmp_path / "data.jsonl", 4)
    home = tmp_path / "home"
    done = _knobs(home, "shift", "measure", "--model", str(model_dir), "--data", str(data), "--tokens",
                  "--metrics", "norms")
    assert done.returncode == 0, done.stderr
    shown = _knobs(home, "shift", "tokens", "qa", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    tokens = doc["tokens"]
    assert "".join(t["text"] for t in tokens).replace("Ġ", " ").replace("Ċ", "\n").startswith("Q: where")
    # The prompt's tokens are inputs, not targets: no token loss for them.
    assert tokens[0]["token_loss"] is None and tokens[-1]["token_loss"] is not None
    page = Path(doc["html"]).read_text()
    assert page.count('class="t"') == len(tokens) and doc["tokens_sha256"] in page
    plain = _knobs(home, "shift", "tokens", "qa")
    assert "most salient:" in plain.stdout and "page:" in plain.stdout
    missing = _knobs(home, "shift", "tokens", "nope")
    assert missing.returncode == 1 and "no token figures" in missing.stderr


TINY_HYPOTHESIS = """\
name: tiny-compat
config: {n_old: 8, touched: 4, n_new: 4, base_layers: 1, base_d_model: 32, base_heads: 2,
         base_context: 64, base_train_tokens: 20000, base_repetitions: 2, seeds: [0, 1], steps: 4,
         batch: 8, curriculum_per_candidate: 4, curriculum_epochs: 1, probe_facts: 8,
         shift_metrics: norms, exact_match: false}
verdict: {resamples: 200}
"""


def test_the_hypothesis_is_tested_recorded_and_audited_down_to_its_measurements(
        knobs_env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_HYPOTHESIS)
    home = Path(knobs_env["KNOBS_HOME"])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, text=True,
                              capture_output=True, timeout=600, env=knobs_env)

    # Given a tiny test, When it runs
    done = run("shift", "hypothesis", str(spec), "--json")
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    # Then five candidates were each measured through the log before training, and the verdict
    # names their summaries
    kinds = [e.event_type for e in _events(home)]
    assert kinds.count("ShiftRequested") == 5 and kinds.count("DatasetShiftMeasured") == 5
    assert kinds[-1] == "HypothesisTested" and len(verdict["used_events"]) == 5
    assert verdict["verdict"] in ("supported", "contradicted", "inconclusive")
    assert {c["name"] for c in verdict["candidates"]} == {
        "same_kind", "unseen_format", "new_people", "contradicting", "shuffled_answers"}
    assert all(len(c["runs"]) == 2 for c in verdict["candidates"])  # two seeds each
    # And asking again answers from the log
    again = run("shift", "hypothesis", str(spec), "--json")
    assert json.loads(again.stdout) == verdict and len(_events(home)) == len(kinds)
    # And the audit traces it to every chunk, recomputes each volatility, and the graph agrees
    audited = run("audit", verdict["test_id"], "--json")
    assert audited.returncode == 0, audited.stderr
    trail = json.loads(audited.stdout)
    assert trail["problems"] == [] and trail["chain"]["ok"] and trail["graph"]["agrees"]
    for c in trail["candidates"]:
        assert c["volatility"] == pytest.approx(c["volatility_recomputed"], rel=1e-9)
    listed = run("shift", "verdicts")
    assert verdict["test_id"] in listed.stdout


@pytest.mark.parametrize(("content", "message"), [
    ("name: x\nconfig: {touched: 50}\n", "touched=50"),
    ("name: x\nconfig: {no_such_knob: 1}\n", "unexpected keyword"),
    ("config: {}\n", "non-empty `name`"),
    ("name: x\nverdict: {alpah: 0.1}\n", "unknown verdict options"),
])
def test_a_bad_hypothesis_spec_is_one_line_exit_2_and_nothing_logged(tmp_path: Path, content: str,
                                                                     message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(content)
    done = _knobs(tmp_path / "home", "shift", "hypothesis", str(spec))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert _events(tmp_path / "home") == []


def test_a_generated_corpus_is_measured_like_a_file(model_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _knobs(home, "shift", "measure", "--model", str(model_dir), "--data",
                  "biographies:n_people=4,format=plain,seed=3", "--metrics", "norms", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    rendered = Path(out["data"]["path"])
    assert rendered.parent == home / "data" and rendered.name.startswith("biographies-")
    assert len(out["examples"]) == out["data"]["examples"] == len(rendered.read_text().splitlines())
    assert out["dataset"]["truncated"] >= 0
    bad = _knobs(home, "shift", "measure", "--model", str(model_dir), "--data", "biographies:people=4")
    assert bad.returncode == 2 and "unknown option 'people'" in bad.stderr
