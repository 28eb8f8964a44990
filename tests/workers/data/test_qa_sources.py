"""The pair sources: JSONL, a book of text and Markdown files cut into passages, the biographies'
facts; and one clear line for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.models.distillation import DistillInputRejected, pair_set_sha256
from workers.data.biographies import ATTRIBUTES, QUESTIONS, generate, make_people
from workers.data.qa_sources import load_pairs, passages


def jsonl(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_pairs_keep_their_fields_and_ids(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "pairs.jsonl",
                 {"id": "capital", "question": "What is the capital of France?", "answer": "Paris",
                  "context": "Geography.", "extra": "ignored"},
                 "",
                 {"question": "Why is the sky blue?", "answer": "Rayleigh scattering of sunlight.",
                  "known_answer": False},
                 {"id": 7, "question": "Where was Ada born?", "answer": "London", "subject": "Ada King",
                  "attribute": "birth_city", "facts": {"birth_city": "London", "major": "Mathematics"}})

    pair_set, pairs = load_pairs(str(path))

    assert [p.id for p in pairs] == ["capital", "l0003", "7"]  # no id: the line number
    assert pairs[0].context == "Geography." and pairs[0].known_answer
    assert not pairs[1].known_answer and pairs[1].context == ""
    assert pairs[2].subject == "Ada King" and pairs[2].facts["major"] == "Mathematics"
    assert pair_set.kind == "jsonl" and pair_set.name == "pairs.jsonl" and pair_set.pairs == 3
    assert pair_set.path == str(path.resolve())
    assert pair_set.sha256 == pair_set_sha256(pairs)
    # The same pairs from another file are the same pair set; a limit is a different one
    copy = tmp_path / "copy.jsonl"
    copy.write_text(path.read_text())
    assert load_pairs(str(copy))[0].sha256 == pair_set.sha256
    limited, first = load_pairs(str(path), limit=2)
    assert [p.id for p in first] == ["capital", "l0003"] and limited.pairs == 2
    assert limited.sha256 != pair_set.sha256


@pytest.mark.parametrize(("rows", "message"), [
    (['{"question": "q", "answer": "a"}', "{not json"], r"pairs\.jsonl:2: not JSON"),
    ([{"question": "q"}], r"pairs\.jsonl:1: no answer \(a non-empty string\)"),
    ([{"answer": "a", "question": "  "}], r"pairs\.jsonl:1: no question"),
    ([["q", "a"]], r"pairs\.jsonl:1: a line is one JSON object"),
    ([{"id": "x", "question": "q", "answer": "a"}, {"id": "y", "question": "q", "answer": "a"},
      {"id": "x", "question": "q2", "answer": "a2"}],
     r"pairs\.jsonl:3: duplicate id 'x' \(first on line 1\)"),
    ([{"id": True, "question": "q", "answer": "a"}], r"pairs\.jsonl:1: id must be"),
    ([{"question": "q", "answer": "a", "known_answer": "yes"}],
     r"pairs\.jsonl:1: known_answer must be a bool"),
    ([{"question": "q", "answer": "a", "facts": {"major": 3}}], r"facts maps attribute names to string"),
    (["", "  "], r"pairs\.jsonl: no pairs"),
])
def test_a_bad_jsonl_line_is_named_by_its_number(tmp_path: Path, rows: list[object], message: str) -> None:
    path = jsonl(tmp_path / "pairs.jsonl", *rows)
    with pytest.raises(DistillInputRejected, match=message) as caught:
        load_pairs(str(path))
    assert "\n" not in str(caught.value)


BOOK = {
    "01-opening.md": "# The Opening\n\nIt was a cold morning in the valley.\n\nThe river ran fast.\n\n"
                     "## The Mill\n\nThe mill stood by the water. " + "Its wheel turned all day. " * 60
                     + "\n\n### Inside\n\nFlour everywhere.\n",
    "02-noon.md": "# Noon\n\nThe sun was high.\n",
    "03-notes.txt": "# not a heading in plain text\n\nA note.\n",
    "zz-image.png": "not text",
}


def book(tmp_path: Path) -> Path:
    directory = tmp_path / "book"
    directory.mkdir()
    for name, text in BOOK.items():
        (directory / name).write_text(text)
    return directory


def test_a_book_in_files_becomes_passages_without_known_answers(tmp_path: Path) -> None:
    directory = book(tmp_path)

    pair_set, pairs = load_pairs(str(directory), passage_chars=400)

    assert pair_set.kind == "text" and pair_set.name == "book" and pair_set.pairs == len(pairs)
    assert all(not p.known_answer for p in pairs)
    assert pairs[0].id == "01-opening.md-p001"
    # paragraphs under one heading gather into one passage; a heading starts a new one
    assert pairs[0].answer == "It was a cold morning in the valley.\n\nThe river ran fast."
    assert pairs[0].question == "What does 01-opening.md, 'The Opening' say?"
    assert pairs[0].context == "01-opening.md, 'The Opening'"
    mill = [p for p in pairs if p.context == "01-opening.md, 'The Opening > The Mill'"]
    assert len(mill) > 1 and all(len(p.answer) <= 400 for p in mill)  # a long paragraph, cut
    assert all(p.answer.endswith(".") for p in mill)  # at sentence ends
    assert " ".join(p.answer for p in mill) == BOOK["01-opening.md"].split("## The Mill\n\n")[1] \
        .split("\n\n### Inside")[0].strip()
    inside = next(p for p in pairs if "Inside" in p.context)
    assert inside.context == "01-opening.md, 'The Opening > The Mill > Inside'"
    assert inside.answer == "Flour everywhere."
    noon = next(p for p in pairs if p.id == "02-noon.md-p001")
    assert noon.context == "02-noon.md, 'Noon'"  # a new file starts its own headings
    note = next(p for p in pairs if p.id.startswith("03-notes.txt"))
    assert note.answer.startswith("# not a heading")  # plain text has no headings
    assert not any("png" in p.id for p in pairs)
    # One file alone is a source too, with the same passages
    _, alone = load_pairs(str(directory / "01-opening.md"), passage_chars=400)
    assert [p.answer for p in alone] == [p.answer for p in pairs if p.id.startswith("01-")]


def test_passages_never_cut_inside_a_sentence() -> None:
    long_sentence = "word " * 300
    cut = list(passages(f"Short one. {long_sentence.strip()}. Next.", 200))
    assert [text for _, text in cut] == ["Short one.", long_sentence.strip() + ".", "Next."]


@pytest.mark.parametrize(("files", "message"), [
    ({}, r"book: no \.txt or \.md files here"),
    ({"a.md": "# Only a heading\n\n## And another\n"}, r"book: no text"),
    ({"a.md": b"\xff\xfe\x00bad"}, r"a\.md: not UTF-8 text"),
])
def test_a_bad_book_is_one_line(tmp_path: Path, files: dict[str, str | bytes], message: str) -> None:
    directory = tmp_path / "book"
    directory.mkdir()
    for name, body in files.items():
        (directory / name).write_bytes(body if isinstance(body, bytes) else body.encode())
    with pytest.raises(DistillInputRejected, match=message):
        load_pairs(str(directory))


def test_biography_facts_are_pairs_with_known_answers_and_structure() -> None:
    pair_set, pairs = load_pairs("biographies:people=3,seed=5")

    people = make_people(3, 0.0, 5)
    assert len(pairs) == 3 * len(ATTRIBUTES) and pair_set.pairs == len(pairs)
    assert pair_set.kind == "biographies" and pair_set.name == "biographies(people=3, seed=5)"
    assert pair_set.path == ""
    first = pairs[0]
    assert first.id == f"p0000-{ATTRIBUTES[0]}"
    assert first.question == QUESTIONS[ATTRIBUTES[0]].format(name=people[0].name)
    assert first.answer == people[0].attributes[ATTRIBUTES[0]] and first.known_answer
    assert first.subject == people[0].name and first.attribute == ATTRIBUTES[0]
    assert first.facts == people[0].attributes
    # The context is the biography exactly as the corpus of that seed trains on it
    corpus = generate(n_people=3, qa_fraction=0.0, data_format="plain", seed=5)
    assert [p.context for p in pairs[:: len(ATTRIBUTES)]] == corpus.train
    assert all(p.answer in p.context for p in pairs)
    # The defaults, and determinism
    assert load_pairs("biographies")[0].name == "biographies(people=10, seed=0)"
    assert load_pairs("biographies:people=3,seed=5")[1] == pairs
    assert load_pairs("biographies:people=3,seed=6")[0].sha256 != pair_set.sha256


@pytest.mark.parametrize(("source", "message"), [
    ("biographies:people=3,n=2", r"unknown option 'n'; biographies takes people=N, seed=N"),
    ("biographies:people=three", r"option people needs an integer"),
    ("biographies:seed", r"option seed needs an integer"),
    ("biographies:people=0", r"people must be at least 1"),
])
def test_a_bad_biographies_option_is_named(source: str, message: str) -> None:
    with pytest.raises(DistillInputRejected, match=message):
        load_pairs(source)


def test_a_missing_or_unknown_source_is_named(tmp_path: Path) -> None:
    with pytest.raises(DistillInputRejected, match=r"nowhere\.jsonl: no such file or directory"):
        load_pairs(str(tmp_path / "nowhere.jsonl"))
    (tmp_path / "pairs.csv").write_text("q,a\n")
    with pytest.raises(DistillInputRejected, match=r"pairs\.csv: not a pair source"):
        load_pairs(str(tmp_path / "pairs.csv"))
    with pytest.raises(DistillInputRejected, match=r"limit must be at least 1"):
        load_pairs("biographies", limit=0)
