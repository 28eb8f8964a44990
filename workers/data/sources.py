"""Which corpus a `corpus` knob names: 'biographies' (generated, with known answers) or 'file:PATH'.

The generators depend on `workers.data.corpus` for the `Corpus` type; this module sits above
them and is what the trainer calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from workers.data.biographies import generate
from workers.data.corpus import Corpus
from workers.data.local import read_local_corpus


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
    if corpus.startswith("file:"):
        return read_local_corpus(Path(corpus.removeprefix("file:")))
    raise ValueError(f"unknown corpus {corpus!r}: use 'biographies' or 'file:PATH'")
