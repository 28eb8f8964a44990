"""A local corpus for `corpus='file:PATH'`: a .txt file (documents split on blank lines) or a
.jsonl file (one JSON object per line with a `text` field). The last 5% of documents are
held out for heldout_loss; such a corpus has no questions, so the QA benchmarks are unavailable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from workers.data.corpus import Corpus

HELDOUT_SHARE = 0.05
NO_QA = "a local corpus ({path}) has no question-answer ground truth; only heldout_loss is available"


def read_documents(path: Path) -> list[str]:
    """The non-empty documents of a .txt or .jsonl file, in file order."""
    if not path.is_file():
        raise ValueError(f"corpus file {path} does not exist (corpus='file:PATH' needs a readable file)")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        documents = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number} is not valid JSON: {exc}") from exc
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{path}:{number} has no string field 'text'")
            documents.append(record["text"])
    elif path.suffix == ".txt":
        documents = re.split(r"\n\s*\n", text)
    else:
        raise ValueError(f"corpus file {path} must end in .txt or .jsonl")
    documents = [d.strip() for d in documents if d.strip()]
    if len(documents) < 2:
        raise ValueError(f"corpus file {path} needs at least 2 documents (one to train on, one held out)")
    return documents


def read_local_corpus(path: Path) -> Corpus:
    """Train on the first 95% of documents, hold out the last 5% (at least one document)."""
    documents = read_documents(path)
    n_heldout = max(1, round(HELDOUT_SHARE * len(documents)))
    reason = NO_QA.format(path=path)
    return Corpus(
        name=f"file:{path}",
        train=documents[:-n_heldout],
        heldout=documents[-n_heldout:],
        unavailable={name: reason for name in ("qa_exact_match", "qa_exact_match_seen", "qa_answer_loss",
                                               "qa_answer_loss_seen")},
    )
