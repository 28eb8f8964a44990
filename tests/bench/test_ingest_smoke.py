"""The ingest benchmark runs end to end at a tiny size; no timing is asserted, only that it
prints its figures and that knobs really stored and projected every record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from neo4j import GraphDatabase

from bench import ingest
from events.store.sqlite import SQLiteEventStore
from graph.projector import Projector
from services.infra.neo4j import start_neo4j, stop_neo4j

RECORDS = 2000
BENCHMARKS = 5


@pytest.mark.slow
def test_ingest_benchmark_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a real Neo4j of the test's own, which the benchmark is pointed at
    home = tmp_path / "neo4j-home"
    state = start_neo4j(home)
    try:
        monkeypatch.setenv("KNOBS_NEO4J_URI", state["uri"])
        monkeypatch.setenv("KNOBS_NEO4J_USER", state["user"])
        monkeypatch.setenv("KNOBS_NEO4J_PASSWORD", state["password"])
        out, workdir = tmp_path / "figures.json", tmp_path / "work"

        # When the benchmark runs at a tiny size, keeping its databases
        code = ingest.main(["--records", str(RECORDS), "--json", str(out), "--workdir", str(workdir)])
        printed = capsys.readouterr().out

        # Then it succeeds and prints the table, the ratios and the machine
        assert code == 0, printed
        for system in ("knobs append", "knobs projection", "knobs end to end", "MLflow", "bare sqlite3"):
            assert system in printed
        ratios = ("knobs append     / MLflow", "knobs end to end / MLflow", "knobs append     / bare SQLite")
        for ratio in ratios:
            assert ratio in printed
        assert "machine:" in printed and "records/s" in printed
        assert "checks: ok" in printed

        # And the JSON holds the same figures
        figures = json.loads(out.read_text())
        runs, events = RECORDS // BENCHMARKS, RECORDS + RECORDS // BENCHMARKS
        assert figures["records"] == RECORDS and figures["events"] == events
        for key in ("knobs_append", "knobs_projection", "knobs_end_to_end", "knobs_following", "mlflow",
                    "bare_sqlite"):
            result = figures["results"][key]
            assert result["records"] == RECORDS
            assert result["seconds"] > 0 and result["records_per_s"] > 0
        assert set(figures["ratios"]) == {
            "knobs_append_over_mlflow", "knobs_end_to_end_over_mlflow", "knobs_append_over_bare_sqlite",
            "knobs_following_over_mlflow",
        }
        assert all(v > 0 for v in figures["ratios"].values())
        assert figures["checks"]["ok"] is True
        assert figures["machine"]["cores"] >= 1 and figures["machine"]["python"].startswith("3.11")

        # And, checked here rather than taken on the benchmark's word: the log holds every
        # event with an intact chain, and the graph every run and score, caught up
        store = SQLiteEventStore(workdir / "events.sqlite3")
        try:
            assert store.head() == events
            assert store.verify().ok
            scored = store.read_all(types=["BenchmarkScored"])
            assert len(scored) == RECORDS
            with GraphDatabase.driver(state["uri"], auth=(state["user"], state["password"])) as driver:
                assert Projector(driver, store).lag() == 0
                [row] = driver.execute_query(
                    "MATCH (s:Score) WITH count(s) AS scores MATCH (r:Run) RETURN scores, count(r) AS runs"
                ).records
                assert row["scores"] == RECORDS and row["runs"] == runs
        finally:
            store.close()
    finally:
        stop_neo4j(home)
