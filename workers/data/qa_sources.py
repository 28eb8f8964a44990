"""The question-answer pairs a distillation rewrites, from one of four kinds of source.

- `*.jsonl`: one pair a line, `{"question", "answer"}` and optionally `context`, `id` (default:
  the line number, `l0007`), `known_answer` (default true), `subject`, `attribute`, `facts`
  (the structure the template engine needs). Other keys are ignored.
- `*.txt` / `*.md`, or a directory of them (a book in ten files, read in name order, not
  recursively): cut into passages, each passage a pair without a known answer (below).
- `biographies[:people=N,seed=S]`: the generated people's facts (workers/data/biographies.py),
  one pair per (person, attribute), with known answers and the structure the template engine
  rewrites. (A directory that happens to be called `biographies` is `./biographies`.)
- `cloze:PATH`, PATH a text source as above: each passage's cloze item (workers/data/cloze.py),
  a pair with a known answer — the last content word of the passage, blanked in its last
  sentence — and the passage as its context; the repetition experiment's text source. Passages
  without a content word are left out and counted in the pair set's name; fewer than
  cloze.MIN_ITEMS items is an error. The pair set's sha256 covers the rule (CLOZE_RULE), the
  files' bytes and the items.

What a passage becomes. A passage has no question of its own, and inventing one would put
words in the book's mouth, so the question only locates it — "What does <file>, '<heading>',
say?" — and the answer is the passage itself, verbatim. `context` carries the same location
(file and heading path), which a lens may show. `known_answer` is false: no short string must
survive a rewrite, so the checks judge a passage's distillates by similarity to it instead.
Passages are cut at paragraph boundaries (a blank line) and before every Markdown heading,
paragraphs gathered until the next would pass `passage_chars`; a paragraph longer than that
is cut at sentence ends. A heading starts a new passage and names the passages under it.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from events.canonical import canonical_json
from events.models.distillation import (
    DistillInputRejected,
    PairSet,
    QAPair,
    SourceKind,
    pair_set_sha256,
)
from workers.data.biographies import QUESTIONS, TRAIN_TEMPLATES, make_people, qa_pairs, render_biographies
from workers.data.cloze import CLOZE_RULE, MIN_ITEMS, cloze_items

TEXT_SUFFIXES = (".txt", ".md")
BIOGRAPHIES = "biographies"
CLOZE = "cloze:"
BIOGRAPHY_OPTIONS = {"people": 10, "seed": 0}
PASSAGE_CHARS = 800
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def load_pairs(source: str, *, limit: int | None = None,
               passage_chars: int = PASSAGE_CHARS) -> tuple[PairSet, list[QAPair]]:
    """The pairs `source` names, and the pair set they make (named by their sha256).

    `limit` keeps the first pairs only (the whole source is still read and checked).
    Raises DistillInputRejected, one line naming what is wrong, for anything unusable.
    """
    if limit is not None and limit < 1:
        raise DistillInputRejected(f"limit must be at least 1, not {limit}")
    if passage_chars < 100:
        raise DistillInputRejected(f"passage_chars must be at least 100, not {passage_chars}")
    kind: SourceKind
    if source.startswith(CLOZE):
        return cloze_pairs(Path(source.removeprefix(CLOZE)), limit=limit, passage_chars=passage_chars)
    if source == BIOGRAPHIES or source.startswith(BIOGRAPHIES + ":"):
        options = _biography_options(source)
        pairs = biography_pairs(options["people"], options["seed"])
        kind, path = "biographies", ""
        name = f"biographies(people={options['people']}, seed={options['seed']})"
    else:
        target = Path(source)
        if not target.exists():
            raise DistillInputRejected(f"{source}: no such file or directory (a pair source is a .jsonl "
                                       "file, a .txt/.md file or a directory of them, or "
                                       "'biographies[:people=N,seed=S]')")
        if target.is_file() and target.suffix == ".jsonl":
            pairs, kind = jsonl_pairs(target), "jsonl"
        elif target.is_dir() or target.suffix in TEXT_SUFFIXES:
            pairs, kind = text_pairs(target, passage_chars), "text"
        else:
            raise DistillInputRejected(f"{source}: not a pair source; use a .jsonl file, a .txt/.md "
                                       "file or a directory of them")
        name, path = target.name or str(target), str(target.resolve())
    _check_unique(pairs, source)
    if limit is not None:
        pairs = pairs[:limit]
    pair_set = PairSet(sha256=pair_set_sha256(pairs), name=name, kind=kind, path=path, pairs=len(pairs))
    return pair_set, pairs


# --- JSONL -------------------------------------------------------------------------------------

def jsonl_pairs(path: Path) -> list[QAPair]:
    pairs = []
    lines_of: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DistillInputRejected(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                   "save the file as UTF-8") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DistillInputRejected(f"{path}:{number}: not JSON ({exc.msg})") from None
        pair = _jsonl_pair(path, number, row)
        if pair.id in lines_of:
            raise DistillInputRejected(f"{path}:{number}: duplicate id {pair.id!r} (first on line "
                                       f"{lines_of[pair.id]}); every pair needs its own id")
        lines_of[pair.id] = number
        pairs.append(pair)
    if not pairs:
        raise DistillInputRejected(f"{path}: no pairs (one JSON object a line, with question and answer)")
    return pairs


def _jsonl_pair(path: Path, number: int, row: Any) -> QAPair:
    where = f"{path}:{number}"
    if not isinstance(row, dict):
        raise DistillInputRejected(f"{where}: a line is one JSON object with question and answer")
    for key in ("question", "answer"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise DistillInputRejected(f"{where}: no {key} (a non-empty string)")
    ident = row.get("id", f"l{number:04d}")
    if not isinstance(ident, (str, int)) or isinstance(ident, bool) or not str(ident).strip():
        raise DistillInputRejected(f"{where}: id must be a non-empty string or an integer")
    fields: dict[str, Any] = {"id": str(ident), "question": row["question"].strip(),
                              "answer": row["answer"].strip()}
    for key, kind in (("context", str), ("subject", str), ("attribute", str), ("known_answer", bool),
                      ("facts", dict)):
        if key in row:
            if not isinstance(row[key], kind):
                raise DistillInputRejected(f"{where}: {key} must be a {kind.__name__}")
            fields[key] = row[key]
    if "facts" in fields and not all(isinstance(k, str) and isinstance(v, str)
                                     for k, v in fields["facts"].items()):
        raise DistillInputRejected(f"{where}: facts maps attribute names to string values")
    try:
        return QAPair(**fields)
    except ValidationError as exc:  # e.g. a lone surrogate ("\ud800"), valid JSON but not text
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"])
        raise DistillInputRejected(f"{where}: {field}: {problem['msg']}") from None


# --- text and Markdown -------------------------------------------------------------------------

def text_files(target: Path) -> list[Path]:
    """The files a text source reads: the file, or a directory's .txt/.md files in name order."""
    files = ([target] if target.is_file()
             else sorted(p for p in target.iterdir() if p.is_file() and p.suffix in TEXT_SUFFIXES))
    if not files:
        raise DistillInputRejected(f"{target}: no .txt or .md files here")
    return files


def text_pairs(target: Path, passage_chars: int = PASSAGE_CHARS) -> list[QAPair]:
    pairs = []
    for path in text_files(target):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DistillInputRejected(f"{path}: not UTF-8 text") from None
        cut = passages(text, passage_chars, markdown=path.suffix == ".md")
        for number, (headings, passage) in enumerate(cut, start=1):
            place = f"{path.name}, '{' > '.join(headings)}'" if headings else path.name
            pairs.append(QAPair(id=f"{path.name}-p{number:03d}", question=f"What does {place} say?",
                                answer=passage, context=place, known_answer=False))
    if not pairs:
        raise DistillInputRejected(f"{target}: no text (only blank lines or headings)")
    return pairs


def cloze_pairs(target: Path, *, limit: int | None = None,
                passage_chars: int = PASSAGE_CHARS) -> tuple[PairSet, list[QAPair]]:
    """A text source's cloze items (workers/data/cloze.py) as a pair set of known answers."""
    if not target.exists() or not (target.is_dir() or target.suffix in TEXT_SUFFIXES):
        raise DistillInputRejected(f"{CLOZE}{target}: a cloze source is a .txt/.md file or a directory "
                                   "of them")
    files = text_files(target)
    passages = text_pairs(target, passage_chars)
    pairs, left_out = cloze_items(passages)
    if len(pairs) < MIN_ITEMS:
        raise DistillInputRejected(
            f"{target}: {len(pairs)} of {len(passages)} passages have a cloze item (a word of 4 or more "
            f"letters, not a stopword, in the last sentence); at least {MIN_ITEMS} are needed: give "
            "more text")
    _check_unique(pairs, str(target))
    if limit is not None:
        pairs = pairs[:limit]
    identity = canonical_json({
        "rule": CLOZE_RULE, "passage_chars": passage_chars,
        "files": [[path.name, hashlib.sha256(path.read_bytes()).hexdigest()] for path in files],
        "pairs": pair_set_sha256(pairs)})
    name = f"{target.name} ({CLOZE_RULE}: {len(passages) - len(left_out)} of {len(passages)} passages"
    if left_out:  # never silently: the pair set's name says which, wherever it is shown
        more = f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""
        name += f"; left out, no content word at the end: {', '.join(left_out[:5])}{more}"
    name += ")"
    pair_set = PairSet(sha256=hashlib.sha256(identity.encode()).hexdigest(), name=name, kind="text",
                       path=str(target.resolve()), pairs=len(pairs))
    return pair_set, pairs


def passages(text: str, passage_chars: int,
             markdown: bool = True) -> Iterator[tuple[list[str], str]]:
    """(heading path, passage) in reading order; see the module docstring for the cut. Only
    Markdown has headings: in plain text a line starting with '#' is text."""
    headings: list[tuple[int, str]] = []  # (level, title) of the headings above this point
    gathered: list[str] = []

    def flush() -> Iterator[tuple[list[str], str]]:
        if gathered:
            yield [title for _, title in headings], "\n\n".join(gathered)
            gathered.clear()

    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        while markdown and lines and (match := HEADING.match(lines[0])):
            yield from flush()
            level = len(match.group(1))
            headings = [(lv, title) for lv, title in headings if lv < level] + [(level, match.group(2))]
            lines.pop(0)
        if not lines:
            continue
        for piece in _cut(" ".join(lines), passage_chars):
            if gathered and sum(len(g) + 2 for g in gathered) + len(piece) > passage_chars:
                yield from flush()
            gathered.append(piece)
    yield from flush()


def _cut(paragraph: str, passage_chars: int) -> list[str]:
    """A paragraph in pieces of at most passage_chars, cut at sentence ends (a sentence longer
    than that is a piece of its own: cutting inside it would break its meaning)."""
    if len(paragraph) <= passage_chars:
        return [paragraph]
    pieces: list[str] = []
    for sentence in SENTENCE_END.split(paragraph):
        if pieces and len(pieces[-1]) + 1 + len(sentence) <= passage_chars:
            pieces[-1] += " " + sentence
        else:
            pieces.append(sentence)
    return pieces


# --- the biographies' facts --------------------------------------------------------------------

def _biography_options(source: str) -> dict[str, int]:
    options = dict(BIOGRAPHY_OPTIONS)
    _, _, spec = source.partition(":")
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, eq, value = item.partition("=")
        if key not in options:
            raise DistillInputRejected(f"{source}: unknown option {key!r}; biographies takes "
                                       f"{', '.join(f'{k}=N' for k in BIOGRAPHY_OPTIONS)}")
        if not eq or not re.fullmatch(r"-?\d+", value.strip()):
            raise DistillInputRejected(f"{source}: option {key} needs an integer ({key}=N)")
        options[key] = int(value)
    if options["people"] < 1:
        raise DistillInputRejected(f"{source}: people must be at least 1")
    return options


def biography_pairs(people: int, seed: int) -> list[QAPair]:
    """One pair per (person, attribute), ids `p0003-birth_city`. The context is the person's
    biography exactly as the corpus of that seed trains on it (its first rendering), and the
    structure (subject, attribute, facts) is what the template engine rewrites."""
    try:
        world = make_people(people, qa_fraction=0.0, seed=seed)
    except ValueError as exc:
        raise DistillInputRejected(f"biographies: {exc}") from exc
    pairs = []
    for person in world:
        # The same string seed biographies.generate renders person `index` with.
        rng = random.Random(f"biographies:{seed}:render:{person.index}")
        (sentences,) = render_biographies(person, TRAIN_TEMPLATES, 1, rng)
        biography = " ".join(sentence for _, sentence in sentences)
        for fact in qa_pairs(person):
            pairs.append(QAPair(
                id=f"p{person.index:04d}-{fact.attribute}",
                question=QUESTIONS[fact.attribute].format(name=person.name),
                answer=fact.answer, context=biography, known_answer=True,
                subject=person.name, attribute=fact.attribute, facts=dict(person.attributes)))
    return pairs


def _check_unique(pairs: list[QAPair], source: str) -> None:
    seen: set[str] = set()
    for pair in pairs:
        if pair.id in seen:
            raise DistillInputRejected(f"{source}: duplicate id {pair.id!r}; every pair needs its own id")
        seen.add(pair.id)
