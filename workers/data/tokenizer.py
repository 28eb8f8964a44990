"""Tokenizers trained on the training documents, saved beside the checkpoint.

`char`: one token per character seen in training (plus <pad>, <|endoftext|>, <unk>).
`bpe`: a byte-level BPE (GPT-2 style) trained with the `tokenizers` library to `vocab_size`.
Both are deterministic functions of the documents and the vocabulary size.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

PAD = "<pad>"
EOS = "<|endoftext|>"
UNK = "<unk>"
BPE_FILE = "tokenizer.json"
CHAR_FILE = "char_tokenizer.json"
PRETRAINED_FILE = "pretrained_tokenizer.json"  # marks a pretrained model's own tokenizer
# Byte-level BPE starts from all 256 byte symbols plus the specials; merges come on top.
BPE_MIN_VOCAB = 256 + 2


class Tokenizer(ABC):
    """Text to ids and back; `eos_id` separates documents, `pad_id` fills batches."""

    kind: str
    vocab_size: int
    eos_id: int
    pad_id: int

    @abstractmethod
    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`, special tokens dropped."""

    @abstractmethod
    def save(self, directory: Path) -> None: ...


class CharTokenizer(Tokenizer):
    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        self.vocab = [PAD, EOS, UNK, *chars]
        self.ids = {token: i for i, token in enumerate(self.vocab)}
        self.vocab_size = len(self.vocab)
        self.pad_id, self.eos_id, self.unk_id = 0, 1, 2

    @classmethod
    def train(cls, documents: Sequence[str]) -> CharTokenizer:
        return cls(sorted(set("".join(documents))))

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(ch, self.unk_id) for ch in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.vocab[i] for i in ids if i > self.unk_id)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CHAR_FILE).write_text(json.dumps({"kind": "char", "vocab": self.vocab}))


class BPETokenizer(Tokenizer):
    kind = "bpe"

    def __init__(self, tokenizer: HFTokenizer) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        self.pad_id = self._special(PAD)
        self.eos_id = self._special(EOS)

    def _special(self, token: str) -> int:
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"BPE tokenizer lacks the special token {token!r}")
        return int(token_id)

    @classmethod
    def train(cls, documents: Sequence[str], vocab_size: int) -> BPETokenizer:
        if vocab_size < BPE_MIN_VOCAB:
            raise ValueError(
                f"a byte-level BPE needs vocab_size >= {BPE_MIN_VOCAB} (256 bytes + 2 specials), "
                f"got {vocab_size}; raise vocab_size or use tokenizer='char'"
            )
        tokenizer = HFTokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[PAD, EOS],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any text stays encodable
            show_progress=False,
        )
        tokenizer.train_from_iterator(documents, trainer=trainer)
        return cls(tokenizer)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text).ids)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(directory / BPE_FILE))


class PretrainedTokenizer(Tokenizer):
    """A pretrained model's own tokenizer (transformers), behind our interface. No special tokens
    are added by encode: documents are framed by `eos_id` as every corpus is."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)
        self.vocab_size = len(tokenizer)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(directory))
        (directory / PRETRAINED_FILE).write_text(json.dumps({"kind": "transformers"}))


def train_tokenizer(kind: str, documents: Sequence[str], vocab_size: int) -> Tokenizer:
    """A tokenizer of `kind` ('char' or 'bpe') trained on `documents`."""
    if kind == "char":
        return CharTokenizer.train(documents)
    if kind == "bpe":
        return BPETokenizer.train(documents, vocab_size)
    raise ValueError(f"unknown tokenizer {kind!r}: use 'char' or 'bpe'")


def load_tokenizer(directory: Path) -> Tokenizer:
    """The tokenizer `Tokenizer.save` wrote into `directory`."""
    if (directory / PRETRAINED_FILE).is_file():
        from transformers import AutoTokenizer  # only runs on a pretrained base need it

        return PretrainedTokenizer(AutoTokenizer.from_pretrained(str(directory)))
    if (directory / CHAR_FILE).is_file():
        saved = json.loads((directory / CHAR_FILE).read_text())
        return CharTokenizer(saved["vocab"][3:])
    if (directory / BPE_FILE).is_file():
        return BPETokenizer(HFTokenizer.from_file(str(directory / BPE_FILE)))
    raise ValueError(f"no tokenizer in {directory} (expected {CHAR_FILE} or {BPE_FILE})")
