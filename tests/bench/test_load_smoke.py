"""The load benchmark runs end to end at a tiny size against both servers; no timing is asserted,
only that the checks it promises (0 lost appends, the graph holding every appended run) hold and
that it prints and writes its figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import load


@pytest.mark.slow
def test_load_benchmark_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    # Given no Neo4j configured: the benchmark starts one of its own
    for name in ("KNOBS_NEO4J_URI", "KNOBS_NEO4J_USER", "KNOBS_NEO4J_PASSWORD", "KNOBS_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "load.json"

    # When four clients load each server for a few seconds
    code = load.main(["--clients", "4", "--duration", "4", "--runs", "60", "--parameters", "3",
                      "--benchmarks", "2", "--workers", "2", "--json", str(out),
                      "--workdir", str(tmp_path / "work")])
    printed = capsys.readouterr().out

    # Then both answered every request, nothing acknowledged was lost, and the graph caught up
    assert code == 0, printed
    assert "throughput knobs / MLflow" in printed and "checks: ok" in printed
    figures = json.loads(out.read_text())
    knobs = figures["summaries"]["knobs"]
    assert knobs["error_count"] == 0 and knobs["all"]["count"] > 0
    assert figures["checks"]["knobs"]["lost_appends"] == 0
    assert figures["checks"]["knobs"]["graph_runs"] == figures["checks"]["knobs"]["appended_runs"]
    assert figures["summaries"]["mlflow"]["all"]["count"] > 0


def test_load_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        load.main(["--clients", "0"])
    assert exc.value.code == 2 and "--clients must be at least 1" in capsys.readouterr().err
