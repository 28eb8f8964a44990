"""The projector: the only writer of the Neo4j graph, a resumable fold of the event log.

One batch = one Neo4j write transaction holding the batch's writes *and* the checkpoint
`(:Projection {id: 'main', position})`, so the graph always equals "the log up to the
checkpoint": killed at any instant, the projector resumes from the committed checkpoint
with nothing lost or doubled. `python -m graph.projector --help` runs it as a process.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j

from events.errors import EventsError
from events.models.base import Event
from events.store.port import EventStore, StoredEvent
from graph.errors import GraphUnavailable, ProjectionFailed, RebuildInProgress, translated
from graph.handlers import HANDLERS, HUB_STATEMENTS, Fast, Row
from graph.handlers.common import StoreLookup
from graph.schema import ensure_schema

log = logging.getLogger("knobs.graph.projector")

PAUSE_ENV = "KNOBS_PROJECTOR_PAUSE_BEFORE_COMMIT"
"""Seconds to sleep inside the transaction, after the writes, before commit (tests only)."""

CHECKPOINT_ID = "main"

REBUILDING = -1
"""Checkpoint position while a rebuild wipes the graph: no projector may write meanwhile."""

# Two statements, because Neo4j reads are read-committed: a statement that reads the
# position and then waits for the lock (SET p.position = p.position) would go on with the
# value it read before waiting — and write it back. So: take the lock with a blind write,
# then read the position in a new statement, which sees what the lock's last holder
# committed. A second projector waits on the lock, then sees the position moved and backs
# off instead of applying the same batch again.
_LOCK_CHECKPOINT = """
MERGE (p:Projection {id: $id})
  ON CREATE SET p.position = 0
SET p.locked = true
"""

_READ_LOCKED_CHECKPOINT = """
MATCH (p:Projection {id: $id})
REMOVE p.locked
RETURN p.position AS position
"""

# `hash` is the chain hash of the event at `position`: it ties the graph to the one log
# (and the one history of it) it was projected from.
_SET_CHECKPOINT = "MATCH (p:Projection {id: $id}) SET p.position = $position, p.hash = $hash"

_READ_CHECKPOINT = "MATCH (p:Projection {id: $id}) RETURN p.position AS position, p.hash AS hash"


def wipe(session: neo4j.Session, keep: str | None = None) -> None:
    """Delete every node and relationship (but the checkpoint named `keep`), in batches.

    Relationships first, then the nodes: a DETACH DELETE of a hub (the Experiment of 100k runs,
    a ParameterValue they share) takes all its relationships in one inner transaction, which ran
    Neo4j's 1 GiB heap out at 100k runs. CALL ... IN TRANSACTIONS needs an auto-commit query.
    """
    session.run("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS").consume()
    spared = "WHERE NOT (n:Projection AND n.id = $keep) " if keep is not None else ""
    session.run(f"MATCH (n) {spared}CALL (n) {{ DELETE n }} IN TRANSACTIONS OF 10000 ROWS",
                keep=keep).consume()


@dataclass(frozen=True)
class _Statement:
    cypher: str
    rows: list[Row]
    fast: Fast | None = None


@dataclass(frozen=True)
class _Batch:
    hubs: dict[str, list[Row]]
    """HUB_STATEMENTS key -> one row per hub, at the lowest position in the batch naming it."""
    statements: list[_Statement]

    def apply(self, tx: neo4j.ManagedTransaction) -> None:
        for kind, cypher in HUB_STATEMENTS.items():
            if self.hubs.get(kind):
                tx.run(cypher, hubs=self.hubs[kind]).consume()
        for statement in self.statements:
            new, rest = _split(tx, statement)
            if new:
                assert statement.fast is not None
                tx.run(statement.fast.cypher, rows=new).consume()
            if rest:
                tx.run(statement.cypher, rows=rest).consume()


def _split(tx: neo4j.ManagedTransaction, statement: _Statement) -> tuple[list[Row], list[Row]]:
    """(rows for the fast statement, rows for the per-row one), each in log order.

    Read inside the batch's transaction, after the types applied before this one, so a node
    an earlier statement of the batch made counts as existing.
    """
    if statement.fast is None:
        return [], statement.rows
    named = Counter(row["id"] for row in statement.rows)
    once = [node for node, count in named.items() if count == 1]
    existing: set[str] = set()
    if once:
        result = tx.run(
            f"UNWIND $ids AS id MATCH (n:{statement.fast.label} {{id: id}}) RETURN n.id AS id", ids=once
        )
        existing = {record["id"] for record in result}
    new: list[Row] = []
    rest: list[Row] = []
    eligible = statement.fast.eligible
    for row in statement.rows:
        fast = named[row["id"]] == 1 and row["id"] not in existing and (eligible is None or eligible(row))
        (new if fast else rest).append(row)
    return new, rest


class Projector:
    """Projects the event log into Neo4j; see the module docstring for the guarantees."""

    def __init__(
        self,
        driver: neo4j.Driver,
        store: EventStore,
        batch_size: int = 2000,
        *,
        database: str = "neo4j",
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.driver = driver
        self.store = store
        self.batch_size = batch_size
        self.database = database
        self._schema_ready = False
        self._reader: ThreadPoolExecutor | None = None
        self._ahead: tuple[int, Future[tuple[list[StoredEvent], _Batch]]] | None = None
        """(position it reads after, the read) for the next batch, while run_once runs."""
        self._running = threading.Lock()
        """One run at a time per Projector: the read-ahead above is this object's, and threads of
        one server (each request that catches the graph up) share the Projector."""

    # ------------------------------------------------------------------ public

    def checkpoint(self) -> int:
        """The last log position the graph holds (0 when nothing is projected), read from Neo4j."""
        return max(0, self._read_checkpoint()[0])

    def _read_checkpoint(self) -> tuple[int, str | None]:
        with translated("reading the projection checkpoint"):
            records, _, _ = self.driver.execute_query(
                _READ_CHECKPOINT, {"id": CHECKPOINT_ID},
                database_=self.database, routing_=neo4j.RoutingControl.READ,
            )
        if not records:
            return 0, None
        return int(records[0]["position"]), records[0]["hash"]

    def _check_same_log(self, position: int, hash_: str | None) -> None:
        """Refuse to extend a graph that was projected from another log (or another history)."""
        if position <= 0:
            return
        found = self.store.read_positions([position])
        if found and found[0].hash == hash_:
            return
        here = (f"its event there has hash {found[0].hash[:12]}" if found
                else f"its head is {self.store.head()}")
        raise ProjectionFailed(
            f"the graph was projected from a different event log: its checkpoint is position "
            f"{position} with hash {str(hash_)[:12]}, but in this log {here}. Run "
            "`knobs graph rebuild` to rebuild it from this log, or point KNOBS_EVENTS_* / "
            "KNOBS_NEO4J_* at the pair that belong together"
        )

    def lag(self) -> int:
        """How many log positions the graph is behind (store head minus checkpoint)."""
        return max(0, self.store.head() - self.checkpoint())

    def run_once(self) -> int:
        """Project every event after the checkpoint; returns how many events were consumed.

        Events of types the graph does not project are consumed too (the checkpoint moves
        past them), so the count is the distance the checkpoint moved.
        """
        with self._running:
            return self._run()

    def run_until(self, position: int) -> int:
        """Project until the graph holds `position` (the log's head when a request came in).

        Threads that wait here while another projects find the checkpoint already there and
        return at once: many requests catching up at the same moment cost one projection, not
        one each, queued on the checkpoint's lock in Neo4j.
        """
        with self._running:
            after, hash_ = self._read_checkpoint()
            if after >= position:
                self._check_same_log(after, hash_)  # a graph of another log is still refused
                return 0
            return self._run()

    def _run(self) -> int:
        self._ensure_schema()
        self._refuse_orphan_graph()
        total = 0
        # One thread reads and builds the next batch while Neo4j applies this one: the two
        # take about the same order of time, and they use different cores.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="knobs-projector-read") as pool:
            self._reader = pool
            try:
                while True:
                    done = self._project_batch()
                    if done is None:
                        continue  # another projector moved the checkpoint: re-read it
                    if done == 0:
                        return total
                    total += done
            finally:
                self._reader, self._ahead = None, None

    def follow(self, poll_interval: float, stop_event: threading.Event) -> int:
        """Keep projecting until `stop_event` is set; returns the events consumed.

        Neo4j going away is waited out (logged, retried each poll) rather than fatal, so a
        long-running projector survives a database restart.
        """
        total = 0
        waiting: type[Exception] | None = None  # log a wait once, not at every poll
        while not stop_event.is_set():
            try:
                done = self.run_once()
                waiting = None
            except (GraphUnavailable, RebuildInProgress) as exc:
                if waiting is not type(exc):
                    log.warning("%s; retrying every %.2g s", exc, poll_interval)
                    waiting = type(exc)
                if isinstance(exc, GraphUnavailable):
                    self._schema_ready = False
                done = 0
            total += done
            if done == 0:
                stop_event.wait(poll_interval)
        return total

    def rebuild(self) -> int:
        """Wipe the graph (nodes, relationships, checkpoint) and replay the whole log.

        The checkpoint node is kept but set to REBUILDING first: that waits for any batch
        another projector has in flight (it holds the checkpoint's lock), and makes every
        projector stand still until the wipe is done and the checkpoint reads 0. An
        interrupted rebuild leaves REBUILDING behind, so nothing builds on a half-wiped graph
        until `rebuild()` runs again.
        """
        self._ensure_schema()
        with translated("wiping the graph for a rebuild"):
            self.driver.execute_query(
                "MERGE (p:Projection {id: $id}) SET p.position = $rebuilding REMOVE p.hash",
                {"id": CHECKPOINT_ID, "rebuilding": REBUILDING}, database_=self.database,
            )
            with self.driver.session(database=self.database) as session:
                wipe(session, keep=CHECKPOINT_ID)
            self.driver.execute_query(
                _SET_CHECKPOINT, {"id": CHECKPOINT_ID, "position": 0, "hash": None},
                database_=self.database,
            )
        return self.run_once()

    # ----------------------------------------------------------------- batches

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            ensure_schema(self.driver, self.database)
            self._schema_ready = True

    def _refuse_orphan_graph(self) -> None:
        with translated("reading the projection checkpoint"):
            records, _, _ = self.driver.execute_query(
                "OPTIONAL MATCH (p:Projection {id: $id}) "
                "RETURN p IS NOT NULL AS has_checkpoint, EXISTS { MATCH (n) } AS has_nodes",
                {"id": CHECKPOINT_ID},
                database_=self.database, routing_=neo4j.RoutingControl.READ,
            )
        if records and not records[0]["has_checkpoint"] and records[0]["has_nodes"]:
            raise ProjectionFailed(
                f"database {self.database!r} has nodes but no projection checkpoint (a "
                "database knobs did not build?): run `knobs graph rebuild` to wipe it and "
                "replay the log, or point KNOBS_NEO4J_URI / KNOBS_NEO4J_DATABASE at knobs' "
                "own database"
            )
        with translated("creating the projection checkpoint"):
            # So that an empty log projects to the same graph as a rebuild of it.
            self.driver.execute_query(
                "MERGE (p:Projection {id: $id}) ON CREATE SET p.position = 0",
                {"id": CHECKPOINT_ID}, database_=self.database,
            )

    def _project_batch(self) -> int | None:
        """Project one batch. Returns events consumed, or None if another writer got there first."""
        after, hash_ = self._read_checkpoint()
        if after == REBUILDING:
            raise RebuildInProgress(
                "the graph is being rebuilt, so nothing is projected until the rebuild is done; "
                "if no rebuild is running (one was interrupted), run `knobs graph rebuild`"
            )
        self._check_same_log(after, hash_)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == after:
            events, batch = ahead[1].result()
        else:
            events, batch = self._read(after)
        if not events:
            return 0
        last = events[-1].position
        if self._reader is not None:
            # Read ahead from where this batch ends; used only if the checkpoint is there next
            # time (the log is append-only, so what it reads stays true). A failure (an event
            # that cannot be read) is raised when that batch is taken, where a plain read
            # would have raised it.
            self._ahead = (last, self._reader.submit(self._read, last))

        def work(tx: neo4j.ManagedTransaction) -> bool:
            # Idempotent, as the driver requires of a retried transaction function: it
            # applies the batch only when the checkpoint is still where it was read.
            tx.run(_LOCK_CHECKPOINT, id=CHECKPOINT_ID).consume()
            record = tx.run(_READ_LOCKED_CHECKPOINT, id=CHECKPOINT_ID).single(strict=True)
            if int(record["position"]) != after:
                return False
            batch.apply(tx)
            tx.run(_SET_CHECKPOINT, id=CHECKPOINT_ID, position=last, hash=events[-1].hash).consume()
            pause = float(os.environ.get(PAUSE_ENV) or 0)
            if pause > 0:
                log.warning("paused %.1f s before commit of positions %d..%d (%s)",
                            pause, events[0].position, last, PAUSE_ENV)
                time.sleep(pause)
            return True

        with translated(f"projecting log positions {events[0].position}..{last}"), \
                self.driver.session(database=self.database) as session:
            applied = session.execute_write(work)
        if not applied:
            log.info("checkpoint moved past %d under us (another projector?); re-reading", after)
            return None
        log.debug("projected positions %d..%d", events[0].position, last)
        return len(events)

    def _read(self, after: int) -> tuple[list[StoredEvent], _Batch]:
        events = self.store.read_all(after=after, limit=self.batch_size)
        return events, self._batch(events)

    def _batch(self, events: Sequence[StoredEvent]) -> _Batch:
        """The hubs, then one statement per projected type present in the batch, in HANDLERS order.

        A batch is applied type by type rather than run by run of consecutive types: an
        interleaved log (run, score, run, score, ...) would otherwise cost one round trip
        per event. Within a type, log order is kept; across types the result does not
        depend on the order (see graph.handlers), which the tests check by comparing
        batch_size=1 with large batches byte for byte.
        """
        by_type: dict[str, list[tuple[StoredEvent, Event]]] = {}
        for stored in events:
            if stored.event_type not in HANDLERS:
                continue  # another capability's fact: nothing to draw
            try:
                event = stored.decode()
            except EventsError as exc:
                raise ProjectionFailed(
                    f"cannot project the event at log position {stored.position} "
                    f"({stored.event_type}): {exc}. The checkpoint stays before it; "
                    "fix the cause (often: upgrade knobs) and run the projector again"
                ) from exc
            by_type.setdefault(stored.event_type, []).append((stored, event))
        statements: list[_Statement] = []
        lowest: dict[str, dict[Any, Row]] = {}
        for event_type, handler in HANDLERS.items():
            batch = by_type.get(event_type)
            if batch:
                rows = handler.build(batch, StoreLookup(self.store))
                if rows:
                    statements.append(_Statement(handler.cypher, rows, handler.fast))
                if handler.fast is not None:
                    for row in rows:
                        for kind, hub in handler.fast.hubs(row):
                            seen = lowest.setdefault(kind, {})
                            known = seen.get(hub["id"])
                            if known is None or hub["position"] < known["position"]:
                                seen[hub["id"]] = hub
        return _Batch({kind: list(hubs.values()) for kind, hubs in lowest.items()}, statements)


# --------------------------------------------------------------------- process


def _open_store(sqlite: Path | None) -> EventStore:
    if sqlite is not None:
        from events.store.sqlite import SQLiteEventStore

        store: EventStore = SQLiteEventStore(sqlite)
        return store
    from events.settings import EventsSettings
    from events.store.factory import open_store

    opened: EventStore = open_store(EventsSettings())
    return opened


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m graph.projector`: project once, follow, or rebuild; Neo4j from KNOBS_NEO4J_*."""
    from graph.settings import Neo4jSettings, driver_from

    parser = argparse.ArgumentParser(prog="python -m graph.projector", description=main.__doc__)
    parser.add_argument("--sqlite", type=Path, help="SQLite event log (default: KNOBS_EVENTS_* settings)")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--follow", action="store_true", help="keep following the log until killed")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between polls with --follow")
    parser.add_argument("--rebuild", action="store_true", help="wipe the graph and replay the log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Neo4jSettings()
    driver = driver_from(settings)
    store = _open_store(args.sqlite)
    try:
        projector = Projector(driver, store, args.batch_size, database=settings.database)
        if args.rebuild:
            count = projector.rebuild()
        elif args.follow:
            stop = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            count = projector.follow(args.poll, stop)
        else:
            count = projector.run_once()
        print(f"projected {count} events; checkpoint {projector.checkpoint()}", flush=True)
        return 0
    finally:
        store.close()
        driver.close()


if __name__ == "__main__":
    sys.exit(main())
