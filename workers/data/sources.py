"""Which corpus a `corpus` knob names: 'biographies' (generated, with known answers), 'pairs:PATH'
(your question-answer pairs, workers/data/pairs.py), 'pairs:cloze:PATH' (the cloze items of text
or Markdown passages, workers/data/cloze.py) or 'file:PATH' (text without questions).

The generators depend on `workers.data.corpus` for the `Corpus` type; this module sits above
them and is what the trainer calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workers.data import pairs as pairs_corpus
from workers.data.biographies import generate
from workers.data.corpus import Corpus
from workers.data.local import read_local_corpus
from workers.data.qa_sources import CLOZE, load_pairs


def load_corpus(
    corpus: str,
    *,
    n_people: int,
    qa_fraction: float,
    data_format: str,
    repetitions: int,
    seed: int,
    condition: str | None = None,
    copies: int | None = None,
    rewrites: Mapping[str, Sequence[str]] | None = None,
    pairs_sha256: str | None = None,
) -> Corpus:
    """The corpus a `corpus` knob names; raises ValueError for an unknown or unreadable one."""
    if corpus == "biographies":
        return generate(
            n_people=n_people,
            qa_fraction=qa_fraction,
            data_format=data_format,
            repetitions=repetitions,
            seed=seed,
            condition=condition,
            copies=copies,
            rewrites=rewrites,
        )
    if corpus.startswith("pairs:"):
        return read_pairs(corpus.removeprefix("pairs:"), pairs_sha256, qa_fraction=qa_fraction,
                          data_format=data_format, repetitions=repetitions, condition=condition,
                          copies=copies, rewrites=rewrites)
    if corpus.startswith("file:"):
        return read_local_corpus(Path(corpus.removeprefix("file:")))
    raise ValueError(f"unknown corpus {corpus!r}: use 'biographies', 'pairs:PATH' or 'file:PATH'")


def read_pairs(path: str, expected_sha256: str | None, **options: Any) -> pairs_corpus.Pairs:
    """A 'pairs:PATH' corpus: the JSONL's pairs (as a distillation reads them), checked against the
    pair set the run was declared with, then rendered by workers/data/pairs.py."""
    pair_set, pairs = load_pairs(path)  # DistillInputRejected is a ValueError naming the line
    text = path.startswith(CLOZE)
    if pair_set.kind != "jsonl" and not text:
        raise ValueError(f"corpus 'pairs:{path}': a pairs corpus is a JSONL of question-answer pairs, or "
                         f"'pairs:{CLOZE}PATH', the cloze items of text; {path} is {pair_set.kind}, whose "
                         "passages have no known answers to test extraction against (use "
                         f"'pairs:{CLOZE}{path}')")
    if expected_sha256 is not None and pair_set.sha256 != expected_sha256:
        raise ValueError(f"corpus 'pairs:{path}': its pairs changed since the run was declared (pair set "
                         f"sha256 {pair_set.sha256[:12]}..., the run expects {expected_sha256[:12]}...); "
                         "restore the file or declare a new experiment")
    return pairs_corpus.generate(pairs, sha256=pair_set.sha256, name=pair_set.name, text=text, **options)
