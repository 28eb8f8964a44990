"""What every corpus hands the trainer: training text, held-out text and question-answer pairs.

This module owns the types and imports no generator; `workers.data.sources.load_corpus`
picks the source a `corpus` knob names, and each source builds a `Corpus`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
