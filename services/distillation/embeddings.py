"""The embeddings a distillation's checks used, read back: each `DistillateAssessed` names a
float32 blob (events/store/blobs.py) by its sha256. The worker stores the blob only when it
runs with a cache (`knobs distill`, the embedded and broker workers do); a blob that is not
in this KNOBS_HOME, or no longer matches its name, is reported missing, never guessed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from events.store.blobs import BlobMissing, get_blob

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"  # the checks' embedder (workers/jobs/distill_checks.py)


def read_vector(sha256: str) -> np.ndarray | None:
    """The unit vector stored under `sha256`, or None when it is not stored here."""
    if not sha256:
        return None
    try:
        return np.frombuffer(get_blob(sha256), dtype=np.float32).copy()
    except BlobMissing:
        return None


def read_vectors(shas: dict[str, str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """{id: vector} for the ids whose blob is stored, and the ids whose blob is not."""
    found: dict[str, np.ndarray] = {}
    missing: list[str] = []
    for key, sha in shas.items():
        vector = read_vector(sha)
        if vector is None:
            missing.append(key)
        else:
            found[key] = vector
    return found, missing


def source_vector(home: Path, question: str, answer: str) -> np.ndarray | None:
    """The source pair's embedding, when the worker's embedding cache holds it: the cache indexes
    sha256(embedder name, text) -> blob sha256 under $KNOBS_HOME/cache/embeddings, and the checks
    embed a pair as "question answer". No event names it, so None is an ordinary answer."""
    digest = hashlib.sha256(f"{EMBEDDER}\n{question} {answer}".encode()).hexdigest()
    index = home / "cache" / "embeddings" / digest[:2] / digest
    try:
        return read_vector(index.read_text().strip())
    except OSError:
        return None
