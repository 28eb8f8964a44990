"""The per-example-norm benchmark runs in its quick mode: every side in its own process, the
ratios printed, and knobs' norms equal to the naive loop's. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import influence


@pytest.mark.slow
def test_influence_benchmark_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures.json"
    assert influence.main(["--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in ("machine:", "plain", "ghost", "vmap", "loop", "knobs ghost:", "knobs vmap:",
                 "a plain step's time", "max relative error"):
        assert text in printed, text
    figures = json.loads(out.read_text())
    assert set(figures["seconds"]) == {"plain", "ghost", "vmap", "loop"}
    assert all(seconds > 0 for seconds in figures["seconds"].values())
    assert figures["ghost"]["max_relative_error_vs_loop"] < 1e-4
    assert figures["vmap"]["max_relative_error_vs_loop"] < 1e-4
