"""`knobs experiment plan | export-design | declare`, as a person runs them (no Neo4j needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
SPECS = ROOT / "examples" / "specs"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "home"
    monkeypatch.setenv("KNOBS_HOME", str(home))
    for var in ("KNOBS_EVENTS_BACKEND", "KNOBS_EVENTS_SQLITE_PATH", "KNOBS_EVENTS_POSTGRES_URL"):
        monkeypatch.delenv(var, raising=False)
    return {"KNOBS_HOME": str(home)}


def knobs(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_plan_prints_runs_costs_and_totals(env: dict[str, str]) -> None:
    out = knobs("experiment", "plan", str(SPECS / "tiny-ofat.yaml"))
    assert "tiny-ofat: ofat design, executor train, 16 runs (budget 40)" in out
    assert "n_layer=4-s1" in out and "format=qa" in out
    assert "total: 16 runs, 3.2M tokens" in out and "an estimate" in out
    external = knobs("experiment", "plan", str(SPECS / "external-morris.yaml"))
    assert "unknown" in external and "cost unknown (an external executor runs them)" in external


def test_plan_json_carries_runs_and_the_salib_problem(env: dict[str, str]) -> None:
    data = json.loads(knobs("experiment", "plan", str(SPECS / "tiny-morris.yaml"), "--json"))
    assert data["method"] == "morris" and len(data["runs"]) == 20
    assert data["salib_problem"]["names"] == ["format", "lr", "n_layer", "warmup_fraction"]
    assert data["runs"][0]["estimated_cost"]["flops"] > 0


def test_export_design_then_declare_twice(env: dict[str, str], tmp_path: Path) -> None:
    out = knobs("experiment", "export-design", str(SPECS / "tiny-sobol.yaml"), "--out",
                str(tmp_path / "runs.csv"))
    assert "32 runs written" in out and (tmp_path / "runs.salib.json").exists()
    assert "knobs import results" in out
    first = knobs("experiment", "declare", str(SPECS / "tiny-sobol.yaml"))
    assert "tiny-sobol: declared; 32 runs requested (events 1..33)" in first
    again = json.loads(knobs("experiment", "declare", str(SPECS / "tiny-sobol.yaml"), "--json"))
    assert again["new_events"] == 0 and again["already_stored"] == 33


def test_a_bad_spec_exits_2_and_names_the_key(env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text((SPECS / "tiny-ofat.yaml").read_text().replace("scale: log", "scale: cubic"))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KNOBS_")}
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "experiment", "declare", str(spec)],
        capture_output=True, text=True, cwd=ROOT, env={**clean, **env}, timeout=120,
    )
    assert proc.returncode == 2
    assert "factors.lr.scale: must be 'linear' or 'log' (got 'cubic')" in proc.stderr
