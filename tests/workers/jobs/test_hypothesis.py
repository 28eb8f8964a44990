"""The compatibility test's job: the candidates have the properties they are designed to have,
and a tiny run end to end returns a well-formed result."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from workers.data.biographies import (
    ATTRIBUTES,
    EMPLOYERS,
    PARAPHRASED_QUESTIONS,
    QUESTIONS,
    RECORD_FIELDS,
    generate,
    make_people,
)
from workers.jobs.hypothesis import (
    CANDIDATES,
    ORDERS,
    HypothesisConfig,
    build_candidates,
    curriculum_pool,
    main,
    order_examples,
    ordered_batches,
    shuffled_batches,
)

N_OLD, TOUCHED = 20, 8
TINY: dict[str, Any] = {
    "n_old": 8, "touched": 4, "n_new": 4, "base_layers": 1, "base_d_model": 32, "base_heads": 2,
    "base_context": 64, "base_vocab": 300, "base_train_tokens": 12_000, "base_repetitions": 1,
    "seeds": [0, 1], "steps": 3, "batch": 8, "curriculum_per_candidate": 3, "curriculum_epochs": 1,
    "probe_facts": 6,
}


@pytest.fixture(scope="module")
def world() -> tuple[Any, list[Any]]:
    corpus = generate(n_people=N_OLD, qa_fraction=1.0, data_format="mixed", repetitions=3)
    new = make_people(N_OLD + TOUCHED, qa_fraction=1.0, seed=0)[N_OLD:]
    return corpus, build_candidates(list(corpus.people[:TOUCHED]), new)


def test_every_candidate_teaches_one_example_per_fact_and_all_are_the_same_size(world: Any) -> None:
    _, candidates = world
    assert [c.name for c in candidates] == list(CANDIDATES)
    assert {len(c.examples) for c in candidates} == {TOUCHED * len(ATTRIBUTES)}
    ids = [e.id for c in candidates for e in c.examples]
    assert len(ids) == len(set(ids))
    for c in candidates:
        assert len(c.facts) == len(c.paraphrased) == len(c.keys) == len(c.examples)
        assert all(not e.plain_text and e.target.startswith(" ") for e in c.examples)


def test_contradicting_changes_every_value_and_keeps_the_world_rule(world: Any) -> None:
    corpus, candidates = world
    by_name = {c.name: c for c in candidates}
    truth = {(p.index, a): p.attributes[a] for p in corpus.people for a in ATTRIBUTES}
    altered = by_name["contradicting"].facts
    assert all(pair.answer != truth[(pair.person, pair.attribute)] for pair in altered)
    values = {(pair.person, pair.attribute): pair.answer for pair in altered}
    for person in range(TOUCHED):
        assert EMPLOYERS[values[(person, "employer")]] == values[(person, "employer_city")]
    # same_kind and unseen_format teach the true values
    for name in ("same_kind", "unseen_format"):
        assert all(pair.answer == truth[(pair.person, pair.attribute)] for pair in by_name[name].facts)


def test_shuffled_answers_are_a_permutation_across_people(world: Any) -> None:
    corpus, candidates = world
    shuffled = {c.name: c for c in candidates}["shuffled_answers"].facts
    touched = corpus.people[:TOUCHED]
    moved = 0
    for attribute in ATTRIBUTES:
        given = [pair.answer for pair in shuffled if pair.attribute == attribute]
        true = [p.attributes[attribute] for p in touched]
        assert Counter(given) == Counter(true)
        moved += sum(g != t for g, t in zip(given, true, strict=True))
    assert moved == len(ATTRIBUTES) * TOUCHED  # the values of eight people allow a derangement
    assert [pair.prompt for pair in shuffled] == [pair.prompt for pair in candidates[0].facts]


def test_the_unseen_format_and_the_paraphrases_never_appear_in_the_base_training_text(world: Any) -> None:
    corpus, candidates = world
    text = "\n".join(corpus.train)
    by_name = {c.name: c for c in candidates}
    assert "[record]" not in text and "::" not in text
    assert "=" not in text  # the field syntax (the labels' words may occur in prose: "an office in")
    assert not any(f"{label} =" in text for label in RECORD_FIELDS.values())
    assert all(e.prompt not in text for e in by_name["unseen_format"].examples)
    paraphrase_stems = {q.split("{name}")[0] for q in PARAPHRASED_QUESTIONS.values()}
    assert not any(stem in text for stem in paraphrase_stems)
    assert not set(PARAPHRASED_QUESTIONS.values()) & set(QUESTIONS.values())
    # ...while the trained question of every touched fact is in it
    assert all(pair.prompt in text for pair in by_name["same_kind"].facts)
    # new people are people the base never read
    assert not any(pair.prompt in text for pair in by_name["new_people"].facts)


def test_the_curriculum_pool_teaches_no_fact_twice_and_orders_by_grad_norm(world: Any) -> None:
    _, candidates = world
    pool = curriculum_pool(candidates, per_candidate=6, seed=1)
    assert len(pool.examples) == 6 * 5
    old = [key for key, e in zip(pool.keys, pool.examples, strict=True) if not e.id.startswith("new_people")]
    assert len(old) == len(set(old)) == 24
    assert Counter(e.id.split(":")[0] for e in pool.examples) == {name: 6 for name in CANDIDATES}
    norms = {e.id: float(i % 7) for i, e in enumerate(pool.examples)}
    up = order_examples(pool.examples, norms, "ascending", 0)
    down = order_examples(pool.examples, norms, "descending", 0)
    assert [norms[e.id] for e in up] == sorted(norms.values())
    assert [norms[e.id] for e in down] == sorted(norms.values(), reverse=True)
    assert sorted(e.id for e in order_examples(pool.examples, norms, "random", 0)) == sorted(norms)
    assert curriculum_pool(candidates, 6, seed=1) == pool  # a function of the seed
    assert curriculum_pool(candidates, 6, seed=2).keys != pool.keys


def test_batches_give_every_candidate_the_same_budget(world: Any) -> None:
    _, candidates = world
    batches = shuffled_batches(candidates[0].examples, batch=10, steps=7, seed=0)
    assert [len(b) for b in batches] == [10] * 7
    assert shuffled_batches(candidates[0].examples, 10, 7, seed=0) == batches
    assert [len(b) for b in ordered_batches(candidates[0].examples[:25], 10, epochs=2)] == [10] * 5


def test_a_config_the_job_cannot_run_is_refused() -> None:
    with pytest.raises(ValueError, match="touched"):
        HypothesisConfig(n_old=8, touched=8, n_new=8)
    with pytest.raises(ValueError, match="n_new"):
        replace(HypothesisConfig(), n_new=3)


def test_a_tiny_run_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", json.dumps(TINY), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    seeds = TINY["seeds"]
    assert result["config"]["seeds"] == seeds
    assert set(result["volatility"]) == set(CANDIDATES)
    assert all(v is not None and v >= 0 for v in result["volatility"].values())
    for candidate in result["candidates"]:
        assert candidate["examples"] == TINY["touched"] * len(ATTRIBUTES)
        assert len(candidate["per_example"]) == candidate["examples"]
        assert all(e["id"].startswith(candidate["name"] + ":") for e in candidate["per_example"])
        for key in ("volatility", "total_shift", "net_shift", "coherence", "noise_scale"):
            assert candidate["shift"][key] is not None
        assert all(e["probe_shift"] is not None for e in candidate["per_example"])  # full metrics
        assert candidate["before"]["forgotten_loss"] == 0.0
    assert sorted((r["candidate"], r["seed"]) for r in result["runs"]) == sorted(
        (c, s) for c in CANDIDATES for s in seeds)
    assert sorted((r["order"], r["seed"]) for r in result["curriculum"]) == sorted(
        (o, s) for o in ORDERS for s in seeds)
    for row in result["runs"] + result["curriculum"]:
        outcomes = row["outcomes"]
        assert outcomes["learned_loss"] > 0 and outcomes["generalised_loss"] > 0
        assert 0 <= outcomes["learned_exact"] <= 1
        assert row["steps"] >= 1
    assert result["base"]["untouched_facts"] == (TINY["n_old"] - TINY["touched"]) * len(ATTRIBUTES)
