"""`GET /v1/repetition/{experiment}` reads the report from the log, as the CLI's --json prints it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context
from tests.services.repetition.small_log import repetition_log


def test_the_report_route_answers_from_the_log_and_404s_an_unknown_experiment(
    knobs_env: dict[str, str],
) -> None:
    # Given a repetition experiment's requests and scores: lenses ahead of verbatim at K=2
    with Context() as ctx:
        repetition_log(ctx.store())
    with TestClient(create_app(Context())) as client:
        client.headers["Authorization"] = f"Bearer {create_token(Path(knobs_env['KNOBS_HOME']), 'r', 'read')}"
        # When the report is asked for
        body = client.get("/v1/repetition/rep").json()
        # Then it has the table, the difference beyond noise at K=2 and the paper's rows
        (t,) = body["tables"]
        assert t["benchmark"] == "qa_choice_accuracy" and len(t["cells"]) == 4
        at2 = next(d for d in t["differences"] if d["K"] == 2)
        assert at2["label"] == "better beyond noise"
        assert body["budget"].startswith("equal tokens") and body["paper"]
        assert client.get("/v1/repetition/nope").status_code == 404
