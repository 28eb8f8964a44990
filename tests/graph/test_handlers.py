"""Deterministic ids and rows, without a database."""

from __future__ import annotations

import uuid

from events.models import RunRecorded
from events.store.port import StoredEvent
from graph.handlers import (
    HANDLERS,
    RELATIONSHIP_NAMESPACE,
    parameter_value_id,
    rel_id,
    run_node_id,
    run_row,
    score_node_id,
)


def stored(position: int, event: RunRecorded) -> StoredEvent:
    return StoredEvent(position=position, event_id=f"ev-{position}", stream_id=event.stream_id(),
                       stream_version=1, event_type=event.event_type, schema_version=1,
                       data=event.payload(), recorded_at="2026-01-01T00:00:00Z", idempotency_key=None,
                       prev_hash="0" * 64, hash="0" * 64)


def test_node_ids_are_the_natural_keys() -> None:
    assert run_node_id("exp", "r1") == "exp/r1"
    assert score_node_id("exp", "r1", "mmlu") == "exp/r1/mmlu"
    # The value's canonical JSON keeps 1, 1.0, "1" and true apart
    assert [parameter_value_id("x", v) for v in (1, 1.0, "1", True)] == ["x=1", "x=1.0", 'x="1"', "x=true"]


def test_relationship_ids_are_uuid5_of_type_and_ends() -> None:
    rid = rel_id("USED_VALUE", "exp/r1", "lr=0.1")
    assert rid == str(uuid.uuid5(RELATIONSHIP_NAMESPACE, '["USED_VALUE","exp/r1","lr=0.1"]'))
    assert rid == rel_id("USED_VALUE", "exp/r1", "lr=0.1")
    assert rid != rel_id("USED_VALUE", "exp/r1", "lr=0.2")
    # No separator games: the ends are JSON-quoted
    assert rel_id("T", "a/b", "c") != rel_id("T", "a", "b/c")


def test_relationship_ids_computed_inline_equal_uuid5_of_canonical_json() -> None:
    from events.canonical import canonical_json

    ends = ["", "a", 'quote " and \\ backslash', "tab\tnew\nline\x00\x1f", "ünïcødé/数据", "emoji 🎲",
            "exp/r000001/mmlu", "lr=0.001", "x=\"1\"", "\u2028\u2029"]
    for start in ends:
        for end in ends:
            expected = str(uuid.uuid5(RELATIONSHIP_NAMESPACE, canonical_json(["T", start, end])))
            assert rel_id("T", start, end) == expected
    # Not three strings: the general path, the same definition
    assert rel_id("T", 1, None) == str(uuid.uuid5(RELATIONSHIP_NAMESPACE, '["T",1,null]'))  # type: ignore[arg-type]


def test_run_row_is_deterministic_and_complete() -> None:
    event = RunRecorded(experiment="e", run_id="r", params={"b": 2, "a": "x"}, seed=3, source_id="s",
                        costs={"gpu_hours": 1.5})
    row = run_row(stored(7, event), event)
    assert row == run_row(stored(7, event), event)
    assert row["props"]["cost_gpu_hours"] == 1.5
    assert row["props"]["params"] == '{"a":"x","b":2}'
    assert [p["name"] for p in row["params"]] == ["a", "b"]
    assert len(row["rel_ids"]) == 2 + 1 + 1  # two values, one source, one agent
    assert (row["position"], row["event_id"]) == (7, "ev-7")


def test_handlers_cover_the_projected_types_in_order() -> None:
    assert list(HANDLERS) == ["SourceCited", "RunRecorded", "BenchmarkScored", "ExperimentDeclared",
                             "RunCompleted", "RunFailed", "RankingDerived", "ShiftRequested", "ShiftMeasured",
                             "DatasetShiftMeasured", "TrainingInfluenceRecorded", "HypothesisTested",
                             "LensDefined", "DistillationRequested", "DistillateGenerated",
                             "DistillateAssessed", "CloudAssessed", "DistillationCompleted",
                             "JudgeReliabilityMeasured"]
