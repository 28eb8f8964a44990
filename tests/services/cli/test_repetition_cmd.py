"""`knobs repetition run|report` end to end: template rewrites, real students, the table, ranking."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from events.settings import EventsSettings
from events.store.factory import open_store
from tests.conftest import LocalLLM
from tests.services.cli.test_main_job import event_count, knobs

SPEC = """\
kind: repetition
name: cli-rep
source: {people: 8}
conditions: [verbatim, lenses]
K: [1, 2]
protocols: [pretrain_finetune]
budget: {rule: tokens, train_tokens: 5120, finetune_tokens: 1024}
student: {n_layer: 1, n_head: 2, d_model: 32, context_length: 64, batch_size: 8, vocab_size: 300}
seeds: [0, 1]
benchmarks: [qa_answer_loss, qa_exact_match]
"""


@pytest.mark.slow
def test_run_distils_trains_reports_and_ranks_condition_and_k(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    # Given a small repetition spec
    spec = tmp_path / "rep.yaml"
    spec.write_text(SPEC)

    # When it runs: rewrites by the template engine, then 2 conditions x 2 K x 2 seeds students
    out = knobs(knobs_env, "repetition", "run", str(spec)).stdout
    assert "rewrites: distillation" in out and "experiment cli-rep: 8 runs" in out
    assert "pretrain_finetune / qa_answer_loss" in out and "the paper's figures" in out

    # Then the report holds every cell with both seeds, and the difference against noise
    report = json.loads(knobs(knobs_env, "repetition", "report", "cli-rep", "--json").stdout)
    assert report["runs"] == 8 and report["conditions"] == ["lenses", "verbatim"] and report["ks"] == [1, 2]
    assert report["budget"].startswith("equal tokens: 5,120")
    loss = next(t for t in report["tables"] if t["benchmark"] == "qa_answer_loss")
    assert len(loss["cells"]) == 4 and all(c["seeds"] == 2 for c in loss["cells"])
    assert {d["K"] for d in loss["differences"]} == {1, 2} and all(d["noise_se"] is not None
                                                                  for d in loss["differences"])
    assert {f["condition"] for f in loss["fits"]} == {"lenses", "verbatim"}
    assert any(r["paper_condition"] == "bioS multi5+permute" for r in report["paper"])

    # And every student's data traces to the distillation: the runs' cloud is the rewrites' id
    distillations = json.loads(knobs(knobs_env, "distill", "list", "--json").stdout)
    assert report["cloud"] in {d["distillation_id"] for d in distillations}

    # And the machinery that ranks any knob ranks condition and K
    ranked = json.loads(knobs(knobs_env, "rank", "--experiment", "cli-rep", "--benchmark", "qa_answer_loss",
                              "--json").stdout)
    assert {p["name"] for p in ranked["parameters"]} >= {"condition", "K"}

    # And running it again distils and trains nothing
    before = event_count(knobs_env)
    knobs(knobs_env, "repetition", "run", str(spec), "--no-report")
    assert event_count(knobs_env) == before


def test_bad_input_is_one_clear_line_and_exit_2(knobs_env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("K: [1, 2]", "K: [1, 1]"))
    bad = knobs(knobs_env, "repetition", "run", str(spec), check=False)
    assert bad.returncode == 2 and "listed more than once" in bad.stderr
    missing = knobs(knobs_env, "repetition", "report", "nope", check=False)
    assert missing.returncode != 0 and "no experiment 'nope'" in missing.stderr


# --- your own question-answer pairs as the source ------------------------------------------------

EXAMPLE_PAIRS = Path(__file__).resolve().parents[3] / "examples" / "specs" / "repetition-qa.jsonl"
QA_SPEC = """\
kind: repetition
name: cli-rep-qa
source: {{pairs: {pairs}, qa_fraction: 0.5}}
conditions: [verbatim, lenses]
K: [1]
protocols: [pretrain_finetune]
budget: {{rule: tokens, train_tokens: 5120, finetune_tokens: 1024}}
distill: {{engine: llm, lenses: [restate]}}
student: {{n_layer: 1, n_head: 2, d_model: 32, context_length: 64, batch_size: 8, vocab_size: 300}}
seeds: [0]
"""


@pytest.mark.slow
def test_run_on_your_own_pairs_distils_with_the_llm_engine_trains_and_scores_the_held_out_pairs(
    knobs_env: dict[str, str], tmp_path: Path, llm_server: LocalLLM
) -> None:
    # Given twelve of the example's pairs and a spec naming them, rewritten by the real local LLM
    # through the `restate` lens, three samples a pair so that a rejected rewrite has spares
    pairs = tmp_path / "facts.jsonl"
    pairs.write_text("".join(EXAMPLE_PAIRS.read_text().splitlines(keepends=True)[:12]))
    spec = tmp_path / "rep-qa.yaml"
    spec.write_text(QA_SPEC.format(pairs="facts.jsonl")  # relative: read next to the spec
                    .replace("lenses: [restate]}", "lenses: [restate], samples: 3}"))
    env = {**knobs_env, "KNOBS_LLM_BASE_URL": llm_server.base_url, "KNOBS_LLM_API_KEY": llm_server.api_key,
           "KNOBS_LLM_MODEL": llm_server.model}

    # When it runs: 12 pairs x restate x 3 samples through the engine, then a verbatim and a lenses student
    out = knobs(env, "repetition", "run", str(spec)).stdout
    assert f"source: 12 pairs from {pairs}" in out and "llm engine, lenses restate" in out
    assert "experiment cli-rep-qa: 2 runs" in out

    # Then both students are scored by what applies to pairs, nothing else, on the 6 held-out pairs
    tables = set(re.findall(r"^-- pretrain_finetune / (\w+) ", out, re.M))
    assert tables == {"qa_exact_match", "qa_answer_loss", "qa_f1", "qa_choice_accuracy",
                      "qa_exact_match_seen"}
    with open_store(EventsSettings(sqlite_path=Path(env["KNOBS_HOME"]) / "events.sqlite3")) as store:
        scored = [e.data for e in store.read_all(types=["BenchmarkScored"])]
        params = [e.data["params"] for e in store.read_all(types=["RunRequested"])]
        (distilled,) = [e.data for e in store.read_all(types=["DistillationRequested"])]
        generated = store.read_all(types=["DistillateGenerated"])
    assert len(scored) == 2 * 5 and len(generated) == 12 * 3
    assert {s["n"] for s in scored if s["benchmark"] != "qa_exact_match_seen"} == {6}
    # And every run carries the pair set's sha256, the file and the cloud it read
    assert len(params) == 2 and {p["pairs_sha256"] for p in params} == {distilled["pair_set"]["sha256"]}
    assert {p["corpus"] for p in params} == {f"pairs:{pairs}"}
    assert {p.get("cloud") for p in params} == {distilled["distillation_id"]}
    assert distilled["engine"] == "llm" and distilled["model"] == llm_server.model
    assert distilled["pair_set"]["pairs"] == 12


def test_pairs_that_cannot_be_tested_are_refused_before_anything_is_logged(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    spec = tmp_path / "rep-qa.yaml"
    for content, message in (
        (json.dumps({"question": "What does chapter one say?", "answer": "Much.", "known_answer": False}),
         "known_answer: false; extraction is scored against known answers"),
        (json.dumps({"question": "What is the capital of France?", "answer": "Paris"}),
         "1 pair(s) with qa_fraction 0.5 leave 0 in the QA group"),
    ):
        (tmp_path / "facts.jsonl").write_text(content + "\n")
        spec.write_text(QA_SPEC.format(pairs="facts.jsonl").replace("[verbatim, lenses]", "[verbatim]")
                        .replace("K: [1]", "K: [1, 2]"))
        bad = knobs(knobs_env, "repetition", "run", str(spec), check=False)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    text = QA_SPEC.format(pairs="book.md")
    spec.write_text(text)
    bad = knobs(knobs_env, "repetition", "run", str(spec), check=False)
    assert bad.returncode == 2 and "book.md is text; a text source is source.text" in bad.stderr
    assert event_count(knobs_env) == 0


# --- your text as the source: each passage tested by its cloze item --------------------------------

EXAMPLE_BOOK = EXAMPLE_PAIRS.parent / "book"
TEXT_SPEC = """\
kind: repetition
name: cli-rep-text
source: {{text: {book}, qa_fraction: 0.5}}
conditions: [verbatim]
K: [1, 2]
protocols: [pretrain_finetune]
budget: {{rule: tokens, train_tokens: 5120, finetune_tokens: 1024}}
student: {{n_layer: 1, n_head: 2, d_model: 32, context_length: 64, batch_size: 8, vocab_size: 300}}
seeds: [0]
"""


@pytest.mark.slow
def test_run_on_your_text_trains_on_its_passages_and_scores_the_held_out_cloze_items(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    # Given the example book (three Markdown files, 13 passages) named by a verbatim-only spec
    spec = tmp_path / "rep-text.yaml"
    spec.write_text(TEXT_SPEC.format(book=EXAMPLE_BOOK))

    # When it runs: no distillation, a verbatim x1 and a verbatim x2 student
    out = knobs(knobs_env, "repetition", "run", str(spec)).stdout
    # Then the source says how many passages have a cloze item, and which one is left out
    assert (f"source: 12 cloze items from {EXAMPLE_BOOK}: book (cloze-v1: 12 of 13 passages; left out, no "
            "content word at the end: 01-the-harbour.md-p005)") in out
    assert "rewrites:" not in out and "experiment cli-rep-text: 2 runs" in out

    # And both students are scored on the 6 held-out cloze items by what applies to pairs
    tables = set(re.findall(r"^-- pretrain_finetune / (\w+) ", out, re.M))
    assert tables == {"qa_exact_match", "qa_answer_loss", "qa_f1", "qa_choice_accuracy",
                      "qa_exact_match_seen"}
    with open_store(EventsSettings(sqlite_path=Path(knobs_env["KNOBS_HOME"]) / "events.sqlite3")) as store:
        scored = [e.data for e in store.read_all(types=["BenchmarkScored"])]
        params = [e.data["params"] for e in store.read_all(types=["RunRequested"])]
    assert len(scored) == 2 * 5 and {s["n"] for s in scored if s["benchmark"] != "qa_exact_match_seen"} == {6}
    # And every run reads the cloze items of the book, named by the pair set
    assert {p["corpus"] for p in params} == {f"pairs:cloze:{EXAMPLE_BOOK}"}
    assert len({p["pairs_sha256"] for p in params}) == 1 and {p["K"] for p in params} == {1, 2}
