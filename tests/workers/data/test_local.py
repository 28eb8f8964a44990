"""Local corpora: documents from .txt (blank-line separated) or .jsonl, the last 5% held out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.data.local import read_local_corpus
from workers.data.sources import load_corpus


def test_txt_documents_split_on_blank_lines_and_last_five_percent_held_out(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("\n\n".join(f"document {i}\nsecond line" for i in range(40)) + "\n")
    corpus = read_local_corpus(path)
    assert len(corpus.train) == 38 and len(corpus.heldout) == 2
    assert corpus.heldout == ["document 38\nsecond line", "document 39\nsecond line"]
    assert set(corpus.unavailable) == {"qa_exact_match", "qa_exact_match_seen", "qa_answer_loss",
                                       "qa_answer_loss_seen"}
    assert corpus.qa_eval_seen == [] and corpus.qa_eval_heldout == []


def test_jsonl_reads_the_text_field(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"doc {i}", "id": i}) for i in range(5)))
    corpus = load_corpus(
        f"file:{path}", n_people=0, qa_fraction=0, data_format="plain", repetitions=1, seed=0
    )
    assert corpus.train == ["doc 0", "doc 1", "doc 2", "doc 3"] and corpus.heldout == ["doc 4"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "does not exist"),
        ("one.txt", "only one document", "at least 2"),
        ("bad.jsonl", '{"text": "a"}\n{"body": "b"}', "no string field 'text'"),
        ("data.csv", "a,b", ".txt or .jsonl"),
    ],
)
def test_bad_files_are_refused_clearly(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_local_corpus(path)
