"""A generated experiment with known ground truth, shared by the ranking tests.

Loss falls as a saturating power law of `width` (which costs FLOPs in proportion), `lr` has an
optimum inside its range, `dropout` does nothing to the loss beyond noise but costs accuracy;
three seeds per configuration by default.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from services.core.context import Context
from services.importing.results import import_results

EXPERIMENT = "synthetic"
BASE = {"width": 64, "lr": 1e-3, "dropout": 0.0}
VARIED = {"width": [16, 32, 64, 128, 256, 512, 1024], "lr": [1e-4, 1e-3, 1e-2], "dropout": [0.0, 0.1]}


def _loss(p: dict[str, float], noise: float) -> float:
    width_term = 4.0 * (p["width"] / 16) ** -0.7
    lr_term = 0.5 * (math.log10(p["lr"]) + 3) ** 2
    return 2.0 + width_term + lr_term + noise


def _acc(p: dict[str, float], noise: float) -> float:
    return 0.8 - 0.05 * (p["dropout"] > 0) - 0.02 * (p["width"] < 64) + noise


def write_runs(path: Path, seeds: range, *, prefix: str = "") -> None:
    rng = random.Random(sum(seeds) + 17)
    rows = []
    configs = [dict(BASE)] + [{**BASE, name: v} for name, values in VARIED.items()
                               for v in values if v != BASE[name]]
    for config in configs:
        for seed in seeds:
            rid = prefix + "-".join(f"{k}{v}" for k, v in sorted(config.items())) + f"-s{seed}"
            rows.append({
                "run": rid, "citation": "generated for tests", "seed": seed,
                **{f"param.{k}": v for k, v in config.items()},
                "score.loss": round(_loss(config, rng.gauss(0, 0.01)), 6),
                "score.accuracy": round(_acc(config, rng.gauss(0, 0.002)), 6),
                "cost.flops": 6 * config["width"] ** 2 * 1e6,
            })
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def synthetic_context(tmp_path: Path) -> Context:
    """A Context whose log holds the experiment (seeds 0..2), projected into the graph."""
    path = tmp_path / "runs.csv"
    write_runs(path, range(3))
    context = Context()
    import_results(context, path, EXPERIMENT)
    context.catch_up()
    return context
