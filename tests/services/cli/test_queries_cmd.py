"""`knobs knobs | influence | rankings | underused | matrix`, `knobs query --name`, and the README
section "Asking the graph": its `knobs ...` lines run, its routes exist and answer."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from graph.errors import UnknownQuery
from services.access.tokens import create_token
from services.api.app import create_app
from services.cli.main import app
from services.core.context import Context
from services.core.errors import BadInput
from services.queries.named import QueryParameterError
from tests.services import asking_log
from tests.services.asking_log import DEMO, HELDOUT, HELDOUT_RANKING, QA, QA_RANKING

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.fixture
def graph(knobs_env: dict[str, str]) -> dict[str, str]:
    with Context() as ctx:
        asking_log.build(ctx)
    return knobs_env


def knobs(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def failure(*args: str) -> BaseException:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code != 0 and result.exception is not None, result.output
    return result.exception


def test_the_questions_from_the_command_line(graph: dict[str, str]) -> None:
    out = knobs("knobs", "--benchmark", HELDOUT)
    assert f"{DEMO} on {HELDOUT} (ofat, lower is better): ranking {HELDOUT_RANKING}" in out
    lr = next(line for line in out.splitlines() if line.startswith("1 ")).split()
    assert lr[:2] == ["1", "lr"] and "distinguishable" in lr and lr[-1] == "yes"
    assert "not reached" in out
    data = json.loads(knobs("knobs", "--benchmark", HELDOUT, "--json"))
    assert data["query"] == "knobs_for_benchmark" and data["rows"][0]["values"][1]["value"] == 0.001

    influence = knobs("influence", "lr")
    assert "lr: effect on each benchmark" in influence
    assert re.search(rf"{HELDOUT}\s+{DEMO}\s+ofat\s+1/2\s+\[\+0, \+0\.4\]", influence), influence
    assert "0.003*: +0  0.001: +0.4" in influence and QA in influence
    assert QA not in knobs("influence", "lr", "--benchmark", HELDOUT)
    assert "no current ranking ranks parameter 'nope'" in knobs("influence", "nope")

    listed = knobs("rankings", "--experiment", DEMO)
    assert HELDOUT_RANKING in listed and QA_RANKING in listed and "rk-bleu" not in listed
    dependents = knobs("rankings", "--experiment", DEMO, "--run", "base-s0")
    assert "2 rankings used run base-s0 of demo-ofat" in dependents
    redo = f"knobs rank --experiment {DEMO} --benchmark {HELDOUT} --method ofat --without base-s0"
    assert redo in dependents
    only_qa = json.loads(knobs("rankings", "--experiment", DEMO, "--run", "base-s0", "--benchmark", QA,
                               "--json"))
    assert [r["ranking_id"] for r in only_qa["rows"]] == [QA_RANKING]

    underused = knobs("underused", "--experiment", DEMO)
    assert f"{DEMO} on {HELDOUT} (ofat, ranking {HELDOUT_RANKING}):" in underused
    assert "best_at_edge: best value 0.001 is the edge of the explored range" in underused
    assert f"knobs suggest --experiment {DEMO} --benchmark {HELDOUT}" in underused
    assert "no parameter is flagged" in knobs("underused", "--benchmark", QA)

    matrix = knobs("matrix", "--experiment", DEMO)
    header = matrix.splitlines()[0].split()
    assert header == ["parameter", HELDOUT, QA]
    assert re.search(r"lr\s+1/2 \(0\.4\)\s+2/2 \(0\.4\) ~", matrix), matrix


def test_command_line_errors_say_what_to_do(graph: dict[str, str]) -> None:
    assert isinstance(failure("rankings", "--run", "base-s0"), BadInput)
    missing = failure("query", "--name", "influence_range")
    assert isinstance(missing, QueryParameterError) and "needs parameter parameter" in str(missing)
    assert isinstance(failure("query", "--name", "no_such_query"), UnknownQuery)
    assert "no ranking on benchmark 'nope' yet" in knobs("knobs", "--benchmark", "nope")
    # an optional parameter may be left out of `knobs query --name`
    rows = json.loads(knobs("query", "--name", "underused_parameters", "--json"))["rows"]
    assert len(rows) == 1


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def test_the_readme_section_runs_as_written(graph: dict[str, str]) -> None:
    section = _section("Asking the graph")
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    commands = [shlex.split(line, comments=True) for block in blocks for line in block.splitlines()
                if line.startswith("knobs ")]
    assert len(commands) >= 8
    for argv in commands:
        out = knobs(*argv[1:])
        assert out.strip() and not out.startswith("no "), (argv, out)

    urls = re.findall(r"'http://127\.0\.0\.1:8000(/v1/[^']+)'", section)
    documented = set(re.findall(r"GET (/v1/[a-z][^`?\[ ]*)", section))
    assert len(urls) >= 5 and len(documented) >= 9
    api = create_app(Context())
    # The OpenAPI paths: a template's {parameter} matches one path segment, the README's {P} too.
    patterns = [re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
                for path, methods in api.openapi()["paths"].items() if "get" in methods]
    for path in documented:
        assert any(p.match(path) for p in patterns), f"README documents GET {path}; the API has no such route"
    with TestClient(api) as client:
        token = create_token(Path(graph["KNOBS_HOME"]), "readme", "read")
        for url in urls:
            resp = client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 200, (url, resp.text)
            body = resp.json()
            assert body.get("rows") or body.get("queries"), (url, body)
