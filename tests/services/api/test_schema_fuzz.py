"""Schemathesis against the OpenAPI schema of a real `knobs serve`: every operation, with the
deployment token and without one. No answer may be a server error, and every answer must be one
the schema declares, in the shape it declares (the shared {"error", "detail"} body for errors).

The server reads a small real log: a generated experiment with scores and a ranking, a
distillation, a shift measurement and a repetition experiment, projected into the session's Neo4j.
No operation is excluded: none streams, and the writing ones (POST /v1/events, /v1/rankings) are
exactly what hostile input should hit. The phases are examples, coverage (boundary values, NUL
bytes, unicode in paths, huge numbers) and fuzzing; not stateful, as the schema declares no links
between operations for it to follow.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import GraphDatabase

from services.core.context import Context
from services.importing.results import import_results
from services.ranking.rank import rank
from tests.faults import count, faults
from tests.graph.distillation_log import distillation_log
from tests.services.repetition.small_log import repetition_log
from tests.services.served import knobs_serve
from tests.services.synthetic import EXPERIMENT, write_runs
from tests.services.web.page_logs import shift_log

CONFIG = Path(__file__).with_name("schemathesis.toml")  # what four operations may refuse, and why
TOKEN = secrets.token_urlsafe(24)  # the server's KNOBS_API_TOKEN: the all-powerful deployment token
EXAMPLES = count(8, 200)  # per operation and per token state
SEED = int(os.environ.get("KNOBS_FUZZ_SEED", random.randrange(2**31)))  # printed in the report


def _fill_log(home: Path, tmp: Path) -> None:
    path = tmp / "runs.csv"
    write_runs(path, range(2))
    with Context(home) as ctx:
        import_results(ctx, path, EXPERIMENT)
        ctx.catch_up()
        rank(ctx, EXPERIMENT, "loss")
        distillation_log(ctx.store())
        shift_log(ctx.store())
        repetition_log(ctx.store(), "rep")
        ctx.catch_up()


@pytest.fixture(scope="module")
def served(neo4j_state: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with GraphDatabase.driver(neo4j_state["uri"], auth=(neo4j_state["user"], neo4j_state["password"])) as d:
        d.execute_query("MATCH (n) DETACH DELETE n")
    tmp = tmp_path_factory.mktemp("schema-fuzz")
    knobs = {"KNOBS_HOME": str(tmp / "home"), "KNOBS_NEO4J_URI": neo4j_state["uri"],
             "KNOBS_NEO4J_USER": neo4j_state["user"], "KNOBS_NEO4J_PASSWORD": neo4j_state["password"]}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in knobs.items():
            mp.setenv(key, value)
        _fill_log(tmp / "home", tmp)
    with knobs_serve({**os.environ, **knobs, "KNOBS_API_TOKEN": TOKEN}) as url:
        yield url


def schemathesis_run(url: str, cwd: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """The `schemathesis run` CLI: its report names each failing operation, the check that failed
    and a curl line that reproduces it, which is what a failure here should show. It runs in
    `cwd` because it writes its cache (.schemathesis/) where it runs."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
         "run", url + "/openapi.json",
         "--checks", "all", "--max-examples", str(EXAMPLES), "--workers", "1", "--seed", str(SEED),
         "--suppress-health-check", "all", "--request-timeout", "60", "--output-truncate", "false",
         "--phases", "examples,coverage,fuzzing", *options],
        capture_output=True, text=True, timeout=600, check=False, cwd=cwd,
    )


@faults
def test_every_operation_with_the_deployment_token(served: str, tmp_path: Path) -> None:
    # Given a real server over a real log, and the deployment token
    # When schemathesis sends generated requests, valid and invalid, to every operation
    # Then no answer is a server error and each is declared, in its declared shape
    done = schemathesis_run(served, tmp_path, "--header", f"Authorization: Bearer {TOKEN}")
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-3000:]


@faults
def test_every_operation_without_a_token(served: str, tmp_path: Path) -> None:
    # Given the same server and no token
    # When schemathesis sends generated requests to every operation
    # Then each answer is a declared one (401 for all but /v1/health), never a server error
    done = schemathesis_run(served, tmp_path)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-3000:]
