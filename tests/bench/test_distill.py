"""The distillation benchmark runs in its quick mode against the session's real LLM server: every
side printed, and knobs really stored what it was timed storing (the logs, the response and
embedding caches, a rerun that sent no request). No figure is asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import distill
from events.settings import EventsSettings
from events.store.factory import open_store


def events(log: Path, kind: str) -> list[dict[str, Any]]:
    with open_store(EventsSettings(sqlite_path=log)) as store:
        return [e.data for e in store.read_all(types=[kind])]


def test_planted_near_duplicates_are_seeded_and_point_at_originals() -> None:
    # Given the same seed twice, and another seed
    made, again, other = (distill.make_texts(600, 0.1, seed) for seed in (3, 3, 4))

    # Then the texts are the same for the same seed, a tenth of them planted, each after the
    # original it edits (never a copy of a copy), and another seed plants elsewhere
    assert made == again and made.texts != other.texts
    assert len(made.texts) == 600 and len(made.planted) == 60
    assert all(source < i and source not in made.planted for i, source in made.planted.items())
    assert all(made.texts[i] != made.texts[source] for i, source in made.planted.items())


@pytest.mark.slow
def test_distill_benchmark_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            llm_server: Any) -> None:
    out, work = tmp_path / "figures.json", tmp_path / "work"
    server = ["--base-url", llm_server.base_url, "--api-key", llm_server.api_key, "--model", llm_server.model]
    assert distill.main(["--quick", "--json", str(out), "--workdir", str(work), *server]) == 0
    printed = capsys.readouterr().out
    for text in ("plain loop", "concurrency 1", "concurrency 2", "pipeline, cold", "fully cached rerun",
                 "vs loop",
                 "texts/s", "dedup_matrix", "naive loop", "EXTRAPOLATED", "machine:", "checks: ok"):
        assert text in printed, text
    figures = json.loads(out.read_text())
    n = figures["workload"]["distillates"]
    assert n == 4 and figures["checks"]["ok"]
    assert set(figures["llm"]) == {"loop", "client_c1", "client_c2", "pipeline", "rerun"}
    assert all(side["distillates"] == n and side["seconds"] > 0 for side in figures["llm"].values())

    # What the cold pipeline was timed storing is in its log and its response cache
    home = work / "home"
    generated = events(home / "events.sqlite3", "DistillateGenerated")
    assert len(generated) == n and not any(d["usage"]["cached"] for d in generated)
    assert len(events(home / "events.sqlite3", "DistillateAssessed")) == n
    (cold,) = events(home / "events.sqlite3", "DistillationCompleted")
    assert cold["requests"] >= n and cold["cached"] == 0
    assert sum(1 for _ in (home / "cache" / "llm").rglob("*.json")) == n
    # The rerun has a log of its own, every answer from the cache, no request
    rerun_log = home / "rerun.sqlite3"
    (rerun,) = events(rerun_log, "DistillationCompleted")
    assert rerun["requests"] == 0 and rerun["cached"] == n
    assert {d["text"] for d in events(rerun_log, "DistillateGenerated")} == {d["text"] for d in generated}
    # Each client side filled its own cache; the embedder stored one vector per distinct text
    for c in (1, 2):
        assert sum(1 for _ in (work / f"client-c{c}-cache").rglob("*.json")) == n
    embedding = figures["embedding"]
    indexed = [p for p in (work / "embed-home" / "cache" / "embeddings").rglob("*") if p.is_file()]
    assert len(indexed) == embedding["distinct_texts"] and embedding["embed_warm_computed"] == 0
    assert embedding["same_duplicates_on_prefix"] and embedding["extrapolated"]
