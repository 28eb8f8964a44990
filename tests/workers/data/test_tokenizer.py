"""Tokenizers: deterministic, lossless on their corpus, and restored from disk as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.data.biographies import generate
from workers.data.tokenizer import load_tokenizer, train_tokenizer

DOCS = generate(n_people=30).train


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_round_trip_determinism_and_reload(kind: str, tmp_path: Path) -> None:
    tokenizer = train_tokenizer(kind, DOCS, vocab_size=300)
    encoded = tokenizer.encode_batch(DOCS)
    assert [tokenizer.decode(ids) for ids in encoded] == DOCS
    assert train_tokenizer(kind, DOCS, vocab_size=300).encode_batch(DOCS) == encoded
    tokenizer.save(tmp_path)
    reloaded = load_tokenizer(tmp_path)
    assert reloaded.kind == kind and reloaded.vocab_size == tokenizer.vocab_size
    assert reloaded.encode_batch(DOCS) == encoded
    assert (reloaded.eos_id, reloaded.pad_id) == (tokenizer.eos_id, tokenizer.pad_id)
    assert max(max(ids) for ids in encoded) < tokenizer.vocab_size


def test_bpe_reaches_its_vocab_size_and_compresses() -> None:
    tokenizer = train_tokenizer("bpe", DOCS, vocab_size=400)
    assert tokenizer.vocab_size == 400
    assert sum(map(len, tokenizer.encode_batch(DOCS))) < 0.6 * sum(map(len, DOCS))


def test_bpe_encodes_text_it_never_saw_and_char_maps_it_to_unk() -> None:
    bpe = train_tokenizer("bpe", DOCS, vocab_size=300)
    assert bpe.decode(bpe.encode("Zürich ☃")) == "Zürich ☃"
    char = train_tokenizer("char", DOCS, vocab_size=0)
    assert char.decode(char.encode("a☃b")) == "ab"


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="vocab_size >= 258"):
        train_tokenizer("bpe", DOCS, vocab_size=100)
    with pytest.raises(ValueError, match="unknown tokenizer"):
        train_tokenizer("wordpiece", DOCS, vocab_size=300)
