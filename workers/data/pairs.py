"""Your own question-answer pairs as a corpus: each pair one unit of knowledge, like a person.

The repetition experiment's other knowledge source (the first is the biographies world). The
pairs are read from a JSONL by `workers.data.qa_sources.load_pairs` (question, answer,
optional context and id) and named by their pair set's sha256; this module turns them into the
`Corpus` the trainer reads:

- a pair's **statement** is one fixed rendering of its fact: the context (if any), the question,
  then the answer as a sentence of its own — `"{context} {question} {answer}."`, whitespace
  collapsed, a full stop added where the answer ends without one. It is what `verbatim`
  repeats K times; `lenses` replaces it by K rewrites of the pair (a distillation's accepted
  outputs, workers/cloud.py), `mix` by ceil(K/2) copies and K//2 rewrites.
- the **split** is by pair id alone: each id's key is the sha256 of `pairs:<id>`, and the
  round(qa_fraction * n) pairs with the smallest keys are the QA group (fine-tuned on, or
  mixed in); the rest are held out and asked. Reordering the file or editing a pair's text
  moves no pair from one group to the other, and raising qa_fraction only adds pairs to it.
- a **text source** (`pairs:cloze:PATH`: the cloze items of text or Markdown passages,
  workers/data/cloze.py) differs in its statement only: a cloze item's statement is the
  **passage** itself (the item's context, which ends with the answer in place), not
  "context question answer" — the book is what is read, verbatim K times or rewritten K times;
  its question is the blanked last sentence and its answer the blanked word. `generate(...,
  text=True)` chooses `passage` as the statement.
- its **question** is `"Q: {question}\\nA:"` and its answer the pair's, as the biographies ask.
  The held-out question is the one its statement contains, so extraction here means answering
  in the QA format what was only read as a statement: easier than the biographies' held-out
  questions, whose wording no biography shares.

A pairs corpus has no held-out documents (every pair's statement is in training), so
heldout_loss is unavailable, saying so; the battery's people questions (reversal, two-hop,
paraphrase, distractor, probe) need the biographies' people and are unavailable too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from events.models.distillation import QAPair as SourcePair
from workers.data.corpus import Corpus, QAPair

CONDITIONS: tuple[str, ...] = ("verbatim", "lenses", "mix")
DATA_FORMATS: tuple[str, ...] = ("plain", "qa", "mixed")
NO_HELDOUT_DOCUMENTS = ("a pairs corpus has no held-out documents: every pair's statement is in training; "
                        "ask it with qa_answer_loss")


@dataclass(frozen=True)
class Pairs(Corpus):
    """A corpus of question-answer pairs, with its pair set's identity and every answer in it.

    Its QA pairs carry the pair's position in the file as `person` and its id as `attribute`.
    """

    sha256: str = ""
    answers: tuple[str, ...] = ()  # every distinct answer of the file, in file order


def _one_line(text: str) -> str:
    return " ".join(text.split())


def statement(pair: SourcePair) -> str:
    """The pair's fact as one fixed text: context, question, answer as a sentence."""
    answer = _one_line(pair.answer)
    if answer[-1] not in ".!?":
        answer += "."
    return " ".join(part for part in (_one_line(pair.context), _one_line(pair.question), answer) if part)


def passage(pair: SourcePair) -> str:
    """A cloze item's fact as the text it came from: the passage (its context), verbatim."""
    if not pair.context.strip():
        raise ValueError(f"pair {pair.id!r}: a text source's pair carries its passage as context, and "
                         "this one has none")
    return pair.context.strip()


def question(index: int, pair: SourcePair) -> QAPair:
    """The pair as the evaluator and the QA fine-tune ask it."""
    return QAPair(person=index, attribute=pair.id, prompt=f"Q: {_one_line(pair.question)}\nA:",
                  answer=_one_line(pair.answer))


def split_key(pair_id: str) -> str:
    return hashlib.sha256(f"pairs:{pair_id}".encode()).hexdigest()


def qa_group(pairs: Sequence[SourcePair], qa_fraction: float) -> set[str]:
    """The ids of the QA group: the round(qa_fraction * n) pairs with the smallest split keys."""
    n_qa = round(qa_fraction * len(pairs))
    return {p.id for p in sorted(pairs, key=lambda p: split_key(p.id))[:n_qa]}


def renderings(pair: SourcePair, condition: str, copies: int, rewrites: Sequence[str],
               statement_of: Callable[[SourcePair], str] = statement) -> list[str]:
    """The K texts of one pair under a repetition condition (as biographies.person_renderings);
    `statement_of` is what verbatim repeats (`statement`, or `passage` for a text source)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}: use one of {CONDITIONS}")
    if copies < 1:
        raise ValueError("a condition needs K >= 1 copies per pair")
    n_rewrites = {"verbatim": 0, "lenses": copies, "mix": copies // 2}[condition]
    if len(rewrites) < n_rewrites:
        raise ValueError(
            f"condition {condition} with K={copies} needs {n_rewrites} rewrites of pair {pair.id!r}, but "
            f"the cloud has {len(rewrites)} accepted; distil more samples per pair (distill.samples), "
            "add lenses, or lower K")
    return [statement_of(pair)] * (copies - n_rewrites) + list(rewrites[:n_rewrites])


def generate(
    pairs: Sequence[SourcePair],
    *,
    sha256: str,
    name: str,
    qa_fraction: float = 0.5,
    data_format: str = "plain",
    repetitions: int = 1,
    condition: str | None = None,
    copies: int | None = None,
    rewrites: Mapping[str, Sequence[str]] | None = None,
    text: bool = False,
) -> Pairs:
    """The corpus of `pairs`: each pair's K texts, the QA group's questions where the format puts them.

    - `plain`: the pairs' texts only (the pretraining of pretrain_finetune);
    - `qa` and `mixed`: also the QA group's questions with their answers, in documents of their
      own, one per copy of the pair (a rewrite is a whole text, so nothing is interleaved).

    Without `condition`, every pair is `verbatim` with `repetitions` copies. `rewrites` maps a
    pair id to its rewrites, in the cloud's order. `text`: the pairs are a text source's cloze
    items, whose statement is their passage. Pairs without a known answer are refused:
    extraction is scored against the answer.
    """
    if data_format not in DATA_FORMATS:
        raise ValueError(f"unknown data format {data_format!r}: use one of {DATA_FORMATS}")
    if repetitions < 1:
        raise ValueError("repetitions must be at least 1")
    if not pairs:
        raise ValueError(f"{name}: no pairs")
    unknown = [p.id for p in pairs if not p.known_answer]
    if unknown:
        raise ValueError(f"{name}: pair {unknown[0]!r} has no known answer (known_answer: false); the "
                         "repetition experiment scores extraction against known answers")
    group = qa_group(pairs, qa_fraction)
    if condition is None:
        condition, copies = "verbatim", repetitions
    train: list[str] = []
    seen: list[QAPair] = []
    unseen: list[QAPair] = []
    qa_train: list[QAPair] = []
    for index, pair in enumerate(pairs):
        asked = question(index, pair)
        in_group = pair.id in group
        (seen if in_group else unseen).append(asked)
        texts = renderings(pair, condition, copies or 0, (rewrites or {}).get(pair.id, ()),
                           passage if text else statement)
        train.extend(texts)
        if in_group and data_format != "plain":
            qa_train.append(asked)
            train.extend(asked.text for _ in texts)
    unavailable = {"heldout_loss": NO_HELDOUT_DOCUMENTS}
    if not seen:
        unavailable["qa_exact_match_seen"] = f"qa_fraction={qa_fraction} leaves no pair in the QA group"
    if not unseen:
        unavailable["qa_exact_match"] = f"qa_fraction={qa_fraction} holds no pair out of the QA group"
    return Pairs(
        name=f"{'cloze' if text else 'pairs'}({name}, sha256={sha256[:12]}, qa_fraction={qa_fraction}, "
        f"format={data_format}, condition={condition}, K={copies})",
        train=train, heldout=[], qa_train=qa_train, qa_eval_heldout=unseen, qa_eval_seen=seen,
        unavailable=unavailable, sha256=sha256,
        answers=tuple(dict.fromkeys(_one_line(p.answer) for p in pairs)),
    )

