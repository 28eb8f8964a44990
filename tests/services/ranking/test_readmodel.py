"""The ranking's read model (services.ranking.readmodel) against the graph and the log replay.

The read model replaced reading the runs from Neo4j on the ranking's path, so it must see
exactly what the graph holds -- corrections (last write wins by position), a score whose run is
not recorded yet, other experiments -- and cite the same events. It also answers repeats from
memory: only while nothing that could change the answer moved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from events.models import BenchmarkScored, RunRecorded
from events.store import NewEvent
from services.core.context import Context
from services.importing.results import import_results
from services.ranking import evidence
from services.ranking import rank as rank_module
from services.ranking.rank import RankOptions, rank
from services.ranking.readmodel import ScoreTable, for_context
from tests.services.synthetic import EXPERIMENT, synthetic_context, write_runs


@pytest.fixture
def ctx(knobs_env: dict[str, str], tmp_path: Path) -> Context:
    return synthetic_context(tmp_path)


def _corrections(ctx: Context) -> None:
    """A run re-recorded with other parameters, a score corrected, a score with no run yet."""
    some = evidence.current(ctx, EXPERIMENT, "loss").observations[5]
    ctx.store().append([
        NewEvent(RunRecorded(experiment=EXPERIMENT, run_id=some.run_id, params={**some.params, "lr": 0.5},
                             seed=some.seed, costs={"flops": 1.0})),
        NewEvent(BenchmarkScored(experiment=EXPERIMENT, run_id=some.run_id, benchmark="loss", value=9.0)),
        NewEvent(BenchmarkScored(experiment=EXPERIMENT, run_id="unrecorded", benchmark="loss", value=1.0)),
        NewEvent(BenchmarkScored(experiment="another", run_id="r1", benchmark="loss", value=2.0)),
    ])


def test_the_read_model_sees_what_the_graph_holds_and_cites_the_same_events(ctx: Context) -> None:
    for_context(ctx).evidence(EXPERIMENT, "loss")  # read before the corrections: they arrive incrementally
    _corrections(ctx)
    for benchmark in ("loss", "accuracy"):
        found = evidence.current(ctx, EXPERIMENT, benchmark)
        assert found.observations == evidence.from_graph(ctx, EXPERIMENT, benchmark)
        replayed = evidence.from_log(ctx, EXPERIMENT, benchmark, ctx.store().head())
        assert found.observations == replayed.observations and found.cited == replayed.cited
        in_graph = evidence.cited_in_graph(ctx, EXPERIMENT, benchmark)
        assert {run: (c.run, c.score) for run, c in found.cited.items()} == in_graph
    now = evidence.current(ctx, EXPERIMENT, "loss").observations
    corrected = next(o for o in now if o.params["lr"] == 0.5)
    assert corrected.score == 9.0 and corrected.costs == {"flops": 1.0} and len(corrected.positions) == 4
    # a fresh table reading the whole log at once agrees with the one fed in two steps
    assert ScoreTable(ctx.store()).evidence(EXPERIMENT, "loss") == evidence.current(ctx, EXPERIMENT, "loss")
    ctx.close()


def test_a_ranking_from_the_read_model_is_the_one_the_log_replay_gives(ctx: Context) -> None:
    _corrections(ctx)
    now = rank(ctx, EXPERIMENT, "loss")
    replayed = rank(ctx, EXPERIMENT, "loss", RankOptions(as_of=ctx.store().head()))
    assert replayed.duplicate and replayed.ranking == now.ranking
    ctx.close()


def test_a_repeat_is_a_lookup_until_its_evidence_moves(ctx: Context, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = rank(ctx, EXPERIMENT, "loss")
    assert not first.duplicate

    def no_analysis(*args: object, **kwargs: object) -> None:
        raise AssertionError("a repeat at the same evidence recomputed the ranking")

    monkeypatch.setattr(rank_module, "assess", no_analysis)
    again = rank(ctx, EXPERIMENT, "loss")
    assert again.duplicate and again.ranking == first.ranking and again.position == first.position
    # another experiment's runs, and another benchmark's scores, are not this ranking's evidence
    other = tmp_path / "other.csv"
    write_runs(other, range(1))
    import_results(ctx, other, "another-experiment")
    assert rank(ctx, EXPERIMENT, "loss").duplicate
    # other options are another question
    with pytest.raises(AssertionError, match="recomputed"):
        rank(ctx, EXPERIMENT, "loss", RankOptions(bootstrap_seed=7))
    # a new score of this experiment on this benchmark moves the evidence: computed again
    monkeypatch.undo()
    ctx.store().append([NewEvent(BenchmarkScored(experiment=EXPERIMENT, run_id=first.ranking.baseline_runs[0],
                                                 benchmark="loss", value=3.0))])
    moved = rank(ctx, EXPERIMENT, "loss")
    assert not moved.duplicate and moved.ranking.ranking_id != first.ranking.ranking_id
    ctx.close()


def test_a_replaced_log_is_read_again_from_the_start(knobs_env: dict[str, str], tmp_path: Path) -> None:
    """The table notices a different log at the same place (restored from a backup, rebuilt)."""
    first_home, second_home = tmp_path / "first", tmp_path / "second"
    for home, seeds in ((first_home, range(2)), (second_home, range(1))):
        home.mkdir()
        with Context(home=home) as ctx:
            path = home / "runs.csv"
            write_runs(path, seeds, prefix=home.name)
            import_results(ctx, path, EXPERIMENT)
    ctx = Context(home=first_home)
    table = ScoreTable(ctx.store())
    assert {o.run_id[:5] for o in table.evidence(EXPERIMENT, "loss").observations} == {"first"}
    ctx.close()
    shutil.copy(second_home / "events.sqlite3", first_home / "events.sqlite3")
    with Context(home=first_home) as replaced:
        table._store = replaced.store()
        assert {o.run_id[:6] for o in table.evidence(EXPERIMENT, "loss").observations} == {"second"}


def test_remembered_rankings_are_bounded_by_the_events_they_hold(tmp_path: Path) -> None:
    from events.store.sqlite import SQLiteEventStore

    table = ScoreTable(SQLiteEventStore(tmp_path / "events.sqlite3"))
    table.remember("a", "ranking a", 100_000)
    table.remember("b", "ranking b", 100_000)
    assert table.recall("a") == "ranking a"  # asked again: now the most recent
    table.remember("c", "ranking c", 100_000)
    assert table.recall("b") is None and table.recall("a") == "ranking a" and table.recall("c") == "ranking c"
    table.remember("huge", "ranking of a million runs", 2_000_000)  # kept alone rather than not at all
    assert table.recall("huge") and table.recall("a") is None and table.recall("c") is None
