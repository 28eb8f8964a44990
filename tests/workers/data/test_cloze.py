"""A text source's known answers: each passage's cloze item, the passages left out, the pair set's
identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.models.distillation import DistillInputRejected
from events.models.distillation import QAPair as SourcePair
from workers.data import cloze, qa_sources
from workers.data.cloze import cloze_item, cloze_items
from workers.data.qa_sources import load_pairs

BOOK = Path(__file__).resolve().parents[3] / "examples" / "specs" / "book"


def passage(pid: str, text: str, place: str = "book.md, 'Ch 1'") -> SourcePair:
    """A passage pair as qa_sources.text_pairs makes it."""
    return SourcePair(id=pid, question=f"What does {place} say?", answer=text, context=place,
                      known_answer=False)


def test_the_answer_is_the_last_content_word_of_the_last_sentence_and_the_question_blanks_it() -> None:
    text = 'The ship left at dawn.\n\nShe sailed past the old "lighthouse", and on.'
    item = cloze_item(passage("p1", text))
    assert item is not None
    # "on" and "and" are short: the last word of 4+ letters that is no stopword is "lighthouse",
    # its quotes and comma stripped; the question keeps them and is one line
    assert item.answer == "lighthouse" and item.known_answer and item.id == "p1"
    assert item.question == ('Complete the passage from book.md, \'Ch 1\': '
                             '"She sailed past the old "___", and on."')
    # its context is the passage itself, which ends with the answer in place (what verbatim repeats)
    assert item.context == text


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("One. It was the long winter of their lives.", "lives"),
        ("It came from the north, as it always does.", "north"),  # "always", "does" are stopwords
        ("The harbour's wall stood. The mate's well-known cat's tail.", "tail"),  # letters only
        ("Martha wrote it down! Then she slept.\n", "slept"),
        ('He said: "Bring the lamp." Then he left them there.', "left"),  # a quoted end is a sentence end
    ],
)
def test_the_rule_on_fixed_passages(text: str, answer: str) -> None:
    item = cloze_item(passage("p", text))
    assert item is not None and item.answer == answer


def test_a_passage_without_a_content_word_is_left_out_and_named() -> None:
    items, left_out = cloze_items([passage("a", "The lamp was lit at dusk."),
                                   passage("b", "The lamp was lit. And so it was, and so it is."),
                                   passage("c", "Then they were there, with them.")])
    assert [i.id for i in items] == ["a"] and left_out == ["b", "c"]


def test_the_example_book_is_twelve_items_of_thirteen_passages_the_one_left_out_named() -> None:
    pair_set, pairs = load_pairs(f"cloze:{BOOK}")
    assert pair_set.kind == "text" and pair_set.pairs == len(pairs) == 12
    assert pair_set.name == ("book (cloze-v1: 12 of 13 passages; left out, no content word at the end: "
                             "01-the-harbour.md-p005)")
    assert all(p.known_answer and p.context.endswith(p.answer + ".") for p in pairs)
    assert len({p.answer for p in pairs}) == 12  # every answer is another's distractor
    first = pairs[0]
    assert first.id == "01-the-harbour.md-p001" and first.answer == "lighthouse"
    assert first.question.startswith("Complete the passage from 01-the-harbour.md, "
                                     "'The Keeper of Gull Point > The harbour': \"Above them all")


def test_fewer_than_four_items_is_an_error_saying_how_many_were_usable(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nThe lamp was lit.\n\n# B\n\nAnd so it was.\n\n"
                                   "# C\n\nThe fog came in.\n")
    with pytest.raises(DistillInputRejected, match=r"2 of 3 passages have a cloze item.*at least 4"):
        load_pairs(f"cloze:{tmp_path}")
    with pytest.raises(DistillInputRejected, match=r"a cloze source is a \.txt/\.md file or a directory"):
        load_pairs(f"cloze:{tmp_path / 'missing.md'}")


def test_the_pair_set_follows_the_files_bytes_and_the_rule(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    book = tmp_path / "book"
    book.mkdir()
    for path in BOOK.iterdir():
        (book / path.name).write_bytes(path.read_bytes())
    first = load_pairs(f"cloze:{book}")[0].sha256
    assert load_pairs(f"cloze:{book}")[0].sha256 == first
    # a trailing blank line changes no passage, yet it changes the files' bytes: a new pair set
    chapter = book / "02-the-storm.md"
    chapter.write_bytes(chapter.read_bytes() + b"\n")
    second = load_pairs(f"cloze:{book}")[0].sha256
    assert second != first
    # and so does a new version of the rule, with the same items
    monkeypatch.setattr(qa_sources, "CLOZE_RULE", "cloze-v2")
    assert load_pairs(f"cloze:{book}")[0].sha256 not in {first, second}
    assert cloze.CLOZE_RULE == "cloze-v1"


def test_the_plain_text_source_still_gives_passages_without_known_answers() -> None:
    pair_set, pairs = load_pairs(str(BOOK))
    assert pair_set.pairs == 13 and not any(p.known_answer for p in pairs)
