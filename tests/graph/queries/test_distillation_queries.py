"""The distillation_* named queries over the small distillation log (tests/graph/distillation_log.py)."""

from __future__ import annotations

from typing import Any

import neo4j
import pytest

from events.models.distillation import pair_node_id
from events.store.port import EventStore
from graph.projector import Projector
from tests.graph.distillation_log import LENSES, PAIR_SET, RESTATE_V2, DistillationLog, distillation_log
from tests.graph.queries.test_named_queries import run

V1 = {lens.name: lens.version for lens in LENSES}
V2 = RESTATE_V2.version


@pytest.fixture
def log(graph: neo4j.Driver, store: EventStore) -> DistillationLog:
    built = distillation_log(store)
    Projector(graph, store).run_once()
    return built


def by_lens(rows: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
    return [(r["lens"], r["version"], *(r[c] for c in columns)) for r in rows]


def test_lenses_by_survival(log: DistillationLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "distillation_lenses_by_survival", distillation=None)
    assert by_lens(rows, "generated", "assessed", "accepted", "rejected", "reasons") == [
        ("restate", V2, 3, 2, 2, 0, []),
        ("restate", V1["restate"], 6, 6, 5, 1, [["duplicate", 1]]),
        ("child", V1["child"], 6, 6, 4, 2, [["too_short", 2]]),
        ("causal", V1["causal"], 6, 6, 3, 3, [["duplicate", 3]]),
    ]
    assert [r["survival"] for r in rows] == pytest.approx([1.0, 5 / 6, 4 / 6, 0.5])
    assert rows[1]["family"] == "restate" and rows[1]["lens_positions"] == [1]
    # One distillation: the edited lens is not in it
    only_a = run(graph, "distillation_lenses_by_survival", distillation=log.a)
    assert [r["version"] for r in only_a] == [V1["restate"], V1["child"], V1["causal"]]
    assert {r["distillations"] for r in only_a} == {1}
    assert run(graph, "distillation_lenses_by_survival", distillation="no-such") == []


def test_lenses_by_diversity(log: DistillationLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "distillation_lenses_by_diversity", distillation=None)
    # child: 4 new distillates at distance 0.30/0.31, none repeated; causal: 3 new at 0.5 and 3
    # duplicates; restate v2: 2 at 0.2; restate v1: 5 at 0.10/0.11 and one duplicate of child's
    assert by_lens(rows, "accepted", "duplicates", "clouds", "repeats_other_lenses",
                   "repeated_by_other_lenses") == [
        ("child", V1["child"], 4, 0, 2, 0, 1),
        ("causal", V1["causal"], 3, 3, 3, 0, 0),
        ("restate", V2, 2, 0, 2, 0, 0),
        ("restate", V1["restate"], 5, 1, 3, 1, 0),
    ]
    assert [r["diversity_added"] for r in rows] == pytest.approx([1.22 / 4, 1.5 / 6, 0.4 / 2, 0.52 / 6])
    assert [r["novelty"] for r in rows] == pytest.approx([1.0, 0.5, 1.0, 5 / 6])
    assert [r["mean_distance"] for r in rows] == pytest.approx([0.305, 0.5, 0.2, 0.104])
    only_b = run(graph, "distillation_lenses_by_diversity", distillation=log.b)
    assert by_lens(only_b, "assessed") == [("restate", V2, 2)]


def test_pair_cloud(log: DistillationLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "distillation_pair_cloud", pair="q1", distillation=log.a)
    assert [(r["lens"], r["sample"], r["accepted"], r["reasons"]) for r in rows] == [
        ("causal", 0, True, []), ("causal", 1, False, ["duplicate"]),
        ("child", 0, True, []), ("child", 1, True, []),
        ("restate", 0, True, []), ("restate", 1, True, []),
    ]
    dup = rows[1]
    assert dup["duplicate_of"] == log.ids[(log.a, "q1", "causal", 0)] == rows[0]["distillate_id"]
    assert dup["duplicate_cosine"] == 0.97 and dup["text"].startswith("causal #1: Where was Anya")
    assert (dup["question"], dup["answer"], dup["model"], dup["engine"]) == (
        "Where was Anya Petrova born?", "Lisbon", "tiny-instruct", "llm")
    assert (dup["cloud_generated"], dup["cloud_accepted"], dup["cloud_vendi"]) == (6, 5, 2.5)
    assert len(dup["positions"]) == 2 and len(dup["event_ids"]) == 2
    # Every distillation of the pair, and the pair named by its QAPair id
    both = run(graph, "distillation_pair_cloud", pair="q1", distillation=None)
    assert len(both) == 7
    assert both == run(graph, "distillation_pair_cloud", pair=pair_node_id(PAIR_SET.sha256, "q1"),
                       distillation=None)
    [template] = [r for r in both if r["distillation_id"] == log.b]
    assert (template["engine"], template["accepted"], template["cloud_vendi"]) == ("template", True, None)
    [pending] = run(graph, "distillation_pair_cloud", pair="q3", distillation=log.b)
    assert pending["accepted"] is None and pending["reasons"] is None
    assert run(graph, "distillation_pair_cloud", pair="no-such-pair", distillation=None) == []


def test_models(log: DistillationLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "distillation_models", distillation=None)
    assert [(r["model"], r["engine"], r["distillations"], r["distillates"], r["assessed"], r["accepted"],
             r["requests"], r["cached"]) for r in rows] == [
        ("tiny-instruct", "llm", [log.a], 18, 18, 12, 18, 0),
        ("template", "template", [log.b], 3, 2, 2, 0, 0),
    ]
    llm = rows[0]
    assert llm["lenses"] == sorted(f"{lens.name}@{lens.version}" for lens in LENSES)
    assert llm["survival"] == pytest.approx(2 / 3) and llm["prompt_tokens"] == 9 * 20 + 9 * 21
    assert llm["mean_latency_s"] == pytest.approx(0.5) and llm["completion_tokens"] > 0
    assert [r["model"] for r in run(graph, "distillation_models", distillation=log.b)] == ["template"]
