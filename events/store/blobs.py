"""Content-addressed blobs beside the log: bytes too large for an event, named by their sha256.

An event carries a blob's sha256; the blob lives at $KNOBS_HOME/blobs/sha256/<first 2>/<sha>.
Writing is atomic (a temporary file renamed into place) and idempotent (the same bytes are
the same file), and reading checks the bytes against their name, so a blob cannot silently
differ from what the event that names it says.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from events.errors import EventsError, StoreFull
from events.home import knobs_home


class BlobMissing(EventsError):
    """No blob has this sha256 here, or its bytes no longer match it."""


def blobs_dir() -> Path:
    return knobs_home() / "blobs" / "sha256"


def blob_path(sha256: str, root: Path | None = None) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise BlobMissing(f"{sha256!r} is not a sha256 (64 lowercase hex digits)")
    return (root or blobs_dir()) / sha256[:2] / sha256


def put_blob(data: bytes, root: Path | None = None) -> str:
    """Store `data`; returns its sha256. Safe to call twice and from several processes."""
    sha = hashlib.sha256(data).hexdigest()
    path = blob_path(sha, root)
    if path.is_file():
        return sha
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError as exc:
        raise _full_or(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        # A half-written temporary file is never renamed into place, and not left behind.
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _full_or(exc, path) from exc
        raise
    return sha


def _full_or(exc: OSError, path: Path) -> OSError | StoreFull:
    """A full disk as the store's StoreFull (its message says what to do); other errors as they are."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(str(path.parent.parent.parent), f"writing the blob {path.name}")
    return exc


def get_blob(sha256: str, root: Path | None = None) -> bytes:
    path = blob_path(sha256, root)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BlobMissing(f"blob {sha256} is not in {path.parent.parent}: was the measurement "
                          "made with another KNOBS_HOME?") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BlobMissing(f"blob {sha256} at {path} does not match its sha256: it was altered")
    return data


def tree_sha256(path: Path) -> str:
    """sha256 over the sorted (relative path, file sha256) of every file under `path`: what names
    a model directory (its weights, config and tokenizer) in a measurement."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                inner.update(block)
        digest.update(f"{file.relative_to(path).as_posix()}\0{inner.hexdigest()}\n".encode())
    return digest.hexdigest()
