"""The checks a cloud is judged by, with the real all-MiniLM-L6-v2 embedder from its package."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from events.models.distillation import Checks, Keeps, QAPair
from workers.jobs.distill_checks import (
    Candidate,
    Embedder,
    answer_present,
    dedup_matrix,
    is_echo,
    is_refusal,
    judge_cloud,
    mean_pairwise_distance,
    normalise,
    vendi_score,
)

PAIR = QAPair(id="p1", question="Where was Ada Lovelace born?", answer="London")


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return Embedder(cache_root=tmp_path_factory.mktemp("cache"))


def test_answer_present_on_word_boundaries_after_normalising() -> None:
    assert answer_present("She was born in LONDON, England.", "London")
    assert answer_present("Born in São Paulo.", "Sao Paulo")
    assert not answer_present("She was born in Londonderry.", "London")
    assert not answer_present("anything", "!!!")
    assert normalise("  Ada,  LOVELACE!  ") == "ada lovelace"


def test_refusal_is_read_at_the_start_only() -> None:
    assert is_refusal("I'm sorry, but I can't help with that.")
    assert is_refusal("As an AI, I have no opinion on London.")
    assert not is_refusal("Ada Lovelace was born in London. " * 8 + "I cannot stress this enough.")


def test_echo_is_the_input_given_back() -> None:
    assert is_echo("where was ada lovelace born", PAIR, "prompt")
    assert is_echo("London.", PAIR, "prompt")
    assert not is_echo("Ada Lovelace was born in London.", PAIR, "prompt")


def test_vendi_and_diversity_on_known_geometry() -> None:
    same = np.tile(np.array([[1.0, 0.0, 0.0]]), (4, 1))
    orthogonal = np.eye(3)
    assert vendi_score(same) == pytest.approx(1.0, abs=1e-6)
    assert vendi_score(orthogonal) == pytest.approx(3.0, abs=1e-6)
    assert vendi_score(np.zeros((0, 3))) == 0.0
    assert mean_pairwise_distance(same) == pytest.approx(0.0, abs=1e-6)
    assert mean_pairwise_distance(orthogonal) == pytest.approx(1.0, abs=1e-6)


def test_dedup_matrix_equals_the_naive_all_pairs_loop() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 16))
    rows = np.concatenate([base, base[:15] + rng.normal(scale=0.05, size=(15, 16))])
    unit = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    naive = [-1] * len(unit)
    for i, j in itertools.product(range(len(unit)), range(len(unit))):
        if j < i and naive[i] == -1 and float(unit[i] @ unit[j]) > 0.95:
            naive[i] = j
    assert dedup_matrix(unit, 0.95, block=7) == naive
    assert sum(x >= 0 for x in naive) >= 10


def test_judge_cloud_keeps_every_reason(embedder: Embedder) -> None:
    keeps = Keeps(answer=True, min_chars=10, max_chars=200)
    texts = ["Ada Lovelace was born in London, the capital of England.",
             "Ada Lovelace was born in London, the capital city of England.",
             "I'm sorry, but I cannot answer that.",
             "",
             "London",
             "Ada Lovelace loved mathematics and poetry all her life.",
             "London " * 60]
    cands = [Candidate(f"d{i}", t, keeps, "prompt") for i, t in enumerate(texts)]
    judged = judge_cloud(PAIR, cands, Checks(duplicate_cosine=0.9), embedder)
    by_id = {j.distillate_id: j for j in judged.judgements}
    assert by_id["d0"].accepted and by_id["d0"].answer_present
    assert by_id["d1"].reasons == ["duplicate"] and by_id["d1"].duplicate_of == "d0"
    assert "refusal" in by_id["d2"].reasons and "answer_missing" in by_id["d2"].reasons
    assert by_id["d3"].reasons == ["empty"]
    assert set(by_id["d4"].reasons) == {"echo", "too_short"}
    assert by_id["d5"].reasons == ["answer_missing"]
    assert by_id["d6"].reasons == ["too_long"]
    assert judged.vendi == pytest.approx(1.0) and judged.diversity == 0.0


def test_unknown_answers_are_judged_by_similarity(embedder: Embedder) -> None:
    passage = QAPair(id="p", question="What does this passage say?", known_answer=False,
                     answer="The mill by the river ground wheat for the whole valley every autumn.")
    keeps = Keeps(answer=True, min_chars=5, max_chars=500)
    cands = [Candidate("a", "Every autumn the valley's wheat was ground at the riverside mill.", keeps, ""),
             Candidate("b", "Quantum chromodynamics describes the strong interaction.", keeps, "")]
    judged = judge_cloud(passage, cands, Checks(min_similarity=0.35), embedder)
    assert judged.judgements[0].accepted and judged.judgements[0].answer_present is None
    assert judged.judgements[1].reasons == ["dissimilar"]
    assert judged.judgements[0].similarity > 0.5 > judged.judgements[1].similarity


def test_embeddings_are_stored_by_content_and_not_recomputed(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOBS_HOME", str(tmp_path))
    embedder = Embedder(cache_root=tmp_path / "cache")
    first, shas = embedder.embed(["one text", "another text"])
    assert embedder.computed == 2
    again, shas_again = embedder.embed(["another text", "one text", "a third"])
    assert embedder.computed == 3
    assert shas_again[:2] == [shas[1], shas[0]]
    np.testing.assert_array_equal(again[0], first[1])
    assert (tmp_path / "blobs" / "sha256" / shas[0][:2] / shas[0]).is_file()
