"""The biographies corpus: deterministic, with ground truth that the documents really state."""

from __future__ import annotations

import pytest

from workers.data.biographies import ATTRIBUTES, HELDOUT_TEMPLATES, TRAIN_TEMPLATES, generate, make_people


def test_same_seed_same_corpus_and_other_seed_other_world() -> None:
    a = generate(n_people=30, seed=3, repetitions=2)
    b = generate(n_people=30, seed=3, repetitions=2)
    assert a == b
    assert generate(n_people=30, seed=4).people != a.people


@pytest.mark.parametrize("data_format", ["plain", "mixed"])
def test_every_answer_is_stated_in_that_persons_biography(data_format: str) -> None:
    corpus = generate(n_people=40, data_format=data_format)
    # plain and mixed render one document per person per repetition, in person order
    for person, document in zip(corpus.people, corpus.train, strict=True):
        assert person.name in document
        for pair in [*corpus.qa_eval_seen, *corpus.qa_eval_heldout]:
            if pair.person == person.index:
                assert pair.answer in document
                assert pair.answer == person.attributes[pair.attribute]


def test_heldout_documents_state_the_facts_in_unseen_templates() -> None:
    corpus = generate(n_people=20)
    for person, document in zip(corpus.people, corpus.heldout, strict=True):
        for attribute in ATTRIBUTES:
            assert person.attributes[attribute] in document
    train_templates = {t for ts in TRAIN_TEMPLATES.values() for t in ts}
    assert not train_templates & {t for ts in HELDOUT_TEMPLATES.values() for t in ts}


@pytest.mark.parametrize("data_format", ["plain", "qa", "mixed"])
def test_heldout_qa_people_never_have_questions_in_training(data_format: str) -> None:
    corpus = generate(n_people=40, qa_fraction=0.5, data_format=data_format, repetitions=2)
    training_text = "\n".join(corpus.train)
    for pair in corpus.qa_eval_heldout:
        assert pair.prompt not in training_text
    assert {p.person for p in corpus.qa_eval_seen}.isdisjoint({p.person for p in corpus.qa_eval_heldout})
    if data_format == "plain":
        assert corpus.qa_train == [] and "Q: " not in training_text
    else:
        assert corpus.qa_train == corpus.qa_eval_seen
        for pair in corpus.qa_train:
            assert pair.text in training_text


def test_qa_fraction_is_exact_and_nested() -> None:
    small = make_people(50, 0.2, seed=0)
    large = make_people(50, 0.6, seed=0)
    assert sum(p.qa_in_training for p in small) == 10
    assert sum(p.qa_in_training for p in large) == 30
    assert {p.index for p in small if p.qa_in_training} <= {p.index for p in large if p.qa_in_training}
    # a bigger world starts with the same people
    assert [p.name for p in make_people(80, 0.2, seed=0)[:50]] == [p.name for p in small]


def test_names_are_unique_and_repetitions_render_differently() -> None:
    corpus = generate(n_people=300, data_format="plain", repetitions=3)
    assert len({p.name for p in corpus.people}) == 300
    first_person = corpus.train[:3]
    assert len(set(first_person)) == 3


def test_unavailable_benchmarks_are_named() -> None:
    assert "qa_exact_match" in generate(n_people=10, qa_fraction=1.0).unavailable
    assert "qa_exact_match_seen" in generate(n_people=10, qa_fraction=0.0).unavailable


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        generate(data_format="poetry")
