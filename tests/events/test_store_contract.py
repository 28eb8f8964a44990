"""The store port's promises, checked on every backend (SQLite and PostgreSQL, both real)."""

from __future__ import annotations

import multiprocessing
import random
import re
import threading
import time
import uuid
from queue import Empty

import pytest

from events.canonical import GENESIS_HASH, canonical_json
from events.errors import ConcurrencyConflict, IdempotencyMismatch, InvalidEvent
from events.models import BenchmarkScored, RunRecorded, SourceCited
from events.store import EventStore, NewEvent
from tests.events.backends import Backend, cited

RECORDED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def run(run_id: str = "r1", **params: str | bool | int | float) -> RunRecorded:
    return RunRecorded(experiment="e", run_id=run_id, params=params or {"lr": 0.001}, seed=1,
                       costs={"gpu_hours": 0.5})


def test_append_and_read_round_trip(store: EventStore) -> None:
    # Given three facts of different types, two on the same stream
    submitted = [
        NewEvent(SourceCited(source_id="vaswani2017", citation="Attention is all you need")),
        NewEvent(run(layers=6, d_model=512, optimizer="adam", warmup=True, dropout=0.1)),
        NewEvent(BenchmarkScored(experiment="e", run_id="r1", benchmark="bleu", value=25.8, n=3)),
    ]
    # When they are appended as one batch
    appended = store.append(submitted)
    # Then each lands at its own position, in input order, and reads back as submitted
    assert [(a.position, a.event_id, a.duplicate) for a in appended] == [
        (i + 1, str(new.event_id), False) for i, new in enumerate(submitted)
    ]
    rows = store.read_all()
    assert [row.position for row in rows] == [1, 2, 3]
    for row, new in zip(rows, submitted, strict=True):
        assert row.event_id == str(new.event_id)
        assert row.event_type == new.event_type
        assert row.schema_version == 1
        assert row.data == new.event.payload()
        assert row.decode() == new.event
        assert RECORDED_AT.match(row.recorded_at)
        assert row.idempotency_key is None
    assert [row.stream_version for row in rows] == [1, 1, 2]
    assert rows[0].prev_hash == GENESIS_HASH
    assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
    report = store.verify()
    assert report.ok and report.checked == 3 and report.head_hash == rows[2].hash


def test_data_is_stored_as_the_canonical_bytes_that_were_hashed(backend: Backend, store: EventStore) -> None:
    event = run(tokenizer="日本語 ✓", lr=0.1, tiny=1e-300, big=2**62, neg=-0.0, quote='a"b\\c')
    store.append([NewEvent(event)])
    [(data,)] = backend.sql("SELECT data FROM events")
    assert data == canonical_json(event.payload())
    assert store.read_all()[0].decode() == event


def test_positions_are_1_to_n_across_batches(store: EventStore) -> None:
    positions = []
    for size in (1, 3, 2, 5):
        positions += [a.position for a in store.append([cited(uuid.uuid4().hex) for _ in range(size)])]
    assert positions == list(range(1, 12))
    assert store.head() == 11
    assert [row.position for row in store.iter_all(batch=4)] == list(range(1, 12))


def test_empty_log_and_empty_batch(store: EventStore) -> None:
    assert store.head() == 0
    assert store.read_all() == []
    assert store.append([]) == []
    assert store.stream_version("source:none") == 0
    assert store.verify().ok and store.verify().head_hash == GENESIS_HASH


def test_read_all_after_limit_and_types(store: EventStore) -> None:
    store.append([cited("s1"), NewEvent(run("r1")), cited("s2"), NewEvent(run("r2")), cited("s3")])
    assert [row.position for row in store.read_all(after=2)] == [3, 4, 5]
    assert [row.position for row in store.read_all(after=1, limit=2)] == [2, 3]
    assert store.read_all(limit=0) == []
    assert [row.position for row in store.read_all(types=["RunRecorded"])] == [2, 4]
    assert [row.position for row in store.read_all(after=2, types=["SourceCited"], limit=1)] == [3]
    assert [row.position for row in store.read_all(types=["SourceCited", "RunRecorded"])] == [1, 2, 3, 4, 5]
    assert store.read_all(types=[]) == []
    assert store.read_all(after=5) == []


def test_read_stream_positions_and_stream_version(store: EventStore) -> None:
    store.append([cited("s1"), NewEvent(run("r1")), cited("s2")])
    store.append([NewEvent(BenchmarkScored(experiment="e", run_id="r1", benchmark="b", value=1.0))])
    stream = store.read_stream("run:e/r1")
    assert [(row.position, row.stream_version) for row in stream] == [(2, 1), (4, 2)]
    assert store.stream_version("run:e/r1") == 2
    assert store.stream_version("source:s2") == 1
    assert store.read_stream("run:e/none") == []
    assert [row.position for row in store.read_positions([4, 1, 99, 1])] == [1, 4]
    assert store.read_positions([]) == []


def test_read_fields_picks_top_level_fields_without_the_payload(store: EventStore) -> None:
    # Given a run and its score
    store.append([NewEvent(run("r/1", lr="0.1")),
                  NewEvent(BenchmarkScored(experiment="e", run_id="r/1", benchmark="bleu 'dev'", value=2.5))])
    # When two string fields and one missing field are read by position
    found = store.read_fields([2, 1, 99], ["run_id", "benchmark"])
    # Then each event comes back with its id, type and version, and just those fields
    whole = store.read_positions([1, 2])
    assert [(f.position, f.event_id, f.event_type, f.schema_version) for f in found] == \
        [(s.position, s.event_id, s.event_type, s.schema_version) for s in whole]
    assert [f.fields for f in found] == [{"run_id": "r/1", "benchmark": None},
                                         {"run_id": "r/1", "benchmark": "bleu 'dev'"}]
    assert store.read_fields([], ["run_id"]) == []
    with pytest.raises(ValueError, match="not a plain field name"):
        store.read_fields([1], ["run_id') --"])


def test_an_idempotency_key_appended_twice_is_stored_once(store: EventStore) -> None:
    # Given an event appended with a key
    [first] = store.append([cited("s1", key="import:vaswani2017")])
    # When the same content is appended again under the same key (a new event id: a retry
    # that rebuilt the event)
    [again] = store.append([cited("s1", key="import:vaswani2017")])
    # Then the answer is the original position, and the log holds it once
    assert (again.position, again.event_id, again.duplicate) == (first.position, first.event_id, True)
    assert store.head() == 1


def test_the_same_event_id_appended_twice_is_stored_once(store: EventStore) -> None:
    event = cited("s1")
    [first] = store.append([event])
    second = store.append([cited("s2"), event])
    assert second[1].position == first.position and second[1].duplicate
    assert [(a.position, a.duplicate) for a in second] == [(2, False), (1, True)]
    assert store.head() == 2


def test_duplicates_within_one_batch_answer_the_first_position(store: EventStore) -> None:
    event = cited("s1")
    appended = store.append([
        cited("a", key="k"), event, cited("a", key="k"), cited("b"), event,
    ])
    assert [(a.position, a.duplicate) for a in appended] == [
        (1, False), (2, False), (1, True), (3, False), (2, True),
    ]
    assert appended[2].event_id == appended[0].event_id
    assert store.head() == 3


def test_a_key_reused_for_other_content_is_refused_and_nothing_written(store: EventStore) -> None:
    store.append([cited("s1", citation="the original", key="k")])
    with pytest.raises(IdempotencyMismatch, match="'k'"):
        store.append([cited("s2"), cited("s1", citation="something else", key="k")])
    with pytest.raises(IdempotencyMismatch):
        store.append([cited("s3", key="k2"), cited("s3", citation="other", key="k2")])
    assert store.head() == 1
    assert store.read_all()[0].data["citation"] == "the original"


def test_an_event_id_reused_for_other_content_is_refused(store: EventStore) -> None:
    original = cited("s1")
    store.append([original])
    forged = NewEvent(SourceCited(source_id="s1", citation="changed"), event_id=original.event_id)
    with pytest.raises(IdempotencyMismatch):
        store.append([forged])
    assert store.head() == 1


def test_expected_versions_conflict_writes_nothing(store: EventStore) -> None:
    # Given a stream at version 1
    store.append([NewEvent(run("r1"))], expected_versions={"run:e/r1": 0})
    # When a writer that believes it is new appends to it
    with pytest.raises(ConcurrencyConflict) as caught:
        store.append([cited("s1"), NewEvent(run("r1"))], expected_versions={"run:e/r1": 0})
    # Then it is told the actual version and nothing of its batch is written
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == ("run:e/r1", 0, 1)
    assert store.head() == 1
    # And a writer with the right expectation gets consecutive stream versions
    score = BenchmarkScored(experiment="e", run_id="r1", benchmark="b", value=1.0)
    store.append([NewEvent(score), NewEvent(score)], expected_versions={"run:e/r1": 1})
    assert [row.stream_version for row in store.read_stream("run:e/r1")] == [1, 2, 3]


def test_expected_versions_guard_streams_outside_the_batch(store: EventStore) -> None:
    store.append([cited("s1")])
    with pytest.raises(ConcurrencyConflict):
        store.append([cited("s2")], expected_versions={"source:s1": 0})
    store.append([cited("s2")], expected_versions={"source:s1": 1, "source:s2": 0})
    assert store.head() == 2


def test_a_retried_acknowledged_batch_is_answered_not_refused(store: EventStore) -> None:
    batch = [NewEvent(run("r1"), idempotency_key="run r1")]
    first = store.append(batch, expected_versions={"run:e/r1": 0})
    retry = store.append(batch, expected_versions={"run:e/r1": 0})
    assert [(a.position, a.duplicate) for a in retry] == [(first[0].position, True)]


def test_a_batch_with_one_invalid_member_writes_nothing(store: EventStore) -> None:
    store.append([cited("s1")])
    nan_run = RunRecorded(experiment="e", run_id="r9", params={"lr": float("nan")})
    with pytest.raises(InvalidEvent, match="NaN"):
        store.append([cited("s2"), cited("s3"), NewEvent(nan_run)])
    with pytest.raises(ConcurrencyConflict):
        store.append([cited("s2"), cited("s1")], expected_versions={"source:s2": 0, "source:s1": 0})
    assert store.head() == 1
    assert store.stream_version("source:s2") == 0


def test_nan_is_rejected(store: EventStore) -> None:
    for value in (float("nan"), float("inf")):
        with pytest.raises(InvalidEvent):
            store.append([NewEvent(RunRecorded(experiment="e", run_id="r", params={"lr": value}))])
    assert store.head() == 0


def test_what_no_reader_could_hold_is_rejected(store: EventStore) -> None:
    # Given values the graph (64-bit integers) or UTF-8 text cannot hold, one of them found by
    # schemathesis: a 65-bit parameter was stored, and the projector stopped at it for good
    for params, says in (({"lr": 2**63}, "beyond a 64-bit integer"), ({"lr": -(2**63) - 1}, "64-bit"),
                         ({"name": "\ud800"}, "lone surrogate")):
        # When one is appended, Then the store refuses it, naming where it is, and stores nothing
        with pytest.raises(InvalidEvent, match=says):
            store.append([NewEvent(RunRecorded(experiment="e", run_id="r", params=params))])
    assert store.head() == 0
    # The 64-bit bounds themselves are fine
    store.append([NewEvent(RunRecorded(experiment="e", run_id="r", params={"a": 2**63 - 1, "b": -(2**63)}))])
    assert store.head() == 1


def test_a_reopened_store_sees_what_was_appended(backend: Backend) -> None:
    with backend.open() as first:
        first.append([cited("s1"), cited("s2")])
    with backend.open() as second:
        assert second.head() == 2
        assert second.append([cited("s3")])[0].position == 3
        assert second.verify().ok


def test_threads_sharing_one_store_append_without_loss(store: EventStore) -> None:
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for k in range(25):
                store.append([cited(f"t{thread}-{k}-{j}") for j in range(1 + k % 3)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = 4 * sum(1 + k % 3 for k in range(25))
    assert store.head() == expected
    assert [row.position for row in store.iter_all()] == list(range(1, expected + 1))
    assert store.verify().ok


WRITERS, APPENDS_PER_WRITER = 4, 200


def _batch_sizes(writer: int) -> list[int]:
    rng = random.Random(writer)
    return [rng.randint(1, 5) for _ in range(APPENDS_PER_WRITER)]


def _write(backend: Backend, writer: int) -> None:
    with backend.open() as store:
        for k, size in enumerate(_batch_sizes(writer)):
            store.append([cited(f"w{writer}-{k}-{j}") for j in range(size)])


def _tail(backend: Backend, total: int, results: multiprocessing.Queue, timeout_s: float) -> None:  # type: ignore[type-arg]
    """Read `after=last` until `total` is seen; report what was seen and any gap."""
    seen: list[int] = []
    gaps: list[str] = []
    reads = 0
    deadline = time.monotonic() + timeout_s
    with backend.open() as store:
        while len(seen) < total and time.monotonic() < deadline and not gaps:
            last = seen[-1] if seen else 0
            positions = [row.position for row in store.read_all(after=last, limit=97)]
            reads += 1
            if positions and positions != list(range(last + 1, last + 1 + len(positions))):
                gaps.append(f"after {last} read {positions[:10]}")
            seen += positions
    results.put((seen, gaps, reads))


@pytest.mark.slow
def test_concurrent_writer_processes_and_a_tailer_never_see_a_gap(backend: Backend) -> None:
    # Given a log (schema created) and the batches four writers will append
    backend.open().close()
    total = sum(sum(_batch_sizes(w)) for w in range(WRITERS))
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    # When a tailer follows the log while four processes append concurrently
    tailer = ctx.Process(target=_tail, args=(backend, total, results, 90.0))
    tailer.start()
    writers = [ctx.Process(target=_write, args=(backend, w)) for w in range(WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    try:
        seen, gaps, reads = results.get(timeout=120)
    except Empty:
        pytest.fail("the tailer reported nothing")
    tailer.join(10)
    # Then every writer finished, the tailer never saw a gap and saw every position once
    assert [w.exitcode for w in writers] == [0] * WRITERS
    assert gaps == []
    assert seen == list(range(1, total + 1))
    assert reads > total // 97 + 1  # more than a reader of a finished log needs: it overlapped
    with backend.open() as store:
        assert store.head() == total
        assert store.verify().ok
        versions = {row.stream_id: row.stream_version for row in store.iter_all()}
        assert set(versions.values()) == {1}


def _open_and_append(backend: Backend, writer: int) -> None:
    with backend.open() as store:
        store.append([cited(f"opener-{writer}")])


@pytest.mark.slow
def test_a_fresh_log_opened_by_several_processes_at_once(backend: Backend) -> None:
    # Given no log yet, when four processes create it and append at the same moment
    ctx = multiprocessing.get_context("spawn")
    openers = [ctx.Process(target=_open_and_append, args=(backend, w)) for w in range(4)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(60)
    # Then all succeed and the log holds one event from each
    assert [o.exitcode for o in openers] == [0] * 4
    with backend.open() as store:
        assert store.head() == 4 and store.verify().ok
