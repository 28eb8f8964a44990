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


# --- the repetition experiment's conditions -------------------------------------------------------

def _rewrites(people: int, per_person: int) -> dict[str, list[str]]:
    world = generate(n_people=people, data_format="plain")
    return {p.name: [f"rewrite {i} of {p.name}: {' '.join(p.attributes.values())}" for i in range(per_person)]
            for p in world.people}


def test_verbatim_repeats_one_text_and_lenses_use_k_different_rewrites() -> None:
    # Given a world and four rewrites of each person
    rewrites = _rewrites(6, 4)
    verbatim = generate(n_people=6, data_format="plain", condition="verbatim", copies=4)
    lenses = generate(n_people=6, data_format="plain", condition="lenses", copies=4, rewrites=rewrites)
    mix = generate(n_people=6, data_format="plain", condition="mix", copies=4, rewrites=rewrites)
    # Then every condition has K documents per person
    assert len(verbatim.train) == len(lenses.train) == len(mix.train) == 24
    # verbatim: the person's first training rendering K times; lenses: the K rewrites, no original
    plain = generate(n_people=6, data_format="plain")
    for i, person in enumerate(verbatim.people):
        assert verbatim.train[4 * i: 4 * i + 4] == [plain.train[i]] * 4
        assert lenses.train[4 * i: 4 * i + 4] == rewrites[person.name]
        assert mix.train[4 * i: 4 * i + 4] == [plain.train[i]] * 2 + rewrites[person.name][:2]
    assert "condition=lenses, K=4" in lenses.name


def test_the_qa_group_gets_one_qa_document_per_copy_in_every_condition() -> None:
    rewrites = _rewrites(6, 3)
    for condition in ("verbatim", "lenses"):
        corpus = generate(n_people=6, data_format="qa", condition=condition, copies=3, rewrites=rewrites)
        qa_docs = [d for d in corpus.train if d.startswith("Q: ")]
        assert len(qa_docs) == 3 * sum(p.qa_in_training for p in corpus.people)


def test_too_few_rewrites_for_k_is_refused_naming_the_person() -> None:
    with pytest.raises(ValueError, match=r"needs 3 rewrites of .* has 2 accepted"):
        generate(n_people=4, data_format="plain", condition="lenses", copies=3, rewrites=_rewrites(4, 2))
    with pytest.raises(ValueError, match="unknown condition"):
        generate(n_people=4, data_format="plain", condition="echo", copies=2)
