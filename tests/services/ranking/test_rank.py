"""Rankings that judge: noise, knees, cost, flags, --as-of, --without, and several benchmarks.

The experiment is generated with known ground truth: loss falls as a saturating power law of
`width` (which costs FLOPs in proportion), `lr` has an optimum inside its range, `dropout`
does nothing to the loss beyond noise but costs accuracy, three seeds per configuration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.core.context import Context
from services.core.errors import BadInput, NotFound
from services.importing.results import import_results
from services.queries.named import run_named
from services.ranking import evidence
from services.ranking.matrix import rank_matrix
from services.ranking.rank import RankOptions, rank
from tests.services.synthetic import EXPERIMENT, synthetic_context, write_runs


@pytest.fixture
def ctx(knobs_env: dict[str, str], tmp_path: Path) -> Context:
    return synthetic_context(tmp_path)


def test_judgements_follow_the_ground_truth(ctx: Context) -> None:
    r = rank(ctx, EXPERIMENT, "loss").ranking
    by = {p.name: p for p in r.parameters}
    assert r.direction == "lower" and r.method == "ofat" and r.bootstrap_seed == 0
    assert [p.name for p in r.parameters][:2] == ["width", "lr"]
    # dropout changes nothing but noise; width and lr are real
    assert by["dropout"].noise is not None and by["dropout"].noise.label == "indistinguishable"
    assert by["width"].noise is not None and by["width"].noise.label == "distinguishable"
    assert "seed" in by["width"].noise.basis
    # width saturates inside the explored range: a knee between its smallest and largest value
    assert by["width"].knee is not None and by["width"].knee.status == "found"
    assert by["width"].knee.value is not None and 16 < by["width"].knee.value < 1024
    assert by["dropout"].knee is not None and by["dropout"].knee.status in ("too_few_values", "no_gain")
    # width buys loss with FLOPs; lr does it for free
    flops = {p.name: next((e for e in p.per_cost if e.kind == "flops"), None) for p in r.parameters}
    assert flops["width"] is not None and flops["width"].per_unit is not None and flops["width"].gain > 0
    # the best width is the widest tried: the optimum may lie beyond it
    assert "best_at_edge" in {f.kind for f in by["width"].flags}
    ctx.close()


def test_as_of_reproduces_a_ranking_exactly_after_more_runs_arrive(ctx: Context, tmp_path: Path) -> None:
    first = rank(ctx, EXPERIMENT, "loss")
    more = tmp_path / "more.csv"
    write_runs(more, range(3, 5))
    import_results(ctx, more, EXPERIMENT)
    later = rank(ctx, EXPERIMENT, "loss")
    assert later.ranking.ranking_id != first.ranking.ranking_id

    again = rank(ctx, EXPERIMENT, "loss", options=RankOptions(as_of=first.ranking.as_of))
    assert again.duplicate and again.position == first.position
    assert again.ranking == first.ranking

    # the log, the read model and the graph give the same observations for the same prefix
    replayed = evidence.from_log(ctx, EXPERIMENT, "loss", ctx.store().head())
    assert replayed.observations == evidence.from_graph(ctx, EXPERIMENT, "loss")
    assert replayed.observations == evidence.current(ctx, EXPERIMENT, "loss").observations
    with pytest.raises(BadInput, match="outside the log"):
        rank(ctx, EXPERIMENT, "loss", options=RankOptions(as_of=10**9))
    ctx.close()


def test_without_a_run_recomputes_and_the_graph_knows_which_rankings_used_it(ctx: Context) -> None:
    first = rank(ctx, EXPERIMENT, "loss").ranking
    run = next(v.runs[0] for p in first.parameters if p.name == "width" for v in p.values if v.value == 1024)
    users = run_named(ctx, "rankings_using_run", experiment=EXPERIMENT, run_id=run)
    assert [u["ranking_id"] for u in users] == [first.ranking_id]

    second = rank(ctx, EXPERIMENT, "loss", options=RankOptions(without=(run,))).ranking
    assert second.settings["without"] == [run]
    assert second.ranking_id != first.ranking_id
    assert len(second.used_events) == len(first.used_events) - 2
    users = run_named(ctx, "rankings_using_run", experiment=EXPERIMENT, run_id=run)
    assert [u["ranking_id"] for u in users] == [first.ranking_id]
    with pytest.raises(NotFound, match="no-such-run"):
        rank(ctx, EXPERIMENT, "loss", options=RankOptions(without=("no-such-run",)))
    ctx.close()


def test_matrix_flags_benchmarks_that_disagree(ctx: Context) -> None:
    m = rank_matrix(ctx, EXPERIMENT, None, RankOptions())
    assert m.benchmarks == ["accuracy", "loss"]
    assert m.outcomes["accuracy"].ranking.direction == "higher"
    kinds = {(d.parameter, d.kind) for d in m.disagreements}
    assert ("dropout", "rank_spread") in kinds or ("dropout", "different_best") in kinds
    assert {row.parameter for row in m.rows} == {"width", "lr", "dropout"}
    assert [row.aggregate_rank for row in m.rows] == [1, 2, 3]
    ctx.close()


def test_morris_on_an_imported_experiment_says_what_to_do(ctx: Context) -> None:
    with pytest.raises(BadInput, match="declared morris design"):
        rank(ctx, EXPERIMENT, "loss", options=RankOptions(method="morris"))
    ctx.close()


def test_cli_prints_the_judgements(ctx: Context) -> None:
    ctx.close()
    out = CliRunner().invoke(app, ["rank", "--experiment", EXPERIMENT, "--benchmark", "loss",
                                   "--by-cost", "flops"])
    assert out.exit_code == 0, out.output
    for needle in ("noise: indistinguishable", "knee: found", "per flops", "FLAG best_at_edge",
                   "By gain per flops", "--as-of"):
        assert needle in out.output
    matrix = CliRunner().invoke(app, ["rank", "--experiment", EXPERIMENT, "--all-benchmarks"])
    assert matrix.exit_code == 0, matrix.output
    assert "Benchmarks disagree" in matrix.output
    bad = CliRunner().invoke(app, ["rank", "--experiment", EXPERIMENT, "--benchmark", "loss",
                                   "--method", "anova"])
    assert bad.exit_code != 0


def test_a_run_seen_but_left_out_makes_a_new_ranking_not_a_conflict(ctx: Context, tmp_path: Path) -> None:
    first = rank(ctx, EXPERIMENT, "loss")
    both = tmp_path / "both.csv"
    both.write_text("run,citation,seed,param.width,param.lr,param.dropout,score.loss,score.accuracy,cost.flops\n"
                    "two-knobs,generated for tests,0,128,0.01,0.0,3.0,0.8,1e11\n")
    import_results(ctx, both, EXPERIMENT)
    second = rank(ctx, EXPERIMENT, "loss")
    assert not second.duplicate and second.ranking.ranking_id != first.ranking.ranking_id
    assert second.ranking.excluded_runs == ["two-knobs"]
    assert second.ranking.used_events == first.ranking.used_events
    ctx.close()


def test_as_of_reproduces_a_ranking_made_without_the_newest_run(ctx: Context, tmp_path: Path) -> None:
    newest = tmp_path / "newest.csv"
    newest.write_text("run,citation,seed,param.width,param.lr,param.dropout,score.loss,score.accuracy,cost.flops\n"
                      "late,generated for tests,9,64,0.001,0.0,4.0,0.8,1e11\n")
    import_results(ctx, newest, EXPERIMENT)
    what_if = rank(ctx, EXPERIMENT, "loss", options=RankOptions(without=("late",)))
    again = rank(ctx, EXPERIMENT, "loss", options=RankOptions(without=("late",), as_of=what_if.ranking.as_of))
    assert again.duplicate and again.ranking == what_if.ranking
    ctx.close()
