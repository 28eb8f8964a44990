"""Tests of the exports; `build_log` makes the small log they share (real import, real ranking)."""

from __future__ import annotations

from pathlib import Path

from services.core.context import Context
from services.importing.results import import_results
from services.ranking.rank import rank

EXPERIMENT = "sweep"
OTHER = "books-run"
BENCHMARK = "hellaswag/acc"
CITATION = "Test et al. 2024, Table 1"

# lr's best value (0.004) sits at the edge of the range with a large, clearly non-noise
# effect; n_layer barely matters. `dataset` and `attn:kind` are constant, and need
# sanitising as file names (/ and :), like the benchmark.
_POINTS = [
    ({"lr": 0.001, "n_layer": 4}, 0.50),
    ({"lr": 0.002, "n_layer": 4}, 0.55),
    ({"lr": 0.004, "n_layer": 4}, 0.60),
    ({"lr": 0.001, "n_layer": 2}, 0.49),
    ({"lr": 0.001, "n_layer": 8}, 0.51),
]
_JITTER = (-0.002, 0.0, 0.002)


def _sweep_csv() -> str:
    lines = ["run,citation,seed,param.lr,param.n_layer,param.dataset,param.attn:kind,score.hellaswag/acc,"
             "score.val_loss,cost.flops"]
    for i, (params, score) in enumerate(_POINTS):
        for seed, jitter in enumerate(_JITTER):
            lines.append(
                f"p{i}-s{seed},\"{CITATION}\",{seed},{params['lr']},{params['n_layer']},wiki/en:v1,full,"
                f"{score + jitter:.4f},{3.0 - score + jitter:.4f},{params['n_layer'] * 1e15:.0f}"
            )
    return "\n".join(lines) + "\n"


def _books_csv() -> str:
    return ("run,seed,param.lr,param.dataset,score.hellaswag/acc\n"
            "b1,0,0.001,books,0.40\n"
            "b2,0,0.002,books,0.42\n")


def build_log(tmp_path: Path) -> str:
    """Import two experiments and rank `sweep` on hellaswag/acc; returns the ranking id.

    Needs KNOBS_HOME and KNOBS_NEO4J_* in the environment (the knobs_env fixture sets them).
    """
    sweep = tmp_path / "sweep.csv"
    sweep.write_text(_sweep_csv())
    books = tmp_path / "books.csv"
    books.write_text(_books_csv())
    with Context() as ctx:
        import_results(ctx, sweep, EXPERIMENT)
        import_results(ctx, books, OTHER)
        ctx.catch_up()
        outcome = rank(ctx, EXPERIMENT, BENCHMARK)
    return outcome.ranking.ranking_id
