"""A declared Morris experiment run by an external executor, ranked by the design it declared.

Declare a spec, export its run table, score each run with a function whose sensitivity is
known (y = 10*x1 + 2*x2 + 0*x3 plus seed noise), import the scores, and rank: the method
comes from the declaration, the indices use SALib's names, and x3 is labelled noise.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import yaml

from services.core.context import Context
from services.core.errors import BadInput
from services.experiments.service import declare, export_design
from services.importing.results import import_results
from services.ranking.rank import RankOptions, rank

SPEC = {
    "name": "morris-linear",
    "executor": "external",
    "design": {"method": "morris", "n": 12, "levels": 4, "seed": 3},
    "factors": {"x1": {"range": [0.0, 1.0]}, "x2": {"range": [0.0, 1.0]}, "x3": {"range": [0.0, 1.0]}},
    "benchmarks": ["score"],
    "seeds": [0, 1],
    "budget": {"max_runs": 200},
}


def test_a_declared_morris_design_is_ranked_by_morris(knobs_env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    table = tmp_path / "runs.csv"
    rng = random.Random(0)
    with Context() as ctx:
        declare(ctx, spec)
        export_design(spec, table)
        rows = list(csv.DictReader(table.open()))
        for row in rows:
            x = [float(row[f"param.x{i}"]) for i in (1, 2, 3)]
            row["score.score"] = str(10 * x[0] + 2 * x[1] + rng.gauss(0, 0.05))
        with table.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        import_results(ctx, table, SPEC["name"])

        r = rank(ctx, SPEC["name"], "score").ranking
        assert r.method == "morris" and r.direction == "higher"
        by = {p.name: p for p in r.parameters}
        assert [p.name for p in r.parameters] == ["x1", "x2", "x3"]
        assert set(by["x1"].indices) == {"mu", "mu_star", "sigma", "mu_star_conf"}
        assert by["x1"].indices["mu_star"] == pytest.approx(10, rel=0.05)
        assert by["x2"].indices["mu_star"] == pytest.approx(2, rel=0.1)
        assert by["x1"].noise is not None and by["x1"].noise.label == "distinguishable"
        assert by["x3"].noise is not None and by["x3"].noise.label == "indistinguishable"
        assert len(r.used_events) == 2 * len(rows)
        # the bootstrap is seeded: the same seed gives the same numbers, a new seed new intervals
        again = rank(ctx, SPEC["name"], "score", options=RankOptions(bootstrap_seed=0))
        assert again.duplicate and again.ranking == r
        other = rank(ctx, SPEC["name"], "score", options=RankOptions(bootstrap_seed=1)).ranking
        assert other.ranking_id != r.ranking_id
        assert other.parameters[0].indices["mu_star"] == r.parameters[0].indices["mu_star"]

        # asking for Sobol on a Morris design is a clear error
        with pytest.raises(BadInput, match="declared sobol design"):
            rank(ctx, SPEC["name"], "score", options=RankOptions(method="sobol"))
        # one-at-a-time on a Morris design is allowed: it uses the runs that differ from the
        # most common configuration in one factor, and says which it left out
        ofat = rank(ctx, SPEC["name"], "score", options=RankOptions(method="ofat")).ranking
        assert ofat.method == "ofat" and ofat.ranking_id != r.ranking_id
