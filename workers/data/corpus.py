"""What every corpus hands the trainer: training text, held-out text and question-answer pairs.

`load_corpus` picks the source named by the `corpus` knob ('biographies' or 'file:PATH').
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class QAPair:
    """One question about one person; the model sees `prompt` and must continue with `answer`."""

    person: int
    attribute: str
    prompt: str  # e.g. "Q: What is the birth city of Anya Briar Forger?\nA:"
    answer: str  # e.g. "Princeton, NJ" (the training text is prompt + " " + answer)

    @property
    def text(self) -> str:
        return f"{self.prompt} {self.answer}"


@dataclass(frozen=True)
class Corpus:
    """Documents to train on, documents to measure held-out loss on, and the QA splits."""

    name: str
    train: list[str]
    heldout: list[str]
    qa_train: list[QAPair] = field(default_factory=list)
    qa_eval_heldout: list[QAPair] = field(default_factory=list)
    qa_eval_seen: list[QAPair] = field(default_factory=list)
    # Benchmarks this corpus cannot support, with the reason (the evaluator reports them).
    unavailable: dict[str, str] = field(default_factory=dict)


def load_corpus(
    corpus: str,
    *,
    n_people: int,
    qa_fraction: float,
    data_format: str,
    repetitions: int,
    seed: int,
) -> Corpus:
    """The corpus a `corpus` knob names; raises ValueError for an unknown or unreadable one."""
    if corpus == "biographies":
        from workers.data.biographies import generate

        return generate(
            n_people=n_people,
            qa_fraction=qa_fraction,
            data_format=data_format,
            repetitions=repetitions,
            seed=seed,
        )
    if corpus.startswith("file:"):
        from workers.data.local import read_local_corpus

        return read_local_corpus(Path(corpus.removeprefix("file:")))
    raise ValueError(f"unknown corpus {corpus!r}: use 'biographies' or 'file:PATH'")
