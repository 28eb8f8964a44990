"""Repetition specs: validated whole, compiled into an ordinary train experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.core.context import Context
from services.core.errors import BadInput
from services.distillation.lenses import load_lenses
from services.experiments.spec import validate_spec
from services.repetition.service import distil, passage_blind, read_pairs
from services.repetition.spec import DEMO_SPEC, experiment_spec, load, parse

ROOT = Path(__file__).resolve().parents[3]

GOOD: dict[str, Any] = {"kind": "repetition", "name": "rep", "conditions": ["verbatim", "lenses"],
                        "K": [1, 2, 5],
                        "protocols": ["pretrain_finetune", "mixed"], "seeds": [0, 1],
                        "benchmarks": ["qa_exact_match", "qa_answer_loss"]}


def test_a_spec_compiles_to_a_grid_whose_runs_carry_condition_k_and_protocol() -> None:
    spec = parse(GOOD, "t")
    compiled = experiment_spec(spec, "cloud-id", "t")
    assert compiled.executor == "train" and compiled.design.method == "grid"
    assert set(compiled.factors) == {"condition", "K", "protocol"}
    assert compiled.base["cloud"] == "cloud-id" and compiled.base["epochs"] == 20.0  # exposures by default
    assert compiled.base["n_people"] == 40 and compiled.base["qa_fraction"] == 0.5
    # K=5 with one lens: five samples per fact, so every person has five rewrites
    assert spec.samples() == 5


def test_one_valued_lists_go_in_the_base_and_the_tokens_rule_fixes_train_tokens() -> None:
    spec = parse({**GOOD, "protocols": ["mixed"], "budget": {"rule": "tokens", "train_tokens": 50_000}}, "t")
    compiled = experiment_spec(spec, "c", "t")
    assert "protocol" not in compiled.factors and compiled.base["protocol"] == "mixed"
    assert compiled.base["train_tokens"] == 50_000 and "epochs" not in compiled.base


def test_verbatim_only_needs_no_distillation_and_mix_needs_half_the_rewrites() -> None:
    assert not parse({**GOOD, "conditions": ["verbatim"]}, "t").needs_cloud
    assert parse({**GOOD, "conditions": ["verbatim", "mix"], "K": [10]}, "t").samples() == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conditions": ["verbatim"], "K": [2]}, "nothing to compare"),
        ({"conditions": ["echo"]}, "conditions.0"),
        ({"K": [0, 2]}, "K"),
        ({"K": [2, 2]}, "listed more than once"),
        ({"student": {"train_tokens": 5}}, "set by the experiment"),
        ({"student": {"depth": 3}}, "not training knobs"),
        ({"budget": {"rule": "tokens", "epochs": 3}}, "use rule: exposures"),
        ({"budget": {"rule": "exposures", "train_tokens": 3000}}, "use rule: tokens"),
        ({"distill": {"lenses": ["template-bio"]}}, "whole biography"),
        ({"distill": {"engine": "template", "model": "x"}}, "asks no model"),
        ({"benchmarks": ["mmlu"]}, "mmlu unknown"),
        ({"protocols": ["mixed"], "budget": {"finetune_tokens": 5000}}, "only the pretrain_finetune"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_specs_name_every_problem(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse({**GOOD, **change}, "t")


def test_a_repetition_spec_given_to_experiment_run_says_which_command_runs_it() -> None:
    with pytest.raises(BadInput, match="knobs repetition run"):
        validate_spec(GOOD, "rep.yaml")


def test_the_bundled_demo_spec_loads(tmp_path: Path) -> None:
    spec = load(DEMO_SPEC)
    assert spec.kind == "repetition" and spec.needs_cloud
    other = tmp_path / "plain.yaml"
    other.write_text("name: x\nexecutor: train\n")
    with pytest.raises(BadInput, match="needs `kind: repetition`"):
        load(other)


# --- your own question-answer pairs as the source --------------------------------------------------

PAIRS: dict[str, Any] = {**GOOD, "source": {"pairs": "facts.jsonl"}, "benchmarks": None,
                         "distill": {"engine": "llm", "lenses": ["restate", "child"]}}


def test_a_pairs_source_resolves_next_to_the_spec_and_compiles_with_its_pair_set(tmp_path: Path) -> None:
    spec = parse(PAIRS, "t", base_dir=tmp_path)
    assert spec.on_pairs and spec.source.pairs == str(tmp_path / "facts.jsonl")
    compiled = experiment_spec(spec, "cloud-id", "t", pairs_sha256="c" * 64)
    assert compiled.base["corpus"] == f"pairs:{tmp_path / 'facts.jsonl'}"
    assert compiled.base["pairs_sha256"] == "c" * 64 and "n_people" not in compiled.base
    # the default battery leaves out what needs people
    assert compiled.benchmarks == ["qa_exact_match", "qa_answer_loss", "qa_f1", "qa_choice_accuracy",
                                   "qa_exact_match_seen"]
    # two files are two pair sets: the runs' parameters differ, so the spec's identity does
    other = experiment_spec(spec, "cloud-id", "t", pairs_sha256="d" * 64)
    assert other.sha256() != compiled.sha256()
    with pytest.raises(BadInput, match="sha256 is needed"):
        experiment_spec(spec, "cloud-id", "t")


def test_verbatim_only_on_pairs_needs_no_engine() -> None:
    spec = parse({**PAIRS, "conditions": ["verbatim"], "distill": {"engine": "template"}}, "t")
    assert not spec.needs_cloud


def test_more_samples_leave_room_for_rejected_rewrites() -> None:
    spec = parse({**PAIRS, "distill": {"engine": "llm", "lenses": ["restate"], "samples": 8}}, "t")
    assert spec.samples() == 8 and spec.needed_samples() == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": {"pairs": "f.jsonl", "people": 40}}, "two sources; give one"),
        ({"source": {"pairs": "book.md"}}, r"book.md is text; a text source is source.text "
                                           r"\(`source: \{text: book.md\}`"),
        ({"source": {"pairs": "notes.txt"}}, "a text source is source.text"),
        ({"source": {"pairs": "chapters/"}}, r"not a .jsonl file.*a directory of them, are source.text"),
        ({"source": {"text": "facts.jsonl"}}, r"source.text: facts.jsonl is a JSONL; .* are source.pairs"),
        ({"source": {"text": "book", "pairs": "f.jsonl"}}, "pairs .your JSONL. and text .* are two sources"),
        ({"distill": {"engine": "template", "lenses": ["template-fact"]}},
         "template engine .* cannot rewrite plain question-answer pairs or passages; use engine: llm"),
        ({"distill": {}}, "template engine"),
        ({"benchmarks": ["qa_f1", "reversal_choice_accuracy", "probe_accuracy"]},
         "reversal_choice_accuracy, probe_accuracy ask about the biographies' people"),
        ({"benchmarks": ["heldout_loss"]}, "heldout_loss needs held-out documents"),
        ({"distill": {"engine": "llm", "lenses": ["restate"], "samples": 2}}, "use at least 5"),
    ],
)
def test_bad_pairs_specs_say_why_and_what_to_do(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse({**PAIRS, **change}, "t")


def test_the_biographies_flag_is_gone_and_people_default_to_forty() -> None:
    with pytest.raises(BadInput, match=r"source\.biographies"):
        parse({**GOOD, "source": {"biographies": True}}, "t")
    assert parse(GOOD, "t").source.n_people == 40


def test_one_k_with_two_conditions_compiles_both_as_factors() -> None:
    # the base alone must be a valid run, and condition without K is not
    compiled = experiment_spec(parse({**GOOD, "K": [4]}, "t"), "c", "t")
    assert compiled.factors["K"].values == [4]
    assert compiled.factors["condition"].values == ["verbatim", "lenses"]
    assert "K" not in compiled.base and "condition" not in compiled.base


@pytest.mark.parametrize("name", ["repetition.yaml", "repetition-lora.yaml", "repetition-text.yaml"])
def test_the_example_specs_compile_into_train_grids(name: str) -> None:
    spec = load(ROOT / "examples" / "specs" / name)
    compiled = experiment_spec(spec, "cloud-id", name, pairs_sha256="c" * 64 if spec.on_pairs else None)
    assert set(compiled.factors) == {"condition", "K"} | ({"protocol"} if len(spec.protocols) > 1 else set())
    if name == "repetition-lora.yaml":  # the LoRA student on the real SmolLM2-135M
        assert compiled.base["base_model"] == "smollm2-135m" and compiled.base["lora_rank"] == 8


# --- your text as the source: each passage tested by its cloze item -------------------------------

TEXT: dict[str, Any] = {**PAIRS, "source": {"text": "book"},
                        "distill": {"engine": "llm", "lenses": ["retell"]}}
BOOK = ROOT / "examples" / "specs" / "book"


def test_a_text_source_resolves_next_to_the_spec_and_compiles_to_its_cloze_items(tmp_path: Path) -> None:
    spec = parse(TEXT, "t", base_dir=tmp_path)
    assert spec.on_text and spec.on_pairs and spec.source.text == str(tmp_path / "book")
    compiled = experiment_spec(spec, "cloud-id", "t", pairs_sha256="c" * 64)
    assert compiled.base["corpus"] == f"pairs:cloze:{tmp_path / 'book'}"
    assert compiled.base["pairs_sha256"] == "c" * 64 and "n_people" not in compiled.base
    assert compiled.benchmarks == ["qa_exact_match", "qa_answer_loss", "qa_f1", "qa_choice_accuracy",
                                   "qa_exact_match_seen"]
    # verbatim alone needs no engine at all
    assert not parse({**TEXT, "conditions": ["verbatim"], "distill": {"engine": "template"}}, "t").needs_cloud


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"distill": {"engine": "template", "lenses": ["template-fact"]}},
         "template engine .* cannot rewrite plain question-answer pairs or passages; use engine: llm"),
        ({"benchmarks": ["probe_accuracy"]}, "a pairs or text source has none"),
        ({"benchmarks": ["heldout_loss"]}, "heldout_loss needs held-out documents"),
        ({"source": {"text": "book", "people": 8}}, "are two sources; give one"),
    ],
)
def test_bad_text_specs_say_why(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse({**TEXT, **change}, "t")


def test_a_text_source_is_read_as_cloze_items_and_too_few_usable_passages_is_refused(tmp_path: Path) -> None:
    spec = parse(TEXT, "t", base_dir=BOOK.parent)
    pair_set, pairs = read_pairs(spec)
    assert len(pairs) == 12 and all(p.known_answer for p in pairs) and "12 of 13 passages" in pair_set.name
    few = tmp_path / "few"
    few.mkdir()
    (few / "a.md").write_text("# A\n\nThe fog came in.\n\n# B\n\nAnd so it was.\n\n# C\n\nThe bell rang.\n")
    with pytest.raises(BadInput, match=r"2 of 3 passages have a cloze item.*at least 4"):
        read_pairs(parse({**TEXT, "source": {"text": "few"}}, "t", base_dir=tmp_path))


def test_a_text_sources_lenses_must_show_the_passage() -> None:
    lenses = load_lenses()
    assert passage_blind([lenses["retell"], lenses["elaborate"]]) == []
    assert passage_blind([lenses["restate"], lenses["retell"], lenses["child"]]) == ["restate", "child"]


def test_lenses_blind_to_the_passage_are_refused_before_anything_is_logged(tmp_path: Path) -> None:
    spec = parse({**TEXT, "distill": {"engine": "llm", "lenses": ["retell", "restate"]}}, "t",
                 base_dir=BOOK.parent)
    with Context(tmp_path) as ctx:
        with pytest.raises(BadInput, match=r"restate never see the passage.*lenses that show it: .*retell"):
            distil(ctx, spec, None)
        assert not ctx.store().read_all()
