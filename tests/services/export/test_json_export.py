"""`knobs export json`: one deterministic document with the latest rankings in full."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from events.models import RankingDerived
from services.core.context import Context
from tests.services.export import BENCHMARK, EXPERIMENT, OTHER, build_log

ROOT = Path(__file__).resolve().parents[3]


def knobs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "services.cli.main", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, f"knobs {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_json_export_holds_the_ranking_and_is_deterministic(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    # Given two imported experiments, one of them ranked
    ranking_id = build_log(tmp_path)
    with Context() as ctx:
        head = ctx.store().head()

    # When the log is exported as JSON twice, to stdout and to a file
    text = knobs(knobs_env, "export", "json").stdout
    out = tmp_path / "export.json"
    knobs(knobs_env, "export", "json", "--out", str(out))

    # Then both are the same bytes, with sorted keys
    assert out.read_text() == text
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert doc["format"] == "knobs-export" and doc["version"] == 1 and doc["log_head"] == head

    # and the ranking is there in full: the event's fields, its log position, and it parses back
    [ranking] = doc["rankings"]
    assert ranking["ranking_id"] == ranking_id and ranking["position"] == head
    event = RankingDerived.model_validate({k: v for k, v in ranking.items()
                                           if k not in {"position", "event_id", "recorded_at", "supersedes"}})
    assert event.parameters[0].name == "lr" and len(event.used_events) == 30

    assert [e["name"] for e in doc["experiments"]] == [OTHER, EXPERIMENT]
    sweep = doc["experiments"][1]
    assert sweep["runs"] == 15 and sweep["rankings"] == [ranking_id] and sweep["design"] is None
    assert sweep["datasets"] == ["wiki/en:v1"] and sweep["sources"][0]["citation"].startswith("Test et al.")
    assert sweep["created"] <= sweep["updated"]
    lr = next(p for p in doc["parameters"] if p["name"] == "lr")
    assert lr["values"] == {OTHER: [0.001, 0.002], EXPERIMENT: [0.001, 0.002, 0.004]}
    assert lr["rankings"][0]["rank"] == 1 and lr["rankings"][0]["benchmark"] == BENCHMARK
    assert [b["name"] for b in doc["benchmarks"]] == [BENCHMARK, "val_loss"]
    assert {d["name"]: d["experiments"] for d in doc["datasets"]} == {
        "books": {OTHER: 2}, "wiki/en:v1": {EXPERIMENT: 15}}
