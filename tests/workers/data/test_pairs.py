"""Your own question-answer pairs as the repetition experiment's corpus: statements, conditions, the split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.models.distillation import QAPair as SourcePair
from workers.data.pairs import Pairs, generate, qa_group, statement
from workers.data.qa_sources import load_pairs
from workers.data.sources import load_corpus

PAIRS = [
    SourcePair(id="paris", question="What is the capital of France?", answer="Paris"),
    SourcePair(id="boil", question="At what temperature does water boil?", answer="100 degrees Celsius."),
    SourcePair(id="mars", question="Which planet is the  Red Planet?", answer="Mars",
               context="The solar system\nhas eight planets."),
    SourcePair(id="hamlet", question="Who wrote Hamlet?", answer="William Shakespeare"),
]
REWRITES = {p.id: [f"{p.answer} is the answer ({p.id}, rewrite {k})." for k in range(3)] for p in PAIRS}


def corpus(**options: object) -> Pairs:
    return generate(PAIRS, sha256="a" * 64, name="t", **options)  # type: ignore[arg-type]


def test_a_pairs_statement_is_its_context_question_and_answer_as_one_fixed_text() -> None:
    assert statement(PAIRS[0]) == "What is the capital of France? Paris."
    assert statement(PAIRS[1]) == "At what temperature does water boil? 100 degrees Celsius."
    assert statement(PAIRS[2]) == "The solar system has eight planets. Which planet is the Red Planet? Mars."


def test_verbatim_repeats_the_statement_and_the_questions_ask_the_held_out_half() -> None:
    data = corpus(condition="verbatim", copies=3, qa_fraction=0.5, data_format="plain")
    assert sorted(data.train) == sorted(statement(p) for p in PAIRS for _ in range(3))
    assert len(data.qa_eval_seen) == len(data.qa_eval_heldout) == 2 and not data.qa_train
    mars = next(q for q in data.qa_eval_seen + data.qa_eval_heldout if q.attribute == "mars")
    assert mars.prompt == "Q: Which planet is the Red Planet?\nA:" and mars.answer == "Mars"
    assert data.answers == ("Paris", "100 degrees Celsius.", "Mars", "William Shakespeare")
    assert "heldout_loss" in data.unavailable and data.heldout == []


def test_lenses_use_the_first_k_rewrites_and_mix_half_and_half() -> None:
    lenses = corpus(condition="lenses", copies=2, rewrites=REWRITES, data_format="plain")
    assert sorted(lenses.train) == sorted(REWRITES[p.id][k] for p in PAIRS for k in range(2))
    mix = corpus(condition="mix", copies=3, rewrites=REWRITES, data_format="plain")
    # K=3: ceil(3/2) copies of the statement and the first 3//2 rewrites
    assert sorted(mix.train) == sorted(t for p in PAIRS for t in [statement(p)] * 2 + REWRITES[p.id][:1])
    with pytest.raises(ValueError, match=r"needs 2 rewrites of pair 'paris'.*has 1 accepted"):
        corpus(condition="lenses", copies=2, rewrites={**REWRITES, "paris": REWRITES["paris"][:1]})


def test_the_mixed_protocol_adds_the_qa_groups_questions_one_document_per_copy() -> None:
    data = corpus(condition="verbatim", copies=2, data_format="qa")
    group = [q for q in data.qa_eval_seen]
    assert data.qa_train == group
    for q in group:
        assert data.train.count(f"{q.prompt} {q.answer}") == 2
    assert len(data.train) == 2 * len(PAIRS) + 2 * len(group)


def test_the_split_is_by_pair_id_alone() -> None:
    group = qa_group(PAIRS, 0.5)
    assert len(group) == 2
    assert qa_group(list(reversed(PAIRS)), 0.5) == group  # file order does not matter
    assert qa_group(PAIRS, 0.25) < group < qa_group(PAIRS, 0.75)  # a larger fraction only adds
    renamed = [p.model_copy(update={"question": "other?", "answer": "other"}) for p in PAIRS]
    assert qa_group(renamed, 0.5) == group  # the id decides, not the text


def test_a_pairs_file_becomes_a_corpus_named_by_its_pair_set(tmp_path: Path) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_text("".join(json.dumps(p.model_dump(include={"id", "question", "answer", "context"})) + "\n"
                            for p in PAIRS))
    pair_set, _ = load_pairs(str(path))
    common = dict(n_people=0, qa_fraction=0.5, data_format="plain", repetitions=1, seed=0,
                  condition="verbatim", copies=1)
    data = load_corpus(f"pairs:{path}", pairs_sha256=pair_set.sha256, **common)  # type: ignore[arg-type]
    assert isinstance(data, Pairs) and data.sha256 == pair_set.sha256 and len(data.train) == 4
    with pytest.raises(ValueError, match="its pairs changed since the run was declared"):
        load_corpus(f"pairs:{path}", pairs_sha256="b" * 64, **common)  # type: ignore[arg-type]
    text = tmp_path / "book.md"
    text.write_text("# One\n\nA passage about things.\n")
    with pytest.raises(ValueError, match=r"no known answers to test extraction against \(use 'pairs:cloze:"):
        load_corpus(f"pairs:{text}", **common)  # type: ignore[arg-type]
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"question": "q?", "answer": "a", "known_answer": False}) + "\n")
    with pytest.raises(ValueError, match="has no known answer"):
        load_corpus(f"pairs:{unknown}", **common)  # type: ignore[arg-type]


# --- a text source: the cloze items of passages (workers/data/cloze.py) ---------------------------

BOOK = Path(__file__).resolve().parents[3] / "examples" / "specs" / "book"
TEXT = dict(n_people=0, qa_fraction=0.5, repetitions=1, seed=0)


def test_verbatim_on_text_repeats_each_passage_and_asks_the_held_out_cloze_items() -> None:
    pair_set, items = load_pairs(f"cloze:{BOOK}")
    data = load_corpus(f"pairs:cloze:{BOOK}", pairs_sha256=pair_set.sha256, data_format="plain",
                       condition="verbatim", copies=3, **TEXT)  # type: ignore[arg-type]
    assert isinstance(data, Pairs) and data.sha256 == pair_set.sha256
    # the statement is the passage itself (ending with its answer), not "context question answer"
    assert sorted(data.train) == sorted(item.context for item in items for _ in range(3))
    assert data.train.count(items[0].context) == 3 and items[0].context.endswith(" lighthouse.")
    assert not any("Complete the passage" in text for text in data.train)
    # the held-out half is asked its cloze questions; the choices are the other passages' answers
    assert len(data.qa_eval_heldout) == len(data.qa_eval_seen) == 6
    asked = data.qa_eval_heldout[0]
    assert asked.prompt.startswith("Q: Complete the passage from ") and asked.prompt.endswith('___."\nA:')
    assert asked.answer in data.answers and len(data.answers) == 12


def test_lenses_and_mix_on_text_read_the_passages_rewrites_and_the_mixed_format_adds_its_questions() -> None:
    _, items = load_pairs(f"cloze:{BOOK}")
    rewrites = {i.id: [f"Retold {k}: the {i.answer} again." for k in range(2)] for i in items}
    lenses = load_corpus(f"pairs:cloze:{BOOK}", data_format="plain", condition="lenses", copies=2,
                         rewrites=rewrites, **TEXT)  # type: ignore[arg-type]
    assert sorted(lenses.train) == sorted(t for i in items for t in rewrites[i.id])
    mix = load_corpus(f"pairs:cloze:{BOOK}", data_format="qa", condition="mix", copies=2, rewrites=rewrites,
                      **TEXT)  # type: ignore[arg-type]
    group = mix.qa_train
    assert len(group) == 6 and all(mix.train.count(q.text) == 2 for q in group)
    assert sorted(t for t in mix.train if t not in {q.text for q in group}) == sorted(
        t for i in items for t in [i.context, rewrites[i.id][0]])


def test_a_cloze_item_without_its_passage_is_refused() -> None:
    bare = [p.model_copy(update={"context": ""}) for p in PAIRS]
    with pytest.raises(ValueError, match="carries its passage as context"):
        generate(bare, sha256="a" * 64, name="t", text=True)
