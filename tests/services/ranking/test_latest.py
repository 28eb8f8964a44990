"""Which ranking is the latest, asked every way: named queries, the JSON export and the MCP tools.

The rule: among rankings of one (experiment, benchmark, method), what-if rankings (`--without`)
never count; the newest evidence (highest as_of) wins, then the newest record. The old rule
(highest log position) let a what-if ranking become the answer everywhere, and a plain
re-rank could not win back: it is a duplicate and keeps its old position.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from services.core.context import Context
from services.core.errors import NotFound
from services.export.json_export import export_json
from services.export.snapshot import read_rankings
from services.importing.results import import_results
from services.mcp import server as mcp_server
from services.queries.named import run_named
from services.ranking.rank import RankingOutcome, RankOptions, rank
from tests.services.synthetic import EXPERIMENT, synthetic_context, write_runs


@pytest.fixture
def ctx(knobs_env: dict[str, str], tmp_path: Path) -> Context:
    return synthetic_context(tmp_path)


def _widest_run(outcome: RankingOutcome) -> str:
    """A run the ranking used that moves it: the first seed of the widest width."""
    width = next(p for p in outcome.ranking.parameters if p.name == "width")
    return next(v.runs[0] for v in width.values if v.value == 1024)


READERS = ("knobs_for_benchmark", "influence_range", "underused_parameters", "knobs_matrix", "rankings",
           "snapshot", "json_export")


def _ids(rows: Iterable[Mapping[str, Any]], benchmark: str) -> set[str]:
    return {str(r["ranking_id"]) for r in rows if r.get("benchmark", benchmark) == benchmark}


def _latest_everywhere(ctx: Context, benchmark: str) -> dict[str, set[str]]:
    """The latest ranking ids each reader reports for the experiment on `benchmark`."""
    ctx.catch_up()
    listed = run_named(ctx, "rankings", experiment=EXPERIMENT, benchmark=benchmark, method=None)
    return {
        "knobs_for_benchmark": _ids(run_named(ctx, "knobs_for_benchmark", benchmark=benchmark), benchmark),
        "influence_range": _ids(run_named(ctx, "influence_range", parameter="width", benchmark=benchmark),
                                benchmark),
        "underused_parameters": _ids(run_named(ctx, "underused_parameters", benchmark=benchmark,
                                               experiment=None), benchmark),
        "knobs_matrix": _ids(run_named(ctx, "knobs_matrix", experiment=EXPERIMENT, method=None), benchmark),
        "rankings": _ids((r for r in listed if r["latest"]), benchmark),
        "snapshot": _ids((e.public() for e in read_rankings(ctx.store())), benchmark),
        "json_export": _ids(json.loads(export_json(ctx))["rankings"], benchmark),
    }


def test_a_what_if_ranking_never_becomes_the_latest(ctx: Context) -> None:
    # Given a plain ranking A, then a what-if ranking C without one run, then A again
    a = rank(ctx, EXPERIMENT, "loss")
    run = _widest_run(a)
    c = rank(ctx, EXPERIMENT, "loss", options=RankOptions(without=(run,)))
    assert c.ranking.settings["without"] == [run] and not c.duplicate and c.position > a.position
    again = rank(ctx, EXPERIMENT, "loss")
    assert again.duplicate and again.position == a.position  # the old position: A is recorded once

    # Then every reader answers A, none answers C
    assert _latest_everywhere(ctx, "loss") == {reader: {a.ranking.ranking_id} for reader in READERS}
    [entry] = [e for e in read_rankings(ctx.store()) if e.ranking.benchmark == "loss"]
    assert entry.earlier == ()  # C is a what-if, not a ranking A supersedes

    # and `rankings` still lists C, marked as a what-if that is not the latest
    rows = {r["ranking_id"]: r for r in run_named(ctx, "rankings", experiment=EXPERIMENT, benchmark="loss",
                                                   method=None)}
    assert (rows[c.ranking.ranking_id]["what_if"], rows[c.ranking.ranking_id]["latest"]) == (True, False)
    assert (rows[a.ranking.ranking_id]["what_if"], rows[a.ranking.ranking_id]["latest"]) == (False, True)

    # and the MCP tools answer from A too
    knobs = mcp_server.knobs_that_matter(ctx, "loss", EXPERIMENT)
    assert [r["ranking_id"] for r in knobs["rankings"]] == [a.ranking.ranking_id]
    width = mcp_server.influence_range(ctx, "width", "loss")
    assert [r["ranking_id"] for r in width["rankings"]] == [a.ranking.ranking_id]
    ctx.close()


def test_a_what_if_ranking_alone_is_not_the_latest(ctx: Context) -> None:
    # Given only a what-if ranking on accuracy (and a plain one on loss)
    plain = rank(ctx, EXPERIMENT, "loss")
    what_if = rank(ctx, EXPERIMENT, "accuracy", options=RankOptions(without=(_widest_run(plain),)))

    # Then no reader reports a latest ranking on accuracy
    assert _latest_everywhere(ctx, "accuracy") == {reader: set() for reader in READERS}
    with pytest.raises(NotFound, match="no ranking on benchmark 'accuracy'"):
        mcp_server.knobs_that_matter(ctx, "accuracy")
    # and the MCP follow-up of the experiment builds on the plain ranking on loss
    body = mcp_server.suggest_next_experiment(ctx, EXPERIMENT)
    assert (body["benchmark"], body["ranking_id"]) == ("loss", plain.ranking.ranking_id)

    # but `rankings` and the provenance still reach it
    [row] = run_named(ctx, "rankings", experiment=EXPERIMENT, benchmark="accuracy", method=None)
    assert (row["ranking_id"], row["what_if"], row["latest"]) == (what_if.ranking.ranking_id, True, False)
    assert run_named(ctx, "ranking_provenance", ranking_id=what_if.ranking.ranking_id)
    ctx.close()


def test_the_newest_evidence_wins_over_the_newest_record(ctx: Context, tmp_path: Path) -> None:
    # Given more runs arriving in two imports, a ranking of everything (B), then a ranking
    # recorded after B but as of the log between the two imports (D)
    rank(ctx, EXPERIMENT, "loss")
    more, most = tmp_path / "more.csv", tmp_path / "most.csv"
    write_runs(more, range(3, 4), prefix="m")
    write_runs(most, range(4, 5), prefix="n")
    import_results(ctx, more, EXPERIMENT)
    between = ctx.store().head()
    import_results(ctx, most, EXPERIMENT)
    ctx.catch_up()
    b = rank(ctx, EXPERIMENT, "loss")
    d = rank(ctx, EXPERIMENT, "loss", options=RankOptions(as_of=between))
    assert not d.duplicate and d.position > b.position and d.ranking.as_of < b.ranking.as_of

    # Then B, the ranking of the newest evidence, is the latest everywhere
    assert _latest_everywhere(ctx, "loss") == {reader: {b.ranking.ranking_id} for reader in READERS}
    [entry] = [e for e in read_rankings(ctx.store()) if e.ranking.benchmark == "loss"]
    assert d.ranking.ranking_id in entry.earlier  # superseded, though recorded after B
    ctx.close()
