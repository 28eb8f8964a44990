"""The growth and profile benchmarks run end to end at a tiny size; no timing is asserted, only
that they print and write what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import growth, profile


@pytest.mark.slow
def test_growth_benchmark_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Given no Neo4j configured: the benchmark starts one of its own
    for name in ("KNOBS_NEO4J_URI", "KNOBS_NEO4J_USER", "KNOBS_NEO4J_PASSWORD", "KNOBS_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "growth.json"

    code = growth.main(["--sizes", "60,120", "--parameters", "3", "--benchmarks", "2", "--colds", "1",
                        "--repeats", "2", "--json", str(out), "--workdir", str(tmp_path / "work")])
    printed = capsys.readouterr().out

    # Then every size was loaded, rebuilt and ranked, the repeats were the first ranking again,
    # and the growth per tenfold is printed
    assert code == 0, printed
    assert "x per tenfold to 120" in printed and "checks: ok" in printed
    figures = json.loads(out.read_text())
    assert [row["runs"] for row in figures["rows"]] == [60, 120]
    for row in figures["rows"]:
        assert row["events"] == row["runs"] * 3 and row["rebuild_s"] > 0 and row["load_peak_mib"] > 0
        assert row["repeat_duplicates"] == 2 and row["api_peak_mib"] > 0 and len(row["cold_s"]) == 1


def test_growth_refuses_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        growth.main(["--sizes", "ten"])
    assert exc.value.code == 2 and "--sizes takes whole numbers" in capsys.readouterr().err


@pytest.mark.slow
def test_profile_writes_a_flame_graph_and_a_table_per_phase(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KNOBS_NEO4J_URI", "KNOBS_NEO4J_USER", "KNOBS_NEO4J_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "profiles"

    assert profile.main(["--runs", "60", "--parameters", "3", "--benchmarks", "2", "--out", str(out),
                         "--workdir", str(tmp_path / "work")]) == 0

    for phase in profile.PHASES:
        assert (out / f"{phase}.svg").read_text().lstrip().startswith("<?xml"), phase
    for phase in ("import", "project", "rank-cold", "rank-repeat"):
        assert "under cProfile" in (out / f"{phase}.txt").read_text()
    assert "services.cli.main" in (out / "cli-importtime.txt").read_text()
    assert set(json.loads((out / "summary.json").read_text())["phases"]) == set(profile.PHASES)
