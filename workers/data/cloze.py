"""A passage's cloze item: the known answer a text source is tested on (the repetition experiment).

A passage of a book (workers/data/qa_sources.py cuts the files into passages) has no question of
its own, so to test whether a student stored it, one word is blanked and asked back: a cloze.
The rule, named by CLOZE_RULE (part of the pair set's identity, so changing the rule changes every
run id that reads it):

- the **answer** is the passage's last content word: in its last sentence, the last word of at
  least MIN_LETTERS letters — punctuation stripped from its ends, letters only (so `ship's` and
  `well-known` are not candidates) — that is not in STOPWORDS;
- the **question** is `Complete the passage from <place>: "<last sentence, that word as ___>"`,
  on one line, where <place> is the passage's location (its file and heading path, the `context`
  the passage pair carries);
- the **context** is the passage itself, which ends with the answer in place: what `verbatim x K`
  repeats (workers/data/pairs.py) and what a lens sees as `{context}`;
- the id is the passage's id; a passage without such a word has no item and is left out (the
  source counts and names those).

A cloze tests recall of one word per passage from its last sentence, not understanding of it.
"""

from __future__ import annotations

import re
import string

from events.models.distillation import QAPair

CLOZE_RULE = "cloze-v1"
MIN_LETTERS = 4
MIN_ITEMS = 4  # a QA group and a held-out half, each with something to choose among
BLANK = "___"
# Words of four or more letters that carry no content of their own (closed-class words and the
# commonest fillers). Fixed: editing it is a new CLOZE_RULE.
STOPWORDS = frozenset((
    "about", "above", "across", "after", "again", "against", "almost", "along", "also", "although",
    "always", "among", "another", "anything", "around", "away", "back", "because", "been", "before",
    "behind", "being", "below", "beside", "between", "beyond", "both", "could", "does", "doing", "down",
    "during", "each", "either", "else", "enough", "even", "ever", "every", "from", "further", "have",
    "having", "here", "herself", "himself", "however", "indeed", "into", "itself", "just", "less", "like",
    "many", "more", "most", "much", "must", "myself", "near", "neither", "never", "nothing", "once",
    "only", "onto", "other", "others", "ours", "ourselves", "over", "perhaps", "quite", "rather", "really",
    "same", "shall", "should", "since", "some", "something", "soon", "still", "such", "than", "that",
    "their", "theirs", "them", "themselves", "then", "there", "therefore", "these", "they", "thing",
    "things", "this", "those", "though", "through", "thus", "till", "toward", "towards", "under", "unless",
    "until", "upon", "very", "well", "were", "what", "whatever", "when", "whenever", "where", "whether",
    "which", "while", "whom", "whose", "will", "with", "within", "without", "would", "your", "yours",
    "yourself", "yourselves",
))
# A sentence ends at . ! or ?, possibly followed by a closing quote or bracket, then whitespace.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'\u201d\u2019)\]])\s+")
EDGE_PUNCTUATION = string.punctuation + "\u201c\u201d\u2018\u2019\u2014\u2013\u2026\u00ab\u00bb"


def last_sentence(passage: str) -> str:
    """The passage's last sentence, on one line."""
    sentences = [s for s in SENTENCE_END.split(passage.strip()) if s.strip()]
    return " ".join(sentences[-1].split()) if sentences else ""


def content_word(sentence: str) -> tuple[int, int] | None:
    """Where the sentence's last content word is (start, end), or None (see the module docstring)."""
    for token in reversed(list(re.finditer(r"\S+", sentence))):
        word = token.group().strip(EDGE_PUNCTUATION)
        if len(word) >= MIN_LETTERS and word.isalpha() and word.lower() not in STOPWORDS:
            start = token.start() + token.group().index(word)
            return start, start + len(word)
    return None


def cloze_item(passage: QAPair) -> QAPair | None:
    """The cloze item of a passage pair (qa_sources.text_pairs: its answer is the passage, its
    context the place), or None when its last sentence has no content word."""
    sentence = last_sentence(passage.answer)
    where = content_word(sentence)
    if where is None:
        return None
    start, end = where
    blanked = sentence[:start] + BLANK + sentence[end:]
    place = passage.context or passage.id
    return QAPair(id=passage.id, question=f'Complete the passage from {place}: "{blanked}"',
                  answer=sentence[start:end], context=passage.answer.strip(), known_answer=True)


def cloze_items(passages: list[QAPair]) -> tuple[list[QAPair], list[str]]:
    """The items of the passages that have one, and the ids of those left out, in reading order."""
    items: list[QAPair] = []
    left_out: list[str] = []
    for passage in passages:
        item = cloze_item(passage)
        if item is None:
            left_out.append(passage.id)
        else:
            items.append(item)
    return items, left_out
