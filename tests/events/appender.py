"""An appender process for the store's kill row (F1, F2): `python -m tests.events.appender`.

It appends batches in a loop and, only after `append` returned, writes each acknowledged
`position event_id batch size` line to its own file and fsyncs it: whatever that file holds was
acknowledged, so the log must hold it, however the process is killed.
"""

from __future__ import annotations

import os
import random
import sys
import uuid

from tests.events.backends import Backend, cited


def batch_source(batch: str, index: int, size: int) -> str:
    """A source id that names its batch and its place in it, so the log alone shows a torn batch."""
    return f"{batch}:{index}/{size}"


def main(backend: str, target: str, acks: str, seed: str) -> None:
    rng = random.Random(f"{seed}-{os.getpid()}")
    with Backend(backend, target).open() as store, open(acks, "a") as out:
        while True:
            batch, size = uuid.uuid4().hex, rng.randint(1, 6)
            appended = store.append([cited(batch_source(batch, i, size)) for i in range(size)])
            out.write("".join(f"{a.position} {a.event_id} {batch} {size}\n" for a in appended))
            out.flush()
            os.fsync(out.fileno())


if __name__ == "__main__":
    main(*sys.argv[1:5])
